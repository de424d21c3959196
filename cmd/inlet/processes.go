package main

import (
	"context"
	"log/slog"

	"github.com/inlet-dev/inlet/config"
)

func runIngestor(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return notYet("ingestor")
}

func runPipeline(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return notYet("pipeline")
}

func runAdmin(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	return notYet("admin")
}
