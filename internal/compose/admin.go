package compose

import (
	"context"
	"net/http"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/inlet-dev/inlet/admin"
	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/store"
)

// Admin is the admin process's component: the REST API and the console, on the store bundle and a
// ClickHouse reader.
type Admin struct {
	stores *store.Bundle
	ch     driver.Conn
	srv    *admin.Server
}

// NewAdmin builds the admin server from cfg: the stores (the directory store's metrics on d.Registry)
// and the ClickHouse connection of cfg.ClickHouse.
func NewAdmin(ctx context.Context, cfg *config.Config, d Deps) (*Admin, error) {
	d = d.withDefaults()
	stores, err := OpenStores(ctx, cfg, d.Registry, d.Logger)
	if err != nil {
		return nil, err
	}
	ch, err := chdb.Open(ctx, cfg.ClickHouse)
	if err != nil {
		stores.Close()
		return nil, err
	}
	srv := admin.New(cfg.Admin, admin.Deps{
		Logger:    d.Logger,
		Registry:  d.Registry,
		Projects:  stores.Projects,
		Webhooks:  stores.Webhooks,
		Directory: stores.Directory,
		Activity:  chstore.NewReader(ch),
	})
	return &Admin{stores: stores, ch: ch, srv: srv}, nil
}

// ReadyChecks: PostgreSQL and ClickHouse.
func (a *Admin) ReadyChecks() ReadyChecks {
	return ReadyChecks{
		"postgres":   a.stores.Pool.Ping,
		"clickhouse": a.ch.Ping,
	}
}

// Run serves on admin.listen_addr until ctx is done, then drains (admin.Server.Run).
func (a *Admin) Run(ctx context.Context) error { return a.srv.Run(ctx) }

// Handler serves the API and the console, for a server of the caller's.
func (a *Admin) Handler() http.Handler { return a.srv.Handler() }

// Close closes the ClickHouse connection, then the pool. Call it after Run has returned (or the
// caller's server has stopped).
func (a *Admin) Close() {
	a.ch.Close()
	a.stores.Close()
}
