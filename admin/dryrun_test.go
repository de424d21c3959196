package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// evaluation is the dry run's answer, as a client reads it.
type evaluation struct {
	Route          int
	Status         string
	Reason         string
	Detail         string
	EventName      string `json:"event_name"`
	Identification struct {
		Kind, Field, Value string
		Found              bool
		UserID             string `json:"user_id"`
	}
	Attributes []struct {
		Attribute, Type, Field, Outcome, Reason, Message string
		Value                                            json.RawMessage
	}
	Event json.RawMessage
}

func (ev *evaluation) attr(name string) string {
	for _, a := range ev.Attributes {
		if a.Attribute == name {
			return a.Outcome + ":" + string(a.Value)
		}
	}
	return "none"
}

// seeded is an env with the seed's event and webhook in project A and user 12345; it returns the
// webhook's id.
func (e *env) seeded() string {
	e.t.Helper()
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	var wh struct{ ID string }
	decodeInto(e.t, e.want("POST", "/api/v1/webhooks", e.keyA, seedWebhook("CheckoutSuccess"), 201), &wh)
	e.want("PUT", "/api/v1/users/12345", e.keyA, `{"email":"jane@example.com"}`, 201)
	return wh.ID
}

func (e *env) dryRun(path string, body any) evaluation {
	e.t.Helper()
	var ev evaluation
	decodeInto(e.t, e.want("POST", path, e.keyA, body, 200), &ev)
	return ev
}

func TestDryRun(t *testing.T) {
	e := newEnv(t)
	id := e.seeded()
	path := "/api/v1/webhooks/" + id + "/test"

	ev := e.dryRun(path, map[string]any{"body": seedSample})
	if ev.Status != "success" || ev.Reason != "" || ev.Route != 0 || ev.EventName != "CheckoutSuccess" {
		t.Errorf("seed payload: %s/%s route %d event %s (%s); want success, route 0, CheckoutSuccess", ev.Status, ev.Reason, ev.Route, ev.EventName, ev.Detail)
	}
	if !ev.Identification.Found || ev.Identification.UserID != "12345" || ev.Identification.Value != "12345" {
		t.Errorf("identification %+v; want 12345 found", ev.Identification)
	}
	for name, want := range map[string]string{"email": `mapped:"jane@example.com"`, "total": `mapped:"99.99"`, "order_id": `mapped:"ORD-001"`} {
		if got := ev.attr(name); got != want {
			t.Errorf("attribute %s: %s; want %s", name, got, want)
		}
	}
	if !strings.Contains(string(ev.Event), `"attributes":{"email":"jane@example.com","total":"99.99","order_id":"ORD-001","__webhook":"`+id+`"}`) {
		t.Errorf("event %s; want the typed attributes as fired", ev.Event)
	}

	ev = e.dryRun(path, map[string]any{"body": `{"email_address":"jane@example.com","price":1}`})
	if ev.Status != "failed" || ev.Reason != "identifier_missing" || ev.Detail != "field user_id is absent" || ev.Event != nil {
		t.Errorf("no identifier: %s/%s %q, event %s; want failed/identifier_missing, field user_id is absent, no event", ev.Status, ev.Reason, ev.Detail, ev.Event)
	}
	if got := ev.attr("total"); got != `mapped:"1"` {
		t.Errorf("attribute total of a request without identifier: %s; want it shown, mapped", got)
	}

	ev = e.dryRun(path, map[string]any{"body": `{"user_id":"nobody","price":"cheap"}`})
	if ev.Reason != "user_not_found" || ev.Identification.Found || ev.attr("total") != "failed:" {
		t.Errorf("unknown user: %s %+v total %s; want user_not_found, not found, total failed", ev.Reason, ev.Identification, ev.attr("total"))
	}

	// A form body, read through its JSON view.
	ev = e.dryRun(path, map[string]any{"body": "user_id=12345&price=5", "content_type": "application/x-www-form-urlencoded"})
	if ev.Status != "success" || ev.attr("total") != `mapped:"5"` {
		t.Errorf("form body: %s/%s %s total %s; want success with total 5", ev.Status, ev.Reason, ev.Detail, ev.attr("total"))
	}

	// A draft of the saved webhook, validated, nothing saved.
	ev = e.dryRun(path, map[string]any{"body": seedSample, "draft": map[string]any{"mappings": []map[string]string{{"attribute": "order_id", "field": "order_number"}}}})
	if len(ev.Attributes) != 1 || ev.attr("order_id") != `mapped:"ORD-001"` {
		t.Errorf("draft with one mapping: %+v; want order_id only", ev.Attributes)
	}
	out := e.want("POST", path, e.keyA, map[string]any{"body": seedSample, "draft": map[string]any{"mappings": []map[string]string{{"attribute": "nope", "field": "x"}}}}, 400)
	wantFieldErrors(t, out, "draft.mappings[0].attribute")
	var wh struct {
		Version  int64
		Mappings []any
	}
	decodeInto(t, e.want("GET", "/api/v1/webhooks/"+id, e.keyA, nil, 200), &wh)
	if wh.Version != 1 || len(wh.Mappings) != 3 {
		t.Errorf("webhook after drafts: version %d, %d mappings; want 1 and 3, unchanged", wh.Version, len(wh.Mappings))
	}

	// Another project's webhook is unknown.
	e.want("POST", path, e.keyB, map[string]any{"body": seedSample}, 404)
}

