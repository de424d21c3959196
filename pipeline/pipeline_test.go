package pipeline_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/wire"
)

func TestOutcomesEndToEnd(t *testing.T) {
	e := newEnv(t)
	hooks, res := standardFixtures()
	type want struct {
		status, reason, detail string // detail: a substring
		subjectKind, subject   string // events row, for successes
		attributes             string // exact JSON, for successes ("" = not checked)
	}
	noPrice := strings.Replace(seedPayload, `"price":99.99,`, ``, 1)
	cases := []struct {
		name string
		req  req
		want want
	}{
		{"seed by user id", newReq("wh_uid", wire.OutcomeAccepted, seedPayload),
			want{status: "success", subjectKind: "user", subject: "12345",
				attributes: `{"email":"jane@example.com","total":"99.99","order_id":"ORD-001","purchase_date":"2024-03-15T00:00:00Z","__webhook":"wh_uid"}`}},
		{"seed by email", newReq("wh_email", wire.OutcomeAccepted, seedPayload),
			want{status: "success", subjectKind: "user", subject: "12345"}},
		{"nested, array and dotted-key paths by hwid", newReq("wh_hwid", wire.OutcomeAccepted,
			`{"device":{"hwid":"hw-a"},"items":[{"sku":"SKU-1"},{"sku":"SKU-2"}],"order.id":"77","tags":"a, b","meta":{"gift":"yes"}}`),
			want{status: "success", subjectKind: "device", subject: "hw-a",
				attributes: `{"sku":"SKU-1","order":77,"tags":["a","b"],"gift":true,"__webhook":"wh_hwid"}`}},
		{"absent mapped field is omitted", newReq("wh_uid", wire.OutcomeAccepted, noPrice),
			want{status: "success", subjectKind: "user", subject: "12345", detail: "attribute total omitted"}},
		{"identifier absent", newReq("wh_uid", wire.OutcomeAccepted, `{"email_address":"x@y.z"}`),
			want{status: "failed", reason: wire.ReasonIdentifierMissing, detail: "absent"}},
		{"identifier null", newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":null}`),
			want{status: "failed", reason: wire.ReasonIdentifierMissing, detail: "null"}},
		{"identifier empty", newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":""}`),
			want{status: "failed", reason: wire.ReasonIdentifierMissing, detail: "empty"}},
		{"user not found", newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"nobody"}`),
			want{status: "failed", reason: wire.ReasonUserNotFound}},
		{"attribute type mismatch", newReq("wh_strict", wire.OutcomeAccepted, seedPayload),
			want{status: "failed", reason: wire.ReasonAttributeTypeMismatch, detail: "attribute qty"}},
		{"webhook deleted", newReq("wh_gone", wire.OutcomeAccepted, seedPayload),
			want{status: "failed", reason: wire.ReasonWebhookDeleted}},
		{"auth rejected at the edge", newReq("wh_uid", wire.OutcomeAuthRejected, `{"user_id":"12`),
			want{status: "failed", reason: "auth_rejected"}},
		{"invalid json at the edge", newReq("wh_uid", wire.OutcomeInvalidJSON, `{not json`),
			want{status: "failed", reason: "invalid_json"}},
		{"too large at the edge", newReq("wh_uid", wire.OutcomePayloadTooLarge, ``),
			want{status: "failed", reason: "payload_too_large"}},
		{"disabled at the edge", newReq("wh_uid", wire.OutcomeWebhookDisabled, seedPayload),
			want{status: "failed", reason: "webhook_disabled"}},
	}
	reqs := make([]req, len(cases))
	successes := 0
	for i, c := range cases {
		reqs[i] = c.req
		if c.want.status == "success" {
			successes++
		}
	}
	e.produce(t, reqs...)
	e.run(t, testConfig(), hooks, res, nil)
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(cases)), 60*time.Second)
	e.waitCount(t, "SELECT count() FROM events", uint64(successes), 30*time.Second)

	ctx := context.Background()
	for _, c := range cases {
		var status, reason, detail, attrs, payload string
		row := e.conn.QueryRow(ctx, "SELECT toString(status), reason, detail, attributes, payload FROM activity_log WHERE request_id = toUUID(?)", c.req.id.String())
		if err := row.Scan(&status, &reason, &detail, &attrs, &payload); err != nil {
			t.Errorf("%s: activity row: %v", c.name, err)
			continue
		}
		if status != c.want.status || reason != c.want.reason {
			t.Errorf("%s: status/reason %s/%q (detail %q); want %s/%q", c.name, status, reason, detail, c.want.status, c.want.reason)
		}
		if !strings.Contains(detail, c.want.detail) {
			t.Errorf("%s: detail %q; want it to contain %q", c.name, detail, c.want.detail)
		}
		if payload != c.req.body {
			t.Errorf("%s: payload %q; want %q", c.name, payload, c.req.body)
		}
		if c.want.attributes != "" && attrs != c.want.attributes {
			t.Errorf("%s: attributes %s; want %s", c.name, attrs, c.want.attributes)
		}
		n := e.count(t, "SELECT count() FROM events WHERE event_id = toUUID('"+c.req.id.String()+"')")
		if c.want.status != "success" {
			if n != 0 {
				t.Errorf("%s: %d events rows; want 0", c.name, n)
			}
			continue
		}
		var kind, subject string
		if err := e.conn.QueryRow(ctx, "SELECT toString(subject_kind), subject FROM events WHERE event_id = toUUID(?)", c.req.id.String()).Scan(&kind, &subject); err != nil {
			t.Errorf("%s: events row: %v", c.name, err)
			continue
		}
		if kind != c.want.subjectKind || subject != c.want.subject {
			t.Errorf("%s: events row subject %s/%s; want %s/%s", c.name, kind, subject, c.want.subjectKind, c.want.subject)
		}
	}

	// Every success fired exactly one event (no crash here), keyed by subject, with the request id.
	evs := e.events(t, successes, 30*time.Second)
	if len(evs) != successes {
		t.Fatalf("events topic has %d records; want %d", len(evs), successes)
	}
	byID := map[string]wire.Event{}
	for _, r := range evs {
		ev, err := wire.DecodeEvent(r) // also checks the id and name headers against the value
		if err != nil {
			t.Fatal(err)
		}
		byID[ev.EventID] = ev
	}
	first := byID[cases[0].req.id.String()]
	if first.Event != "CheckoutSuccess" || first.UserID != "12345" || len(first.HWIDs) != 2 ||
		first.Attributes["__webhook"] != "wh_uid" || first.Attributes["total"] != "99.99" || first.ProjectID != 1 {
		t.Errorf("seed event = %+v; want CheckoutSuccess for user 12345 with 2 hwids, total \"99.99\", __webhook wh_uid", first)
	}
	dev := byID[cases[2].req.id.String()]
	if dev.SubjectKind != "device" || dev.HWID != "hw-a" || dev.Attributes["order"] != float64(77) {
		t.Errorf("hwid event = %+v; want device hw-a with order 77", dev)
	}
}

