package main

import (
	"context"
	"log/slog"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/admin"
	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/obs"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
)

// runAdmin builds the admin API and console from the settings and runs it until ctx is done.
func runAdmin(ctx context.Context, cfg *config.Config, log *slog.Logger, _ []string) error {
	reg := obs.NewRegistry()
	internal, err := obs.NewServer(cfg.Admin.InternalAddr, reg, log)
	if err != nil {
		return err
	}
	pool, err := pgdb.Open(ctx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	internal.AddReadyCheck("postgres", func(ctx context.Context) error { return pool.Ping(ctx) })

	srv := admin.New(cfg.Admin, admin.Deps{
		Log:      log,
		Registry: reg,
		Projects: project.NewStore(pool),
	})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return internal.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	log.Info("admin started", "pid", os.Getpid(), "listen", cfg.Admin.ListenAddr)
	err = g.Wait()
	log.Info("admin stopped")
	return err
}
