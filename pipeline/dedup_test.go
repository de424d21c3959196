package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// The de-duplication tests run the pipeline against the real stack, with the delivery store in a
// PostgreSQL database of the test's own (env.withDeliveries), and check every request's row.

// shopReq is a Shopify delivery of id: the same id is the same delivery, whatever the body.
func shopReq(id, user string) req {
	r := newReq("wh_shop", wire.OutcomeAccepted, `{"user_id":"`+user+`","price":10.5}`)
	r.headers = []string{"X-Shopify-Topic", "orders/create", "X-Shopify-Webhook-Id", id}
	return r
}

// shortReq is a delivery of id to wh_short (a one-minute window), received at ms.
func shortReq(id string, ms int64) req {
	r := newReq("wh_short", wire.OutcomeAccepted, `{"user_id":"u1"}`)
	r.headers = []string{"Delivery-Id", id}
	r.receivedMs = ms
	return r
}

// firstOf says, for requests in the order they were produced, which one each repeats: the index of
// the first request of the same key, or -1 for the first itself.
func firstOf(reqs []req, key func(req) string) []int {
	first := map[string]int{}
	out := make([]int, len(reqs))
	for i, r := range reqs {
		k := key(r)
		if k == "" {
			out[i] = -1
			continue
		}
		if j, ok := first[k]; ok {
			out[i] = j
			continue
		}
		first[k] = i
		out[i] = -1
	}
	return out
}

// headerKey is the key of requests whose delivery id is a header value.
func headerKey(name string) func(req) string {
	return func(r req) string {
		for i := 0; i+1 < len(r.headers); i += 2 {
			if r.headers[i] == name {
				return r.webhook + "/" + r.headers[i+1]
			}
		}
		return ""
	}
}

// checkVerdicts checks that every request has one row: a success when of[i] is -1, else a duplicate
// of the request of[i]. It returns the ids of the originals.
func (e *env) checkVerdicts(t *testing.T, reqs []req, of []int) map[string]bool {
	t.Helper()
	rows := e.activity(t, "")
	if len(rows) != len(reqs) {
		t.Errorf("%d activity rows; want %d", len(rows), len(reqs))
	}
	originals := map[string]bool{}
	for i, r := range reqs {
		got, ok := rows[r.id.String()]
		switch {
		case !ok:
			t.Errorf("request %d (%s) has no activity row", i, r.id)
		case of[i] < 0:
			originals[r.id.String()] = true
			if got.status != "success" || got.duplicateOf != "" {
				t.Errorf("request %d: %s %s duplicate of %q (detail %q); want success", i, got.status, got.reason, got.duplicateOf, got.detail)
			}
		default:
			if want := reqs[of[i]].id.String(); got.status != "duplicate" || got.duplicateOf != want || got.reason != "" {
				t.Errorf("request %d: %s %q duplicate of %q (detail %q); want a duplicate of request %d (%s)", i, got.status, got.reason, got.duplicateOf, got.detail, of[i], want)
			}
		}
	}
	return originals
}

// checkEvents checks that the events table has one row per original and no other, and that the events
// topic has every original's event and no other: exactly once when exact, at least once otherwise.
func (e *env) checkEvents(t *testing.T, originals map[string]bool, exact bool) {
	t.Helper()
	e.waitCount(t, "SELECT count() FROM events", uint64(len(originals)), 30*time.Second)
	ctx := context.Background()
	rows, err := e.conn.Query(ctx, "SELECT toString(event_id) FROM events")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if !originals[id] {
			t.Errorf("events row %s is not an original's", id)
		}
	}
	rows.Close()
	recs := e.allEvents(t)
	ids := map[string]bool{}
	for _, r := range recs {
		ev, err := wire.DecodeEvent(r)
		if err != nil {
			t.Fatal(err)
		}
		if !originals[ev.EventID] {
			t.Errorf("event %s on the topic is not an original's", ev.EventID)
		}
		ids[ev.EventID] = true
	}
	if len(ids) != len(originals) || (exact && len(recs) != len(originals)) {
		t.Errorf("events topic: %d records, %d distinct ids; want %d ids (exactly once: %v)", len(recs), len(ids), len(originals), exact)
	}
}

