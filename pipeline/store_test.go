package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestAwaitQuery: the retry of a failed insert waits while the server still runs the failed attempt
// (found by its query id in system.processes), so that the read-back of the high-water mark sees it.
func TestAwaitQuery(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	s := &store{conn: conn}
	ctx := context.Background()
	if err := s.awaitQuery(ctx, uuid.NewString(), time.Second); err != nil {
		t.Fatalf("awaitQuery(unknown id) = %v; want nil at once", err)
	}
	id := uuid.NewString()
	done := make(chan time.Time, 1)
	go func() {
		// A query that runs ~1.5 s under a known id, standing in for an insert the client gave up on.
		_ = conn.Exec(clickhouse.Context(ctx, clickhouse.WithQueryID(id)), "SELECT sleep(1.5)")
		done <- time.Now()
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.processes WHERE query_id = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sleeping query never showed in system.processes")
		}
	}
	if err := s.awaitQuery(ctx, id, 10*time.Second); err != nil {
		t.Fatalf("awaitQuery(running) = %v", err)
	}
	returned := time.Now()
	ended := <-done
	if returned.Before(ended.Add(-200 * time.Millisecond)) {
		t.Fatalf("awaitQuery returned %s before the query ended", ended.Sub(returned))
	}
	if err := s.awaitQuery(ctx, id, time.Second); err != nil {
		t.Fatalf("awaitQuery(ended) = %v; want nil", err)
	}
}