// TestNewerConfigVersion: a request authenticated against a config version the cache has not seen yet
// waits for it (the push normally lands within a second); if it never comes, the cached config is used
// and the entry says so.
func TestNewerConfigVersion(t *testing.T) {
	e := newEnv(t)
	hooks, res := standardFixtures()
	h, _ := hooks.Get(context.Background(), "wh_uid")
	cfg := testConfig()
	cfg.ConfigWait = 3 * time.Second
	e.run(t, cfg, hooks, res, nil)

	r2 := newReq("wh_uid", wire.OutcomeAccepted, seedPayload)
	r2.version = 2
	e.produce(t, r2)
	time.Sleep(500 * time.Millisecond)
	v2 := *h
	v2.Version, v2.EventName = 2, "RenamedEvent"
	hooks.put(&v2)
	e.waitCount(t, "SELECT count() FROM events WHERE event_name = 'RenamedEvent'", 1, 30*time.Second)

	r9 := newReq("wh_uid", wire.OutcomeAccepted, seedPayload)
	r9.version = 9
	e.produce(t, r9)
	e.waitCount(t, "SELECT count() FROM activity_log", 2, 30*time.Second)
	var detail string
	if err := e.conn.QueryRow(context.Background(), "SELECT detail FROM activity_log WHERE request_id = toUUID(?)", r9.id.String()).Scan(&detail); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, "config version 2") || !strings.Contains(detail, "version 9") {
		t.Errorf("detail %q; want it to say version 2 was used for a version-9 request", detail)
	}
}

// TestDirectoryDownIsRetried: while the directory cannot answer, requests wait (nothing is written,
// nothing is marked user_not_found); when it is back they succeed.
func TestDirectoryDownIsRetried(t *testing.T) {
	e := newEnv(t)
	hooks, res := standardFixtures()
	res.down.Store(true)
	e.run(t, testConfig(), hooks, res, nil)
	e.produce(t, newReq("wh_uid", wire.OutcomeAccepted, seedPayload), newReq("wh_email", wire.OutcomeAccepted, seedPayload))
	deadline := time.Now().Add(20 * time.Second)
	for res.calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if res.calls.Load() < 3 {
		t.Fatalf("directory asked %d times; want retries", res.calls.Load())
	}
	if n := e.count(t, "SELECT count() FROM activity_log"); n != 0 {
		t.Fatalf("%d activity rows while the directory is down; want 0", n)
	}
	res.down.Store(false)
	e.waitCount(t, "SELECT count() FROM activity_log WHERE status = 'success'", 2, 30*time.Second)
	e.waitCount(t, "SELECT count() FROM events", 2, 10*time.Second)
}

// TestFlushLinger: with flush_interval far away, a pipeline that has caught up writes each request
// within the linger, once per arrival (the rows are looked for well before the interval).
func TestFlushLinger(t *testing.T) {
	e := newEnv(t)
	hooks, res := standardFixtures()
	cfg := testConfig()
	cfg.FlushInterval = time.Minute
	cfg.FlushLinger = 100 * time.Millisecond
	e.run(t, cfg, hooks, res, nil)
	for i := range 3 {
		e.produce(t, newReq("wh_uid", wire.OutcomeAccepted, seedPayload))
		e.waitCount(t, "SELECT count() FROM activity_log", uint64(i+1), 30*time.Second)
	}
}
