package admin

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// insertActivity writes activity rows the way the pipeline does (one block), so the rollup fills too.
func (e *env) insertActivity(project int64, webhookID string, statuses ...string) []string {
	e.t.Helper()
	ctx := context.Background()
	b, err := e.ch.PrepareBatch(ctx, `INSERT INTO activity_log (project_id, webhook_id, request_id, received_at, received_ms,
		processed_ms, status, reason, edge_status, identifier_kind, identifier_value, user_id, payload, payload_bytes, src_partition, src_offset)`)
	if err != nil {
		e.t.Fatal(err)
	}
	now := time.Now().Add(-time.Minute)
	var ids []string
	for i, st := range statuses {
		id := uuid.Must(uuid.NewV7())
		ids = append(ids, id.String())
		reason := ""
		if st == "failed" {
			reason = "user_not_found"
		}
		at := now.Add(time.Duration(i) * time.Second)
		if err := b.Append(uint64(project), webhookID, id, at, uint64(at.UnixMilli()), uint64(at.UnixMilli()+5), st, reason,
			uint16(202), "user_id", "12345", "12345", `{"user_id":"12345","n":`+string(rune('0'+i))+`}`, uint32(20), int32(0), int64(i)); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

func TestActivityEndpoints(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	var wh struct{ ID string }
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, seedWebhook("CheckoutSuccess"), 201), &wh)
	ids := e.insertActivity(e.projA, wh.ID, "success", "failed", "success", "success")

	out := e.want("GET", "/api/v1/webhooks/"+wh.ID+"/summary", e.keyA, nil, 200)
	for _, want := range []string{`"hits":4`, `"success":3`, `"failed":1`, `"user_not_found":1`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("summary %s lacks %s", out, want)
		}
	}
	if out := e.want("GET", "/api/v1/webhooks", e.keyA, nil, 200); !strings.Contains(string(out), `"received":4`) {
		t.Errorf("list lacks received 4: %s", out)
	}

	var page struct {
		Entries []struct {
			RequestID string `json:"request_id"`
			Status    string
		}
		NextCursor string `json:"next_cursor"`
	}
	decodeInto(t, e.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity?limit=3", e.keyA, nil, 200), &page)
	if len(page.Entries) != 3 || page.NextCursor == "" || page.Entries[0].RequestID != ids[3] {
		t.Fatalf("first page = %+v; want 3 entries newest first and a cursor", page)
	}
	cursor := page.NextCursor
	page.NextCursor = ""
	decodeInto(t, e.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity?limit=3&cursor="+cursor, e.keyA, nil, 200), &page)
	if len(page.Entries) != 1 || page.Entries[0].RequestID != ids[0] || page.NextCursor != "" {
		t.Fatalf("second page = %+v; want the oldest entry and no cursor", page)
	}
	decodeInto(t, e.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity?status=failed", e.keyA, nil, 200), &page)
	if len(page.Entries) != 1 || page.Entries[0].Status != "failed" {
		t.Fatalf("failed filter = %+v", page)
	}
	e.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity?status=weird", e.keyA, nil, 400)
	e.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity?cursor=!!", e.keyA, nil, 400)
	// A cursor of the first format (received_at in seconds + request id) names no position in the
	// millisecond order: 400, saying what to do.
	oldCursor := base64.RawURLEncoding.EncodeToString(make([]byte, 24))
	if out := e.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity?cursor="+oldCursor, e.keyA, nil, 400); !strings.Contains(string(out), "request the first page again") {
		t.Errorf("old-format cursor answered %s; want a detail saying to request the first page again", out)
	}

	out = e.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity/"+ids[1], e.keyA, nil, 200)
	if !strings.Contains(string(out), `"reason":"user_not_found"`) {
		t.Errorf("entry %s lacks its reason", out)
	}
	e.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity/"+ids[1], e.keyB, nil, 404)

	// A deleted webhook's activity stays readable.
	e.want("DELETE", "/api/v1/webhooks/"+wh.ID, e.keyA, nil, 204)
	if out := e.want("GET", "/api/v1/webhooks/"+wh.ID+"/summary", e.keyA, nil, 200); !strings.Contains(string(out), `"hits":4`) {
		t.Errorf("summary after delete = %s", out)
	}
	e.want("GET", "/api/v1/webhooks/"+wh.ID+"/summary", e.keyB, nil, 404)
}

// TestActivityDuplicates: the summary counts duplicates apart from successes and failures, the status
// filter finds them, and entries carry the first request's id and the sender headers as an object.
func TestActivityDuplicates(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	var wh struct{ ID string }
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, seedWebhook("CheckoutSuccess"), 201), &wh)
	now := time.Now().Add(-time.Minute).UTC()
	first := uuid.Must(uuid.NewV7())
	headers := `{"X-GitHub-Event":"push","X-GitHub-Delivery":"72d3162e"}`
	row := func(id uuid.UUID, status, dupOf string, off int64) chstore.ActivityRow {
		return chstore.ActivityRow{ProjectID: uint64(e.projA), WebhookID: wh.ID, RequestID: id, ReceivedAt: now,
			ReceivedMs: uint64(now.UnixMilli() + off), Status: status, EdgeStatus: 202, DuplicateOf: dupOf, Headers: headers, Offset: off}
	}
	if err := chstore.NewWriter(e.ch).InsertActivity(context.Background(), []chstore.ActivityRow{
		row(first, chstore.StatusSuccess, "", 0),
		row(uuid.Must(uuid.NewV7()), chstore.StatusDuplicate, first.String(), 1),
		row(uuid.Must(uuid.NewV7()), chstore.StatusDuplicate, first.String(), 2),
	}); err != nil {
		t.Fatal(err)
	}
	out := e.want("GET", "/api/v1/webhooks/"+wh.ID+"/summary", e.keyA, nil, 200)
	for _, want := range []string{`"hits":3`, `"success":1`, `"failed":0`, `"duplicate":2`, `"failed_by_reason":{}`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("summary %s lacks %s", out, want)
		}
	}
	var page struct {
		Entries []struct {
			Status      string
			DuplicateOf string            `json:"duplicate_of"`
			Headers     map[string]string `json:"headers"`
		}
	}
	decodeInto(t, e.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity?status=duplicate", e.keyA, nil, 200), &page)
	if len(page.Entries) != 2 {
		t.Fatalf("duplicate filter: %d entries; want 2", len(page.Entries))
	}
	for _, en := range page.Entries {
		if en.Status != "duplicate" || en.DuplicateOf != first.String() || en.Headers["X-GitHub-Event"] != "push" || len(en.Headers) != 2 {
			t.Errorf("entry %+v; want a duplicate of %s with both headers", en, first)
		}
	}
}

