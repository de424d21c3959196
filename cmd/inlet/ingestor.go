package main

import (
	"context"
	"log/slog"

	"github.com/inlet-dev/inlet/config"
)

// runIngestor builds the ingestor from the settings and runs it until ctx is done.
func runIngestor(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return notYet("ingestor")
}
