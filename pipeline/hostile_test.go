package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// hostileHooks adds to the standard fixtures webhooks whose mappings let one request make a large
// event: wh_many maps one field to 20 string attributes (20 × 60 KB is over max_event_bytes, each
// attribute under max_attribute_bytes); wh_wide maps 4 fields to 4 attributes (240 KB: under
// max_event_bytes, over the events topic's max.message.bytes that the tests set to 200,000).
func hostileHooks() (*fakeHooks, *fakeResolver) {
	hooks, res := standardFixtures()
	many := make([]webhook.TypedMapping, 20)
	for i := range many {
		many[i] = webhook.TypedMapping{Attribute: fmt.Sprintf("a%d", i), Type: webhook.TypeString, Field: "note"}
	}
	hooks.put(&webhook.Hook{PublicID: "wh_many", ProjectID: 1, Enabled: true, Version: 1, EventName: "Note",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"}, Mappings: many})
	wide := make([]webhook.TypedMapping, 4)
	for i := range wide {
		wide[i] = webhook.TypedMapping{Attribute: fmt.Sprintf("a%d", i), Type: webhook.TypeString, Field: fmt.Sprintf("n%d", i)}
	}
	hooks.put(&webhook.Hook{PublicID: "wh_wide", ProjectID: 1, Enabled: true, Version: 1, EventName: "Note",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"}, Mappings: wide})
	return hooks, res
}

// shrinkEventsTopic sets the events topic's max.message.bytes below what the pipeline allows an event,
// as an operator might: Kafka itself then refuses some events.
func (e *env) shrinkEventsTopic(t *testing.T, maxBytes int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := fmt.Sprint(maxBytes)
	res, err := kadm.NewClient(e.kcl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &v}}, e.kcfg.EventsTopic)
	if err == nil {
		_, err = res.On(e.kcfg.EventsTopic, nil)
	}
	if err != nil {
		t.Fatalf("set max.message.bytes of %s: %v", e.kcfg.EventsTopic, err)
	}
	// The broker applies the change when it replays the metadata log: wait until it says so.
	for {
		rcs, err := kadm.NewClient(e.kcl).DescribeTopicConfigs(ctx, e.kcfg.EventsTopic)
		if err == nil {
			if rc, err := rcs.On(e.kcfg.EventsTopic, nil); err == nil {
				for _, c := range rc.Configs {
					if c.Key == "max.message.bytes" && c.MaybeValue() == v {
						return
					}
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("max.message.bytes of %s is not %s after 30s", e.kcfg.EventsTopic, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hostileCase is one accepted request that tries to make the pipeline fail, and the reason it must get
// ("" = success).
type hostileCase struct {
	name, webhook, body, reason string
}

func hostileCases() []hostileCase {
	// Random letters: the producer compresses, and repeated text would shrink below any limit.
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(n int) string {
		const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	note := random(60_000)
	wide := `{"user_id":"12345","n0":"` + random(60_000) + `","n1":"` + random(60_000) + `","n2":"` + random(60_000) + `","n3":"` + random(60_000) + `"}`
	return []hostileCase{
		// The reproduction: 500,000 × 'é' (1 MB) in a string attribute.
		{"huge string attribute", "wh_uid", `{"user_id":"12345","email_address":"` + strings.Repeat("é", 500_000) + `"}`, wire.ReasonAttributeTooLarge},
		{"huge price from 13 bytes", "wh_uid", `{"user_id":"12345","price":1e10000}`, wire.ReasonNumberOutOfRange},
		{"billion-digit price", "wh_uid", `{"user_id":"12345","price":1e999999999}`, wire.ReasonNumberOutOfRange},
		{"tiny price", "wh_uid", `{"user_id":"12345","price":"1e-999999999"}`, wire.ReasonNumberOutOfRange},
		{"huge integer", "wh_strict", `{"user_id":"12345","order_number":1e9999}`, wire.ReasonNumberOutOfRange},
		{"huge epoch date", "wh_uid", `{"user_id":"12345","purchase_date":1e9999}`, wire.ReasonNumberOutOfRange},
		{"array where a string is mapped", "wh_uid", `{"user_id":"12345","email_address":[1,2,3]}`, wire.ReasonAttributeTypeMismatch},
		{"object where a date is mapped", "wh_uid", `{"user_id":"12345","purchase_date":{"a":[]}}`, wire.ReasonAttributeTypeMismatch},
		{"many mappings of a large field", "wh_many", `{"user_id":"12345","note":"` + note + `"}`, wire.ReasonEventTooLarge},
		{"event over the topic's limit", "wh_wide", wide, wire.ReasonEventTooLarge},
		{"identifier of 2,000 bytes", "wh_uid", `{"user_id":"` + strings.Repeat("1", 2000) + `"}`, wire.ReasonIdentifierInvalid},
		{"identifier with NUL", "wh_uid", `{"user_id":"12\u0000345"}`, wire.ReasonUserNotFound},
		{"deep nesting", "wh_uid", `{"user_id":"12345","x":` + strings.Repeat(`[`, 63) + strings.Repeat(`]`, 63) + `}`, ""},
		{"long list", "wh_hwid", `{"device":{"hwid":"hw-a"},"tags":[` + strings.Repeat(`"t",`, 5000) + `"t"]}`, wire.ReasonAttributeTypeMismatch},
		{"list at its bound", "wh_hwid", `{"device":{"hwid":"hw-a"},"tags":[` + strings.Repeat(`"t",`, 999) + `"t"]}`, ""},
		{"every type at once", "wh_hwid", `{"device":{"hwid":"hw-a"},"items":[{"sku":"S"}],"order.id":"42","tags":"a,b","meta":{"gift":"yes"}}`, ""},
	}
}

// TestHostileRequestsDoNotStall is the reproduction of the critical defect: accepted requests built to
// make the pipeline fail (a 1 MB attribute, numbers that expand to thousands of digits, events larger
// than the pipeline or Kafka takes, …), mixed with normal traffic on the same partitions. Every request
// gets exactly one activity row with its own reason, every normal one succeeds and fires exactly one
// event, and nothing waits on a retry that cannot succeed.
func TestHostileRequestsDoNotStall(t *testing.T) {
	e := newEnv(t)
	e.shrinkEventsTopic(t, 200_000)
	hooks, res := hostileHooks()
	reg := prometheus.NewRegistry()
	p, _ := e.start(t, testConfig(), pipeline.Deps{Hooks: hooks, Resolver: res, Registry: reg})

	cases := hostileCases()
	var reqs []req
	want := map[string]string{} // request id → reason
	normal := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3 {
		for _, c := range cases {
			for range 1 + rng.IntN(3) {
				r := newReq("wh_uid", wire.OutcomeAccepted, seedPayload)
				reqs = append(reqs, r)
				want[r.id.String()] = ""
				normal++
			}
			r := newReq(c.webhook, wire.OutcomeAccepted, c.body)
			reqs = append(reqs, r)
			want[r.id.String()] = c.reason
			if c.reason == "" {
				normal++
			}
		}
	}
	e.produce(t, reqs...)

	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 90*time.Second)
	got := e.reasons(t)
	if len(got) != len(reqs) {
		t.Fatalf("activity_log has %d distinct requests; want %d", len(got), len(reqs))
	}
	byName := map[string]string{}
	for _, r := range reqs {
		if g, ok := got[r.id.String()]; !ok || g != want[r.id.String()] {
			byName[r.webhook+" "+truncate(r.body)] = fmt.Sprintf("got reason %q; want %q", g, want[r.id.String()])
		}
	}
	for k, v := range byName {
		t.Errorf("%s: %s", k, v)
	}
	if n := e.count(t, "SELECT count() FROM activity_log"); n != uint64(len(reqs)) {
		t.Errorf("activity_log has %d rows; want %d (one per request)", n, len(reqs))
	}
	// The events rows of a batch are inserted after its activity rows.
	e.waitCount(t, "SELECT count() FROM events", uint64(normal), 60*time.Second)
	if n := e.count(t, "SELECT count() FROM events"); n != uint64(normal) {
		t.Errorf("events has %d rows; want %d", n, normal)
	}
	if ev := e.allEvents(t); len(ev) != normal {
		t.Errorf("the events topic has %d events; want %d", len(ev), normal)
	}
	if d := e.detailOf(t, wire.ReasonEventTooLarge, "kafka refused the event"); d == "" {
		t.Errorf("no event_too_large row says Kafka refused the event")
	}
	// Reported, not asserted (timing belongs in benchmarks): how long normal requests took from the
	// edge's clock to the pipeline's, beside the hostile ones.
	var p50, p99 float64
	if err := e.conn.QueryRow(context.Background(), "SELECT quantile(0.5)(processed_ms - received_ms), quantile(0.99)(processed_ms - received_ms) FROM activity_log WHERE webhook_id = 'wh_uid' AND status = 'success'").Scan(&p50, &p99); err == nil {
		t.Logf("normal requests amid hostile ones: received → processed p50 %.0f ms, p99 %.0f ms", p50, p99)
	}
	if err := p.Ready(context.Background()); err != nil {
		t.Errorf("Ready after the hostile traffic: %v", err)
	}
	if n := sumMetric(t, reg, "inlet_pipeline_stalled_partitions"); n != 0 {
		t.Errorf("inlet_pipeline_stalled_partitions = %v; want 0", n)
	}
}

// TestStallIsVisible: while the pipeline cannot make progress (here the directory is down) and records
// wait, the lag metric shows them, the partition is reported stalled (metric, Ready) and the record is
// named; once the directory is back, all of it clears.
func TestStallIsVisible(t *testing.T) {
	e := newEnv(t)
	hooks, res := standardFixtures()
	res.down.Store(true)
	reg := prometheus.NewRegistry()
	cfg := testConfig()
	cfg.StallAfter = time.Second
	p, _ := e.start(t, cfg, pipeline.Deps{Hooks: hooks, Resolver: res, Registry: reg})
	reqs := []req{newReq("wh_uid", wire.OutcomeAccepted, seedPayload), newReq("wh_uid", wire.OutcomeAccepted, seedPayload)}
	e.produce(t, reqs...)

	testenv.WaitFor(t, "Ready to report the stall", 60*time.Second, func() bool {
		err := p.Ready(context.Background())
		return err != nil && strings.Contains(err.Error(), "waits at offset 0 with 2 records behind it")
	})
	if n := sumMetric(t, reg, "inlet_pipeline_stalled_partitions"); n != 1 {
		t.Errorf("inlet_pipeline_stalled_partitions = %v; want 1", n)
	}
	if lag := sumMetric(t, reg, "inlet_pipeline_lag_records"); lag != 2 {
		t.Errorf("inlet_pipeline_lag_records summed = %v; want 2", lag)
	}

	res.down.Store(false)
	e.waitCount(t, "SELECT count() FROM activity_log WHERE status = 'success'", 2, 60*time.Second)
	testenv.WaitFor(t, "the stall to clear", 60*time.Second, func() bool {
		return p.Ready(context.Background()) == nil && sumMetric(t, reg, "inlet_pipeline_stalled_partitions") == 0 &&
			sumMetric(t, reg, "inlet_pipeline_lag_records") == 0
	})
}

// reasons reads every activity row's request id and reason.
func (e *env) reasons(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id, r := range e.activity(t, "") {
		out[id] = r.reason
	}
	return out
}

// detailOf returns the detail of a row with the reason whose detail contains substr, or "".
func (e *env) detailOf(t *testing.T, reason, substr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d string
	err := e.conn.QueryRow(ctx, "SELECT any(detail) FROM activity_log WHERE reason = ? AND position(detail, ?) > 0", reason, substr).Scan(&d)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// allEvents reads the events topic up to its end offsets: every event fired so far, exactly.
func (e *env) allEvents(t *testing.T) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(e.kcl).ListEndOffsets(ctx, e.kcfg.EventsTopic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	cl, err := kafka.NewClient(e.kcfg, "test-events", kgo.ConsumeTopics(e.kcfg.EventsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading the events topic: %v (partitions left: %v)", ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
		})
	}
	return out
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