// insertEvents writes events rows of one subject (see testenv.InsertEvents) and returns their ids.
func (e *env) insertEvents(project int64, kind chstore.SubjectKind, subject string, ms ...uint64) []uuid.UUID {
	e.t.Helper()
	return testenv.InsertEvents(e.t, e.ch, project, string(kind), subject, ms...)
}

// TestHistoryEndpoints: a user's and a device's events come newest first to the millisecond, ties in
// one millisecond by event id, and next_cursor pages through them exactly; before bounds them to the
// millisecond; bad parameters answer 400 and another project's subject 404.
func TestHistoryEndpoints(t *testing.T) {
	e := newEnv(t)
	e.want("PUT", "/api/v1/users/u-hist", e.keyA, map[string]any{"email": "hist@example.com"}, 201)
	e.want("PUT", "/api/v1/devices/hw-hist", e.keyA, map[string]any{"user_id": "u-hist"}, 201)
	s := uint64(time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli())
	// The last millisecond of one second, three events in the first of the next, one later.
	ids := e.insertEvents(e.projA, chstore.SubjectUser, "u-hist", s+999, s+1000, s+1000, s+1000, s+1500)
	dev := e.insertEvents(e.projA, chstore.SubjectDevice, "hw-hist", s+1000)
	busy := []string{ids[1].String(), ids[2].String(), ids[3].String()}
	slices.Sort(busy)
	want := []string{ids[4].String(), busy[2], busy[1], busy[0], ids[0].String()}

	type page struct {
		Events []struct {
			EventID    string    `json:"event_id"`
			OccurredAt time.Time `json:"occurred_at"`
		}
		NextCursor string `json:"next_cursor"`
	}
	var got []string
	cursor := ""
	for n := 0; ; n++ {
		var p page
		decodeInto(t, e.want("GET", "/api/v1/users/u-hist/events?limit=2&cursor="+cursor, e.keyA, nil, 200), &p)
		if len(p.Events) > 2 || (p.NextCursor != "") != (n < 2) {
			t.Fatalf("page %d = %+v; want 2 events and a cursor on pages 0 and 1, the last event and none on page 2", n, p)
		}
		for _, ev := range p.Events {
			got = append(got, ev.EventID)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged history = %v; want %v", got, want)
	}

	for _, tc := range []struct {
		before string
		want   []string
	}{
		{time.UnixMilli(int64(s + 1000)).Add(500 * time.Microsecond).UTC().Format(time.RFC3339Nano), want[1:]},
		{time.UnixMilli(int64(s + 1000)).UTC().Format(time.RFC3339), want[4:]},
	} {
		var p page
		decodeInto(t, e.want("GET", "/api/v1/users/u-hist/events?before="+tc.before, e.keyA, nil, 200), &p)
		var ids []string
		for _, ev := range p.Events {
			ids = append(ids, ev.EventID)
		}
		if !slices.Equal(ids, tc.want) || p.NextCursor != "" {
			t.Errorf("before %s: %v, next cursor %q; want %v and none", tc.before, ids, p.NextCursor, tc.want)
		}
	}

	var p page
	decodeInto(t, e.want("GET", "/api/v1/devices/hw-hist/events", e.keyA, nil, 200), &p)
	if len(p.Events) != 1 || p.Events[0].EventID != dev[0].String() || !p.Events[0].OccurredAt.Equal(time.UnixMilli(int64(s+1000))) {
		t.Errorf("device history = %+v; want its one event at %d ms", p, s+1000)
	}
	e.want("GET", "/api/v1/users/u-hist/events?cursor=!!", e.keyA, nil, 400)
	e.want("GET", "/api/v1/users/u-hist/events?before=yesterday", e.keyA, nil, 400)
	e.want("GET", "/api/v1/users/u-hist/events?limit=501", e.keyA, nil, 400)
	e.want("GET", "/api/v1/users/u-hist/events", e.keyB, nil, 404)
	e.want("GET", "/api/v1/devices/hw-hist/events", e.keyB, nil, 404)
}
