// Package backup_test runs the backup and restore commands of docs/operations.md, as written, against
// scratch databases of the local stack.
package backup_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveInlet()
	os.Exit(code)
}

// docBlocks returns the shell blocks of docs/operations.md marked <!-- run: NAME -->, by name.
func docBlocks(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile("(?s)<!-- run: (\\S+) -->\n```sh\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = m[2]
	}
	for _, name := range []string{"pg-dump", "pg-restore", "ch-export", "ch-import"} {
		if out[name] == "" {
			t.Fatalf("docs/operations.md has no block marked <!-- run: %s -->", name)
		}
	}
	return out
}

// sh runs a documented block with bash -e in dir, with env added to the test's environment.
func sh(t *testing.T, dir, name, script string, env ...string) {
	t.Helper()
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the block %s failed: %v\n%s\n--- output:\n%s", name, err, script, out)
	}
}

// lookPath finds a binary on PATH or, for PostgreSQL's, under /usr/lib/postgresql/*/bin; "" when absent.
func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name); len(m) > 0 {
		return m[len(m)-1]
	}
	return ""
}

// pathWith is a PATH variable with the directories of bins first.
func pathWith(bins ...string) string {
	dirs := []string{}
	for _, b := range bins {
		dirs = append(dirs, filepath.Dir(b))
	}
	return "PATH=" + strings.Join(append(dirs, os.Getenv("PATH")), string(os.PathListSeparator))
}

