package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// configPlane is what the data-path processes (ingestor, pipeline) read their configuration through: a
// PostgreSQL pool, the webhook cache in front of it, and the LISTEN connection that pushes changes into
// the cache. The caller runs notifier.Run and calls close when done.
type configPlane struct {
	pool     *pgxpool.Pool
	notifier *pgdb.Notifier
	hooks    *webhook.Cache
}

func openConfigPlane(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (*configPlane, error) {
	pool, err := pgdb.Open(ctx, cfg.Postgres)
	if err != nil {
		return nil, err
	}
	sealer, err := secret.NewSealer(cfg.Secrets.Key())
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("secrets: %w", err)
	}
	hooks, err := webhook.NewCache(webhook.NewStore(pool, sealer), cfg.WebhookCache, reg, log)
	if err != nil {
		pool.Close()
		return nil, err
	}
	notifier := pgdb.NewNotifier(cfg.Postgres.DSN, log)
	hooks.Subscribe(notifier)
	return &configPlane{pool: pool, notifier: notifier, hooks: hooks}, nil
}

func (c *configPlane) close() {
	c.hooks.Close()
	c.pool.Close()
}
