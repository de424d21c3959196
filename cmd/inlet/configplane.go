package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

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
	store    *webhook.Store
	hooks    *webhook.Cache
	warmMax  int
	log      *slog.Logger
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
	store := webhook.NewStore(pool, sealer)
	hooks, err := webhook.NewCache(store, cfg.WebhookCache, reg, log)
	if err != nil {
		pool.Close()
		return nil, err
	}
	notifier := pgdb.NewNotifier(cfg.Postgres.DSN, log)
	hooks.Subscribe(notifier)
	return &configPlane{pool: pool, notifier: notifier, store: store, hooks: hooks, warmMax: cfg.WebhookCache.WarmMax, log: log}, nil
}

// warm loads the live webhooks into the cache in the background of start-up: requests are served
// meanwhile (a webhook not loaded yet is read on demand), and a failure only costs those reads.
func (c *configPlane) warm(ctx context.Context) error {
	if c.warmMax == 0 {
		return nil
	}
	start := time.Now()
	n, err := c.hooks.Warm(ctx, c.store, c.warmMax)
	if err != nil && ctx.Err() == nil {
		c.log.Warn("webhook cache not warmed; webhooks are read on first use", "loaded", n, "err", err)
		return nil
	}
	c.log.Info("webhook cache warmed", "webhooks", n, "took", time.Since(start))
	return nil
}

func (c *configPlane) close() {
	c.hooks.Close()
	c.pool.Close()
}
