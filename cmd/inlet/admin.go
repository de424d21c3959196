package main

import (
	"context"
	"fmt"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/admin"
	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/obs"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/webhook"
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
	ch, err := chdb.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer ch.Close()
	internal.AddReadyCheck("postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
	internal.AddReadyCheck("clickhouse", func(ctx context.Context) error { return ch.Ping(ctx) })

	sealer, err := secret.NewSealer(cfg.Secrets.Key())
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	dir, err := directory.NewStore(pool, cfg.Directory, reg, log)
	if err != nil {
		return err
	}
	srv := admin.New(cfg.Admin, admin.Deps{
		Log:       log,
		Registry:  reg,
		Projects:  project.NewStore(pool),
		Webhooks:  webhook.NewStore(pool, sealer),
		Directory: dir,
		Activity:  chstore.NewReader(ch),
	})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return internal.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	log.Info("admin started", "listen", cfg.Admin.ListenAddr, "internal", cfg.Admin.InternalAddr)
	err = g.Wait()
	log.Info("admin stopped")
	return err
}