func TestDryRunDraft(t *testing.T) {
	e := newEnv(t)
	e.seeded()
	ev := e.dryRun("/api/v1/webhooks/test", map[string]any{"webhook": seedWebhook("CheckoutSuccess"), "body": seedSample})
	if ev.Status != "success" || ev.attr("total") != `mapped:"99.99"` {
		t.Errorf("unsaved draft: %s/%s %s; want success with total 99.99", ev.Status, ev.Reason, ev.Detail)
	}
	bad := seedWebhook("CheckoutSuccess")
	bad["name"] = ""
	bad["identify"] = map[string]string{"kind": "user_id", "field": ""}
	out := e.want("POST", "/api/v1/webhooks/test", e.keyA, map[string]any{"webhook": bad, "body": seedSample}, 400)
	wantFieldErrors(t, out, "webhook.name", "webhook.identify.field")
	out = e.want("POST", "/api/v1/webhooks/test", e.keyA, map[string]any{"body": seedSample}, 400)
	wantFieldErrors(t, out, "webhook")
	var list struct{ Total int }
	decodeInto(t, e.want("GET", "/api/v1/webhooks", e.keyA, nil, 200), &list)
	if list.Total != 1 {
		t.Errorf("%d webhooks after dry runs of drafts; want the 1 saved", list.Total)
	}
}

// TestDryRunBodyLimit: a body over the edge's max_body_bytes is 413, as the edge answers it; one of
// exactly that size is evaluated, however much its JSON escaping makes of the request.
func TestDryRunBodyLimit(t *testing.T) {
	e := newEnv(t)
	id := e.seeded()
	path := "/api/v1/webhooks/" + id + "/test"
	pad := func(n int) string {
		head := `{"user_id":"12345","pad":"`
		return head + strings.Repeat("\x01", n-len(head)-2) + `"}`
	}
	body := pad(testMaxBody)
	if len(body) != testMaxBody {
		t.Fatalf("padded body is %d bytes; want %d", len(body), testMaxBody)
	}
	// \x01 is escaped as \u0001: six bytes each in the request.
	ev := e.dryRun(path, map[string]any{"body": body})
	if ev.Reason != "invalid_json" {
		t.Errorf("a body of control characters: %s/%s; want invalid_json (evaluated, not refused)", ev.Status, ev.Reason)
	}
	ok := `{"user_id":"12345","pad":"` + strings.Repeat("x", testMaxBody-28) + `"}`
	if ev := e.dryRun(path, map[string]any{"body": ok}); ev.Status != "success" {
		t.Errorf("a body of max_body_bytes: %s/%s %s; want success", ev.Status, ev.Reason, ev.Detail)
	}
	out := e.want("POST", path, e.keyA, map[string]any{"body": ok + " "}, 413)
	if !strings.Contains(string(out), "max_body_bytes") {
		t.Errorf("413 %s; want it to name max_body_bytes", out)
	}
	headers := map[string]string{}
	for i := range maxTestHeaders + 1 {
		headers[fmt.Sprintf("X-H%d", i)] = "v"
	}
	wantFieldErrors(t, e.want("POST", path, e.keyA, map[string]any{"body": seedSample, "headers": headers}, 400), "headers")
}

