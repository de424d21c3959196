package chstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestApplyRetention: against the real ClickHouse, a project's shorter retention clears old payloads
// (the rows and their counts stay), deletes its old activity rows and events, and touches neither its
// recent rows nor another project's; a second run issues nothing.
func TestApplyRetention(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var rows []chstore.ActivityRow
	off := int64(0)
	for _, project := range []uint64{1, 2} {
		for _, age := range []int{1, 5, 12} {
			at := now.AddDate(0, 0, -age)
			off++
			rows = append(rows, chstore.ActivityRow{ProjectID: project, WebhookID: "wh", RequestID: uuid.Must(uuid.NewV7()), ReceivedAt: at,
				ReceivedMs: uint64(at.UnixMilli()), Status: chstore.StatusSuccess, Payload: fmt.Sprintf(`{"age":%d}`, age),
				Headers: `{"X-A":"b"}`, Offset: off})
		}
		ms := []uint64{uint64(now.AddDate(0, 0, -1).UnixMilli()), uint64(now.AddDate(0, 0, -12).UnixMilli())}
		testenv.InsertEvents(t, conn, int64(project), "user", "u1", ms...)
	}
	w := chstore.NewWriter(conn)
	for i := range rows { // one insert per daily partition
		if err := w.InsertActivity(ctx, rows[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	policy := []chstore.ProjectRetention{{ProjectID: 1, PayloadDays: 3, ActivityDays: 10, EventsDays: 10}}
	n, err := w.ApplyRetention(ctx, policy, now)
	if err != nil || n != 3 {
		t.Fatalf("ApplyRetention = %d, %v; want 3 mutations", n, err)
	}
	state := func() string {
		var s string
		if err := conn.QueryRow(ctx, `SELECT concat(
			toString((SELECT groupArray(concat(toString(project_id), ':', payload, headers)) FROM (SELECT * FROM activity_log ORDER BY project_id, received_at DESC))), ' ',
			toString((SELECT groupArray(project_id) FROM (SELECT project_id FROM events ORDER BY project_id, occurred_at DESC))))`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := `['1:{"age":1}{"X-A":"b"}','1:','2:{"age":1}{"X-A":"b"}','2:{"age":5}{"X-A":"b"}','2:{"age":12}{"X-A":"b"}'] [1,2,2]`
	testenv.WaitFor(t, "retention mutations applied", 60*time.Second, func() bool { return state() == want })
	if n, err := w.ApplyRetention(ctx, policy, now); err != nil || n != 0 {
		t.Fatalf("second run = %d, %v; want nothing to do", n, err)
	}
	// The rollup keeps every request.
	var hits int64
	if err := conn.QueryRow(ctx, "SELECT sum(hits) FROM activity_minute WHERE project_id = 1").Scan(&hits); err != nil || hits != 3 {
		t.Fatalf("rollup hits of project 1 = %d, %v; want 3", hits, err)
	}
}
