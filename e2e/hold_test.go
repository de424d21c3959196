package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/wire"
)

// holdStack is the whole system with a releaser that wakes often and holds as short as a second.
func holdStack(t *testing.T) *system {
	t.Helper()
	return start(t, [2]string{"Shop A", "Shop B"}, true, func(cfg *config.Config) {
		cfg.Pipeline.Group = testenv.Name("hold")
		cfg.Pipeline.FlushInterval = 200 * time.Millisecond
		cfg.Pipeline.HoldMin = time.Second
		cfg.Pipeline.HoldPollInterval = 200 * time.Millisecond
	}, compose.Deps{})
}

// holdWebhook creates and enables a webhook of event Order identified by email whose unknown users are
// held for holdFor, and returns its URL and Authorization value.
func (s *system) holdWebhook(name, holdFor string) (id, url, auth string) {
	s.t.Helper()
	var wh struct {
		ID          string
		Credentials struct{ Authorization string }
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, map[string]any{
		"name": name, "event": "Order", "unknown_user": "hold", "hold_for": holdFor,
		"identify": map[string]string{"kind": "email", "field": "email"},
		"mappings": []map[string]string{{"attribute": "total", "field": "total"}},
	}, 201), &wh); err != nil {
		s.t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+wh.ID+"/enable", s.keyA, nil, 200)
	return wh.ID, s.ingestURL + "/hooks/" + wh.ID, wh.Credentials.Authorization
}

// accept sends body until the edge accepts it (the webhook's enabling reaches the edge within a
// second) and returns the request id it answered.
func accept(t *testing.T, url, auth, body string) string {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			var a struct {
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(out, &a); err != nil || a.RequestID == "" {
				t.Fatalf("202 %s: no request id (%v)", out, err)
			}
			return a.RequestID
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST %s answered %d %s after %s; want 202", url, resp.StatusCode, out, patience)
		}
		time.Sleep(50 * time.Millisecond) // pacing only
	}
}

// latest is a request's latest entry (its last attempt).
type latest struct {
	Status, Reason, Detail string
	Attempt                int
	Cause                  string `json:"attempt_cause"`
	UserID                 string `json:"user_id"`
}

// latestEntries reads the webhook's activity and answers each request's latest entry.
func (s *system) latestEntries(webhookID string) map[string]latest {
	s.t.Helper()
	var page struct {
		Entries []struct {
			latest
			RequestID string `json:"request_id"`
		}
	}
	if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks/"+webhookID+"/activity?limit=500", s.keyA, nil, 200), &page); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]latest{}
	for _, e := range page.Entries {
		if cur, ok := out[e.RequestID]; !ok || e.Attempt > cur.Attempt {
			out[e.RequestID] = e.latest
		}
	}
	return out
}

// waitFor polls the webhook's activity until every request in ids has a latest entry that ok accepts.
func (s *system) waitFor(what, webhookID string, ids []string, ok func(latest) bool) map[string]latest {
	s.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		got := s.latestEntries(webhookID)
		done := true
		for _, id := range ids {
			if e, found := got[id]; !found || !ok(e) {
				done = false
			}
		}
		if done {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not within %s; entries %+v", what, patience, got)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
	}
}

// firedEvents reads the events topic from the start until it has want records, and answers their event
// ids in the topic's order per partition (a user's events share a partition: the key is the subject).
func (s *system) firedEvents(want int) []string {
	s.t.Helper()
	cl, err := kafka.NewClient(s.kafka, "test-events", kgo.ConsumeTopics(s.kafka.EventsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		s.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var ids []string
	for len(ids) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == wire.HeaderEventID {
					ids = append(ids, string(h.Value))
				}
			}
		})
	}
	return ids
}

func held(e latest) bool { return e.Status == "held" && e.Reason == wire.ReasonWaitingForUser }

