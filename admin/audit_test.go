package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/project"
)

type auditJSON struct {
	Entries []struct {
		ID       int64
		Via      string
		KeyID    *int64 `json:"key_id"`
		KeyName  string `json:"key_name"`
		Target   string
		TargetID string `json:"target_id"`
		Action   string
		Before   map[string]any
		After    map[string]any
	}
	NextBefore int64 `json:"next_before"`
}

// TestEveryWriteIsAudited walks the router: every route that can change something (every method but
// GET, except the dry runs, which need only read) is called once, and each call leaves at least one
// entry naming the key that made it, the target and the action. No secret (webhook secrets, the API
// keys made, the notification signing secret, no ciphertext column such as the mask key's) and no email
// or phone appears in the log.
func TestEveryWriteIsAudited(t *testing.T) {
	e := newEnv(t)
	key := e.newKey("auditor", project.AllScopes...)
	caller, err := e.srv.api.projects.Authenticate(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	var ev, ev2 struct{ ID int64 }
	var wh struct{ ID string }
	var made keyJSON
	var creds struct{ Secret string }
	var rule, job struct{ ID any }
	ids := map[string]string{}
	now := time.Now().UTC().Truncate(time.Millisecond)
	// The replay job's filter; its webhook_id is the webhook's once made.
	replayFilter := map[string]any{"since": now.Add(-time.Hour), "until": now.Add(time.Minute), "reason": "user_not_found"}
	alertRule := map[string]any{"name": "failures", "kind": "failure_ratio", "threshold": 20, "window_minutes": 10, "min_requests": 5}

	// Each write, in an order in which each succeeds, with the target and action it records.
	type write struct {
		method, path string
		body         any
		target       string
		action       string
		after        func(out []byte)
	}
	writes := []write{
		{"PATCH", "/api/v1/project", map[string]any{"phone_region": "GB", "notification_url": "https://alerts.example/x",
			"notification_format": "slack", "retention": map[string]int{"payload_days": 2, "activity_days": 10, "events_days": 30}}, "project", "update", nil},
		{"POST", "/api/v1/project/signing-secret/rotate", nil, "project", "update", func(out []byte) {
			var sec struct {
				SigningSecret string `json:"signing_secret"`
			}
			decodeInto(t, out, &sec)
			secrets = append(secrets, strings.TrimPrefix(sec.SigningSecret, "whsec_"))
		}},
		{"POST", "/api/v1/alert-rules", alertRule, "alert_rule", "create", func(out []byte) {
			decodeInto(t, out, &rule)
			ids["{rule}"] = fmt.Sprint(rule.ID)
		}},
		{"PUT", "/api/v1/alert-rules/{rule}", map[string]any{"name": "failures", "kind": "failure_ratio", "threshold": 30,
			"window_minutes": 10, "min_requests": 5}, "alert_rule", "update", nil},
		{"DELETE", "/api/v1/alert-rules/{rule}", nil, "alert_rule", "delete", nil},
		{"POST", "/api/v1/api-keys", map[string]any{"name": "made"}, "api_key", "create", func(out []byte) {
			decodeInto(t, out, &made)
			secrets = append(secrets, made.Key)
			ids["{key}"] = fmt.Sprint(made.ID)
		}},
		{"POST", "/api/v1/api-keys/{key}/revoke", nil, "api_key", "update", nil},
		{"POST", "/api/v1/events", checkoutEvent(), "event", "create", func(out []byte) {
			decodeInto(t, out, &ev)
			ids["{event}"] = fmt.Sprint(ev.ID)
		}},
		{"PUT", "/api/v1/events/{event}", map[string]any{"name": "CheckoutSuccess", "description": "a checkout",
			"attributes": checkoutEvent()["attributes"]}, "event", "update", nil},
		{"POST", "/api/v1/events", map[string]any{"name": "Spare"}, "event", "create", func(out []byte) {
			decodeInto(t, out, &ev2)
			ids["{event2}"] = fmt.Sprint(ev2.ID)
		}},
		{"DELETE", "/api/v1/events/{event2}", nil, "event", "delete", nil},
		{"POST", "/api/v1/webhooks", seedWebhook("CheckoutSuccess"), "webhook", "create", func(out []byte) {
			decodeInto(t, out, &wh)
			ids["{id}"] = wh.ID
			decodeInto(t, e.want("GET", "/api/v1/webhooks/"+wh.ID+"/credentials", key, nil, 200), &creds)
			secrets = append(secrets, strings.TrimPrefix(creds.Secret, "Bearer "))
			// Two requests that failed in the pipeline, to replay.
			row := func(reason string, ms int64) chstore.ActivityRow {
				at := now.Add(time.Duration(ms) * time.Millisecond)
				return chstore.ActivityRow{ProjectID: uint64(e.projA), WebhookID: wh.ID, RequestID: uuid.Must(uuid.NewV7()), ReceivedAt: at,
					ReceivedMs: uint64(at.UnixMilli()), Status: "failed", Reason: reason, EdgeStatus: 202, Offset: ms}
			}
			rows := []chstore.ActivityRow{row("user_not_found", -2000), row("attribute_type_mismatch", -1000)}
			if err := chstore.NewWriter(e.ch).InsertActivity(context.Background(), rows); err != nil {
				t.Fatal(err)
			}
			replayFilter["webhook_id"] = wh.ID
			ids["{request_id}"] = rows[1].RequestID.String()
		}},
		{"PATCH", "/api/v1/webhooks/{id}", map[string]any{"name": "Renamed checkout"}, "webhook", "update", nil},
		{"PATCH", "/api/v1/webhooks/{id}", map[string]any{"sensitive": map[string]any{"fields": []string{"email"}}}, "webhook", "update", nil},
		{"POST", "/api/v1/replays", replayFilter, "replay_job", "create", func(out []byte) {
			decodeInto(t, out, &job)
			ids["{replay}"] = fmt.Sprint(job.ID)
		}},
		{"POST", "/api/v1/replays/{replay}/cancel", nil, "replay_job", "update", nil},
		{"POST", "/api/v1/webhooks/{id}/activity/{request_id}/replay", nil, "replay_job", "create", nil},
		{"POST", "/api/v1/webhooks/{id}/enable", nil, "webhook", "update", nil},
		{"POST", "/api/v1/webhooks/{id}/disable", nil, "webhook", "update", nil},
		{"POST", "/api/v1/webhooks/{id}/rotate-secret", nil, "webhook", "update", func(out []byte) {
			var c struct{ Secret string }
			decodeInto(t, out, &c)
			secrets = append(secrets, strings.TrimPrefix(c.Secret, "Bearer "))
		}},
		{"DELETE", "/api/v1/webhooks/{id}", nil, "webhook", "delete", nil},
		{"PUT", "/api/v1/users/{user_id}", map[string]any{"email": "jane@private.example", "phone": "+447700900123"}, "user", "create", nil},
		{"PUT", "/api/v1/devices/{hwid}", map[string]any{"user_id": "u-audit", "platform": "ios"}, "device", "create", nil},
		{"DELETE", "/api/v1/devices/{hwid}", nil, "device", "delete", nil},
		{"DELETE", "/api/v1/users/{user_id}", nil, "user", "delete", nil},
		{"POST", "/api/v1/directory/import", `{"type":"user","user_id":"u-imported","email":"imported@private.example"}`, "user", "create", nil},
	}
	ids["{user_id}"], ids["{hwid}"] = "u-audit", "hw-audit"
	covered := map[string]bool{}
	for _, w := range writes {
		covered[w.method+" "+w.path] = true
	}
	for _, r := range e.srv.routes {
		if r.method == "GET" || r.scope == project.ScopeRead {
			continue // reads and dry runs change nothing
		}
		p := strings.NewReplacer("/api-keys/{id}", "/api-keys/{key}", "/events/{id}", "/events/{event}",
			"/alert-rules/{id}", "/alert-rules/{rule}", "/replays/{id}", "/replays/{replay}").Replace(r.path)
		if !covered[r.method+" "+p] && !(r.path == "/api/v1/events/{id}" && covered[r.method+" /api/v1/events/{event2}"]) {
			t.Errorf("%s %s changes something and is not in this test", r.method, r.path)
		}
	}

	last := int64(0)
	for _, w := range writes {
		path := w.path
		for k, v := range ids {
			path = strings.ReplaceAll(path, k, v)
		}
		var code int
		var out []byte
		if w.path == "/api/v1/directory/import" {
			code, out = e.doHeader(w.method, path, key, w.body, "Content-Type", "application/x-ndjson")
		} else {
			code, out = e.do(w.method, path, key, w.body)
		}
		if code >= 300 {
			t.Fatalf("%s %s = %d %s", w.method, path, code, out)
		}
		if w.after != nil {
			w.after(out)
		}
		var page auditJSON
		decodeInto(t, e.want("GET", "/api/v1/audit?limit=500", e.keyA, nil, 200), &page)
		found := false
		for _, en := range page.Entries {
			if en.ID <= last {
				break
			}
			if en.Target == w.target && en.Action == w.action && en.Via == "api" && en.KeyID != nil &&
				*en.KeyID == caller.KeyID && en.KeyName == "auditor" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s %s left no %s %s entry by key %d: %+v", w.method, path, w.action, w.target, caller.KeyID, page.Entries)
		}
		if len(page.Entries) > 0 {
			last = page.Entries[0].ID
		}
	}

	all := e.want("GET", "/api/v1/audit?limit=500", e.keyA, nil, 200)
	if len(secrets) != 4 {
		t.Fatalf("collected %d secrets; want 4", len(secrets))
	}
	for _, s := range append(secrets, "jane@private.example", "+447700900123", "imported@private.example") {
		if s == "" || strings.Contains(string(all), s) {
			t.Errorf("the audit log shows %q: %s", s, all)
		}
	}
	for _, col := range []string{"ciphertext", "signing_secret\"", "mask_key"} {
		if strings.Contains(string(all), col) {
			t.Errorf("the audit log shows a secret column (%s): %s", col, all)
		}
	}
	// What changed, before and after, only the changed columns for an update.
	var page auditJSON
	// The project's notification settings and retention (migration 00014's columns), and the rotation's
	// time, not the secret.
	page = auditJSON{}
	decodeInto(t, e.want("GET", fmt.Sprintf("/api/v1/audit?target=project&target_id=%d", e.projA), e.keyA, nil, 200), &page)
	var settings, rotated bool
	for _, en := range page.Entries {
		settings = settings || en.After["notification_format"] == "slack" && en.After["payload_retention_days"] == float64(2)
		_, ok := en.After["signing_secret_rotated_at"]
		rotated = rotated || ok && len(en.After) == 1
	}
	if !settings || !rotated {
		t.Errorf("project entries (settings %v, rotation %v): %+v", settings, rotated, page.Entries)
	}
	// The webhook's sensitive fields; the replay job's cancellation, and none of the runner's updates.
	page = auditJSON{}
	decodeInto(t, e.want("GET", "/api/v1/audit?target=webhook&target_id="+wh.ID, e.keyA, nil, 200), &page)
	var sensitive bool
	for _, en := range page.Entries {
		_, sensitive = en.After["sensitive"]
		if sensitive {
			break
		}
	}
	if !sensitive {
		t.Errorf("no entry shows the sensitive fields: %+v", page.Entries)
	}
	page = auditJSON{}
	decodeInto(t, e.want("GET", fmt.Sprintf("/api/v1/audit?target=replay_job&target_id=%v", job.ID), e.keyA, nil, 200), &page)
	if len(page.Entries) != 2 || page.Entries[0].Action != "update" || page.Entries[0].After["state"] != "cancelled" ||
		page.Entries[1].Action != "create" {
		t.Errorf("replay job %v entries = %+v; want its creation and its cancellation", job.ID, page.Entries)
	}
	page = auditJSON{}
	decodeInto(t, e.want("GET", "/api/v1/audit?target=webhook&target_id="+wh.ID, e.keyA, nil, 200), &page)
	var renamed bool
	for _, en := range page.Entries {
		if en.Action == "update" && en.Before["name"] == "Shop checkout" && en.After["name"] == "Renamed checkout" {
			renamed = len(en.After) == 1
		}
	}
	if !renamed {
		t.Errorf("no entry shows the rename alone: %+v", page.Entries)
	}
	// B sees none of A's entries.
	decodeInto(t, e.want("GET", "/api/v1/audit", e.keyB, nil, 200), &page)
	for _, en := range page.Entries {
		if en.TargetID == wh.ID || en.KeyName == "auditor" {
			t.Errorf("project B's log shows A's entry %+v", en)
		}
	}
}

// TestAuditQuery: filters, pagination and bad parameters.
func TestAuditQuery(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.want("PUT", fmt.Sprintf("/api/v1/users/u%d", i), e.keyA, `{}`, 201)
	}
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	var page auditJSON
	decodeInto(t, e.want("GET", "/api/v1/audit?target=user&limit=2", e.keyA, nil, 200), &page)
	var seen []string
	for {
		for _, en := range page.Entries {
			if en.Target != "user" {
				t.Fatalf("target=user gave %+v", en)
			}
			seen = append(seen, en.TargetID)
		}
		if page.NextBefore == 0 {
			break
		}
		decodeInto(t, e.want("GET", fmt.Sprintf("/api/v1/audit?target=user&limit=2&before=%d", page.NextBefore), e.keyA, nil, 200), &page)
	}
	if strings.Join(seen, ",") != "u4,u3,u2,u1,u0" {
		t.Errorf("paged through %v; want u4..u0, newest first", seen)
	}
	decodeInto(t, e.want("GET", "/api/v1/audit?target=user&target_id=u2", e.keyA, nil, 200), &page)
	if len(page.Entries) != 1 || page.Entries[0].TargetID != "u2" {
		t.Errorf("target_id=u2 gave %+v", page.Entries)
	}
	for _, q := range []string{"target=users", "limit=0", "limit=501", "before=-1", "since=yesterday", "key_id=x"} {
		code, out := e.do("GET", "/api/v1/audit?"+q, e.keyA, nil)
		if code != http.StatusBadRequest {
			t.Errorf("GET /audit?%s = %d %s; want 400", q, code, out)
		}
	}
}

