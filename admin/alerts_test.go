package admin

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bytedance/sonic"

	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/project"
)

func TestAlertRulesAPI(t *testing.T) {
	e := newEnv(t)
	rule := map[string]any{"name": "failures", "kind": "failure_ratio", "threshold": 20, "window_minutes": 10, "min_requests": 5}
	var created alert.Rule
	if err := sonic.Unmarshal(e.want("POST", "/api/v1/alert-rules", e.keyA, rule, 201), &created); err != nil {
		t.Fatal(err)
	}
	if created.ID == 0 || !created.Enabled || created.Kind != alert.KindFailureRatio {
		t.Fatalf("created %+v", created)
	}
	path := fmt.Sprintf("/api/v1/alert-rules/%d", created.ID)
	e.want("GET", path, e.keyA, nil, 200)
	e.want("GET", path, e.keyB, nil, 404) // another project's rule
	if out := e.want("GET", "/api/v1/alert-rules", e.keyB, nil, 200); string(out) != `{"rules":[]}` {
		t.Fatalf("project B's rules: %s", out)
	}
	rule["enabled"] = false
	rule["threshold"] = 30
	if out := e.want("PUT", path, e.keyA, rule, 200); !strings.Contains(string(out), `"threshold":30`) || !strings.Contains(string(out), `"enabled":false`) {
		t.Fatalf("updated %s", out)
	}
	e.want("PUT", path, e.keyB, rule, 404)

	// Every invalid field is named.
	out := e.want("POST", "/api/v1/alert-rules", e.keyA, map[string]any{"name": "", "kind": "reason_spike", "threshold": 0, "window_minutes": 0}, 400)
	for _, f := range []string{"name", "threshold", "window_minutes", "reason"} {
		if !strings.Contains(string(out), `"field":"`+f+`"`) {
			t.Errorf("problem %s does not name %s", out, f)
		}
	}
	e.want("POST", "/api/v1/alert-rules", e.keyA, `{"name": "x", "kind": "silence", "threshold": 1, "window_minutes": 5, "bogus": 1}`, 400)
	e.want("POST", "/api/v1/alert-rules", e.keyA, map[string]any{"name": "x", "kind": "silence", "threshold": 1, "window_minutes": 5,
		"webhook_id": "AAAAAAAAAAAAAAAAAAAAAA"}, 400)

	e.want("DELETE", path, e.keyB, nil, 404)
	e.want("DELETE", path, e.keyA, nil, 204)
	e.want("GET", path, e.keyA, nil, 404)
	e.want("GET", "/api/v1/alert-rules/x", e.keyA, nil, 404)
}

func TestAlertsAndNotificationsAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.want("PATCH", "/api/v1/project", e.keyA, map[string]any{"notification_url": "https://hooks.example/alerts", "notification_format": "slack"}, 200)
	if out := e.want("GET", "/api/v1/project", e.keyA, nil, 200); !strings.Contains(string(out), `"notification_format":"slack"`) {
		t.Fatalf("project %s", out)
	}
	if out := e.want("PATCH", "/api/v1/project", e.keyA, map[string]any{"notification_format": "xml"}, 400); !strings.Contains(string(out), `"field":"notification_format"`) {
		t.Fatalf("problem %s", out)
	}
	st := alert.NewStore(e.pool, nil, alert.Defaults())
	if err := st.RecordStreak(ctx, alert.Streak{ProjectID: e.projA, WebhookID: "w1", ID: [16]byte{1}, Message: "5 failures"}); err != nil {
		t.Fatal(err)
	}
	out := e.want("GET", "/api/v1/alerts", e.keyA, nil, 200)
	if !strings.Contains(string(out), `"kind":"auth_failures"`) || !strings.Contains(string(out), `"state":"firing"`) {
		t.Fatalf("alerts %s", out)
	}
	if out := e.want("GET", "/api/v1/alerts?state=firing", e.keyA, nil, 200); !strings.Contains(string(out), `"kind":"auth_failures"`) {
		t.Fatalf("firing alerts %s", out)
	}
	e.want("GET", "/api/v1/alerts?state=nope", e.keyA, nil, 400)
	e.want("GET", "/api/v1/alerts?limit=0", e.keyA, nil, 400)
	e.want("GET", "/api/v1/alerts?limit=201", e.keyA, nil, 400)
	if out := e.want("GET", "/api/v1/alerts", e.keyB, nil, 200); string(out) != `{"alerts":[]}` {
		t.Fatalf("project B sees %s", out)
	}
	out = e.want("GET", "/api/v1/notifications", e.keyA, nil, 200)
	if !strings.Contains(string(out), `"state":"pending"`) || !strings.Contains(string(out), `"attempt_log":[]`) {
		t.Fatalf("notifications %s", out)
	}
	id := "01000000-0000-0000-0000-000000000000"
	e.want("GET", "/api/v1/notifications/"+id, e.keyA, nil, 200)
	e.want("GET", "/api/v1/notifications/"+id, e.keyB, nil, 404)
	e.want("GET", "/api/v1/notifications/nope", e.keyA, nil, 404)

	var s1, s2 signingSecret
	_ = sonic.Unmarshal(e.want("GET", "/api/v1/project/signing-secret", e.keyA, nil, 200), &s1)
	_ = sonic.Unmarshal(e.want("GET", "/api/v1/project/signing-secret", e.keyA, nil, 200), &s2)
	if !strings.HasPrefix(s1.SigningSecret, "whsec_") || s1 != s2 {
		t.Fatalf("signing secret %q then %q; want one whsec_ secret", s1.SigningSecret, s2.SigningSecret)
	}
	_ = sonic.Unmarshal(e.want("POST", "/api/v1/project/signing-secret/rotate", e.keyA, nil, 200), &s2)
	if s2 == s1 || !strings.HasPrefix(s2.SigningSecret, "whsec_") {
		t.Fatalf("rotated secret %q", s2.SigningSecret)
	}
	var sb signingSecret
	_ = sonic.Unmarshal(e.want("GET", "/api/v1/project/signing-secret", e.keyB, nil, 200), &sb)
	if sb == s2 || sb == s1 {
		t.Fatal("project B has project A's secret")
	}
}

