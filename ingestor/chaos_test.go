package ingestor

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Chaos tests stop a shared service; they run only with INLET_CHAOS=1 (go test -p 1 -run Chaos).

// With Kafka stopped, requests are answered 503 with Retry-After within the ack deadline; once Kafka is
// back, requests are accepted again, and every request that was ever answered 202 is in the topic.
func TestChaosKafkaDown(t *testing.T) {
	testenv.RequireChaos(t)
	cfg := testConfig()
	cfg.AckTimeout = time.Second
	kcfg, cl := realProducer(t, cfg)
	e := startEdgeOn(t, cfg, tableHooks(), cl, kcfg.RequestsTopic)
	var accepted []string
	post := func() answer {
		a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody})
		if a.status == 202 {
			var ok struct {
				RequestID string `json:"request_id"`
			}
			_ = json.Unmarshal([]byte(a.body), &ok)
			accepted = append(accepted, ok.RequestID)
		}
		return a
	}
	for i := 0; i < 5; i++ {
		if a := post(); a.status != 202 {
			t.Fatalf("before the outage: %+v", a)
		}
	}

	testenv.StopService(t, "kafka")
	for i := 0; i < 5; i++ {
		start := time.Now()
		a := post()
		took := time.Since(start)
		if a.status != 503 || a.retryAfter == "" {
			t.Fatalf("kafka down, request %d: %+v; want 503 with Retry-After", i, a)
		}
		// The deadline is AckTimeout; allow scheduling slack, not a second deadline.
		if took > cfg.AckTimeout+500*time.Millisecond {
			t.Errorf("kafka down, request %d answered after %s; want within ack_timeout %s", i, took, cfg.AckTimeout)
		}
	}

	testenv.StartService(t, "kafka")
	if took, ok := within(90*time.Second, func() bool { return post().status == 202 }); !ok {
		t.Fatalf("no 202 within %s of Kafka's return", took)
	} else {
		t.Logf("accepting again %s after Kafka's return", took)
	}
	for i := 0; i < 5; i++ {
		if a := post(); a.status != 202 {
			t.Errorf("after the outage, request %d: %+v", i, a)
		}
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	inTopic := map[string]bool{}
	for _, r := range consumeAll(t, kcfg, kcfg.RequestsTopic) {
		id, _ := header(r, wire.HeaderRequestID)
		inTopic[id] = true
	}
	for _, id := range accepted {
		if !inTopic[id] {
			t.Errorf("request %s was answered 202 but is not in the topic", id)
		}
	}
	t.Logf("%d accepted, %d records in the topic (503'd records may land late; that is allowed)", len(accepted), len(inTopic))
}

// With PostgreSQL stopped, a webhook already cached keeps accepting, even past its TTL (stale-if-error),
// while an id never seen fails closed with 503.
func TestChaosPostgresDown(t *testing.T) {
	testenv.RequireChaos(t)
	cc := webhook.DefaultCacheConfig()
	cc.TTL = 500 * time.Millisecond
	cc.NegativeTTL = 100 * time.Millisecond
	p := startPlane(t, testConfig(), cc)
	w, auth := p.create(t, "orders")
	if a := p.e.do(t, req{path: "/hooks/" + w.ID, auth: auth, body: goodBody}); a.status != 202 {
		t.Fatalf("before the outage: %+v", a)
	}
	testenv.StopService(t, "postgres")
	time.Sleep(cc.TTL + 200*time.Millisecond) // past the TTL: the entry is stale, and PostgreSQL cannot refresh it
	for i := 0; i < 5; i++ {
		if a := p.e.do(t, req{path: "/hooks/" + w.ID, auth: auth, body: goodBody}); a.status != 202 {
			t.Fatalf("postgres down, cached webhook, request %d: %+v; want 202", i, a)
		}
	}
	if a := p.e.do(t, req{path: "/hooks/" + idNope, auth: auth, body: goodBody}); a.status != 503 || a.retryAfter == "" {
		t.Fatalf("postgres down, unknown id: %+v; want 503 with Retry-After (fail closed)", a)
	}
	if a := p.e.do(t, req{path: "/hooks/" + w.ID, auth: "Bearer wrong", body: goodBody}); a.status != 401 {
		t.Fatalf("postgres down, wrong secret: %+v; want 401", a)
	}
}
