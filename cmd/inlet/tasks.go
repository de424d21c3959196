package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/migrations"
	"github.com/inlet-dev/inlet/internal/obs"
	"github.com/inlet-dev/inlet/internal/pgdb"
)

func obsLogger(w io.Writer, cfg *config.Config, process string) *slog.Logger {
	return obs.NewLogger(w, cfg.Log, process)
}

// migrate applies both schemas and the Kafka topic layout. Each step is idempotent.
func migrate(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pool, err := pgdb.Open(ctx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Postgres(ctx, pool, log); err != nil {
		return err
	}
	if err := chstore.Migrate(ctx, cfg.ClickHouse, log); err != nil {
		return err
	}
	cl, err := kafka.NewClient(cfg.Kafka, "migrate")
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, cfg.Kafka); err != nil {
		return err
	}
	log.Info("kafka topics ready", "topics", cfg.Kafka.Topics(), "partitions", cfg.Kafka.Partitions)
	return nil
}
