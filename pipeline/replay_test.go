package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// lockedResolver is a directory the test adds users to while pipelines read it.
type lockedResolver struct {
	mu    sync.Mutex
	users map[string]pipeline.Subject
}

func (r *lockedResolver) Resolve(_ context.Context, _ int64, kind identify.Kind, values []string) (map[string]pipeline.Subject, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]pipeline.Subject{}
	for _, v := range values {
		if s, ok := r.users[v]; ok && kind == identify.ByUserID {
			out[v] = s
		}
	}
	return out, nil
}

func (r *lockedResolver) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users[id] = pipeline.Subject{UserID: id}
}

// attemptRow is one activity_log row of a request's attempt.
type attemptRow struct {
	attempt                        uint16
	status, reason, cause, detail  string
	replacesStatus, replacesReason string
	partition                      int32
	offset                         int64
	eventsFired                    uint32
	outcomes                       string
}

// attempts reads a request's activity rows, by attempt.
func (e *env) attempts(t *testing.T, id uuid.UUID) []attemptRow {
	t.Helper()
	rows, err := e.conn.Query(context.Background(), "SELECT attempt, toString(status), reason, attempt_cause, detail, replaces_status, replaces_reason, src_partition, src_offset, events_fired, outcomes FROM activity_log WHERE request_id = toUUID(?) ORDER BY attempt", id.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []attemptRow
	for rows.Next() {
		var r attemptRow
		if err := rows.Scan(&r.attempt, &r.status, &r.reason, &r.cause, &r.detail, &r.replacesStatus, &r.replacesReason, &r.partition, &r.offset, &r.eventsFired, &r.outcomes); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func newProducer(t *testing.T, e *env) *replay.Producer {
	t.Helper()
	p, err := replay.NewProducer(e.kcfg, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// eventIDs counts the events topic's records by event id.
func eventIDs(t *testing.T, e *env, want int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range e.events(t, want, 30*time.Second) {
		for _, h := range r.Headers {
			if h.Key == wire.HeaderEventID {
				out[string(h.Value)]++
			}
		}
	}
	return out
}

// TestReplayAfterUserCreated: a request that failed with user_not_found succeeds when it is replayed
// after the user is created, with the same event id; the attempt produced twice runs once (the second
// copy writes and fires nothing); the activity log shows both attempts and the summary counts the
// request once, by its latest outcome.
func TestReplayAfterUserCreated(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	hooks, _ := standardFixtures()
	res := &lockedResolver{users: map[string]pipeline.Subject{"known": {UserID: "known"}}}
	r := newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"newbie","price":5}`)
	other := newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"known","price":7}`)
	e.produce(t, r, other)
	reg := prometheus.NewRegistry()
	stop := e.runDeps(t, testConfig(), pipeline.Deps{Hooks: hooks, Resolver: res, Registry: reg})
	e.waitCount(t, "SELECT count() FROM activity_log", 2, 60*time.Second)
	first := e.attempts(t, r.id)
	if len(first) != 1 || first[0].reason != wire.ReasonUserNotFound {
		t.Fatalf("first attempt: %+v; want one failed user_not_found", first)
	}

	res.add("newbie")
	prod := newProducer(t, e)
	a := replay.Attempt{ProjectID: 1, WebhookID: "wh_uid", RequestID: r.id, Partition: first[0].partition, Offset: first[0].offset,
		Number: 1, Cause: replay.CauseReplay, Job: "job-1", ReplacesStatus: chstore.StatusFailed, ReplacesReason: wire.ReasonUserNotFound}
	ctx := context.Background()
	for range 2 { // a producer killed after producing, before recording it, produces it again
		results, err := prod.Produce(ctx, []replay.Attempt{a})
		if err != nil || results[0].Err != nil {
			t.Fatalf("Produce: %v %+v", err, results)
		}
	}
	e.waitCount(t, "SELECT count() FROM activity_log", 3, 60*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for sumMetric(t, reg, "inlet_pipeline_attempt_copies_total") < 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := sumMetric(t, reg, "inlet_pipeline_attempt_copies_total"); n != 1 {
		t.Fatalf("attempt copies = %v; want 1", n)
	}
	stop()
	rows := e.attempts(t, r.id)
	if len(rows) != 2 {
		t.Fatalf("%d rows for the request; want 2 (the copy writes nothing): %+v", len(rows), rows)
	}
	if got := rows[1]; got.attempt != 1 || got.status != chstore.StatusSuccess || got.cause != "replay" ||
		got.replacesStatus != chstore.StatusFailed || got.replacesReason != wire.ReasonUserNotFound || got.eventsFired != 1 {
		t.Errorf("attempt 1: %+v; want success, cause replay, replacing failed/user_not_found, 1 event", got)
	}
	ids := eventIDs(t, e, 2)
	if ids[r.id.String()] != 1 || ids[other.id.String()] != 1 || len(ids) != 2 {
		t.Errorf("events by id %v; want one with the request's id %s and the other request's", ids, r.id)
	}
	s, err := chstore.NewReader(e.conn).Summary24h(ctx, 1, "wh_uid", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s.Hits != 2 || s.Success != 2 || s.Failed != 0 || len(s.ByReason) != 0 {
		t.Errorf("summary %+v; want 2 hits, both successes (the replayed request by its latest outcome)", s)
	}
	page, err := chstore.NewReader(e.conn).Entries(ctx, chstore.EntriesQuery{ProjectID: 1, WebhookID: "wh_uid", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	var listed []uint16
	for {
		for _, en := range page.Entries {
			if en.RequestID == r.id.String() {
				listed = append(listed, en.Attempt)
			}
		}
		if page.NextCursor == "" {
			break
		}
		if page, err = chstore.NewReader(e.conn).Entries(ctx, chstore.EntriesQuery{ProjectID: 1, WebhookID: "wh_uid", Limit: 1, Cursor: page.NextCursor}); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(listed, []uint16{1, 0}) {
		t.Errorf("entries list attempts %v of the request, a page of one at a time; want [1 0] (latest first)", listed)
	}
}

// TestReplayFanOutFiresOnlyWhatFailed: a fan-out whose element 1 failed (a mapping that did not fit)
// is replayed after the mapping is fixed: element 1 fires, element 0 (fired by the first attempt) is
// not fired again; every element's event id is seen once. A request whose single event fired is not
// fired again either; a truncated record and a refused one are not produced.
func TestReplayFanOutFiresOnlyWhatFailed(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	hooks, res := standardFixtures()
	body := `{"user_id":"u1","order_number":"A1","line_items":[{"sku":"a","quantity":1},{"sku":"b","quantity":"two"}]}`
	fan := newReq("wh_fan", wire.OutcomeAccepted, body)
	single := newReq("wh_uid", wire.OutcomeAccepted, seedPayload)
	refused := newReq("wh_uid", wire.OutcomeAuthRejected, "")
	e.produce(t, fan, single, refused)
	stop := e.runDeps(t, testConfig(), pipeline.Deps{Hooks: hooks, Resolver: res})
	e.waitCount(t, "SELECT count() FROM activity_log", 3, 60*time.Second)
	stop()
	first := e.attempts(t, fan.id)
	if len(first) != 1 || first[0].status != chstore.StatusFailed || first[0].eventsFired != 1 {
		t.Fatalf("fan-out first attempt %+v; want failed with one element fired", first)
	}

	// The mapping fix: quantity as a string.
	h, _ := hooks.Get(context.Background(), "wh_fan")
	fixed := *h
	fixed.Version++
	fixed.Routes = slices.Clone(h.Routes)
	fixed.Routes[0].Mappings = slices.Clone(h.Routes[0].Mappings)
	fixed.Routes[0].Mappings[1].Type = webhook.TypeString
	hooks.put(&fixed)

	prod := newProducer(t, e)
	pos := func(id uuid.UUID) (int32, int64) {
		rows := e.attempts(t, id)
		return rows[0].partition, rows[0].offset
	}
	fp, fo := pos(fan.id)
	sp, so := pos(single.id)
	rp, ro := pos(refused.id)
	results, err := prod.Produce(context.Background(), []replay.Attempt{
		{ProjectID: 1, WebhookID: "wh_fan", RequestID: fan.id, Partition: fp, Offset: fo, Number: 1, Cause: replay.CauseReplay,
			ReplacesStatus: chstore.StatusFailed, ReplacesReason: wire.ReasonAttributeTypeMismatch, Fired: []int{0}},
		{ProjectID: 1, WebhookID: "wh_uid", RequestID: single.id, Partition: sp, Offset: so, Number: 1, Cause: replay.CauseRelease,
			ReplacesStatus: chstore.StatusSuccess, Fired: []int{-1}},
		{ProjectID: 1, WebhookID: "wh_uid", RequestID: refused.id, Partition: rp, Offset: ro, Number: 1, Cause: replay.CauseReplay},
		{ProjectID: 1, WebhookID: "wh_uid", RequestID: single.id, Partition: sp, Offset: so + 1000, Number: 1, Cause: replay.CauseReplay},
		{ProjectID: 1, WebhookID: "wh_uid", RequestID: single.id, Partition: sp, Offset: so, Number: 0, Cause: replay.CauseReplay},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, nil, replay.ErrRefused, replay.ErrNotFound, replay.ErrInvalid} {
		if !errorIs(results[i].Err, want) {
			t.Errorf("attempt %d: %v; want %v", i, results[i].Err, want)
		}
	}
	stop = e.runDeps(t, testConfig(), pipeline.Deps{Hooks: hooks, Resolver: res})
	e.waitCount(t, "SELECT count() FROM activity_log", 5, 60*time.Second)
	stop()
	rows := e.attempts(t, fan.id)
	if len(rows) != 2 || rows[1].status != chstore.StatusSuccess || rows[1].eventsFired != 1 {
		t.Fatalf("fan-out attempts %+v; want attempt 1 a success firing one element", rows)
	}
	var outs []struct {
		Index   int    `json:"index"`
		Status  string `json:"status"`
		Earlier bool   `json:"earlier"`
	}
	if err := json.Unmarshal([]byte(rows[1].outcomes), &outs); err != nil || len(outs) != 2 || !outs[0].Earlier || outs[0].Status != "success" || outs[1].Earlier || outs[1].Status != "success" {
		t.Errorf("attempt 1 outcomes %s; want element 0 fired earlier, element 1 fired now", rows[1].outcomes)
	}
	srows := e.attempts(t, single.id)
	if len(srows) != 2 || srows[1].status != chstore.StatusSuccess || srows[1].eventsFired != 0 || srows[1].cause != "release" {
		t.Errorf("single event attempts %+v; want attempt 1 a success firing nothing", srows)
	}
	ids := eventIDs(t, e, 3)
	want := map[string]int{wire.ElementEventID(fan.id, 0).String(): 1, wire.ElementEventID(fan.id, 1).String(): 1, single.id.String(): 1}
	if len(ids) != len(want) {
		t.Errorf("events by id %v; want %v", ids, want)
	}
	for id, n := range want {
		if ids[id] != n {
			t.Errorf("event %s seen %d times; want %d", id, ids[id], n)
		}
	}
	var evRows uint64
	if evRows = e.count(t, "SELECT count() FROM events"); evRows != 3 {
		t.Errorf("%d events rows; want 3", evRows)
	}
}

func errorIs(err, target error) bool {
	if target == nil {
		return err == nil
	}
	return err != nil && errorsIs(err, target)
}

var errorsIs = errors.Is
