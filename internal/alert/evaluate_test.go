package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/inlet-dev/inlet/internal/alert"
)

// hits adds n requests of webhook to the rollup at minute m.
func (f *fixture) hits(t *testing.T, webhook string, m time.Time, status, reason string, n int) {
	t.Helper()
	if err := f.ch.Exec(context.Background(), fmt.Sprintf(
		"INSERT INTO activity_minute (project_id, webhook_id, minute, status, reason, hits) SELECT %d, '%s', toDateTime(%d), '%s', '%s', %d",
		f.project, webhook, m.Truncate(time.Minute).Unix(), status, reason, n)); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) evaluate(t *testing.T, now time.Time) {
	t.Helper()
	ran, err := f.svc.Evaluate(context.Background(), now)
	if err != nil || !ran {
		t.Fatalf("Evaluate at %s: ran %v, %v", now, ran, err)
	}
}

// notifications lists the project's queued notifications as "event kind webhook", oldest first.
func (f *fixture) notifications(t *testing.T) []string {
	t.Helper()
	ds, err := f.store.Deliveries(context.Background(), f.project, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(ds) - 1; i >= 0; i-- {
		out = append(out, ds[i].Event)
	}
	return out
}

// TestFailureBurstFiresAndResolvesOnce: a burst of failures fires one alert, evaluated again and again
// while it lasts, and it resolves once when the burst has left the window, each with one notification.
func TestFailureBurstFiresAndResolvesOnce(t *testing.T) {
	f := newFixture(t, fastConfig(), true)
	ctx := context.Background()
	f.setURL(t, "http://127.0.0.1:1/", alert.FormatStandard)
	r, err := f.store.CreateRule(ctx, f.project, alert.Rule{Name: "failures", Kind: alert.KindFailureRatio, Threshold: 50,
		WindowMinutes: 5, MinRequests: 10, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f.hits(t, "hookA", t0, "success", "", 20)
	f.hits(t, "hookB", t0, "success", "", 2)
	f.hits(t, "hookB", t0, "failed", "user_not_found", 3) // 60%, but fewer than min_requests
	f.evaluate(t, t0)
	if got := f.notifications(t); len(got) != 0 {
		t.Fatalf("before the burst: %v", got)
	}
	f.hits(t, "hookA", t0.Add(time.Minute), "failed", "user_not_found", 30) // 30 of 50: 60%
	for i := range 4 {
		f.evaluate(t, t0.Add(time.Minute+time.Duration(i)*10*time.Second))
	}
	open, err := f.store.Alerts(ctx, f.project, true, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].WebhookID != "hookA" || open[0].RuleID == nil || *open[0].RuleID != r.ID || open[0].Value != 60 {
		t.Fatalf("open alerts %+v; want one for hookA at 60%%", open)
	}
	// Still within the window (minute 5 covers minutes 1..5): nothing changes.
	f.evaluate(t, t0.Add(5*time.Minute))
	// The burst has left the window: resolved, once.
	for i := range 3 {
		f.evaluate(t, t0.Add(6*time.Minute+time.Duration(i)*time.Minute))
	}
	if got, want := fmt.Sprint(f.notifications(t)), "[alert.fired alert.resolved]"; got != want {
		t.Fatalf("notifications %s; want %s", got, want)
	}
	all, _ := f.store.Alerts(ctx, f.project, false, 10)
	if len(all) != 1 || all[0].State != "resolved" || all[0].ResolvedAt == nil {
		t.Fatalf("alerts %+v; want one, resolved", all)
	}
	// Both notifications reach a flaky receiver, signed (verified with the Standard Webhooks library)
	// and retried until it answers.
	sec, err := f.store.SigningSecret(ctx, f.project)
	if err != nil {
		t.Fatal(err)
	}
	wh, _ := standardwebhooks.NewWebhook(sec)
	var mu sync.Mutex
	var got []string
	tried := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := !tried[r.Header.Get("webhook-id")]
		tried[r.Header.Get("webhook-id")] = true
		mu.Unlock()
		if first { // each notification's first try fails
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("signature: %v", err)
		}
		var p alert.Payload
		_ = json.Unmarshal(body, &p)
		mu.Lock()
		got = append(got, p.Type+" "+p.Kind+" "+p.WebhookID)
		mu.Unlock()
	}))
	defer srv.Close()
	// They were queued (no attempt made yet); the project now points at the receiver.
	f.setURL(t, srv.URL, alert.FormatStandard)
	ds, _ := f.store.Deliveries(ctx, f.project, 10)
	for _, d := range ds {
		if d := f.deliverUntil(t, d.ID); d.State != "delivered" || d.Attempts != 2 {
			t.Fatalf("notification %+v; want delivered at the second attempt", d)
		}
	}
	mu.Lock()
	sort.Strings(got)
	if fmt.Sprint(got) != "[alert.fired failure_ratio hookA alert.resolved failure_ratio hookA]" {
		t.Errorf("received %v", got)
	}
	mu.Unlock()

	// A second burst is a second alert.
	f.hits(t, "hookA", t0.Add(20*time.Minute), "failed", "auth_rejected", 10)
	f.evaluate(t, t0.Add(20*time.Minute))
	if got, want := fmt.Sprint(f.notifications(t)), "[alert.fired alert.resolved alert.fired]"; got != want {
		t.Fatalf("notifications %s; want %s", got, want)
	}
}

