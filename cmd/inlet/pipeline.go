package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/obs"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/pipeline"
)

// runPipeline builds the pipeline from the settings and runs it until ctx is done. INLET_PIPELINE_FAILPOINT
// (crash tests only) makes it SIGKILL itself at the named point of its first flush.
func runPipeline(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	if cfg.Pipeline.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.Pipeline.MemoryLimit)
	}
	reg := obs.NewRegistry()
	srv, err := obs.NewServer(cfg.Pipeline.InternalAddr, reg, log)
	if err != nil {
		return err
	}
	cp, err := openConfigPlane(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	defer cp.close()
	projects := project.NewStore(cp.pool)
	dir, err := directory.NewResolver(cp.pool, cp.notifier, projects, cfg.Directory, reg, log)
	if err != nil {
		return err
	}
	defer dir.Close()
	conn, err := chdb.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	p, err := pipeline.New(cfg.Pipeline, pipeline.Deps{
		Kafka:      cfg.Kafka,
		ClickHouse: conn,
		Hooks:      cp.hooks,
		Resolver:   dir,
		Notifier:   &pipeline.HTTPNotifier{URLs: notificationURLs(projects), Client: &http.Client{}},
		Registry:   reg,
		Logger:     log,
		Failpoint:  pipeline.FailpointFromEnv(),
	})
	if err != nil {
		return err
	}
	srv.AddReadyCheck("clickhouse", conn.Ping)
	srv.AddReadyCheck("postgres", cp.pool.Ping)
	srv.AddReadyCheck("progress", p.Ready)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return cp.notifier.Run(gctx) })
	g.Go(func() error { return cp.warm(gctx) })
	g.Go(func() error { return p.Run(gctx) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("pipeline process stopped")
	return err
}

// notificationURLs reads each project's notification URL.
func notificationURLs(projects *project.Store) pipeline.URLSource {
	return func(ctx context.Context, projectID int64) (string, error) {
		p, err := projects.Get(ctx, projectID)
		if errors.Is(err, project.ErrNotFound) {
			return "", nil
		}
		return p.NotificationURL, err
	}
}
