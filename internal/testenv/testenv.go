// Package testenv gives integration tests their own slice of the real local stack (deploy/local): a
// fresh PostgreSQL database and ClickHouse database with the migrations applied, and uniquely named Kafka
// topics, all removed when the test ends. A service that does not answer fails the test — integration
// tests never skip silently; `make test` starts the stack first.
//
// Addresses come from the same variables the processes read: INLET_POSTGRES_DSN, INLET_CLICKHOUSE_ADDRS,
// INLET_KAFKA_BROKERS, defaulting to the local stack's ports; INLET_CLICKHOUSE_CLUSTER and
// INLET_KAFKA_REPLICATION_FACTOR point the same tests at the local cluster (deploy/cluster, `make
// cluster-test`).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/migrations"
	"github.com/inlet-dev/inlet/internal/pgdb"
)

const hint = " (is the local stack running? `make up` starts it; `make test` does so by itself)"

// needStack skips under -short (`make test-unit`, which promises tests that need no service); every
// other run needs the stack and fails without it.
func needStack(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local stack (Kafka, ClickHouse, PostgreSQL); skipped by -short")
	}
}

// Name returns a short random identifier usable as a database or topic name suffix.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Logger discards logs unless INLET_TEST_LOGS=1.
func Logger() *slog.Logger {
	if os.Getenv("INLET_TEST_LOGS") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// PostgresConfig is the stack's PostgreSQL settings.
func PostgresConfig() pgdb.Config {
	c := pgdb.Defaults()
	if v := os.Getenv("INLET_POSTGRES_DSN"); v != "" {
		c.DSN = v
	}
	return c
}

// ClickHouseConfig is the stack's ClickHouse settings.
func ClickHouseConfig() chdb.Config {
	c := chdb.Defaults()
	if v := os.Getenv("INLET_CLICKHOUSE_ADDRS"); v != "" {
		c.Addrs = strings.Split(v, ",")
	}
	c.Cluster = os.Getenv("INLET_CLICKHOUSE_CLUSTER")
	return c
}

// KafkaConfig is the stack's Kafka settings with topic names unique to this call, so tests never see
// each other's records. Topics are not created; see Kafka.
func KafkaConfig() kafka.Config {
	c := kafka.Defaults()
	if v := os.Getenv("INLET_KAFKA_BROKERS"); v != "" {
		c.Brokers = strings.Split(v, ",")
	}
	n := Name("t")
	c.RequestsTopic = n + ".requests"
	c.EventsTopic = n + ".events"
	c.Partitions = 3
	if n, err := strconv.Atoi(os.Getenv("INLET_KAFKA_REPLICATION_FACTOR")); err == nil && n > 0 {
		c.ReplicationFactor = n
	}
	return c
}

// Postgres creates a fresh, migrated database and returns its settings and a pool on it. Both are gone
// after the test.
func Postgres(t testing.TB) (pgdb.Config, *pgxpool.Pool) {
	t.Helper()
	needStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := PostgresConfig()
	admin, err := pgx.Connect(ctx, base.DSN)
	if err != nil {
		t.Fatalf("connect to postgres %s: %v%s", redact(base.DSN), err, hint)
	}
	defer admin.Close(ctx)
	db := Name("inlet_test")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("create database %s: %v", db, err)
	}
	u, _ := url.Parse(base.DSN)
	u.Path = "/" + db
	cfg := base
	cfg.DSN = u.String()
	pool, err := pgdb.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", db, err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base.DSN); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	})
	if err := migrations.Postgres(ctx, pool, Logger()); err != nil {
		t.Fatalf("migrate %s: %v", db, err)
	}
	return cfg, pool
}

// ClickHouse creates a fresh, migrated database and returns its settings and a connection to it.
func ClickHouse(t testing.TB) (chdb.Config, driver.Conn) {
	t.Helper()
	needStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := ClickHouseConfig()
	cfg.Database = Name("inlet_test")
	if err := chstore.Migrate(ctx, cfg, Logger()); err != nil {
		t.Fatalf("migrate clickhouse %s: %v%s", cfg.Database, err, hint)
	}
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open clickhouse %s: %v", cfg.Database, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		_ = conn.Close()
		if cfg.Replicated() { // each replica holds its own tables (and its own ZooKeeper entries)
			if replicas, err := chdb.OpenReplicas(ctx, cfg); err == nil {
				for _, r := range replicas {
					_ = r.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
					_ = r.Close()
				}
			}
		}
	})
	return cfg, conn
}

// Kafka creates this test's topics and returns their settings and a client (no consumer options). The
// topics are deleted after the test.
func Kafka(t testing.TB) (kafka.Config, *kgo.Client) {
	t.Helper()
	needStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := KafkaConfig()
	cl, err := kafka.NewClient(cfg, "test")
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	if err := kafka.Ping(ctx, cl); err != nil {
		cl.Close()
		t.Fatalf("kafka %v: %v%s", cfg.Brokers, err, hint)
	}
	if err := kafka.EnsureTopics(ctx, cl, cfg); err != nil {
		cl.Close()
		t.Fatalf("create topics: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, cfg.Topics()...)
		cl.Close()
	})
	// A new topic's partitions get leaders a moment after CreateTopics returns; producing before that
	// fails with UNKNOWN_TOPIC_OR_PARTITION. Wait until metadata shows every partition led.
	adm := kadm.NewClient(cl)
	for {
		details, err := adm.ListTopics(ctx, cfg.Topics()...)
		ready := err == nil
		for _, topic := range cfg.Topics() {
			d, ok := details[topic]
			if !ok || d.Err != nil || len(d.Partitions) < cfg.Partitions {
				ready = false
				break
			}
			for _, p := range d.Partitions {
				if p.Err != nil || p.Leader < 0 {
					ready = false
				}
			}
		}
		if ready {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("topics %v not ready: %v", cfg.Topics(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cfg, cl
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable dsn)"
	}
	return u.Redacted()
}

// InsertEvents writes events rows of one subject (kind "user" or "device"), one per millisecond in ms,
// with UUIDv7 ids made at their millisecond as the edge makes them, and returns the ids.
func InsertEvents(t testing.TB, conn driver.Conn, project int64, kind, subject string, ms ...uint64) []uuid.UUID {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), `INSERT INTO events (project_id, subject_kind, subject, occurred_at, event_id,
		event_name, webhook_id, user_id, hwid, hwids, attributes, received_ms, src_partition, src_offset)`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for i, m := range ms {
		id := uuid.Must(uuid.NewV7())
		binary.BigEndian.PutUint16(id[0:2], uint16(m>>32))
		binary.BigEndian.PutUint32(id[2:6], uint32(m))
		ids = append(ids, id)
		if err := b.Append(uint64(project), kind, subject, time.UnixMilli(int64(m)), id, "CheckoutSuccess", "wh",
			subject, "", []string{}, `{}`, m, int32(0), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	return ids
}
