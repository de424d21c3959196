package pipeline_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/hold"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// holdEnv is an env with a PostgreSQL database holding project 1 (the test records' project), the real
// directory as resolver and the hold store.
type holdEnv struct {
	*env
	res   *directory.Resolver
	holds *hold.Store
	hooks *fakeHooks
}

func newHoldEnv(t *testing.T) *holdEnv {
	t.Helper()
	e := newEnv(t)
	e.withDeliveries(t)
	projects := project.NewStore(e.pool)
	p, _, err := projects.Create(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != 1 {
		t.Fatalf("project id %d; the test's records carry project 1", p.ID)
	}
	res, err := directory.NewResolver(e.pool, nil, projects, directory.Defaults(), nil, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(res.Close)
	return &holdEnv{env: e, res: res, holds: hold.NewStore(e.pool), hooks: &fakeHooks{}}
}

func (h *holdEnv) deps() pipeline.Deps {
	return pipeline.Deps{Hooks: h.hooks, Resolver: h.res, Creator: h.res, Holds: h.holds}
}

// holdHook is a webhook of one route identified by email whose unknown users are held for holdFor.
func holdHook(id string, holdFor time.Duration) *webhook.Hook {
	return &webhook.Hook{PublicID: id, ProjectID: 1, Version: 1, Enabled: true, EventName: "Order",
		Identify:    webhook.Identify{Kind: identify.ByEmail, Field: "email"},
		UnknownUser: webhook.UnknownUserHold, HoldFor: holdFor}
}

// TestHoldLogsHeld: on a hold route, requests whose user the directory does not know are logged held
// (waiting_for_user, the detail naming the user and the hold's end), their holds are in PostgreSQL
// (the first attempt's partition and offset, the expiry from the receipt and the route's hold time),
// the rollup counts them held (ClickHouse migration 00005) and so does the 24-hour summary; a request
// whose user exists fires as before.
func TestHoldLogsHeld(t *testing.T) {
	h := newHoldEnv(t)
	ctx := context.Background()
	if _, err := h.pool.Exec(ctx, `INSERT INTO users (project_id, user_id, email) VALUES (1, 'known', 'known@example.com')`); err != nil {
		t.Fatal(err)
	}
	h.hooks.put(holdHook("wh_hold", 90*time.Minute))
	reqs := []req{
		newReq("wh_hold", wire.OutcomeAccepted, `{"email":"later@example.com"}`),
		newReq("wh_hold", wire.OutcomeAccepted, `{"email":"Later@Example.com"}`),
		newReq("wh_hold", wire.OutcomeAccepted, `{"email":"known@example.com"}`),
	}
	h.produce(t, reqs...)
	stop := h.runDeps(t, testConfig(), h.deps())
	h.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 60*time.Second)
	stop()

	rows := h.activity(t, "wh_hold")
	for i, r := range reqs[:2] {
		email := []string{"later@example.com", "Later@Example.com"}[i] // as sent: the directory matches ignoring case
		row := rows[r.id.String()]
		if row.status != chstore.StatusHeld || row.reason != wire.ReasonWaitingForUser || !strings.Contains(row.detail, `waiting for user email "`+email+`" until `) {
			t.Errorf("request %d: %s/%s %q; want held/waiting_for_user, waiting for the user", i, row.status, row.reason, row.detail)
		}
		got, ok, err := h.holds.Get(ctx, r.id)
		if err != nil || !ok {
			t.Fatalf("request %d: no hold (%v)", i, err)
		}
		want := time.UnixMilli(r.receivedMs).Add(90 * time.Minute)
		if got.State != hold.StateHeld || got.Kind != identify.ByEmail || len(got.Values) != 1 || got.Values[0] != email ||
			!got.ExpiresAt.Equal(want) || got.Offset != int64(i) || got.WebhookID != "wh_hold" {
			t.Errorf("request %d: hold %+v; want held for %s at offset %d until %s", i, got, email, i, want)
		}
	}
	if row := rows[reqs[2].id.String()]; row.status != chstore.StatusSuccess {
		t.Errorf("known user: %s/%s %q; want success", row.status, row.reason, row.detail)
	}
	if n := h.count(t, "SELECT toUInt64(sum(hits)) FROM activity_minute WHERE status = 'held' AND reason = 'waiting_for_user'"); n != 2 {
		t.Errorf("rollup counts %d held; want 2", n)
	}
	s, err := chstore.NewReader(h.conn).Summary24h(ctx, 1, "wh_hold", time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if s.Held != 2 || s.Success != 1 || s.Failed != 0 || s.Hits != 3 {
		t.Errorf("summary %+v; want 2 held, 1 success, 3 hits", s)
	}
	page, err := chstore.NewReader(h.conn).Entries(ctx, chstore.EntriesQuery{ProjectID: 1, WebhookID: "wh_hold", Status: chstore.StatusHeld})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 2 {
		t.Errorf("activity filtered by status held: %d entries; want 2", len(page.Entries))
	}
}

// TestHoldIsBounded: a project holds at most hold_max_per_project requests; past it a request that
// would be held fails with user_not_found, its detail saying the hold is full, and the metric counts it.
func TestHoldIsBounded(t *testing.T) {
	h := newHoldEnv(t)
	h.hooks.put(holdHook("wh_bound", time.Hour))
	var reqs []req
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"} {
		reqs = append(reqs, newReq("wh_bound", wire.OutcomeAccepted, `{"email":"`+email+`"}`))
	}
	// The first two in one run; the next two in a later run, which finds the project's two holds.
	h.produce(t, reqs[:2]...)
	cfg := testConfig()
	cfg.HoldMaxPerProject = 3
	deps := h.deps()
	stop := h.runDeps(t, cfg, deps)
	h.waitCount(t, "SELECT count() FROM activity_log", 2, 60*time.Second)
	stop()
	h.produce(t, reqs[2:]...)
	reg := prometheus.NewRegistry()
	deps.Registry = reg
	stop = h.runDeps(t, cfg, deps)
	h.waitCount(t, "SELECT count() FROM activity_log", 4, 60*time.Second)
	stop()

	rows := h.activity(t, "wh_bound")
	for i, r := range reqs[:3] {
		if row := rows[r.id.String()]; row.status != chstore.StatusHeld {
			t.Errorf("request %d: %s/%s %q; want held", i, row.status, row.reason, row.detail)
		}
	}
	row := rows[reqs[3].id.String()]
	if row.status != chstore.StatusFailed || row.reason != wire.ReasonUserNotFound || !strings.Contains(row.detail, "not held: the hold is full (the project already holds 3 requests") {
		t.Errorf("request past the bound: %s/%s %q; want failed/user_not_found, the hold is full", row.status, row.reason, row.detail)
	}
	if n, err := h.holds.Count(context.Background(), 1); err != nil || n != 3 {
		t.Errorf("project holds %d (%v); want 3", n, err)
	}
	if n := sumMetric(t, reg, "inlet_pipeline_hold_full_total"); n != 1 {
		t.Errorf("inlet_pipeline_hold_full_total = %v; want 1", n)
	}
}

// TestHoldWithoutStore: a pipeline without a hold store fails a hold route's unknown users as fail does,
// saying why.
func TestHoldWithoutStore(t *testing.T) {
	h := newHoldEnv(t)
	h.hooks.put(holdHook("wh_nostore", time.Hour))
	r := newReq("wh_nostore", wire.OutcomeAccepted, `{"email":"a@example.com"}`)
	h.produce(t, r)
	deps := h.deps()
	deps.Holds = nil
	stop := h.runDeps(t, testConfig(), deps)
	h.waitCount(t, "SELECT count() FROM activity_log", 1, 60*time.Second)
	stop()
	if row := h.activity(t, "wh_nostore")[r.id.String()]; row.status != chstore.StatusFailed || row.reason != wire.ReasonUserNotFound ||
		!strings.Contains(row.detail, "not held: this pipeline has no hold store") {
		t.Errorf("%s/%s %q; want failed/user_not_found, not held", row.status, row.reason, row.detail)
	}
}

// TestReleaseOfAVanishedUserFails: an attempt releasing a held request whose user is gone again (deleted
// between the release and its run) fails with user_not_found and is not held again; the rollup moves
// the request from held to failed.
func TestReleaseOfAVanishedUserFails(t *testing.T) {
	h := newHoldEnv(t)
	h.hooks.put(holdHook("wh_gone", time.Hour))
	r := newReq("wh_gone", wire.OutcomeAccepted, `{"email":"gone@example.com"}`)
	h.produce(t, r)
	stop := h.runDeps(t, testConfig(), h.deps())
	h.waitCount(t, "SELECT count() FROM activity_log", 1, 60*time.Second)
	first := h.attempts(t, r.id)
	if len(first) != 1 || first[0].status != chstore.StatusHeld {
		t.Fatalf("first attempt %+v; want held", first)
	}
	a := replay.Attempt{ProjectID: 1, WebhookID: "wh_gone", RequestID: r.id, Partition: first[0].partition, Offset: first[0].offset,
		Number: 1, Cause: replay.CauseRelease, ReplacesStatus: chstore.StatusHeld, ReplacesReason: wire.ReasonWaitingForUser}
	if res, err := newProducer(t, h.env).Produce(context.Background(), []replay.Attempt{a}); err != nil || res[0].Err != nil {
		t.Fatalf("Produce: %v %+v", err, res)
	}
	h.waitCount(t, "SELECT count() FROM activity_log", 2, 60*time.Second)
	stop()
	rows := h.attempts(t, r.id)
	if got := rows[1]; got.status != chstore.StatusFailed || got.reason != wire.ReasonUserNotFound || got.cause != "release" ||
		!strings.Contains(got.detail, "not held again: the user was found when the request was released, and is gone again") {
		t.Errorf("release: %+v; want failed/user_not_found, not held again", got)
	}
	if n, err := h.holds.Count(context.Background(), 1); err != nil || n != 1 {
		t.Errorf("project holds %d (%v); want the first hold only", n, err) // the releaser would mark it
	}
	s, err := chstore.NewReader(h.conn).Summary24h(context.Background(), 1, "wh_gone", time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if s.Held != 0 || s.Failed != 1 || s.Hits != 1 {
		t.Errorf("summary %+v; want the request counted once, failed", s)
	}
}

// TestHoldRedoneAfterTheUserCame: a batch redone after a crash between its holds and its rows holds the
// same requests, even when their user was created in between: the row says held (the hold's release
// will run it) and no event fires now, so the request fires once and the rollup's held is replaced once.
func TestHoldRedoneAfterTheUserCame(t *testing.T) {
	h := newHoldEnv(t)
	ctx := context.Background()
	h.hooks.put(holdHook("wh_redo", time.Hour))
	r := newReq("wh_redo", wire.OutcomeAccepted, `{"email":"eve@example.com"}`)
	h.produce(t, r)
	// What the crashed run wrote: the hold, not the row. The user came afterwards.
	at := time.UnixMilli(r.receivedMs).UTC()
	if err := h.holds.Insert(ctx, []hold.Hold{{ProjectID: 1, WebhookID: "wh_redo", RequestID: r.id, Kind: identify.ByEmail,
		Values: []string{"eve@example.com"}, Partition: 0, Offset: 0, ReceivedAt: at, ExpiresAt: at.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(ctx, `INSERT INTO users (project_id, user_id, email) VALUES (1, 'eve', 'eve@example.com')`); err != nil {
		t.Fatal(err)
	}
	stop := h.runDeps(t, testConfig(), h.deps())
	h.waitCount(t, "SELECT count() FROM activity_log", 1, 60*time.Second)
	stop()
	if row := h.activity(t, "wh_redo")[r.id.String()]; row.status != chstore.StatusHeld || row.reason != wire.ReasonWaitingForUser {
		t.Errorf("redone request: %s/%s %q; want held, as its hold says", row.status, row.reason, row.detail)
	}
	if n := h.count(t, "SELECT count() FROM events"); n != 0 {
		t.Errorf("%d events fired; want none until the release", n)
	}
}
