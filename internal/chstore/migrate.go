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
//
// On a cluster (cfg.Cluster set) the same files are applied replica by replica, each replica keeping
// its own record of the versions it has (a local table): every CREATE TABLE's MergeTree engine is made
// the Replicated one (see replicated), created on each replica with the same ZooKeeper path, and so is
// every materialized view (a view fires on the replica that takes the insert; the replicated target
// copies its rows to the others; a view with an inner table gets the Replicated engine too). An ALTER
// of a replicated table is run on the first replica only — ClickHouse replicates it — and the run goes
// on when every replica shows the same columns; so is an INSERT (a backfill), whose rows the replicated
// table copies. Any other statement (DROP, RENAME, …) runs on every replica. ON CLUSTER
// is not used: it needs the distributed DDL queue, and a per-replica run tells which replica failed.
func Migrate(ctx context.Context, cfg chdb.Config, log *slog.Logger) error {
	groups := [][]string{cfg.Addrs} // a single server: one pool over every address
	if cfg.Replicated() {
		groups = nil
		for _, a := range cfg.Addrs {
			groups = append(groups, []string{a})
		}
	}
	conns := make([]driver.Conn, 0, len(groups))
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	applied := make([]map[int64]bool, len(groups))
	for i, addrs := range groups {
		one := cfg
		one.Addrs = addrs
		conn, err := openMigrated(ctx, one)
		if err != nil {
			return err
		}
		conns = append(conns, conn)
		if applied[i], err = appliedVersions(ctx, conn); err != nil {
			return fmt.Errorf("clickhouse %v: %w", addrs, err)
		}
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
		var pending []int
		for i := range conns {
			if !applied[i][version] {
				pending = append(pending, i)
			}
		}
		if len(pending) == 0 {
			continue
		}
		body, err := fs.ReadFile(schema, "schema/"+e.Name())
		if err != nil {
			return err
		}
		start := time.Now()
		for i, stmt := range upStatements(string(body)) {
			if err := applyStatement(ctx, cfg, conns, pending, stmt); err != nil {
				return fmt.Errorf("clickhouse migration %s statement %d: %w", e.Name(), i+1, err)
			}
		}
		for _, r := range pending {
			if err := recordVersion(ctx, conns[r], version); err != nil {
				return fmt.Errorf("clickhouse migration %s: record version on %v: %w", e.Name(), groups[r], err)
			}
		}
		n++
		log.Info("migration applied", "database", "clickhouse", "version", version, "file", e.Name(),
			"replicas", len(pending), "duration", time.Since(start))
	}
	log.Info("schema up to date", "database", "clickhouse", "version", current, "applied_now", n, "cluster", cfg.Cluster)
	return nil
}

// openMigrated creates the database on the server(s) of cfg if needed, connects to it and makes sure
// the version table exists.
func openMigrated(ctx context.Context, cfg chdb.Config) (driver.Conn, error) {
	server, err := chdb.OpenServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	err = server.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database)
	server.Close()
	if err != nil {
		return nil, fmt.Errorf("create clickhouse database %s on %v: %w", cfg.Database, cfg.Addrs, err)
	}
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+versionTable+
		" (version Int64, applied_at DateTime('UTC')) ENGINE = MergeTree() ORDER BY version"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse version table on %v: %w", cfg.Addrs, err)
	}
	return conn, nil
}

func appliedVersions(ctx context.Context, conn driver.Conn) (map[int64]bool, error) {
	applied := map[int64]bool{}
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+versionTable)
	if err != nil {
		return nil, fmt.Errorf("clickhouse applied versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse applied versions: %w", err)
	}
	return applied, nil
}

