package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/obs"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/pipeline"
)

// runPipeline builds the pipeline from the settings and runs it until ctx is done. INLET_PIPELINE_FAILPOINT
// (crash tests only) makes it SIGKILL itself at the named point of its first flush.
func runPipeline(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	reg := obs.NewRegistry()
	srv, err := obs.NewServer(cfg.Pipeline.InternalAddr, reg, log)
	if err != nil {
		return err
	}
	pool, err := pgdb.Open(ctx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	sealer, err := secret.NewSealer(cfg.Secrets.Key())
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	notifier := pgdb.NewNotifier(cfg.Postgres.DSN, log)
	hooks, err := webhook.NewCache(webhook.NewStore(pool, sealer), cfg.WebhookCache, reg, log)
	if err != nil {
		return err
	}
	defer hooks.Close()
	hooks.Subscribe(notifier)
	dir, err := directory.NewResolver(pool, notifier, cfg.Directory, reg, log)
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
		Hooks:      hooks,
		Resolver:   resolver{dir},
		Notifier:   &pipeline.HTTPNotifier{URLs: notificationURLs(pool), Client: &http.Client{}},
		Registry:   reg,
		Logger:     log,
		Failpoint:  pipeline.FailpointFromEnv(),
	})
	if err != nil {
		return err
	}
	srv.AddReadyCheck("clickhouse", conn.Ping)
	srv.AddReadyCheck("postgres", pool.Ping)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return notifier.Run(gctx) })
	g.Go(func() error { return p.Run(gctx) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("pipeline process stopped")
	return err
}

// resolver adapts the directory's Subject to the pipeline's (the two packages do not import each other's
// types on the hot path).
type resolver struct{ r *directory.Resolver }

func (a resolver) Resolve(ctx context.Context, projectID int64, kind webhook.IdentifyKind, values []string) (map[string]pipeline.Subject, error) {
	m, err := a.r.Resolve(ctx, projectID, kind, values)
	if err != nil {
		return nil, err
	}
	out := make(map[string]pipeline.Subject, len(m))
	for k, s := range m {
		out[k] = pipeline.Subject{UserID: s.UserID, HWID: s.HWID, HWIDs: s.HWIDs}
	}
	return out, nil
}

// notificationURLs reads projects.notification_url.
func notificationURLs(pool *pgxpool.Pool) pipeline.URLSource {
	return func(ctx context.Context, projectID int64) (string, error) {
		var url string
		err := pool.QueryRow(ctx, "SELECT notification_url FROM projects WHERE id = $1", projectID).Scan(&url)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", nil
		}
		return url, err
	}
}
