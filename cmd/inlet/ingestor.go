package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/ingestor"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/obs"
)

// runIngestor builds the ingestor from the settings and runs it until ctx is done.
//
// Shutdown order: the edge stops accepting, drains its in-flight requests and flushes the producer
// (ingestor.Server.Serve logs each step); only then do the internal listener and the config listener
// stop, so /readyz keeps answering "not ready" and configs stay fresh during the drain; then the Kafka
// client, the cache and the pool are closed (deferred, in reverse order).
func runIngestor(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	// Before anything makes UUIDs: request ids then come from a pooled random buffer without allocating.
	uuid.EnableRandPool()

	reg := obs.NewRegistry()
	srv, err := obs.NewServer(cfg.Ingestor.InternalAddr, reg, log)
	if err != nil {
		return err
	}
	cp, err := openConfigPlane(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	defer cp.close()

	cl, err := kafka.NewClient(cfg.Kafka, "ingestor", ingestor.ProducerOpts(cfg.Ingestor)...)
	if err != nil {
		return err
	}
	defer func() {
		cl.Close()
		log.Info("ingestor shutdown: kafka client closed")
	}()

	edge, err := ingestor.New(cfg.Ingestor, ingestor.Deps{
		Hooks:    cp.hooks,
		Producer: cl,
		Topic:    cfg.Kafka.RequestsTopic,
		Registry: reg,
		Logger:   log,
	})
	if err != nil {
		return err
	}
	srv.AddReadyCheck("edge", edge.Ready)
	srv.AddReadyCheck("kafka", func(ctx context.Context) error { return kafka.Ping(ctx, cl) })

	// The internal listener and the config listener outlive the edge's drain (see above).
	background, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(background) })
	g.Go(func() error { return cp.notifier.Run(background) })
	g.Go(func() error { return cp.warm(gctx) })
	g.Go(func() error {
		defer stopBackground()
		return edge.Run(gctx)
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("ingestor process stopped", "err", err)
	return err
}