// TestReasonSpike fires on at least threshold requests of its reason, and not on other reasons.
func TestReasonSpike(t *testing.T) {
	f := newFixture(t, fastConfig(), true)
	ctx := context.Background()
	if _, err := f.store.CreateRule(ctx, f.project, alert.Rule{Name: "unknown users", Kind: alert.KindReasonSpike,
		Reason: "user_not_found", Threshold: 10, WindowMinutes: 10, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f.hits(t, "hookA", t0, "failed", "auth_rejected", 50)
	f.hits(t, "hookA", t0, "failed", "user_not_found", 9)
	f.evaluate(t, t0)
	if as, _ := f.store.Alerts(ctx, f.project, true, 10); len(as) != 0 {
		t.Fatalf("9 user_not_found: alerts %+v", as)
	}
	f.hits(t, "hookA", t0.Add(time.Minute), "failed", "user_not_found", 1)
	f.evaluate(t, t0.Add(time.Minute))
	as, _ := f.store.Alerts(ctx, f.project, true, 10)
	if len(as) != 1 || as[0].Value != 10 || as[0].Kind != alert.KindReasonSpike {
		t.Fatalf("10 user_not_found: alerts %+v; want one at 10", as)
	}
	f.evaluate(t, t0.Add(11*time.Minute))
	if as, _ := f.store.Alerts(ctx, f.project, true, 10); len(as) != 0 {
		t.Fatalf("after the window: open alerts %+v", as)
	}
}

// TestSilence: a busy webhook that goes quiet fires; a request resolves it; a webhook that was never
// busy does not fire.
func TestSilence(t *testing.T) {
	f := newFixture(t, fastConfig(), true)
	ctx := context.Background()
	if _, err := f.store.CreateRule(ctx, f.project, alert.Rule{Name: "quiet", Kind: alert.KindSilence,
		Threshold: 100, WindowMinutes: 15, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range 30 {
		f.hits(t, "busy", t0.Add(time.Duration(i)*time.Minute), "success", "", 10)
	}
	f.hits(t, "idle", t0, "success", "", 3)
	f.evaluate(t, t0.Add(29*time.Minute))
	if as, _ := f.store.Alerts(ctx, f.project, true, 10); len(as) != 0 {
		t.Fatalf("while busy: alerts %+v", as)
	}
	f.evaluate(t, t0.Add(45*time.Minute)) // minutes 31..45 are empty
	as, _ := f.store.Alerts(ctx, f.project, true, 10)
	if len(as) != 1 || as[0].WebhookID != "busy" {
		t.Fatalf("after 15 quiet minutes: alerts %+v; want one for busy", as)
	}
	// Long after, still silent: still the one alert (the webhook has left the baseline too).
	f.evaluate(t, t0.Add(5*time.Hour))
	f.hits(t, "busy", t0.Add(5*time.Hour), "success", "", 1)
	f.evaluate(t, t0.Add(5*time.Hour))
	if got, want := fmt.Sprint(f.notifications(t)), "[alert.fired alert.resolved]"; got != want {
		t.Fatalf("notifications %s; want %s", got, want)
	}
}

// TestOneEvaluator: while another process holds the evaluator's lock, Evaluate does nothing.
func TestOneEvaluator(t *testing.T) {
	f := newFixture(t, fastConfig(), true)
	ctx := context.Background()
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(0x696e6c6574_0017)); err != nil {
		t.Fatal(err)
	}
	ran, err := f.svc.Evaluate(ctx, time.Now())
	if err != nil || ran {
		t.Fatalf("Evaluate while locked: ran %v, %v; want false, nil", ran, err)
	}
	_ = tx.Rollback(ctx)
	if ran, err := f.svc.Evaluate(ctx, time.Now()); err != nil || !ran {
		t.Fatalf("Evaluate after: ran %v, %v; want true", ran, err)
	}
}

func TestRuleValidation(t *testing.T) {
	f := newFixture(t, fastConfig(), false)
	for _, r := range []alert.Rule{
		{Name: "", Kind: alert.KindFailureRatio, Threshold: 50, WindowMinutes: 5},
		{Name: "x", Kind: alert.KindFailureRatio, Threshold: 100, WindowMinutes: 5},
		{Name: "x", Kind: alert.KindFailureRatio, Threshold: 50, WindowMinutes: 0},
		{Name: "x", Kind: alert.KindFailureRatio, Threshold: 50, WindowMinutes: 1441},
		{Name: "x", Kind: alert.KindReasonSpike, Threshold: 5, WindowMinutes: 5},
		{Name: "x", Kind: alert.KindReasonSpike, Reason: "Bad Reason", Threshold: 5, WindowMinutes: 5},
		{Name: "x", Kind: alert.KindReasonSpike, Reason: "user_not_found", Threshold: 0.5, WindowMinutes: 5},
		{Name: "x", Kind: alert.KindSilence, Threshold: 0, WindowMinutes: 5},
		{Name: "x", Kind: "nonsense", Threshold: 1, WindowMinutes: 5},
		{Name: "x", Kind: alert.KindFailureRatio, Threshold: 50, WindowMinutes: 5, WebhookID: "AAAAAAAAAAAAAAAAAAAAAA"},
	} {
		if _, err := f.store.CreateRule(context.Background(), f.project, r); err == nil {
			t.Errorf("CreateRule(%+v) accepted", r)
		}
	}
	cfg := fastConfig()
	cfg.MaxRulesPerProject = 2
	g := newFixture(t, cfg, false)
	ok := alert.Rule{Name: "x", Kind: alert.KindSilence, Threshold: 1, WindowMinutes: 5}
	for i := range 3 {
		_, err := g.store.CreateRule(context.Background(), g.project, ok)
		if (err == nil) != (i < 2) {
			t.Errorf("rule %d: %v; want the third refused", i+1, err)
		}
	}
}
