package compose

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/admin"
	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/audit"
	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/erasure"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/pipeline"
)

// Admin is the admin process's component: the REST API and the console, on the store bundle and a
// ClickHouse reader, and the runners of replay jobs (internal/replay) and erasure jobs (internal/erasure).
type Admin struct {
	stores   *store.Bundle
	ch       driver.Conn
	resolver *directory.Resolver
	srv      *admin.Server
	// prod and runner run the replay jobs (package replay): every admin process runs one runner.
	prod     *replay.Producer
	runner   *replay.Runner
	erasures *erasure.Runner
	alerts   *alert.Service
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
	// The dry run's resolver: its answers are never served from its cache (ResolveFresh), so it
	// needs no notifications; its metrics are not exported (the pipeline's are the resolver's).
	res, err := directory.NewResolver(stores.Pool, nil, stores.Projects, cfg.Directory, nil, d.Logger)
	if err != nil {
		ch.Close()
		stores.Close()
		return nil, err
	}
	prod, err := replay.NewProducer(cfg.Kafka, d.Logger)
	if err != nil {
		res.Close()
		ch.Close()
		stores.Close()
		return nil, err
	}
	reader := chstore.NewReader(ch)
	jobs := replay.NewStore(stores.Pool)
	host, _ := os.Hostname()
	runner := replay.NewRunner(replay.RunnerConfig{Owner: fmt.Sprintf("%s-%d", host, os.Getpid())}, jobs, reader, prod, d.Logger)
	runner.SetErased(erasure.NewStore(stores.Pool)) // a subject erased since a request came is never replayed
	erasures := erasure.NewRunner(stores.Pool, chstore.NewEraser(ch), d.Logger)
	srv := admin.New(cfg.Admin, admin.Deps{
		Logger:       d.Logger,
		Registry:     d.Registry,
		Pool:         stores.Pool,
		Projects:     stores.Projects,
		Webhooks:     stores.Webhooks,
		Directory:    stores.Directory,
		Activity:     reader,
		Replays:      jobs,
		ReplayCH:     reader,
		Alerts:       stores.Alerts,
		Retention:    retentionBounds(&cfg.Pipeline),
		Evaluator:    pipeline.NewEvaluator(cfg.Pipeline.Limits(), freshResolver{res}, res),
		MaxBodyBytes: cfg.Ingestor.MaxBodyBytes,
		Audit:        audit.NewStore(stores.Pool),
		Erasures:     erasure.NewStore(stores.Pool),
		WakeErasures: erasures.Wake,
	})
	return &Admin{stores: stores, ch: ch, resolver: res, srv: srv, prod: prod, runner: runner, erasures: erasures,
		alerts: alert.NewService(cfg.Alerts, stores.Alerts, reader, d.Registry, d.Logger)}, nil
}

// ReadyChecks: PostgreSQL and ClickHouse.
func (a *Admin) ReadyChecks() ReadyChecks {
	return ReadyChecks{
		"postgres":   a.stores.Pool.Ping,
		"clickhouse": a.ch.Ping,
	}
}

// Run serves on admin.listen_addr, runs replay and erasure jobs, evaluates the alert rules and delivers
// notifications (alert.Service) until ctx is done, then drains (admin.Server.Run); a replay job or an
// erasure cut short is taken up again when its lease runs out, a notification being POSTed by the next
// worker.
func (a *Admin) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.srv.Run(gctx) })
	g.Go(func() error { return a.runner.Run(gctx) })
	g.Go(func() error { return a.RunErasures(gctx) })
	g.Go(func() error { return a.alerts.Run(gctx) })
	return g.Wait()
}

// RunErasures runs erasure jobs until ctx is done, for a caller that serves Handler itself.
func (a *Admin) RunErasures(ctx context.Context) error { return a.erasures.Run(ctx) }

// Alerts is the alert evaluator and notification worker, for a caller that serves Handler itself and
// runs it beside (the end-to-end tests).
func (a *Admin) Alerts() *alert.Service { return a.alerts }

// Handler serves the API and the console, for a server of the caller's.
func (a *Admin) Handler() http.Handler { return a.srv.Handler() }

// Close closes the ClickHouse connection, then the pool. Call it after Run has returned (or the
// caller's server has stopped).
func (a *Admin) Close() {
	a.resolver.Close()
	a.prod.Close()
	a.ch.Close()
	a.stores.Close()
}

// freshResolver resolves for a dry run: PostgreSQL is asked every time (directory.Resolver's
// ResolveFresh), so a user created a moment ago is found.
type freshResolver struct{ r *directory.Resolver }

func (f freshResolver) Resolve(ctx context.Context, projectID int64, kind identify.Kind, values []string) (map[string]pipeline.Subject, error) {
	return f.r.ResolveFresh(ctx, projectID, kind, values)
}

// retentionBounds are the retentions a project may set on this server (pipeline.Config.RetentionBounds).
func retentionBounds(c *pipeline.Config) admin.RetentionBounds {
	rowsMin, max := c.RetentionBounds()
	return admin.RetentionBounds{RowsMin: rowsMin, Max: max}
}
