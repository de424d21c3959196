package chstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/inlet-dev/inlet/internal/chdb"
)

// schema holds the versioned migrations that create Inlet's tables, named <version>_<what>.sql.
//
//go:embed schema/*.sql
var schema embed.FS

// versionTable records the applied versions, as goose does in PostgreSQL (internal/migrations).
const versionTable = "inlet_schema_version"

// Migrate creates the configured database if needed and applies every pending migration of schema/
// in it.
//
// goose's ClickHouse store is not used: on the ClickHouse that Debian ships (18.16) its existence probe
// leaves the database/sql connection broken ("driver: bad connection"). The files keep goose's layout
// (-- +goose Up / Down) and the runner below applies the Up part of each, statement by statement, then
// records the version. ClickHouse has no transactions, so every statement is idempotent (IF NOT EXISTS;
// an ADD COLUMN whose column exists is skipped, see columnAdded) and a run interrupted half-way is
// finished by the next one.
func Migrate(ctx context.Context, cfg chdb.Config, log *slog.Logger) error {
	server, err := chdb.OpenServer(ctx, cfg)
	if err != nil {
		return err
	}
	err = server.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database)
	server.Close()
	if err != nil {
		return fmt.Errorf("create clickhouse database %s: %w", cfg.Database, err)
	}
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+versionTable+
		" (version Int64, applied_at DateTime('UTC')) ENGINE = MergeTree() ORDER BY version"); err != nil {
		return fmt.Errorf("clickhouse version table: %w", err)
	}
	applied := map[int64]bool{}
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+versionTable)
	if err != nil {
		return fmt.Errorf("clickhouse applied versions: %w", err)
	}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse applied versions: %w", err)
	}
	entries, err := fs.ReadDir(schema, "schema")
	if err != nil {
		return err
	}
	var current int64
	n := 0
	for _, e := range entries { // ReadDir sorts by name; names start with the zero-padded version
		version, err := strconv.ParseInt(strings.SplitN(e.Name(), "_", 2)[0], 10, 64)
		if err != nil {
			return fmt.Errorf("clickhouse migration %s: name must start with its version", e.Name())
		}
		current = max(current, version)
		if applied[version] {
			continue
		}
		body, err := fs.ReadFile(schema, "schema/"+e.Name())
		if err != nil {
			return err
		}
		start := time.Now()
		for i, stmt := range upStatements(string(body)) {
			if done, err := columnAdded(ctx, conn, stmt); err != nil || done {
				if err != nil {
					return fmt.Errorf("clickhouse migration %s statement %d: %w", e.Name(), i+1, err)
				}
				continue
			}
			if err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("clickhouse migration %s statement %d: %w", e.Name(), i+1, err)
			}
		}
		if err := recordVersion(ctx, conn, version); err != nil {
			return fmt.Errorf("clickhouse migration %s: record version: %w", e.Name(), err)
		}
		n++
		log.Info("migration applied", "database", "clickhouse", "version", version, "file", e.Name(), "duration", time.Since(start))
	}
	log.Info("schema up to date", "database", "clickhouse", "version", current, "applied_now", n)
	return nil
}

// addColumn matches the statements that add a column (ALTER TABLE t ADD COLUMN c …).
var addColumn = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(\w+)\s`)

// columnAdded reports whether stmt adds a column the table already has: ClickHouse 18.16 has no ADD
// COLUMN IF NOT EXISTS, and a migration interrupted after such a statement must not fail on it when it
// is run again.
func columnAdded(ctx context.Context, conn driver.Conn, stmt string) (bool, error) {
	m := addColumn.FindStringSubmatch(stmt)
	if m == nil {
		return false, nil
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = ? AND name = ?",
		m[1], m[2]).Scan(&n); err != nil {
		return false, fmt.Errorf("does %s have column %s: %w", m[1], m[2], err)
	}
	return n > 0, nil
}

// recordVersion inserts through a batch: an INSERT with inline VALUES hangs on ClickHouse 18.16.
func recordVersion(ctx context.Context, conn driver.Conn, version int64) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+versionTable+" (version, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(version, time.Now()); err != nil {
		return err
	}
	return b.Send()
}

// upStatements returns the statements between "-- +goose Up" and "-- +goose Down", split at semicolons
// that end a line, with comment lines removed.
func upStatements(src string) []string {
	var out []string
	var b strings.Builder
	inUp := false
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "-- +goose Up"):
			inUp = true
			continue
		case strings.HasPrefix(trimmed, "-- +goose Down"):
			inUp = false
			continue
		case !inUp || strings.HasPrefix(trimmed, "--") || trimmed == "":
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(b.String()), ";"))
			b.Reset()
		}
	}
	if s := strings.TrimSpace(b.String()); s != "" {
		out = append(out, s)
	}
	return out
}
