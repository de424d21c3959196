package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/inlet-dev/inlet/config"
)

// demo seeds the demo project: the seed's CheckoutSuccess event, its sample webhook (enabled) and a few
// users, then prints how to use them.
func demo(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	return notYet("demo")
}