// TestHoldReleasesWhenTheUserArrives: through the real edge, pipeline, releaser and directory. Two
// orders of a user the directory does not know yet are held; when the user is created through the API
// both fire, in the order they arrived, with their request ids as event ids (attempt 1, cause release);
// a third order, of another user, fires when that user is imported (NDJSON). An order of a user who
// never comes fails with user_not_found when its hold (2 s) runs out (attempt 1, cause expire), and the
// 24-hour summary counts each request by its latest outcome.
func TestHoldReleasesWhenTheUserArrives(t *testing.T) {
	s := holdStack(t)
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "Order", "attributes": []map[string]string{
		{"name": "total", "type": "string"}}}, 201)
	orders, ordersURL, ordersAuth := s.holdWebhook("Orders", "1h")
	late, lateURL, lateAuth := s.holdWebhook("Late", "2s")

	ann1 := accept(t, ordersURL, ordersAuth, `{"email":"ann@example.com","total":"1"}`)
	ann2 := accept(t, ordersURL, ordersAuth, `{"email":"Ann@Example.com","total":"2"}`)
	bob := accept(t, ordersURL, ordersAuth, `{"email":"bob@example.com","total":"3"}`)
	never := accept(t, lateURL, lateAuth, `{"email":"never@example.com","total":"4"}`)
	s.waitFor("three orders held", orders, []string{ann1, ann2, bob}, held)

	created := time.Now()
	s.want("PUT", "/api/v1/users/ann", s.keyA, map[string]any{"email": "ann@example.com"}, 201)
	released := func(e latest) bool {
		return e.Status == "success" && e.Attempt == 1 && e.Cause == "release"
	}
	got := s.waitFor("ann's orders released", orders, []string{ann1, ann2}, released)
	// The directory's notification wakes the releaser: seconds, not the rescan's minute.
	if took := time.Since(created); took > 10*time.Second {
		t.Errorf("ann's orders were released %s after the user was created; want a couple of seconds", took)
	} else {
		t.Logf("released %s after the user was created (including the activity log's flush and this poll)", took.Round(time.Millisecond))
	}
	if !held(got[bob]) {
		t.Errorf("bob's order %+v; want still held", got[bob])
	}
	ids := s.firedEvents(2)
	if want := []string{ann1, ann2}; !slices.Equal(ids, want) {
		t.Errorf("fired events %v; want %v (the request ids, in arrival order)", ids, want)
	}

	code, out := s.doRaw("POST", "/api/v1/directory/import", s.keyA, `{"type":"user","user_id":"bob","email":"bob@example.com"}`, "application/x-ndjson")
	if code != 200 {
		t.Fatalf("import = %d %s", code, out)
	}
	got = s.waitFor("bob's order released", orders, []string{bob}, released)
	if got[bob].UserID != "bob" {
		t.Errorf("bob's order %+v; want user bob", got[bob])
	}

	got = s.waitFor("the late order expired", late, []string{never}, func(e latest) bool {
		return e.Status == "failed" && e.Attempt == 1 && e.Cause == "expire"
	})
	if e := got[never]; e.Reason != wire.ReasonUserNotFound {
		t.Errorf("expired order %+v; want user_not_found", e)
	}
	// bob's event is on his own partition of the events topic (key = subject): only ann's keep an order.
	if ids := s.firedEvents(3); len(ids) != 3 || !slices.Contains(ids, bob) || slices.Index(ids, ann1) > slices.Index(ids, ann2) ||
		slices.Index(ids, ann1) < 0 {
		t.Errorf("fired events %v; want ann's two (in arrival order) and bob's, once each", ids)
	}

	var sum struct {
		Summary struct{ Success, Failed, Held, Hits uint64 }
	}
	if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks/"+orders+"/summary", s.keyA, nil, 200), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Summary.Success != 3 || sum.Summary.Held != 0 || sum.Summary.Hits != 3 {
		t.Errorf("orders summary %+v; want 3 successes, none held", sum.Summary)
	}
}

