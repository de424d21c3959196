package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
)

// projectCmd: `inlet project create NAME` prints the new project's id and API key (shown once).
func projectCmd(ctx context.Context, cfg *config.Config, args []string, stdout io.Writer) error {
	if len(args) < 2 || args[0] != "create" {
		return usageError{"usage: inlet project create NAME"}
	}
	pool, err := pgdb.Open(ctx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	p, key, err := project.NewStore(pool).Create(ctx, strings.Join(args[1:], " "))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "project %d %q created\nAPI key (shown once, store it now): %s\n", p.ID, p.Name, key)
	return nil
}
