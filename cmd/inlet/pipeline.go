package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime/debug"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/obs"
	"github.com/inlet-dev/inlet/pipeline"
)

// runPipeline builds the pipeline from the settings and runs it until ctx is done. INLET_PIPELINE_FAILPOINT
// (crash tests only) makes it SIGKILL itself at the named point of its first flush.
//
// Shutdown order: the internal listener, the config listener and the pipeline stop together; the
// pipeline stops fetching, flushes ClickHouse, commits and leaves the group (pipeline.Pipeline.Run);
// then the ClickHouse connection, the resolver, the cache and the pool are closed
// (compose.Pipeline.Close, deferred).
func runPipeline(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	if cfg.Pipeline.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.Pipeline.MemoryLimit)
	}
	reg := obs.NewRegistry()
	srv, err := obs.NewServer(cfg.Pipeline.InternalAddr, reg, log)
	if err != nil {
		return err
	}
	p, err := compose.NewPipeline(ctx, cfg, compose.Deps{Registry: reg, Logger: log, Failpoint: pipeline.FailpointFromEnv()})
	if err != nil {
		return err
	}
	defer p.Close()
	p.ReadyChecks().AddTo(srv)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return p.Run(gctx) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("pipeline process stopped")
	return err
}
