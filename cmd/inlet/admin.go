package main

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/obs"
)

// runAdmin builds the admin API and console from the settings and runs it until ctx is done.
//
// Shutdown order: the internal listener and the admin server stop together (the server drains for up
// to 10 s, admin.Server.Run); then the ClickHouse connection and the pool are closed
// (compose.Admin.Close, deferred).
func runAdmin(ctx context.Context, cfg *config.Config, log *slog.Logger, _ []string) error {
	reg := obs.NewRegistry()
	internal, err := obs.NewServer(cfg.Admin.InternalAddr, reg, log)
	if err != nil {
		return err
	}
	a, err := compose.NewAdmin(ctx, cfg, compose.Deps{Registry: reg, Logger: log})
	if err != nil {
		return err
	}
	defer a.Close()
	a.ReadyChecks().AddTo(internal)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return internal.Run(gctx) })
	g.Go(func() error { return a.Run(gctx) })
	log.Info("admin started", "listen", cfg.Admin.ListenAddr, "internal", cfg.Admin.InternalAddr)
	err = g.Wait()
	log.Info("admin stopped")
	return err
}
