package pipeline

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

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
		retry: &retrier{maxBackoff: cfg.RetryMaxBackoff, m: m, log: log}, m: m, log: log}
	ctx := context.Background()
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
