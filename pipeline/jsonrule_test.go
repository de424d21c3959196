package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// TestBodiesBreakingTheJSONRule: a body the edge refused (package jsonvalid's rule) is logged as
// invalid_json with the edge's words as its detail, and one the edge did not check — an accepted record
// from before the check, or from another producer — fails as invalid_json with the same words instead
// of being read: no event fires, not even for the first of two user_id members, which sonic's searcher
// would take (and "evil" is a known user here).
func TestBodiesBreakingTheJSONRule(t *testing.T) {
	e := newEnv(t)
	hooks, res := standardFixtures()
	res.subjects[identify.ByUserID]["evil"] = pipeline.Subject{UserID: "evil"}
	cases := []struct {
		name   string
		req    req
		detail string
	}{
		{"control character", newReq("wh_uid", wire.OutcomeAccepted, "{\"user_id\":\"12345\",\"note\":\"a\nb\"}"),
			"control character U+000A in string at byte 28"},
		{"invalid UTF-8", newReq("wh_uid", wire.OutcomeAccepted, "{\"user_id\":\"12345\",\"name\":\"Jos\xe9\"}"),
			"invalid UTF-8 at byte 30"},
		{"lone surrogate", newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"12345","name":"\ud800"}`),
			`lone surrogate \ud800 at byte 27`},
		{"duplicate key", newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"evil","user_id":"12345"}`),
			`duplicate key "user_id" at byte 18`},
		{"not JSON", newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"12345"`),
			"unexpected end of JSON input at byte 18"},
		{"refused at the edge", newReq("wh_uid", wire.OutcomeInvalidJSON, `{"user_id":"evil","user_id":"12345"}`),
			`duplicate key "user_id" at byte 18`},
	}
	recs := make([]*kgo.Record, len(cases))
	for i, c := range cases {
		recs[i] = c.req.record(e.kcfg.RequestsTopic)
		if c.req.outcome == wire.OutcomeInvalidJSON {
			recs[i].Headers = append(recs[i].Headers, kgo.RecordHeader{Key: wire.HeaderEdgeDetail, Value: []byte(c.detail)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.kcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.run(t, testConfig(), hooks, res, nil)
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(cases)), 60*time.Second)
	for _, c := range cases {
		var status, reason, detail string
		row := e.conn.QueryRow(ctx, "SELECT toString(status), reason, detail FROM activity_log WHERE request_id = toUUID(?)", c.req.id.String())
		if err := row.Scan(&status, &reason, &detail); err != nil {
			t.Errorf("%s: activity row: %v", c.name, err)
			continue
		}
		if status != "failed" || reason != wire.ReasonInvalidJSON || detail != c.detail {
			t.Errorf("%s: %s/%s %q; want failed/invalid_json %q", c.name, status, reason, detail, c.detail)
		}
	}
	if n := e.count(t, "SELECT count() FROM events"); n != 0 {
		t.Errorf("%d events rows; want none", n)
	}
}
