package chstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// BenchmarkGatedInsert compares a plain INSERT of a 10,000-row activity_log block with the gated
// INSERT … SELECT the pipeline makes (the rows as an external table, kept only while the partition's
// claim is the inserter's), interleaved on the same server: the metrics are each one's round trip per
// row, including the server's work, and their ratio; B/op and allocs/op are both inserts' client side.
func BenchmarkGatedInsert(b *testing.B) {
	w, gate := gatedWriter(b, "bench")
	ctx := context.Background()
	const n = 10000
	rows := gatedBenchRows(n)
	// Interleaved, so that both see the same load on a shared machine.
	b.ReportAllocs()
	var plain, gated time.Duration
	for b.Loop() {
		start := time.Now()
		if err := w.InsertActivity(ctx, rows); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := w.InsertActivityGated(ctx, gate, rows); err != nil {
			b.Fatal(err)
		}
		plain += mid.Sub(start)
		gated += time.Since(mid)
	}
	b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N*n), "plain-ns/row")
	b.ReportMetric(float64(gated.Nanoseconds())/float64(b.N*n), "gated-ns/row")
	b.ReportMetric(float64(gated)/float64(plain), "gated/plain")
}

// gatedBenchRows are n activity_log rows of a small payload over 6 partitions.
func gatedBenchRows(n int) []chstore.ActivityRow {
	now := time.Now().UTC()
	rows := make([]chstore.ActivityRow, n)
	for i := range rows {
		rows[i] = chstore.ActivityRow{ProjectID: 1, WebhookID: "wh_" + strconv.Itoa(i%100), RequestID: uuid.Must(uuid.NewV7()),
			ReceivedAt: now, ReceivedMs: uint64(now.UnixMilli()), ProcessedMs: uint64(now.UnixMilli()), Status: chstore.StatusSuccess,
			IdentifierKind: "user_id", IdentifierValue: "u" + strconv.Itoa(i), UserID: "u" + strconv.Itoa(i), EventName: "order",
			Attributes: `{"price":12.5,"currency":"EUR"}`, Payload: `{"user_id":"u1","price":12.5,"currency":"EUR","items":[1,2,3]}`,
			PayloadBytes: 64, Partition: int32(i % 6), Offset: int64(i)}
	}
	return rows
}

// BenchmarkGatedInsertClient: what a gated insert of a 10,000-row activity_log block costs the
// inserting process (its CPU time, user and system, per row; not the server's), the pipeline's cost of
// writing a row.
func BenchmarkGatedInsertClient(b *testing.B) {
	w, gate := gatedWriter(b, "bench")
	ctx := context.Background()
	const n = 10000
	rows := gatedBenchRows(n)
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		if err := w.InsertActivityGated(ctx, gate, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N*n), "cpu-ns/row")
}

// TestGatedInsertAllocs: a gated insert allocates per block, not per row (no value boxed per field, the
// external table's columns reused): a change that boxes values again fails here. Counts, not times.
func TestGatedInsertAllocs(t *testing.T) {
	w, gate := gatedWriter(t, "allocs")
	ctx := context.Background()
	const n = 2000
	rows := gatedBenchRows(n)
	insert := func() {
		if err := w.InsertActivityGated(ctx, gate, rows); err != nil {
			t.Fatal(err)
		}
	}
	insert() // warm: the pooled table's columns grown
	perInsert := testing.AllocsPerRun(3, insert)
	t.Logf("%.0f allocations per gated insert of %d rows", perInsert, n)
	if perRow := perInsert / n; perRow >= 0.5 {
		t.Errorf("%.2f allocations per row (%.0f per insert of %d); want fewer than 0.5", perRow, perInsert, n)
	}
}

// gatedWriter is a Writer on the test database that has claimed partitions 0-5 of topic at epoch 1,
// and the gate of that claim.
func gatedWriter(tb testing.TB, topic string) (*chstore.Writer, chstore.Gate) {
	tb.Helper()
	_, conn := testenv.ClickHouse(tb)
	w := chstore.NewWriter(conn)
	epochs := map[int32]uint64{0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
	if err := w.Claim(context.Background(), topic, "m", epochs); err != nil {
		tb.Fatal(err)
	}
	return w, chstore.Gate{Topic: topic, Epochs: epochs}
}