// TestDedupAcrossKill is the acceptance: the same delivery (the same X-Shopify-Webhook-Id) sent
// three times, the pipeline killed with SIGKILL between the second and the third: one event fired (the
// events table and the topic), one success row and two duplicates pointing at the first request.
func TestDedupAcrossKill(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	reqs := []req{shopReq("b54557e4-3b7f-4d6f", "12345"), shopReq("b54557e4-3b7f-4d6f", "12345"), shopReq("b54557e4-3b7f-4d6f", "12345")}

	first := e.startChild(t, "")
	e.produce(t, reqs[0], reqs[1])
	e.waitCount(t, "SELECT count() FROM activity_log", 2, 90*time.Second)
	if err := first.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	if st := waitExit(t, first, 30*time.Second); st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first child ended with %v; want killed by SIGKILL", st)
	}

	e.produce(t, reqs[2])
	second := e.startChild(t, "")
	e.waitCount(t, "SELECT count() FROM activity_log", 3, 90*time.Second)
	_ = second.Process.Signal(syscall.SIGTERM)
	if st := waitExit(t, second, 60*time.Second); !st.Success() {
		t.Errorf("second child ended with %v; want a clean exit", st)
	}
	originals := e.checkVerdicts(t, reqs, []int{-1, 0, 0})
	e.checkEvents(t, originals, true)
	var headers string
	if err := e.conn.QueryRow(context.Background(), "SELECT headers FROM activity_log WHERE request_id = toUUID(?)", reqs[2].id.String()).Scan(&headers); err != nil {
		t.Fatal(err)
	}
	if headers != `{"X-Shopify-Topic":"orders/create","X-Shopify-Webhook-Id":"b54557e4-3b7f-4d6f"}` {
		t.Errorf("the duplicate's headers %s; want the two it was sent with", headers)
	}
}

