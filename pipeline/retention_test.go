package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/pipeline"
)

func TestRetentionDropsOldDays(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	now := time.Now().UTC()
	days := []int{0, 1, 29, 31, 45} // days ago; 31 and 45 are past a 30-day retention
	for _, d := range days {
		at := now.AddDate(0, 0, -d)
		b, err := conn.PrepareBatch(ctx, "INSERT INTO activity_log (project_id, webhook_id, request_id, received_at, received_ms, status, src_partition, src_offset)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(uint64(1), "wh", uuid.New(), at, uint64(at.UnixMilli()), "success", int32(0), int64(d)); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
		e, err := conn.PrepareBatch(ctx, "INSERT INTO events (project_id, subject_kind, subject, occurred_at, event_id, src_partition, src_offset)")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Append(uint64(1), "user", "u", at, uuid.New(), int32(0), int64(d)); err != nil {
			t.Fatal(err)
		}
		if err := e.Send(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := pipeline.Defaults()
	cfg.RetentionDays = 30
	p, err := pipeline.New(cfg, pipeline.Deps{Kafka: testenv.KafkaConfig(), ClickHouse: conn, Hooks: &fakeHooks{}, Resolver: &fakeResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.DropExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("dropped %d partitions; want 4 (two days of two tables)", n)
	}
	var a, ev, rollup uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM activity_log").Scan(&a); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&ev); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT toUInt64(sum(hits)) FROM activity_minute").Scan(&rollup); err != nil {
		t.Fatal(err)
	}
	if a != 3 || ev != 3 || rollup != 5 {
		t.Errorf("after retention: %d activity, %d events rows, rollup %d; want 3, 3 and 5 (the rollup keeps everything)", a, ev, rollup)
	}
}

// TestProjectRetention: the pipeline applies the projects' own retentions (Deps.Retentions) beside the
// server's, each project's to its own rows only.
func TestProjectRetention(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for _, project := range []uint64{1, 2} {
		for _, d := range []int{0, 12} {
			at := now.AddDate(0, 0, -d)
			e, err := conn.PrepareBatch(ctx, "INSERT INTO events (project_id, subject_kind, subject, occurred_at, event_id, src_partition, src_offset)")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Append(project, "user", "u", at, uuid.New(), int32(0), int64(d)); err != nil {
				t.Fatal(err)
			}
			if err := e.Send(); err != nil {
				t.Fatal(err)
			}
		}
	}
	p, err := pipeline.New(pipeline.Defaults(), pipeline.Deps{Kafka: testenv.KafkaConfig(), ClickHouse: conn, Hooks: &fakeHooks{}, Resolver: &fakeResolver{},
		Retentions: func(context.Context) ([]chstore.ProjectRetention, error) {
			return []chstore.ProjectRetention{{ProjectID: 2, EventsDays: 10}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.ApplyRetention(ctx, now); err != nil || n != 1 {
		t.Fatalf("ApplyRetention = %d, %v; want 1 mutation", n, err)
	}
	testenv.WaitFor(t, "project 2's old event deleted", 60*time.Second, func() bool {
		var got string
		if err := conn.QueryRow(ctx, "SELECT toString(groupArray(project_id)) FROM (SELECT project_id FROM events ORDER BY project_id)").Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got == "[1,1,2]"
	})
}