// TestBackupRestore: the PostgreSQL blocks carry a webhook, its sealed secret and an API key to a new
// database, where they open with the same master key only; the ClickHouse blocks carry every table to a
// new database with the same rows, activity_minute not counted twice, and the same high-water marks.
func TestBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack")
	}
	blocks := docBlocks(t)
	masterKey := config.NewMasterKey()
	ctx := context.Background()

	// The PostgreSQL database restored into; `inlet migrate` of the ClickHouse part uses it too (a
	// no-op there: the dump holds the migration versions).
	dump, restore := lookPath("pg_dump"), lookPath("pg_restore")
	var restored string
	if dump != "" && restore != "" {
		restored = scratchPostgres(t)
	}
	migrateDSN := restored
	t.Run("postgres", func(t *testing.T) {
		if restored == "" {
			t.Skip("pg_dump or pg_restore is not installed (PostgreSQL's client binaries)")
		}
		path := pathWith(dump, restore)
		dir := t.TempDir()
		src, _ := testenv.Postgres(t)
		stores := openStores(t, src.DSN, masterKey)
		p, apiKey, err := stores.Projects.Create(ctx, "Backed up")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stores.Webhooks.CreateEvent(ctx, p.ID, seed.Event("CheckoutSuccess", "")); err != nil {
			t.Fatal(err)
		}
		in := seed.Webhook("Shop", "CheckoutSuccess", seed.Sample)
		in.Sender, in.Secret = "shopify", "shopify-signing-secret"
		wh, _, err := stores.Webhooks.Create(ctx, p.ID, in)
		if err != nil {
			t.Fatal(err)
		}

		sh(t, dir, "pg-dump", blocks["pg-dump"], path, "INLET_POSTGRES_DSN="+src.DSN)
		sh(t, dir, "pg-restore", blocks["pg-restore"], path, "INLET_POSTGRES_DSN="+restored)

		back := openStores(t, restored, masterKey)
		got, err := back.Webhooks.Get(ctx, p.ID, wh.ID)
		if err != nil {
			t.Fatalf("the webhook after the restore: %v", err)
		}
		if got.Name != "Shop" || got.Sender != "shopify" {
			t.Errorf("restored webhook = %q as %q; want %q as shopify", got.Name, got.Sender, "Shop")
		}
		c, err := back.Webhooks.Credentials(ctx, p.ID, wh.ID)
		if err != nil || c.Secret != in.Secret {
			t.Errorf("restored secret = %q, %v; want %q", c.Secret, err, in.Secret)
		}
		if _, err := back.Webhooks.Hook(ctx, wh.ID); err != nil {
			t.Errorf("the data path's view of the restored webhook: %v", err)
		}
		if _, err := back.Projects.Authenticate(ctx, apiKey); err != nil {
			t.Errorf("the API key after the restore: %v", err)
		}
		// The dump does not hold the master key: another key cannot read the secrets.
		if _, err := openStores(t, restored, config.NewMasterKey()).Webhooks.Credentials(ctx, p.ID, wh.ID); err == nil {
			t.Error("the restored secret opens with another master key")
		}
	})

	t.Run("clickhouse", func(t *testing.T) {
		client := lookPath("clickhouse-client")
		if client == "" {
			t.Skip("clickhouse-client is not installed")
		}
		dir := t.TempDir()
		srcCfg, src := testenv.ClickHouse(t)
		parts := []int32{0, 1, 2}
		writeActivity(t, src, parts)
		since := time.Now().Add(-192 * time.Hour)
		before := snapshot(t, src, parts, since)
		t.Logf("backed up:\n%s", before)

		host, port, err := net.SplitHostPort(srcCfg.Addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		chCmd := func(db string) string {
			return fmt.Sprintf("CH=%s --host %s --port %s --database %s", client, host, port, db)
		}
		sh(t, dir, "ch-export", blocks["ch-export"], chCmd(srcCfg.Database))

		restoredCH := testenv.Name("inlet_backup_test")
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// ClickHouse 18.16 refuses to drop a database that holds a detached table.
			_ = src.Exec(ctx, "ATTACH TABLE "+restoredCH+".activity_minute_mv")
			_ = src.Exec(ctx, "ATTACH TABLE "+restoredCH+".activity_minute_replaced_mv")
			_ = src.Exec(ctx, "DROP DATABASE IF EXISTS "+restoredCH)
		})
		if migrateDSN == "" {
			pg, _ := testenv.Postgres(t)
			migrateDSN = pg.DSN
		}
		kcfg, _ := testenv.Kafka(t)
		bin := testenv.BuildInlet(t)
		sh(t, dir, "ch-import", blocks["ch-import"], chCmd(restoredCH), pathWith(bin),
			"INLET_POSTGRES_DSN="+migrateDSN, "INLET_SECRETS_MASTER_KEY="+masterKey,
			"INLET_CLICKHOUSE_DATABASE="+restoredCH, "INLET_CLICKHOUSE_ADDRS="+srcCfg.Addrs[0],
			"INLET_KAFKA_REQUESTS_TOPIC="+kcfg.RequestsTopic, "INLET_KAFKA_EVENTS_TOPIC="+kcfg.EventsTopic,
			"INLET_KAFKA_PARTITIONS=3")

		cfg := srcCfg
		cfg.Database = restoredCH
		conn, err := chdb.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		after := snapshot(t, conn, parts, since)
		if after != before {
			t.Errorf("restored database:\n%s\nwant, as the backed-up one:\n%s", after, before)
		}
		// The view was attached again: new activity is rolled up.
		writeActivity(t, conn, []int32{0})
		var hits uint64
		if err := conn.QueryRow(ctx, "SELECT toUInt64(sum(hits)) FROM activity_minute").Scan(&hits); err != nil {
			t.Fatal(err)
		}
		var was uint64
		if err := src.QueryRow(ctx, "SELECT toUInt64(sum(hits)) FROM activity_minute").Scan(&was); err != nil {
			t.Fatal(err)
		}
		if hits != was+5 {
			t.Errorf("activity_minute after 5 more requests = %d hits; want %d (the view feeds it again)", hits, was+5)
		}
	})
}

// openStores opens the stores on dsn with master key key, closed after the test.
func openStores(t *testing.T, dsn, key string) *store.Bundle {
	t.Helper()
	cfg, err := config.Load("", []string{"INLET_POSTGRES_DSN=" + dsn, "INLET_SECRETS_MASTER_KEY=" + key})
	if err != nil {
		t.Fatal(err)
	}
	stores, err := compose.OpenStores(context.Background(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stores.Close)
	return stores
}

// scratchPostgres creates an empty database inlet_backup_test_<random>, dropped after the test, and
// returns its DSN.
func scratchPostgres(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	base := testenv.PostgresConfig().DSN
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	db := testenv.Name("inlet_backup_test")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	})
	u, _ := url.Parse(base)
	u.Path = "/" + db
	return u.String()
}