// applyStatement runs one migration statement on the replicas that lack its version (on a single
// server, on it). On a cluster, a CREATE TABLE gets the Replicated engine, an ALTER TABLE runs on the
// first replica only (ClickHouse replicates it), after which every replica must show the same columns,
// and an INSERT runs once, on the first replica.
func applyStatement(ctx context.Context, cfg chdb.Config, conns []driver.Conn, pending []int, stmt string) error {
	if !cfg.Replicated() {
		return exec(ctx, conns[pending[0]], stmt)
	}
	if m := alterTable.FindStringSubmatch(stmt); m != nil {
		if err := exec(ctx, conns[0], stmt); err != nil {
			return fmt.Errorf("on the first replica %s: %w", cfg.Addrs[0], err)
		}
		return sameColumns(ctx, cfg, conns, m[1])
	}
	if insertStmt.MatchString(stmt) {
		// Rows written into a replicated table reach every replica: written once, by the first replica's
		// run (a replica that runs the file later, the first having run it, gets them by replication).
		if pending[0] != 0 {
			return nil
		}
		if err := exec(ctx, conns[0], stmt); err != nil {
			return fmt.Errorf("on the first replica %s: %w", cfg.Addrs[0], err)
		}
		return nil
	}
	stmt = replicated(stmt, cfg.Database)
	for _, r := range pending {
		if err := exec(ctx, conns[r], stmt); err != nil {
			return fmt.Errorf("on replica %s: %w", cfg.Addrs[r], err)
		}
	}
	return nil
}

// exec runs stmt, skipping an ADD COLUMN whose column exists (columnAdded).
func exec(ctx context.Context, conn driver.Conn, stmt string) error {
	done, err := columnAdded(ctx, conn, stmt)
	if err != nil || done {
		return err
	}
	return conn.Exec(ctx, stmt)
}

// replicaAlterWait bounds how long an ALTER may take to show on every replica.
const replicaAlterWait = 2 * time.Minute

// sameColumns waits until every replica shows table with the columns the first replica has.
func sameColumns(ctx context.Context, cfg chdb.Config, conns []driver.Conn, table string) error {
	ctx, cancel := context.WithTimeout(ctx, replicaAlterWait)
	defer cancel()
	for {
		var want, differ string
		for i, c := range conns {
			var cols string
			if err := c.QueryRow(ctx, "SELECT arrayStringConcat(groupArray(concat(name, ' ', type)), ', ') FROM "+
				"(SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = ? ORDER BY name)",
				table).Scan(&cols); err != nil {
				return fmt.Errorf("columns of %s on %s: %w", table, cfg.Addrs[i], err)
			}
			if i == 0 {
				want = cols
			} else if cols != want {
				differ = cfg.Addrs[i]
			}
		}
		if differ == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the ALTER of %s did not reach replica %s within %s", table, differ, replicaAlterWait)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var (
	// alterTable matches an ALTER TABLE and names the table.
	alterTable = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s+(\w+)\s`)
	// insertStmt matches an INSERT (a backfill).
	insertStmt = regexp.MustCompile(`(?is)^\s*INSERT\s`)
	// createTable matches a CREATE TABLE, or a materialized view with an inner table (ENGINE = …), and
	// names it.
	createTable = regexp.MustCompile(`(?is)^\s*CREATE\s+(?:TABLE|MATERIALIZED\s+VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)`)
	// mergeTreeEngine matches a non-replicated MergeTree-family engine and its arguments.
	mergeTreeEngine = regexp.MustCompile(`(?is)ENGINE\s*=\s*(\w*?)MergeTree(?:\s*\(((?:[^()]|\([^()]*\))*)\))?`)
)

// replicated turns a CREATE TABLE with a MergeTree-family engine into its Replicated form, the table's
// ZooKeeper path being /clickhouse/tables/{shard}/<database>/<table> and the replica the {replica}
// macro (each replica's config defines both); the engine's own arguments follow. Other statements are
// returned as they are.
func replicated(stmt, database string) string {
	m := createTable.FindStringSubmatch(stmt)
	if m == nil {
		return stmt
	}
	e := mergeTreeEngine.FindStringSubmatchIndex(stmt)
	if e == nil {
		return stmt
	}
	family := stmt[e[2]:e[3]]
	if strings.HasPrefix(family, "Replicated") {
		return stmt
	}
	args := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", database, m[1])
	if e[4] >= 0 && strings.TrimSpace(stmt[e[4]:e[5]]) != "" {
		args += ", " + strings.TrimSpace(stmt[e[4]:e[5]])
	}
	return stmt[:e[0]] + "ENGINE = Replicated" + family + "MergeTree(" + args + ")" + stmt[e[1]:]
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
