// Package migrations holds the versioned PostgreSQL schema, embedded in the binary and applied with
// goose. Applying it twice is a no-op: goose records each applied version in a table of its own. The
// ClickHouse schema is internal/chstore's (schema/*.sql, applied by chstore.Migrate), beside the SQL
// that reads and writes its tables.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql
var files embed.FS

// versionTable is goose's bookkeeping table (chstore.Migrate keeps one of the same name in ClickHouse).
const versionTable = "inlet_schema_version"

// Postgres applies every pending PostgreSQL migration. A session advisory lock keeps two processes from
// migrating at once.
func Postgres(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("postgres migration lock: %w", err)
	}
	return up(ctx, goose.DialectPostgres, db, "postgres", log, goose.WithSessionLocker(locker))
}

func up(ctx context.Context, dialect goose.Dialect, db *sql.DB, dir string, log *slog.Logger, opts ...goose.ProviderOption) error {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		return err
	}
	opts = append(opts, goose.WithTableName(versionTable), goose.WithDisableGlobalRegistry(true))
	p, err := goose.NewProvider(dialect, db, sub, opts...)
	if err != nil {
		return fmt.Errorf("%s migrations: %w", dir, err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("%s migrations: %w", dir, err)
	}
	for _, r := range results {
		log.Info("migration applied", "database", dir, "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("%s schema version: %w", dir, err)
	}
	log.Info("schema up to date", "database", dir, "version", v, "applied_now", len(results))
	return nil
}
