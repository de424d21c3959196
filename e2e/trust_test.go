package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestTrustedNotifications: through the real edge, pipeline and admin, five wrong secrets in a row and a
// failure-ratio rule each raise one alert, and each notification reaches a receiver that refuses its
// first try, signed with the project's secret (verified with the Standard Webhooks library).
func TestTrustedNotifications(t *testing.T) {
	s := start(t, [2]string{"Shop A", "Shop B"}, true, func(cfg *config.Config) {
		cfg.Pipeline.Group = testenv.Name("trust")
		cfg.Pipeline.FlushInterval = 200 * time.Millisecond
		cfg.Alerts.EvaluateInterval = time.Second
		cfg.Alerts.DeliveryInterval = 50 * time.Millisecond
		cfg.Alerts.BackoffBase = 50 * time.Millisecond
		cfg.Alerts.AllowPrivateTargets = true // the receiver is on 127.0.0.1
	}, compose.Deps{})
	var sec struct {
		SigningSecret string `json:"signing_secret"`
	}
	if err := json.Unmarshal(s.want("GET", "/api/v1/project/signing-secret", s.keyA, nil, 200), &sec); err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(sec.SigningSecret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	tried := map[string]bool{}
	var kinds []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get("webhook-id")
		if !tried[id] {
			tried[id] = true
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("notification %s: %v", id, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p struct{ Kind, Type string }
		_ = json.Unmarshal(body, &p)
		kinds = append(kinds, p.Type+" "+p.Kind)
	}))
	defer recv.Close()
	s.want("PATCH", "/api/v1/project", s.keyA, map[string]any{"notification_url": recv.URL}, 200)
	s.want("POST", "/api/v1/alert-rules", s.keyA, map[string]any{"name": "failing", "kind": "failure_ratio", "threshold": 50,
		"window_minutes": 5, "min_requests": 5}, 201)
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "Paid"}, 201)
	var hook struct {
		ID          string
		Credentials struct{ Secret string }
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, map[string]any{
		"name": "Orders", "event": "Paid", "identify": map[string]string{"kind": "user_id", "field": "user_id"},
	}, 201), &hook); err != nil {
		t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+hook.ID+"/enable", s.keyA, nil, 200)
	url := s.ingestURL + "/hooks/" + hook.ID
	sendUntil(t, 401, url, "Bearer whsec_wrong", `{}`)
	for range 4 {
		if got := send(t, url, "Bearer whsec_wrong", `{}`); got != 401 {
			t.Fatalf("a wrong secret answered %d; want 401", got)
		}
	}
	waitFor := func(what string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(patience)
		for {
			mu.Lock()
			got := strings.Join(kinds, ", ")
			mu.Unlock()
			all := true
			for _, w := range want {
				all = all && strings.Contains(got, w)
			}
			if all {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("received %q after %s; want %s", got, patience, what)
			}
			time.Sleep(100 * time.Millisecond) // pacing only
		}
	}
	waitFor("the five-failures and the failure-ratio notifications", "alert.fired auth_failures", "alert.fired failure_ratio")
	// The right secret again: the five-failures alert resolves, once.
	sendUntil(t, 202, url, hook.Credentials.Secret, `{"user_id":"u1"}`)
	waitFor("the five-failures alert resolved", "alert.resolved auth_failures")
	var list struct {
		Notifications []struct {
			State      string
			AttemptLog []struct {
				StatusCode int `json:"status_code"`
			} `json:"attempt_log"`
		}
	}
	if err := json.Unmarshal(s.want("GET", "/api/v1/notifications", s.keyA, nil, 200), &list); err != nil {
		t.Fatal(err)
	}
	for _, n := range list.Notifications {
		if n.State != "delivered" || len(n.AttemptLog) != 2 || n.AttemptLog[0].StatusCode != 503 || n.AttemptLog[1].StatusCode != 200 {
			t.Errorf("notification %+v; want delivered at the second attempt (503, then 200)", n)
		}
	}
	if out := s.want("GET", "/api/v1/alerts", s.keyA, nil, 200); strings.Count(string(out), `"kind":"failure_ratio"`) != 1 ||
		strings.Count(string(out), `"kind":"auth_failures"`) != 1 || !strings.Contains(string(out), `"state":"resolved"`) {
		t.Errorf("alerts %s; want one of each, the five-failures one resolved", out)
	}
	mu.Lock()
	if n := strings.Count(strings.Join(kinds, ", "), "alert.resolved auth_failures"); n != 1 {
		t.Errorf("%d resolutions of the five-failures alert received; want 1", n)
	}
	mu.Unlock()
}

// TestMaskedActivity: a webhook's sensitive field is hashed in the activity entry and the event history
// the API serves, and equal values hash alike.
func TestMaskedActivity(t *testing.T) {
	s := newStack(t)
	s.want("PUT", "/api/v1/users/u1", s.keyA, map[string]any{"email": "jane@example.com"}, 201)
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "Paid", "attributes": []map[string]string{{"name": "email", "type": "string"}}}, 201)
	var hook struct {
		ID          string
		Credentials struct{ Secret string }
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, map[string]any{
		"name": "Orders", "event": "Paid", "identify": map[string]string{"kind": "user_id", "field": "user_id"},
		"mappings":  []map[string]string{{"attribute": "email", "field": "customer.email"}},
		"sensitive": map[string]any{"fields": []string{"customer.email"}},
	}, 201), &hook); err != nil {
		t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+hook.ID+"/enable", s.keyA, nil, 200)
	body := `{"user_id":"u1","customer":{"email":"jane@example.com","name":"Jane"}}`
	sendUntil(t, 202, s.ingestURL+"/hooks/"+hook.ID, hook.Credentials.Secret, body)
	var page struct {
		Entries []struct {
			Status    string
			RequestID string `json:"request_id"`
		}
	}
	deadline := time.Now().Add(patience)
	for len(page.Entries) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no activity entry after %s", patience)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
		if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks/"+hook.ID+"/activity", s.keyA, nil, 200), &page); err != nil {
			t.Fatal(err)
		}
	}
	entry := string(s.want("GET", "/api/v1/webhooks/"+hook.ID+"/activity/"+page.Entries[0].RequestID, s.keyA, nil, 200))
	// The events row is inserted apart from the activity row: wait for it too.
	var history string
	for history = string(s.want("GET", "/api/v1/users/u1/events", s.keyA, nil, 200)); strings.Contains(history, `"events":[]`); {
		if time.Now().After(deadline) {
			t.Fatalf("no event in the user's history after %s: %s", patience, history)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
		history = string(s.want("GET", "/api/v1/users/u1/events", s.keyA, nil, 200))
	}
	if page.Entries[0].Status != "success" || strings.Contains(entry+history, "jane@example.com") ||
		!strings.Contains(entry, "hmac-sha256:") || !strings.Contains(history, "hmac-sha256:") || !strings.Contains(entry, "Jane") {
		t.Fatalf("entry %s\nhistory %s\nwant the email hashed, the name in clear", entry, history)
	}
}