// backtestAnswer is the backtest's answer, as a client reads it.
type backtestAnswer struct {
	Draft                 bool
	Limit, Read           int
	Evaluated             int
	NotEvaluatedTruncated int `json:"not_evaluated_truncated"`
	NotEvaluatedForm      int `json:"not_evaluated_form"`
	Actual, Result        struct {
		Success, Failed, Skipped int
		ByReason                 map[string]int `json:"failed_by_reason"`
		SkippedByReason          map[string]int `json:"skipped_by_reason"`
	}
	Changed  int
	Examples []struct {
		RequestID     string `json:"request_id"`
		Before, After struct {
			Status, Reason, Detail, Route string
			EventsFired                   int `json:"events_fired"`
		}
	}
	Notes  []string
	TookMs int64 `json:"took_ms"`
}

// insertRecorded writes activity rows as the pipeline writes them (chstore.Writer), each payload with
// its status and reason, newest last, received a minute ago onwards.
func (e *env) insertRecorded(webhookID string, rows ...chstore.ActivityRow) []string {
	e.t.Helper()
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	ids := make([]string, len(rows))
	for i := range rows {
		r := &rows[i]
		r.ProjectID, r.WebhookID, r.RequestID = uint64(e.projA), webhookID, uuid.Must(uuid.NewV7())
		r.ReceivedAt, r.ReceivedMs, r.Offset = at.Add(time.Duration(i)*time.Millisecond), uint64(at.UnixMilli())+uint64(i), int64(i)
		if r.EdgeStatus == 0 {
			r.EdgeStatus = 202
		}
		r.PayloadBytes = uint32(len(r.Payload))
		ids[i] = r.RequestID.String()
	}
	if err := chstore.NewWriter(e.ch).InsertActivity(context.Background(), rows); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// TestBacktest: the sender moved the price into an object, so the saved mapping fails with
// attribute_type_mismatch; a draft mapping price.amount turns those failures into successes, in the
// counts and the examples, and leaves the others as they were. Truncated payloads, form bodies,
// refused requests and duplicates are not evaluated.
func TestBacktest(t *testing.T) {
	e := newEnv(t)
	id := e.seeded()
	mismatch := func(n int) chstore.ActivityRow {
		return chstore.ActivityRow{Status: "failed", Reason: "attribute_type_mismatch",
			Payload: fmt.Sprintf(`{"user_id":"12345","order_number":"ORD-%d","price":{"amount":"%d.50","currency":"EUR"}}`, n, n)}
	}
	rows := []chstore.ActivityRow{
		{Status: "success", Payload: seedSample},
		mismatch(1), mismatch(2),
		{Status: "failed", Reason: "user_not_found", Payload: `{"user_id":"nobody","price":{"amount":"1"}}`},
		{Status: "failed", Reason: "auth_rejected", EdgeStatus: 401, Payload: `{"user_id":"12345"}`},
		{Status: "duplicate", Payload: seedSample, DuplicateOf: uuid.NewString()},
		{Status: "failed", Reason: "user_not_found", Payload: `{"user_id":"12345","price":{"amo`, PayloadTruncated: 1},
		{Status: "success", Payload: "user_id=12345&price=3"},
		mismatch(3),
	}
	ids := e.insertRecorded(id, rows...)
	path := "/api/v1/webhooks/" + id + "/backtest"

	var now backtestAnswer
	decodeInto(t, e.want("POST", path, e.keyA, nil, 200), &now)
	if now.Draft || now.Limit != 1000 || now.Read != 7 || now.Evaluated != 5 || now.NotEvaluatedTruncated != 1 || now.NotEvaluatedForm != 1 || now.Changed != 0 ||
		now.Actual.Success != 1 || now.Actual.ByReason["attribute_type_mismatch"] != 3 || now.Result.ByReason["attribute_type_mismatch"] != 3 {
		t.Errorf("backtest of the saved config: %+v; want 7 read, 5 evaluated (1 truncated, 1 form), nothing changed, 3 mismatches", now)
	}

	draft := map[string]any{"mappings": []map[string]string{
		{"attribute": "order_id", "field": "order_number"}, {"attribute": "total", "field": "price.amount"}},
		"sample_payload": `{"user_id":"12345","order_number":"ORD-1","price":{"amount":"1.50","currency":"EUR"}}`}
	var fixed backtestAnswer
	decodeInto(t, e.want("POST", path, e.keyA, map[string]any{"draft": draft}, 200), &fixed)
	if !fixed.Draft || fixed.Evaluated != 5 || fixed.Changed != 3 || fixed.Result.Success != 4 || fixed.Result.Failed != 1 ||
		fixed.Result.ByReason["user_not_found"] != 1 || fixed.Result.ByReason["attribute_type_mismatch"] != 0 ||
		fixed.Actual.ByReason["attribute_type_mismatch"] != 3 {
		t.Errorf("backtest of the fix: %+v; want 3 mismatches turned into successes: 4 successes, 1 user_not_found", fixed)
	}
	if len(fixed.Examples) != 3 {
		t.Fatalf("%d examples; want 3", len(fixed.Examples))
	}
	for i, want := range []string{ids[8], ids[2], ids[1]} { // newest first
		x := fixed.Examples[i]
		if x.RequestID != want || x.Before.Reason != "attribute_type_mismatch" || x.After.Status != "success" {
			t.Errorf("example %d: %+v; want %s from attribute_type_mismatch to success", i, x, want)
		}
	}
	if notes := strings.Join(fixed.Notes, " "); !strings.Contains(notes, "1 requests were not evaluated") || !strings.Contains(notes, "1 form bodies") {
		t.Errorf("notes %q; want the truncated and form bodies said", notes)
	}

	var two backtestAnswer
	decodeInto(t, e.want("POST", path, e.keyA, map[string]any{"limit": 2}, 200), &two)
	if two.Read != 2 || two.Evaluated != 1 || two.NotEvaluatedForm != 1 {
		t.Errorf("limit 2: %+v; want the newest 2 read: a mismatch and the form", two)
	}
	wantFieldErrors(t, e.want("POST", path, e.keyA, map[string]any{"limit": maxBacktest + 1}, 400), "limit")
	wantFieldErrors(t, e.want("POST", path, e.keyA, map[string]any{"draft": map[string]any{"identify": map[string]string{"kind": "nope", "field": "user_id"}}}, 400), "draft.identify.kind")
	e.want("POST", path, e.keyB, nil, 404)
	var wh struct{ Version int64 }
	decodeInto(t, e.want("GET", "/api/v1/webhooks/"+id, e.keyA, nil, 200), &wh)
	if wh.Version != 1 {
		t.Errorf("webhook version %d after backtests; want 1, unchanged", wh.Version)
	}
}

// TestBacktestSkipped: a draft whose only route fans out over items skips the recorded requests
// without items, or with none (no_elements); the backtest counts them as skipped, not as failures, and
// its examples name route 0, which took them and found no element.
func TestBacktestSkipped(t *testing.T) {
	e := newEnv(t)
	id := e.seeded()
	ids := e.insertRecorded(id,
		chstore.ActivityRow{Status: "success", Payload: seedSample},
		chstore.ActivityRow{Status: "success", Payload: `{"user_id":"12345","items":[]}`})
	draft := map[string]any{"routes": []map[string]any{{"event": "CheckoutSuccess", "for_each": "items",
		"identify": map[string]string{"kind": "user_id", "field": "$.user_id"}, "mappings": []any{}}},
		"sample_payload": `{"user_id":"12345","items":[{"sku":"A-1"}]}`}
	var got backtestAnswer
	decodeInto(t, e.want("POST", "/api/v1/webhooks/"+id+"/backtest", e.keyA, map[string]any{"draft": draft}, 200), &got)
	if got.Evaluated != 2 || got.Actual.Success != 2 || got.Result.Skipped != 2 || got.Result.Failed != 0 ||
		got.Result.SkippedByReason["no_elements"] != 2 || got.Changed != 2 {
		t.Fatalf("backtest of the fan-out draft: %+v; want both requests skipped (no_elements), no failure", got)
	}
	for i, x := range got.Examples {
		// A single route with a fan-out is labelled #1, as the activity log would label it.
		if x.RequestID != ids[1-i] || x.After.Status != "skipped" || x.After.Route != "#1" || x.Before.EventsFired != 1 || x.After.EventsFired != 0 {
			t.Errorf("example %d: %+v; want %s skipped by route #0, 1 event before, none after", i, x, ids[1-i])
		}
	}
}
