package pipeline_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

func TestAuthFailureNotifications(t *testing.T) {
	e := newEnv(t)
	hooks, res := standardFixtures()
	var mu sync.Mutex
	var posted []pipeline.Notification
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n pipeline.Notification
		if err := json.Unmarshal(b, &n); err != nil {
			t.Errorf("notification body %s: %v", b, err)
		}
		mu.Lock()
		posted = append(posted, n)
		mu.Unlock()
	}))
	defer srv.Close()
	notifier := &pipeline.HTTPNotifier{URLs: func(_ context.Context, project int64) (string, error) {
		return srv.URL, nil
	}}

	total := uint64(0)
	send := func(outcome wire.Outcome, n int) {
		t.Helper()
		var reqs []req
		for range n {
			reqs = append(reqs, newReq("wh_email", outcome, ``))
		}
		e.produce(t, reqs...)
		total += uint64(n)
		e.waitCount(t, "SELECT count() FROM activity_log", total, 60*time.Second)
		time.Sleep(300 * time.Millisecond) // notifications are inserted after activity_log: let a flush finish
	}
	notes := "SELECT count() FROM notifications WHERE webhook_id = 'wh_email'"

	stop := e.run(t, testConfig(), hooks, res, notifier)
	send(wire.OutcomeAuthRejected, 4)
	if got := e.count(t, notes); got != 0 {
		t.Fatalf("after 4 auth failures: %d notifications; want 0", got)
	}
	send(wire.OutcomeAuthRejected, 1)
	e.waitCount(t, notes, 1, 10*time.Second)
	send(wire.OutcomeAuthRejected, 3) // the streak goes on: no second notification
	send(wire.OutcomeAccepted, 1)     // authenticated: the streak resets
	send(wire.OutcomeAuthRejected, 3)

	// A restart in the middle of a streak: the new process derives it from ClickHouse.
	stop()
	e.run(t, testConfig(), hooks, res, notifier)
	send(wire.OutcomeAuthRejected, 2)
	e.waitCount(t, notes, 2, 10*time.Second)

	// A secret rotation restarts the streak: 3 failures, rotation, 4 failures → nothing; 1 more → yes.
	send(wire.OutcomeAccepted, 1)
	send(wire.OutcomeAuthRejected, 3)
	time.Sleep(5 * time.Millisecond)
	h, _ := hooks.Get(context.Background(), "wh_email")
	rotated := *h
	rotated.Version++
	rotated.SecretRotatedAt = time.Now()
	hooks.put(&rotated)
	time.Sleep(5 * time.Millisecond)
	send(wire.OutcomeAuthRejected, 4)
	if got := e.count(t, notes); got != 2 {
		t.Fatalf("after a rotation and 4 failures: %d notifications; want still 2", got)
	}
	send(wire.OutcomeAuthRejected, 1)
	e.waitCount(t, notes, 3, 10*time.Second)

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(posted)
		mu.Unlock()
		if n == 5 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	// Each authenticated request that ends a notified streak POSTs its end (KindStreakEnded): the
	// first streak's, and the one restored from ClickHouse after the restart.
	var kinds []string
	for _, n := range posted {
		kinds = append(kinds, n.Kind)
	}
	if got, want := strings.Join(kinds, " "), "auth_failures auth_failures.resolved auth_failures auth_failures.resolved auth_failures"; got != want {
		t.Fatalf("notifications POSTed: %s; want %s", got, want)
	}
	if posted[0].WebhookID != "wh_email" || posted[0].ProjectID != 1 || posted[0].Kind != "auth_failures" {
		t.Errorf("posted %+v; want an auth_failures notification for wh_email of project 1", posted[0])
	}
	_ = identify.ByEmail
}
