package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/obs"
)

// runIngestor builds the ingestor from the settings and runs it until ctx is done.
//
// Shutdown order: the edge stops accepting, drains its in-flight requests and flushes the producer
// (ingestor.Server.Serve logs each step); only then do the config listener (compose.Ingestor.Run) and
// the internal listener stop, so /readyz keeps answering "not ready" and configs stay fresh during the
// drain; then the Kafka client, the cache and the pool are closed (compose.Ingestor.Close, deferred).
func runIngestor(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	// Before anything makes UUIDs: request ids then come from a pooled random buffer without allocating.
	uuid.EnableRandPool()

	reg := obs.NewRegistry()
	srv, err := obs.NewServer(cfg.Ingestor.InternalAddr, reg, log)
	if err != nil {
		return err
	}
	ing, err := compose.NewIngestor(ctx, cfg, compose.Deps{Registry: reg, Logger: log})
	if err != nil {
		return err
	}
	defer ing.Close()
	ing.ReadyChecks().AddTo(srv)

	// The internal listener outlives the edge's drain (see above).
	background, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(background) })
	g.Go(func() error {
		defer stopBackground()
		return ing.Run(gctx)
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("ingestor process stopped", "err", err)
	return err
}