// TestAuditPastedSecrets: secrets the user pastes (a provider's signing secret, on create and on edit,
// Meta's verify token) are not in the log either, though the change is.
func TestAuditPastedSecrets(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	var wh struct{ ID string }
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, connectWebhook("Shop", "shopify", "shpss_pasted_on_create_1"), 201), &wh)
	e.want("PATCH", "/api/v1/webhooks/"+wh.ID, e.keyA, map[string]any{"sender": "stripe", "secret": "whsec_pasted_on_edit_2"}, 200)
	meta := connectWebhook("Meta", "meta", "meta_app_secret_3")
	meta["handshake_token"] = "meta_verify_token_4"
	e.want("POST", "/api/v1/webhooks", e.keyA, meta, 201)
	out := string(e.want("GET", "/api/v1/audit?target=webhook", e.keyA, nil, 200))
	for _, s := range []string{"shpss_pasted_on_create_1", "whsec_pasted_on_edit_2", "meta_app_secret_3", "meta_verify_token_4"} {
		if strings.Contains(out, s) {
			t.Errorf("the audit log shows the secret %q: %s", s, out)
		}
	}
	if !strings.Contains(out, `"sender":"stripe"`) && !strings.Contains(out, `"sender": "stripe"`) {
		t.Errorf("the log does not show the sender change: %s", out)
	}
}
