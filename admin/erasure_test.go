package admin

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/erasure"
	"github.com/inlet-dev/inlet/internal/identify"
)

// awaitErasure polls the job through the API until it is done (or failed: the test fails).
func (e *env) awaitErasure(key string, id int64) erasure.Job {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var j erasure.Job
		decodeInto(e.t, e.want("GET", fmt.Sprintf("/api/v1/erasures/%d", id), key, nil, 200), &j)
		switch {
		case j.Status == erasure.StatusDone:
			return j
		case j.Status == erasure.StatusFailed:
			e.t.Fatalf("erasure %d failed: %+v", id, j)
		case time.Now().After(deadline):
			e.t.Fatalf("erasure %d still %s after 90 s: %+v", id, j.Status, j)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// chCount runs a count query on ClickHouse.
func (e *env) chCount(t *testing.T, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := e.ch.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestErasure, against the real ClickHouse: deleting a user erases its activity rows (by user id, by
// the email and phone it was identified by, fan-outs naming it) and its events, leaves other users'
// and other projects' rows and the rollup counts; a request received after the erasure is not touched,
// even when the job runs again; deleting a device does the same for the device. The job is tracked to
// done, its identifiers emptied, and Erased tells a replay what was erased.
func TestErasure(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := chstore.NewWriter(e.ch)
	past := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	off := int64(0)
	row := func(pid int64, marker, kind, value, userID, hwid, outcomes string, at time.Time) chstore.ActivityRow {
		off++
		return chstore.ActivityRow{ProjectID: uint64(pid), WebhookID: marker, RequestID: uuid.New(), ReceivedAt: at,
			ReceivedMs: uint64(at.UnixMilli()), ProcessedMs: uint64(at.UnixMilli()), Status: chstore.StatusSuccess,
			IdentifierKind: kind, IdentifierValue: value, UserID: userID, HWID: hwid, Outcomes: outcomes,
			Payload: `{"email":"jane@example.com","name":"Jane"}`, Partition: 0, Offset: off}
	}
	rows := []chstore.ActivityRow{
		row(e.projA, "by-user-id", "user_id", "u1", "u1", "", "", past),
		row(e.projA, "by-email", "email", "Jane@Example.com", "u1", "", "", past),
		row(e.projA, "by-email-unresolved", "email", "jane@example.com", "", "", "", past),
		row(e.projA, "by-phone-unresolved", "phone", "+447700900123", "", "", "", past),
		row(e.projA, "fan-out", "", "", "", "", `[{"index":0,"status":"success","user_id":"u2"},{"index":1,"status":"success","user_id":"u1"}]`, past),
		row(e.projA, "other-user", "user_id", "u2", "u2", "", "", past),
		row(e.projA, "device", "hwid", "hw-1", "", "hw-1", "", past),
		row(e.projB, "project-b", "user_id", "u1", "u1", "", "", past),
	}
	if err := w.InsertActivity(ctx, rows); err != nil {
		t.Fatal(err)
	}
	ev := func(pid int64, kind, subject, userID, hwid string) chstore.EventRow {
		off++
		return chstore.EventRow{ProjectID: uint64(pid), SubjectKind: kind, Subject: subject, OccurredAt: past, EventID: uuid.New(),
			EventName: "Checkout", WebhookID: "wh", UserID: userID, HWID: hwid, Attributes: `{"email":"jane@example.com"}`,
			ReceivedMs: uint64(past.UnixMilli()), Offset: off, Element: -1}
	}
	if err := w.InsertEvents(ctx, []chstore.EventRow{
		ev(e.projA, "user", "u1", "u1", ""), ev(e.projA, "user", "u2", "u2", ""), ev(e.projA, "device", "hw-1", "", "hw-1"),
		ev(e.projB, "user", "u1", "u1", ""),
	}); err != nil {
		t.Fatal(err)
	}
	hits := func() uint64 {
		return e.chCount(t, "SELECT toUInt64(sum(hits)) FROM activity_minute WHERE project_id = ?", uint64(e.projA))
	}
	hitsBefore := hits()
	if hitsBefore != 7 {
		t.Fatalf("rollup counts %d; want 7", hitsBefore)
	}
	left := func(pid int64) map[string]bool {
		t.Helper()
		rs, err := e.ch.Query(ctx, "SELECT webhook_id FROM activity_log WHERE project_id = ?", uint64(pid))
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		out := map[string]bool{}
		for rs.Next() {
			var s string
			if err := rs.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[s] = true
		}
		return out
	}

	e.want("PUT", "/api/v1/users/u1", e.keyA, map[string]string{"email": "jane@example.com", "phone": "+447700900123"}, 201)
	var job erasure.Job
	decodeInto(t, e.want("DELETE", "/api/v1/users/u1", e.keyA, nil, 202), &job)
	if job.SubjectKind != "user" || job.Subject != "u1" || job.Status != erasure.StatusPending {
		t.Fatalf("job = %+v", job)
	}
	done := e.awaitErasure(e.keyA, job.ID)
	if done.FinishedAt == nil || done.Attempts != 1 {
		t.Errorf("done job = %+v", done)
	}
	got := left(e.projA)
	for _, gone := range []string{"by-user-id", "by-email", "by-email-unresolved", "by-phone-unresolved", "fan-out"} {
		if got[gone] {
			t.Errorf("activity row %q is still there after the user's erasure", gone)
		}
	}
	for _, kept := range []string{"other-user", "device"} {
		if !got[kept] {
			t.Errorf("activity row %q was erased with another user", kept)
		}
	}
	if !left(e.projB)["project-b"] {
		t.Errorf("project B's row of its own user u1 was erased")
	}
	if n := e.chCount(t, "SELECT count() FROM events WHERE project_id = ? AND user_id = 'u1'", uint64(e.projA)); n != 0 {
		t.Errorf("%d events of u1 left", n)
	}
	if n := e.chCount(t, "SELECT count() FROM events WHERE project_id = ?", uint64(e.projA)); n != 2 {
		t.Errorf("%d events left in project A; want u2's and the device's", n)
	}
	if n := e.chCount(t, "SELECT count() FROM events WHERE project_id = ?", uint64(e.projB)); n != 1 {
		t.Errorf("%d events left in project B; want 1", n)
	}
	if got := hits(); got != hitsBefore {
		t.Errorf("rollup counts %d after the erasure; want them kept, %d", got, hitsBefore)
	}
	var ids string
	if err := e.pool.QueryRow(ctx, `SELECT identifiers::text FROM erasures WHERE id = $1`, job.ID).Scan(&ids); err != nil || ids != "{}" {
		t.Errorf("a done job keeps identifiers %s, %v; want {}", ids, err)
	}

	// A request for the same user arriving after the erasure stays, even if the job is run again.
	later := time.Now().UTC().Add(time.Second)
	if err := w.InsertActivity(ctx, []chstore.ActivityRow{row(e.projA, "after", "email", "jane@example.com", "u1", "", "", later)}); err != nil {
		t.Fatal(err)
	}
	if err := chstore.NewEraser(e.ch).Erase(ctx, chstore.Subject{ProjectID: e.projA, Kind: chstore.SubjectUser, ID: "u1",
		Email: "jane@example.com", Before: done.RequestedAt, Tag: fmt.Sprintf("inlet-erasure-%d-again", job.ID)}); err != nil {
		t.Fatal(err)
	}
	if !left(e.projA)["after"] {
		t.Errorf("a request received after the erasure was erased by the job run again")
	}

	// What a replay asks.
	store := erasure.NewStore(e.pool)
	for _, c := range []struct {
		kind  identify.Kind
		value string
		at    time.Time
		want  bool
	}{
		{identify.ByUserID, "u1", past, true},
		{identify.ByEmail, "JANE@example.com", past, true},
		{identify.ByPhone, "+447700900123", past, true},
		{identify.ByUserID, "u1", later, false},
		{identify.ByUserID, "u2", past, false},
	} {
		if got, err := store.Erased(ctx, e.projA, c.kind, c.value, c.at); err != nil || got != c.want {
			t.Errorf("Erased(%s %q received %s) = %v, %v; want %v", c.kind, c.value, c.at, got, err, c.want)
		}
	}
	if got, err := store.Erased(ctx, e.projB, identify.ByUserID, "u1", past); err != nil || got {
		t.Errorf("Erased in project B = %v, %v; want false", got, err)
	}

	// A device.
	e.want("PUT", "/api/v1/devices/hw-1", e.keyA, map[string]string{"platform": "ios"}, 201)
	decodeInto(t, e.want("DELETE", "/api/v1/devices/hw-1", e.keyA, nil, 202), &job)
	e.awaitErasure(e.keyA, job.ID)
	if left(e.projA)["device"] {
		t.Errorf("the device's activity row is still there")
	}
	if n := e.chCount(t, "SELECT count() FROM events WHERE project_id = ? AND subject = 'hw-1'", uint64(e.projA)); n != 0 {
		t.Errorf("%d events of the device left", n)
	}
	if !left(e.projA)["other-user"] {
		t.Errorf("u2's row went with the device")
	}
	var list struct{ Erasures []erasure.Job }
	decodeInto(t, e.want("GET", "/api/v1/erasures", e.keyA, nil, 200), &list)
	if len(list.Erasures) != 2 || list.Erasures[0].SubjectKind != "device" || list.Erasures[1].Subject != "u1" {
		t.Errorf("erasures = %+v", list.Erasures)
	}
}
