package chstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestAwaitQuery: the retry of a failed insert waits while the server still runs the failed attempt
// (found by its query id in system.processes), so that the read-back of the high-water mark sees it.
func TestAwaitQuery(t *testing.T) {
	cfg, conn := testenv.ClickHouse(t)
	if cfg.Replicated() {
		t.Skip("a single server's test (its own connection must reach the server running the query); TestAwaitOnEveryReplica is the cluster's")
	}
	w := chstore.NewWriter(conn)
	ctx := context.Background()
	if err := w.AwaitQuery(ctx, uuid.NewString(), time.Second); err != nil {
		t.Fatalf("AwaitQuery(unknown id) = %v; want nil at once", err)
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
	if err := w.AwaitQuery(ctx, id, 10*time.Second); err != nil {
		t.Fatalf("AwaitQuery(running) = %v", err)
	}
	returned := time.Now()
	ended := <-done
	if returned.Before(ended.Add(-200 * time.Millisecond)) {
		t.Fatalf("AwaitQuery returned %s before the query ended", ended.Sub(returned))
	}
	if err := w.AwaitQuery(ctx, id, time.Second); err != nil {
		t.Fatalf("AwaitQuery(ended) = %v; want nil", err)
	}
}

// TestAwaitInserts: a new owner of a partition waits while an insert naming that partition still runs on
// the server, and not for inserts of other partitions or topics.
func TestAwaitInserts(t *testing.T) {
	cfg, conn := testenv.ClickHouse(t)
	if cfg.Replicated() {
		t.Skip("a single server's test (its own connection must reach the server running the query); TestAwaitOnEveryReplica is the cluster's")
	}
	w := chstore.NewWriter(conn)
	ctx := context.Background()
	const topic = "t.requests"
	if err := w.AwaitInserts(ctx, topic, []int32{0, 1, 2}, time.Second); err != nil {
		t.Fatalf("AwaitInserts(nothing running) = %v; want nil at once", err)
	}
	// Queries standing in for inserts the client gave up on: partitions 1 and 12 of the topic for ~1.5 s,
	// partition 2 of another topic for ~3 s.
	ours := chstore.InsertQueryID(topic, []int32{12, 1})
	other := chstore.InsertQueryID("t.other", []int32{2})
	done := make(chan time.Time, 1)
	go func() {
		_ = conn.Exec(clickhouse.Context(ctx, clickhouse.WithQueryID(ours)), "SELECT sleep(1.5)")
		done <- time.Now()
	}()
	go func() { _ = conn.Exec(clickhouse.Context(ctx, clickhouse.WithQueryID(other)), "SELECT sleep(3)") }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.processes WHERE query_id IN (?, ?)", ours, other).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sleeping queries never showed in system.processes")
		}
	}
	// Partitions 0 and 2 of this topic: neither is named by a running insert (",2," is not within
	// ",12,1,", and partition 2's insert is another topic's).
	start := time.Now()
	if err := w.AwaitInserts(ctx, topic, []int32{0, 2}, 5*time.Second); err != nil {
		t.Fatalf("AwaitInserts(partitions not running) = %v", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("AwaitInserts(partitions not running) waited %s", waited)
	}
	if err := w.AwaitInserts(ctx, topic, []int32{1}, 300*time.Millisecond); err == nil {
		t.Fatal("AwaitInserts(partition 1, 300ms) = nil while its insert runs; want an error")
	}
	if err := w.AwaitInserts(ctx, topic, []int32{5, 12}, 10*time.Second); err != nil {
		t.Fatalf("AwaitInserts(partition 12) = %v", err)
	}
	returned := time.Now()
	ended := <-done
	if returned.Before(ended.Add(-200 * time.Millisecond)) {
		t.Fatalf("AwaitInserts returned %s before the insert ended", ended.Sub(returned))
	}
}

// TestFiredAbove: the rows above a mark that fired events, with a fan-out's fired elements read from
// its outcomes; failures and skips that fired nothing are not listed.
func TestFiredAbove(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	w := chstore.NewWriter(conn)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	row := func(off int64, status string, fired uint32, outcomes string) chstore.ActivityRow {
		return chstore.ActivityRow{ProjectID: 1, WebhookID: "wh", RequestID: uuid.New(), ReceivedAt: now,
			ReceivedMs: uint64(now.UnixMilli()), Status: status, EdgeStatus: 202, Partition: 3, Offset: off,
			EventsFired: fired, Outcomes: outcomes}
	}
	rows := []chstore.ActivityRow{
		row(1, chstore.StatusSuccess, 1, ""), // at the mark: not listed
		row(2, chstore.StatusSuccess, 1, ""),
		row(3, chstore.StatusFailed, 0, ""),
		row(4, chstore.StatusFailed, 2, `[{"index":0,"status":"success"},{"index":1,"status":"failed","reason":"user_not_found"},{"index":2,"status":"success"}]`),
		row(5, chstore.StatusSkipped, 0, ""),
		row(6, chstore.StatusSuccess, 2, `[{"index":0,"status":"success"},{"index":1,"status":"success"}]`),
	}
	if err := w.InsertActivity(ctx, rows); err != nil {
		t.Fatal(err)
	}
	got, err := w.FiredAbove(ctx, 3, 1, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]chstore.Fired{2: {}, 4: {FanOut: true, Elements: []int32{0, 2}}, 6: {FanOut: true, Elements: []int32{0, 1}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("FiredAbove = %v; want %v", got, want)
	}
}

// TestAwaitOnEveryReplica (cluster only): an insert the client gave up on runs on the replica that took
// it; a replicated Writer whose connection reaches the other replica still waits for it, where a
// single-server Writer would not see it.
func TestAwaitOnEveryReplica(t *testing.T) {
	cfg := testenv.ClickHouseConfig()
	if !cfg.Replicated() || len(cfg.Addrs) < 2 {
		t.Skip("needs the local cluster's two ClickHouse replicas (INLET_CLICKHOUSE_CLUSTER): run `make cluster-test`")
	}
	cfg, _ = testenv.ClickHouse(t)
	ctx := context.Background()
	replicas, err := chdb.OpenReplicas(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, r := range replicas {
			r.Close()
		}
	}()
	id := chstore.InsertQueryID("t.requests", []int32{4})
	done := make(chan time.Time, 1)
	go func() {
		_ = replicas[1].Exec(clickhouse.Context(ctx, clickhouse.WithQueryID(id)), "SELECT sleep(2)")
		done <- time.Now()
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n uint64
		if err := replicas[1].QueryRow(ctx, "SELECT count() FROM system.processes WHERE query_id = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sleeping query never showed in replica 2's system.processes")
		}
	}
	if err := chstore.NewWriter(replicas[0]).AwaitInserts(ctx, "t.requests", []int32{4}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("the query ended before the single-server check returned; the test proves nothing")
	default:
	}
	w := chstore.NewReplicatedWriter(replicas[0], replicas, 2)
	if err := w.AwaitInserts(ctx, "t.requests", []int32{4}, 10*time.Second); err != nil {
		t.Fatalf("AwaitInserts = %v", err)
	}
	returned := time.Now()
	if ended := <-done; returned.Before(ended.Add(-200 * time.Millisecond)) {
		t.Fatalf("AwaitInserts returned %s before the insert on the other replica ended", ended.Sub(returned))
	}
	if err := w.AwaitQuery(ctx, id, time.Second); err != nil {
		t.Fatalf("AwaitQuery(ended) = %v; want nil", err)
	}
}
