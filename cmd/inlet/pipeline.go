package main

import (
	"context"
	"log/slog"

	"github.com/inlet-dev/inlet/config"
)

// runPipeline builds the pipeline from the settings and runs it until ctx is done.
func runPipeline(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return notYet("pipeline")
}