// doRaw sends body with contentType and returns status and body.
func (s *system) doRaw(method, path, key, body, contentType string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.consoleURL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// TestHoldSurvivesARestart: a request held by one pipeline process is released by the next: the user is
// created while no pipeline runs, and the new process's releaser (its first pass looks at every hold)
// fires the request, once.
func TestHoldSurvivesARestart(t *testing.T) {
	s := holdStack(t)
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "Order", "attributes": []map[string]string{
		{"name": "total", "type": "string"}}}, 201)
	orders, url, auth := s.holdWebhook("Orders", "1h")
	id := accept(t, url, auth, `{"email":"cat@example.com","total":"9"}`)
	s.waitFor("the order held", orders, []string{id}, held)
	s.restartPipeline(func() {
		s.want("PUT", "/api/v1/users/cat", s.keyA, map[string]any{"email": "cat@example.com"}, 201)
	})
	s.waitFor("the order released by the new process", orders, []string{id}, func(e latest) bool {
		return e.Status == "success" && e.Attempt == 1 && e.Cause == "release"
	})
	if ids := s.firedEvents(1); !slices.Equal(ids, []string{id}) {
		t.Errorf("fired events %v; want [%s]", ids, id)
	}
}

// TestHoldFanOut: a fan-out whose elements are of a known user and of one not known yet fires the known
// element at once and is held (events_fired 1); when the other user is created the release fires only
// the element that waited, with its element event id: each event once.
func TestHoldFanOut(t *testing.T) {
	s := holdStack(t)
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "Order", "attributes": []map[string]string{
		{"name": "total", "type": "string"}}}, 201)
	var wh struct {
		ID          string
		Credentials struct{ Authorization string }
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, map[string]any{
		"name": "Baskets", "sample_payload": `{"items":[{"email":"a@example.com","total":"1"}]}`,
		"routes": []map[string]any{{"for_each": "items", "event": "Order", "unknown_user": "hold",
			"identify": map[string]string{"kind": "email", "field": "email"},
			"mappings": []map[string]string{{"attribute": "total", "field": "total"}}}},
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+wh.ID+"/enable", s.keyA, nil, 200)
	s.want("PUT", "/api/v1/users/known", s.keyA, map[string]any{"email": "known@example.com"}, 201)
	id := accept(t, s.ingestURL+"/hooks/"+wh.ID, wh.Credentials.Authorization,
		`{"items":[{"email":"known@example.com","total":"1"},{"email":"new@example.com","total":"2"}]}`)
	s.waitFor("the basket held", wh.ID, []string{id}, held)
	req := uuid.MustParse(id)
	if ids := s.firedEvents(1); !slices.Equal(ids, []string{wire.ElementEventID(req, 0).String()}) {
		t.Errorf("fired while held: %v; want element 0's event", ids)
	}
	s.want("PUT", "/api/v1/users/new", s.keyA, map[string]any{"email": "new@example.com"}, 201)
	s.waitFor("the basket released", wh.ID, []string{id}, func(e latest) bool {
		return e.Status == "success" && e.Attempt == 1 && e.Cause == "release"
	})
	ids := s.firedEvents(2)
	slices.Sort(ids)
	want := []string{wire.ElementEventID(req, 0).String(), wire.ElementEventID(req, 1).String()}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("fired events %v; want each element's once: %v", ids, want)
	}
}

// TestHoldReleasedByAnotherWebhooksCreate: a user created by the create policy of another webhook
// releases an order held for it.
func TestHoldReleasedByAnotherWebhooksCreate(t *testing.T) {
	s := holdStack(t)
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "Order", "attributes": []map[string]string{
		{"name": "total", "type": "string"}}}, 201)
	orders, url, auth := s.holdWebhook("Orders", "1h")
	var signups struct {
		ID          string
		Credentials struct{ Authorization string }
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, map[string]any{
		"name": "Signups", "event": "Order", "unknown_user": "create",
		"identify": map[string]string{"kind": "email", "field": "email"}, "mappings": []any{},
	}, 201), &signups); err != nil {
		t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+signups.ID+"/enable", s.keyA, nil, 200)
	id := accept(t, url, auth, `{"email":"carol@example.com","total":"5"}`)
	s.waitFor("the order held", orders, []string{id}, held)
	accept(t, s.ingestURL+"/hooks/"+signups.ID, signups.Credentials.Authorization, `{"email":"carol@example.com"}`)
	got := s.waitFor("the order released", orders, []string{id}, func(e latest) bool {
		return e.Status == "success" && e.Attempt == 1 && e.Cause == "release"
	})
	if got[id].UserID != "email:carol@example.com" {
		t.Errorf("released order %+v; want user email:carol@example.com, created by the other webhook", got[id])
	}
}
