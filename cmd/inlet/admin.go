package main

import (
	"context"
	"log/slog"

	"github.com/inlet-dev/inlet/config"
)

// runAdmin builds the admin API and console from the settings and runs it until ctx is done.
func runAdmin(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	return notYet("admin")
}