func TestProjectRetention(t *testing.T) {
	e := newEnv(t)
	out := e.want("PATCH", "/api/v1/project", e.keyA, map[string]any{"retention": map[string]int{"payload_days": 2, "activity_days": 10, "events_days": 30}}, 200)
	if !strings.Contains(string(out), `"retention":{"activity_days":10,"payload_days":2,"events_days":30}`) {
		t.Fatalf("project %s", out)
	}
	// Bounds (defaults: rows 8..30 days, payloads 1..30): every bad field is named, nothing is written.
	out = e.want("PATCH", "/api/v1/project", e.keyA, map[string]any{"retention": map[string]int{"payload_days": 31, "activity_days": 7, "events_days": -1}}, 400)
	for _, f := range []string{"retention.payload_days", "retention.activity_days", "retention.events_days"} {
		if !strings.Contains(string(out), `"field":"`+f+`"`) {
			t.Errorf("problem %s does not name %s", out, f)
		}
	}
	if out := e.want("GET", "/api/v1/project", e.keyA, nil, 200); !strings.Contains(string(out), `"activity_days":10`) {
		t.Fatalf("after a refused change: %s", out)
	}
	if out := e.want("GET", "/api/v1/project", e.keyB, nil, 200); !strings.Contains(string(out), `"retention":{"activity_days":0,"payload_days":0,"events_days":0}`) {
		t.Fatalf("project B: %s", out)
	}
	rs, err := project.NewStore(e.pool).Retentions(context.Background())
	if err != nil || len(rs) != 1 || rs[0].ProjectID != e.projA || rs[0].PayloadDays != 2 {
		t.Fatalf("Retentions = %+v, %v; want project A's only", rs, err)
	}
}

func TestWebhookSensitiveAPI(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, `{"name":"Ev","attributes":[{"name":"email","type":"string"}]}`, 201)
	body := map[string]any{"name": "masked", "event": "Ev", "identify": map[string]string{"kind": "user_id", "field": "user_id"},
		"mappings":  []map[string]string{{"attribute": "email", "field": "email"}},
		"sensitive": map[string]any{"fields": []string{"email"}, "headers": []string{"x-client-ip"}}}
	out := e.want("POST", "/api/v1/webhooks", e.keyA, body, 201)
	if !strings.Contains(string(out), `"sensitive":{"fields":["email"],"headers":["X-Client-Ip"]}`) {
		t.Fatalf("created %s", out)
	}
	id := regexpID(out)
	if out := e.want("GET", "/api/v1/webhooks/"+id, e.keyA, nil, 200); !strings.Contains(string(out), `"fields":["email"]`) {
		t.Fatalf("get %s", out)
	}
	out = e.want("PATCH", "/api/v1/webhooks/"+id, e.keyA, map[string]any{"sensitive": map[string]any{"fields": []string{"a..b"}}}, 400)
	if !strings.Contains(string(out), `"field":"sensitive.fields[0]"`) {
		t.Fatalf("problem %s", out)
	}
	// A dry run with a draft that marks fields is accepted (the dry run stores nothing).
	e.want("POST", "/api/v1/webhooks/"+id+"/test", e.keyA, map[string]any{"body": `{"user_id":"u","email":"a@b.c"}`,
		"draft": map[string]any{"sensitive": map[string]any{"fields": []string{"email"}}}}, 200)
}

func regexpID(b []byte) string {
	s := string(b)
	i := strings.Index(s, `"id":"`)
	return s[i+6 : i+6+strings.Index(s[i+6:], `"`)]
}
