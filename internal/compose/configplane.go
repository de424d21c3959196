package compose

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// configPlane is what the data-path processes (ingestor, pipeline) read their configuration through: the
// store bundle, the webhook cache in front of its webhook store, and the LISTEN connection that pushes
// changes into the cache. The owner runs notifier.Run and warm, and calls close when done.
type configPlane struct {
	stores *store.Bundle
	// hookStore is what the cache reads webhooks from: stores.Webhooks, without verifiers in a process
	// that does not verify requests.
	hookStore *webhook.Store
	notifier  *pgdb.Notifier
	hooks     *webhook.Cache
	warmMax   int
	log       *slog.Logger
}

// Webhook config reads of a cache miss (webhook.BatchLoader): ids per query, queries at once.
const (
	batchIDs     = 500
	batchQueries = 4
)

// openConfigPlane opens the stores (the directory store's metrics are not exported: the data path
// does not import users) and the cache, whose metrics go to reg. verifiers: the cached webhooks have
// their verifiers (the ingestor); the pipeline, which never verifies a request, leaves them out
// (webhook.Store.WithoutVerifiers): they are a few KiB of every HMAC webhook it keeps.
func openConfigPlane(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger, verifiers bool) (*configPlane, error) {
	stores, err := OpenStores(ctx, cfg, nil, log)
	if err != nil {
		return nil, err
	}
	hookStore := stores.Webhooks
	if !verifiers {
		hookStore = hookStore.WithoutVerifiers()
	}
	// Misses are read in shared queries (webhook.BatchLoader): a cold process with many webhooks
	// otherwise spends a pool connection and a query on each. At most batchQueries at once, leaving
	// the pool's other connections to the rest of the process.
	loader := webhook.NewBatchLoader(hookStore, batchIDs, batchQueries, cfg.WebhookCache.LoadTimeout)
	hooks, err := webhook.NewCache(loader, cfg.WebhookCache, reg, log)
	if err != nil {
		stores.Close()
		return nil, err
	}
	notifier := pgdb.NewNotifier(cfg.Postgres.DSN, log)
	hooks.Subscribe(notifier)
	return &configPlane{stores: stores, hookStore: hookStore, notifier: notifier, hooks: hooks, warmMax: cfg.WebhookCache.WarmMax, log: log}, nil
}

// warm loads the live webhooks into the cache in the background of start-up: requests are served
// meanwhile (a webhook not loaded yet is read on demand), and a failure only costs those reads.
func (c *configPlane) warm(ctx context.Context) error {
	if c.warmMax == 0 {
		return nil
	}
	start := time.Now()
	n, err := c.hooks.Warm(ctx, c.hookStore, c.warmMax)
	if err != nil && ctx.Err() == nil {
		c.log.Warn("webhook cache not warmed; webhooks are read on first use", "loaded", n, "err", err)
		return nil
	}
	c.log.Info("webhook cache warmed", "webhooks", n, "took", time.Since(start))
	return nil
}

func (c *configPlane) close() {
	c.hooks.Close()
	c.stores.Close()
}