// dedupWorkload is traffic with duplicates over several partitions: 30 Shopify deliveries sent three
// times each (the repeats interleaved with other deliveries and normal traffic), and a delivery to a
// one-minute window repeated around the window's end. It returns the requests in the order to produce
// them and, for each, the request it repeats (-1 for none).
func dedupWorkload() ([]req, []int) {
	var reqs []req
	for round := range 3 {
		for d := range 30 {
			if round == 1 {
				d = 29 - d
			}
			reqs = append(reqs, shopReq("delivery-"+strconv.Itoa(d), "u"+strconv.Itoa(d)))
			if d%3 == 0 {
				reqs = append(reqs, newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"u`+strconv.Itoa(d)+`","price":1.5}`))
			}
		}
	}
	of := firstOf(reqs, headerKey("X-Shopify-Webhook-Id"))
	// wh_short: o; d within o's minute; l exactly at its end (a new original); d2 within l's minute.
	t0 := time.Now().Add(-10 * time.Minute).UnixMilli()
	n := len(reqs)
	reqs = append(reqs, shortReq("s", t0), shortReq("s", t0+30_000), shortReq("s", t0+60_000), shortReq("s", t0+61_000))
	of = append(of, -1, n, -1, n+2)
	return reqs, of
}

// TestDedupKillAtFailpoints: with duplicates in the batches, a SIGKILL at each failpoint of a flush (the
// claims made, the rows not or half written) and a second process finishing the work: one event per
// delivery, and every duplicate points at its first request. The replay decides every request again:
// the originals find their own claims, the window's second original is not taken for a duplicate of
// the first, and nothing is decided twice differently.
func TestDedupKillAtFailpoints(t *testing.T) {
	for _, fp := range []string{pipeline.FailBeforeInsert, pipeline.FailBetweenInsert, pipeline.FailAfterInserts} {
		t.Run(fp, func(t *testing.T) {
			e := newEnv(t)
			e.withDeliveries(t)
			reqs, of := dedupWorkload()
			e.produce(t, reqs...)

			first := e.startChild(t, fp)
			st := waitExit(t, first, 90*time.Second)
			if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("first child ended with %v; want killed by SIGKILL at %s", st, fp)
			}
			var claimed int
			if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM sender_deliveries").Scan(&claimed); err != nil {
				t.Fatal(err)
			}
			t.Logf("after the kill at %s: %d originals claimed, %d activity rows", fp, claimed, e.count(t, "SELECT count() FROM activity_log"))
			if claimed == 0 {
				t.Fatal("no claim stored before the kill: the replay would not be tested")
			}

			second := e.startChild(t, "")
			e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 90*time.Second)
			_ = second.Process.Signal(syscall.SIGTERM)
			if st := waitExit(t, second, 60*time.Second); !st.Success() {
				t.Errorf("second child ended with %v; want a clean exit", st)
			}
			originals := e.checkVerdicts(t, reqs, of)
			e.checkEvents(t, originals, false)
			if n := e.count(t, "SELECT toUInt64(sum(hits)) FROM activity_minute WHERE status = 'duplicate'"); n != 62 {
				t.Errorf("rollup: %d duplicates; want 62", n)
			}
		})
	}
}

// TestDedupTwoPipelines: two pipeline processes in one consumer group take the same webhooks' keys in
// turn: the first alone, then both while the second joins (a rebalance moves partitions to it), then the
// second alone after the first leaves. Every delivery fires one event, whichever process saw its
// repeats.
func TestDedupTwoPipelines(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	hooks, res := standardFixtures()
	var sends [3][]req
	keys := func(r req) string {
		switch r.webhook {
		case "wh_stripe":
			var b struct{ ID string }
			_ = json.Unmarshal([]byte(r.body), &b)
			return r.webhook + "/" + b.ID
		case "wh_hash":
			return r.webhook + "/" + r.body
		}
		return headerKey(map[string]string{"wh_shop": "X-Shopify-Webhook-Id", "wh_short": "Delivery-Id"}[r.webhook])(r)
	}
	deliveryOf := func(k int) req {
		user := "u" + strconv.Itoa(k%50)
		switch k % 4 {
		case 0:
			return shopReq("d-"+strconv.Itoa(k), user)
		case 1:
			return newReq("wh_stripe", wire.OutcomeAccepted, fmt.Sprintf(`{"id":"evt_%d","user_id":%q}`, k, user))
		case 2:
			r := newReq("wh_hash", wire.OutcomeAccepted, fmt.Sprintf(`{"user_id":%q,"n":%d}`, user, k))
			r.headers = []string{"X-Topic", "t"}
			return r
		}
		return shortReq("d-"+strconv.Itoa(k), time.Now().UnixMilli())
	}
	// 60 deliveries, each sent three times: first sends and the first 20's repeats in phase 0, the other
	// repeats in phases 1 and 2.
	for k := range 60 {
		r := deliveryOf(k)
		for n := range 3 {
			again := r
			again.id = newReq(r.webhook, r.outcome, "").id
			phase := min(n, 2)
			if k < 20 {
				phase = min(n, 1)
			}
			sends[phase] = append(sends[phase], again)
		}
	}
	var reqs []req
	kopts := []kgo.Opt{kgo.RebalanceTimeout(5 * time.Second), kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}
	cfg := testConfig()
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()

	_, stopA := e.start(t, cfg, pipeline.Deps{Hooks: hooks, Resolver: res, Registry: regA, KafkaOpts: kopts})
	e.produce(t, sends[0]...)
	reqs = append(reqs, sends[0]...)
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 60*time.Second)

	// The second process has a connection pool of its own, as another process would.
	poolB, err := pgdb.Open(context.Background(), e.pgcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer poolB.Close()
	_, stopB := e.start(t, cfg, pipeline.Deps{Hooks: hooks, Resolver: res, Registry: regB, KafkaOpts: kopts,
		Deliveries: delivery.NewStore(poolB)})
	e.produce(t, sends[1]...)
	reqs = append(reqs, sends[1]...)
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 60*time.Second)

	stopA()
	e.produce(t, sends[2]...)
	reqs = append(reqs, sends[2]...)
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 90*time.Second)
	stopB()

	a, b := sumMetric(t, regA, "inlet_pipeline_records_total"), sumMetric(t, regB, "inlet_pipeline_records_total")
	t.Logf("requests processed: %v by the first process, %v by the second", a, b)
	if a == 0 || b == 0 {
		t.Errorf("the first process processed %v requests, the second %v; want both some", a, b)
	}
	originals := e.checkVerdicts(t, reqs, firstOf(reqs, keys))
	if len(originals) != 60 {
		t.Errorf("%d originals; want 60", len(originals))
	}
	e.checkEvents(t, originals, true)
}

// TestDedupWindow: a repeat within the window is a duplicate; one received at the window's end or
// later is a new original, whose own window then counts; once their windows (and the grace) have
// passed, the keys are deleted.
func TestDedupWindow(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	hooks, res := standardFixtures()
	t0 := time.Now().Add(-3 * time.Hour).UnixMilli()
	reqs := []req{
		shortReq("w", t0), shortReq("w", t0+59_999), shortReq("w", t0+60_000), shortReq("w", t0+60_001),
		shortReq("w", t0+125_000), shortReq("other", t0+1),
	}
	e.produce(t, reqs...)
	p, _ := e.start(t, testConfig(), pipeline.Deps{Hooks: hooks, Resolver: res})
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 60*time.Second)
	originals := e.checkVerdicts(t, reqs, []int{-1, 0, -1, 2, -1, -1})
	e.checkEvents(t, originals, true)

	var before int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM sender_deliveries").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if before != 4 {
		t.Errorf("%d keys stored; want 4 (one per original)", before)
	}
	n, err := p.ForgetDeliveries(context.Background(), time.Now(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var after int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM sender_deliveries").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if n != 4 || after != 0 {
		t.Errorf("deleted %d keys, %d left; want 4 deleted (windows ended 3h ago, past the 1h grace)", n, after)
	}
}

// TestDedupBodyKeys: Stripe's event id in the body (the same id with another body is the same
// delivery) and a hash of the body and a header (the same body with another topic is another delivery;
// the same after the 10-minute window is a new one).
func TestDedupBodyKeys(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	hooks, res := standardFixtures()
	stripe := func(body string) req { return newReq("wh_stripe", wire.OutcomeAccepted, body) }
	hashed := func(topic string, at int64) req {
		r := newReq("wh_hash", wire.OutcomeAccepted, `{"user_id":"u3","amount":5}`)
		r.headers = []string{"X-Topic", topic}
		r.receivedMs = at
		return r
	}
	now := time.Now().UnixMilli()
	reqs := []req{
		stripe(`{"id":"evt_1","user_id":"u1"}`),
		stripe(`{"user_id":"u1","id":"evt_1","request":{"idempotency_key":null}}`),
		stripe(`{"id":"evt_2","user_id":"u1"}`),
		stripe(`{"id":17,"user_id":"u1"}`),
		stripe(`{"id":17,"user_id":"u2"}`),
		stripe(`{"user_id":"u1"}`), // no id: not de-duplicated
		stripe(`{"user_id":"u1"}`),
		hashed("a", now),
		hashed("a", now+1000),
		hashed("b", now+2000),
		hashed("a", now+10*60_000),
	}
	e.produce(t, reqs...)
	e.run(t, testConfig(), hooks, res, nil)
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 60*time.Second)
	originals := e.checkVerdicts(t, reqs, []int{-1, 0, -1, -1, 3, -1, -1, -1, 7, -1, -1})
	e.checkEvents(t, originals, true)
	if d := e.activity(t, "")[reqs[5].id.String()].detail; !strings.HasPrefix(d, "not de-duplicated: field id is absent") {
		t.Errorf("detail of a request without its key: %q", d)
	}
}

// TestSenderHeadersEndToEnd: the kept sender headers are in every row that has them (an auth failure's
// too), a mapping of headers["Name"] takes a kept header's value, a mapping of another headers.… path
// reads the payload, and the identifier can come from a header.
func TestSenderHeadersEndToEnd(t *testing.T) {
	e := newEnv(t)
	hooks, res := standardFixtures()
	ok := newReq("wh_hdr", wire.OutcomeAccepted, `{"headers":{"X-Count":"7"}}`)
	ok.headers = []string{"X-User-Id", "12345", "X-Event", "signup \"beta\""}
	missing := newReq("wh_hdr", wire.OutcomeAccepted, `{"user_id":"12345"}`)
	missing.headers = []string{"X-Event", "signup"}
	rejected := newReq("wh_hdr", wire.OutcomeAuthRejected, ``)
	rejected.headers = []string{"X-Event", "signup"}
	e.produce(t, ok, missing, rejected)
	e.run(t, testConfig(), hooks, res, nil)
	e.waitCount(t, "SELECT count() FROM activity_log", 3, 60*time.Second)
	e.waitCount(t, "SELECT count() FROM events", 1, 30*time.Second)

	rows := e.activity(t, "")
	if r := rows[ok.id.String()]; r.status != "success" || r.headers != `{"X-User-Id":"12345","X-Event":"signup \"beta\""}` {
		t.Errorf("identified by header: %s %s (%s); want success with both headers", r.status, r.headers, r.detail)
	}
	if r := rows[missing.id.String()]; r.reason != wire.ReasonIdentifierMissing || r.detail != "header X-User-Id is absent" {
		t.Errorf("without the identifier header: %s %q; want identifier_missing, the header absent", r.reason, r.detail)
	}
	if r := rows[rejected.id.String()]; r.reason != string(wire.OutcomeAuthRejected) || r.headers != `{"X-Event":"signup"}` {
		t.Errorf("auth failure: %s with headers %s; want its header kept", r.reason, r.headers)
	}
	var attrs string
	if err := e.conn.QueryRow(context.Background(), "SELECT attributes FROM events WHERE event_id = toUUID(?)", ok.id.String()).Scan(&attrs); err != nil {
		t.Fatal(err)
	}
	if attrs != `{"event":"signup \"beta\"","count":7,"__webhook":"wh_hdr"}` {
		t.Errorf("attributes %s; want event from the header, count from the payload", attrs)
	}
	evs := e.allEvents(t)
	if len(evs) != 1 {
		t.Fatalf("%d events on the topic; want 1", len(evs))
	}
	ev, err := wire.DecodeEvent(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	if ev.UserID != "12345" || ev.Attributes["event"] != `signup "beta"` {
		t.Errorf("event %+v; want user 12345 with the header's event", ev)
	}
}

// pgProxy stands between the pipeline and PostgreSQL so that a test can cut the connection (an outage
// as the pipeline sees it) without stopping the shared server.
type pgProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close(); c.Close() }()
			go func() { _, _ = io.Copy(c, s); s.Close(); c.Close() }()
		}
	}()
	return p
}

// setDown cuts every connection and refuses new ones (true), or lets them through again (false).
func (p *pgProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// TestDedupPostgresDownIsRetried: while PostgreSQL cannot be reached, requests with a delivery key
// wait (nothing is written, nothing is marked a duplicate or an original); once it is back, each is
// decided right.
func TestDedupPostgresDownIsRetried(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	hooks, res := standardFixtures()
	u, err := url.Parse(e.pgcfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPGProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	cfg := e.pgcfg
	cfg.DSN = u.String()
	pool, err := pgdb.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	reg := prometheus.NewRegistry()
	pcfg := testConfig()
	pcfg.RetryMaxBackoff = 200 * time.Millisecond
	e.runDeps(t, pcfg, pipeline.Deps{Hooks: hooks, Resolver: res, Registry: reg, Deliveries: delivery.NewStore(pool)})

	// A first delivery while PostgreSQL answers, so that the pool has connections to lose.
	reqs := []req{shopReq("pg-1", "u1")}
	e.produce(t, reqs...)
	e.waitCount(t, "SELECT count() FROM activity_log", 1, 60*time.Second)

	proxy.setDown(true)
	more := []req{shopReq("pg-1", "u1"), shopReq("pg-2", "u2"), shopReq("pg-2", "u2")}
	e.produce(t, more...)
	reqs = append(reqs, more...)
	deadline := time.Now().Add(30 * time.Second)
	for sumMetric(t, reg, "inlet_pipeline_retries_total", "dependency", "postgres") < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the claims were not retried within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.count(t, "SELECT count() FROM activity_log"); n != 1 {
		t.Fatalf("%d activity rows while PostgreSQL is down; want 1 (the one before)", n)
	}

	proxy.setDown(false)
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 60*time.Second)
	originals := e.checkVerdicts(t, reqs, []int{-1, 0, -1, 2})
	e.checkEvents(t, originals, true)
}
