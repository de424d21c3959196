package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestInsertChecksAnEarlierFlushsAttempt: a flush cut short while an insert ran (a shutdown, a
// rebalance) leaves the batch with that attempt; the next flush of the batch — the last one on
// shutdown — must read whether it landed before inserting, as a retry within one flush does. Without
// that, a SIGTERM during an events insert wrote the block twice.
func TestInsertChecksAnEarlierFlushsAttempt(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	cfg := Defaults()
	m, log := newMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler)
	s := &sink{store: chstore.NewWriter(conn), topic: "requests", lookback: cfg.HighWaterLookback, cfg: &cfg,
		retry: &retrier{maxBackoff: cfg.RetryMaxBackoff, m: m, log: log}, m: m, log: log,
		group: fakeMember{id: "m1", gen: 1}, epochs: map[int32]uint64{}}
	ctx := context.Background()
	if err := s.claim(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	b := newBatch()
	for off := range int64(3) {
		b.activity = append(b.activity, chstore.ActivityRow{ProjectID: 1, WebhookID: "wh", RequestID: uuid.Must(uuid.NewV7()),
			ReceivedAt: now, ReceivedMs: uint64(now.UnixMilli()), Status: chstore.StatusSuccess, Partition: 0, Offset: off})
		b.noteOffset(chstore.ActivityLog, 0, off)
	}
	count := func() uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM activity_log").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The earlier flush's attempt landed, but its caller saw an error (its context ended).
	b.attempt[chstore.ActivityLog] = chstore.InsertQueryID("requests", []int32{0})
	if err := s.store.InsertActivity(ctx, b.activity); err != nil {
		t.Fatal(err)
	}
	if err := s.insert(ctx, chstore.ActivityLog, b); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d rows after the next flush; want 3 (the landed attempt is not repeated)", n)
	}

	// An attempt that did not land is made again.
	b.reset()
	for off := range int64(2) {
		b.activity = append(b.activity, chstore.ActivityRow{ProjectID: 1, WebhookID: "wh", RequestID: uuid.Must(uuid.NewV7()),
			ReceivedAt: now, ReceivedMs: uint64(now.UnixMilli()), Status: chstore.StatusSuccess, Partition: 0, Offset: 3 + off})
		b.noteOffset(chstore.ActivityLog, 0, 3+off)
	}
	b.attempt[chstore.ActivityLog] = chstore.InsertQueryID("requests", []int32{0})
	if err := s.insert(ctx, chstore.ActivityLog, b); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 5 {
		t.Fatalf("%d rows; want 5", n)
	}
}

// fakeMember is a group member whose generation is gen; current answers err.
type fakeMember struct {
	id  string
	gen int32
	err error
}

func (f fakeMember) member() (string, int32)       { return f.id, f.gen }
func (f fakeMember) current(context.Context) error { return f.err }

// TestClaimFencesEarlierOwner: on real ClickHouse, once a later owner has claimed a partition, an insert
// of the earlier owner — frozen before its INSERT reached the server, thawed after — lands nothing, in
// activity_log and in the rollup its materialized views feed, while the new owner's lands; a stale
// member (the coordinator refuses its generation) cannot claim past the new owner; a static member's
// replacement of the same generation, and a member of a re-created group (its generations started
// again), can, and then fence the owner before them.
func TestClaimFencesEarlierOwner(t *testing.T) {
	chcfg, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	store, readCtx := chstore.NewWriter(conn), ctx
	if chcfg.Replicated() { // quorum inserts, and reads that see every one of them on either replica
		replicas, err := chdb.OpenReplicas(ctx, chcfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, r := range replicas {
				r.Close()
			}
		})
		store = chstore.NewReplicatedWriter(conn, replicas, chcfg.Quorum())
		readCtx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"select_sequential_consistency": 1}))
	}
	cfg := Defaults()
	m, log := newMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler)
	newSink := func(g fakeMember) *sink {
		return &sink{store: store, topic: "requests", lookback: cfg.HighWaterLookback, cfg: &cfg,
			retry: &retrier{maxBackoff: cfg.RetryMaxBackoff, m: m, log: log}, m: m, log: log, group: g, epochs: map[int32]uint64{}}
	}
	now := time.Now().UTC()
	next := int64(0)
	batchOf := func(n int) *batch {
		b := newBatch()
		for range n {
			b.activity = append(b.activity, chstore.ActivityRow{ProjectID: 1, WebhookID: "wh", RequestID: uuid.Must(uuid.NewV7()),
				ReceivedAt: now, ReceivedMs: uint64(now.UnixMilli()), Status: chstore.StatusSuccess, Partition: 0, Offset: next})
			b.noteOffset(chstore.ActivityLog, 0, next)
			next++
		}
		return b
	}
	counts := func() (rows, hits uint64) {
		if err := conn.QueryRow(readCtx, "SELECT count() FROM activity_log").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		var h int64
		if err := conn.QueryRow(readCtx, "SELECT sum(hits) FROM activity_minute").Scan(&h); err != nil {
			t.Fatal(err)
		}
		return rows, uint64(h)
	}
	want := func(step string, rows uint64) {
		t.Helper()
		if r, h := counts(); r != rows || h != rows {
			t.Fatalf("%s: activity_log has %d rows and the rollup counts %d; want %d each", step, r, h, rows)
		}
	}

	a := newSink(fakeMember{id: "a", gen: 1})
	if err := a.claim(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	frozen := batchOf(3) // a's batch, decided while it owned the partition
	b := newSink(fakeMember{id: "b", gen: 2})
	if err := b.claim(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	if err := a.send(ctx, chstore.ActivityLog, frozen); err != nil {
		t.Fatal(err)
	}
	want("the thawed owner's insert after the new claim", 0)
	if err := b.send(ctx, chstore.ActivityLog, batchOf(2)); err != nil {
		t.Fatal(err)
	}
	want("the new owner's insert", 2)

	// a, stale, cannot claim past b: the coordinator refuses its generation.
	stale := newSink(fakeMember{id: "a", gen: 1, err: errors.New("ILLEGAL_GENERATION")})
	if err := stale.claim(ctx, []int32{0}); err == nil {
		t.Fatal("a stale member's claim succeeded")
	}

	// b's static replacement (same generation, another member id) takes the next sequence.
	b2 := newSink(fakeMember{id: "b2", gen: 2})
	if err := b2.claim(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	if err := b.send(ctx, chstore.ActivityLog, batchOf(4)); err != nil {
		t.Fatal(err)
	}
	want("the replaced static member's insert", 2)
	if err := b2.send(ctx, chstore.ActivityLog, batchOf(1)); err != nil {
		t.Fatal(err)
	}
	want("the replacement's insert", 3)

	// The group is re-created: its generations start again at 1, below the recorded 2.
	c := newSink(fakeMember{id: "c", gen: 1})
	if err := c.claim(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	if err := b2.send(ctx, chstore.ActivityLog, batchOf(5)); err != nil {
		t.Fatal(err)
	}
	if err := c.send(ctx, chstore.ActivityLog, batchOf(2)); err != nil {
		t.Fatal(err)
	}
	want("after the group was re-created", 5)
	var epoch uint64
	if err := conn.QueryRow(readCtx, "SELECT max(epoch) FROM partition_owners WHERE topic = 'requests' AND src_partition = 0").Scan(&epoch); err != nil {
		t.Fatal(err)
	}
	if epoch != c.epochs[0] || epochString(epoch) != "1/1/0" {
		t.Fatalf("latest claim %s; want c's, 1/1/0", epochString(epoch))
	}
}
