package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/replay"
)

// TestReplayAPI: the count of a filter (dry run), a job's creation, reading, listing and cancelling,
// the replay of one request, and what is refused: another project's job, a request that did not fail
// in the pipeline, a bad filter.
func TestReplayAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	row := func(status, reason string, edge uint16, ms int64) chstore.ActivityRow {
		at := now.Add(time.Duration(ms) * time.Millisecond)
		return chstore.ActivityRow{ProjectID: uint64(e.projA), WebhookID: "wh_r", RequestID: uuid.Must(uuid.NewV7()), ReceivedAt: at,
			ReceivedMs: uint64(at.UnixMilli()), Status: status, Reason: reason, EdgeStatus: edge, Offset: ms}
	}
	rows := []chstore.ActivityRow{
		row("failed", "user_not_found", 202, -5000), row("failed", "user_not_found", 202, -4000),
		row("failed", "attribute_type_mismatch", 202, -3000), row("success", "", 202, -2000),
		row("failed", "auth_rejected", 401, -1000),
	}
	if err := chstore.NewWriter(e.ch).InsertActivity(ctx, rows); err != nil {
		t.Fatal(err)
	}
	filter := map[string]any{"webhook_id": "wh_r", "since": now.Add(-time.Hour), "until": now.Add(time.Minute)}
	count := func(f map[string]any) int {
		t.Helper()
		var out struct{ Count int }
		if err := json.Unmarshal(e.want("POST", "/api/v1/replays?dry_run=1", e.keyA, f, 200), &out); err != nil {
			t.Fatal(err)
		}
		return out.Count
	}
	if n := count(filter); n != 3 {
		t.Errorf("dry run counts %d; want 3 (the pipeline's failures, not the success nor the edge's refusal)", n)
	}
	byReason := map[string]any{"webhook_id": "wh_r", "since": now.Add(-time.Hour), "until": now.Add(time.Minute), "reason": "user_not_found"}
	if n := count(byReason); n != 2 {
		t.Errorf("dry run of user_not_found counts %d; want 2", n)
	}
	var job replay.Job
	if err := json.Unmarshal(e.want("POST", "/api/v1/replays", e.keyA, filter, 202), &job); err != nil {
		t.Fatal(err)
	}
	if job.State != replay.StatePending || job.Total != 3 || !strings.HasPrefix(job.ID, "rj_") {
		t.Errorf("created %+v; want pending, total 3", job)
	}
	e.want("GET", "/api/v1/replays/"+job.ID, e.keyA, nil, 200)
	e.want("GET", "/api/v1/replays/"+job.ID, e.keyB, nil, 404)
	if out := e.want("GET", "/api/v1/replays", e.keyA, nil, 200); !strings.Contains(string(out), job.ID) {
		t.Errorf("list %s; want the job", out)
	}
	if out := e.want("GET", "/api/v1/replays", e.keyB, nil, 200); strings.Contains(string(out), job.ID) {
		t.Errorf("project B lists A's job: %s", out)
	}
	e.want("POST", "/api/v1/replays/"+job.ID+"/cancel", e.keyB, nil, 404)
	if out := e.want("POST", "/api/v1/replays/"+job.ID+"/cancel", e.keyA, nil, 200); !strings.Contains(string(out), `"state":"cancelled"`) {
		t.Errorf("cancel answered %s", out)
	}
	e.want("POST", "/api/v1/replays/"+job.ID+"/cancel", e.keyA, nil, http.StatusConflict)

	one := e.want("POST", "/api/v1/webhooks/wh_r/activity/"+rows[2].RequestID.String()+"/replay", e.keyA, nil, 202)
	if !strings.Contains(string(one), `"total":1`) || !strings.Contains(string(one), rows[2].RequestID.String()) {
		t.Errorf("replay of one request: %s", one)
	}
	e.want("POST", "/api/v1/webhooks/wh_r/activity/"+rows[3].RequestID.String()+"/replay", e.keyA, nil, http.StatusConflict)
	e.want("POST", "/api/v1/webhooks/wh_r/activity/"+rows[4].RequestID.String()+"/replay", e.keyA, nil, http.StatusConflict)
	e.want("POST", "/api/v1/webhooks/wh_r/activity/"+rows[2].RequestID.String()+"/replay", e.keyB, nil, 404)

	for _, bad := range []map[string]any{
		{"webhook_id": "wh_r", "since": now, "until": now.Add(-time.Minute)},
		{"webhook_id": "wh_r", "since": now.Add(-100 * 24 * time.Hour), "until": now},
		{"since": now.Add(-time.Hour), "until": now},
		{"webhook_id": "wh_r", "since": now.Add(-time.Hour), "until": now, "extra": 1},
	} {
		e.want("POST", "/api/v1/replays", e.keyA, bad, 400)
	}
	e.want("POST", "/api/v1/replays", e.keyB, filter, 404) // A's webhook
}