// writeActivity writes, as the pipeline does, 5 requests per partition (one failed) with their events
// and one notification per partition, at offsets after what the table has.
func writeActivity(t *testing.T, conn driver.Conn, parts []int32) {
	t.Helper()
	ctx := context.Background()
	w := chstore.NewWriter(conn)
	var offset int64
	if err := conn.QueryRow(ctx, "SELECT toInt64(count()) FROM activity_log").Scan(&offset); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var acts []chstore.ActivityRow
	var evs []chstore.EventRow
	var notes []chstore.NotificationRow
	for _, x := range parts {
		for i := range int64(5) {
			id := uuid.Must(uuid.NewV7())
			r := chstore.ActivityRow{ProjectID: 1, WebhookID: "wh", RequestID: id, ReceivedAt: now,
				ReceivedMs: uint64(now.UnixMilli()), ProcessedMs: uint64(now.UnixMilli()), Status: chstore.StatusSuccess,
				EdgeStatus: 202, IdentifierKind: "user_id", IdentifierValue: "u1", UserID: "u1", EventName: "CheckoutSuccess",
				Attributes: "{}", Payload: `{"user_id":"u1"}`, PayloadBytes: 16, Partition: x, Offset: offset + i, EventsFired: 1}
			if i == 4 {
				r.Status, r.Reason, r.EventsFired = chstore.StatusFailed, "user_not_found", 0
			} else {
				evs = append(evs, chstore.EventRow{ProjectID: 1, SubjectKind: "user", Subject: "u1", OccurredAt: now, EventID: id,
					EventName: "CheckoutSuccess", WebhookID: "wh", UserID: "u1", Attributes: "{}", ReceivedMs: uint64(now.UnixMilli()),
					Partition: x, Offset: offset + i, Element: -1})
			}
			acts = append(acts, r)
		}
		notes = append(notes, chstore.NotificationRow{ProjectID: 1, WebhookID: "wh", ID: uuid.Must(uuid.NewV7()), Kind: "auth_failures",
			CreatedAt: now, Message: "5 consecutive authentication failures", Partition: x, Offset: offset + 3})
	}
	if err := w.InsertActivity(ctx, acts); err != nil {
		t.Fatal(err)
	}
	if err := w.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.InsertNotifications(ctx, notes); err != nil {
		t.Fatal(err)
	}
}

// snapshot describes a database as the comparison needs it: each table's rows and positions, the
// rollup's hits, and the pipeline's high-water marks per table and partition.
func snapshot(t *testing.T, conn driver.Conn, parts []int32, since time.Time) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, q := range []string{
		"SELECT toUInt64(count()), toInt64(sum(src_offset)), toUInt64(uniqExact(request_id)), toUInt64(countIf(status = 'failed')) FROM activity_log",
		"SELECT toUInt64(count()), toInt64(sum(src_offset)), toUInt64(uniqExact(event_id)), toUInt64(0) FROM events",
		"SELECT toUInt64(count()), toInt64(sum(src_offset)), toUInt64(uniqExact(notification_id)), toUInt64(0) FROM notifications",
		"SELECT toUInt64(count()), toInt64(sum(hits)), toUInt64(uniqExact(webhook_id)), toUInt64(sumIf(hits, status = 'failed')) FROM activity_minute",
	} {
		var n, uniq, extra uint64
		var sum int64
		if err := conn.QueryRow(ctx, q).Scan(&n, &sum, &uniq, &extra); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		fmt.Fprintf(&b, "  %s: %d %d %d %d\n", q, n, sum, uniq, extra)
	}
	w := chstore.NewWriter(conn)
	for tbl := range chstore.NumTables {
		m, err := w.HighWater(ctx, tbl, parts, since)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  HighWater(%s) = %v\n", tbl, m)
	}
	return b.String()
}
