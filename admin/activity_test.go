package admin

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
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
