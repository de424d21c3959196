package ingestor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/inlet-dev/inlet/internal/wire"
)

// rawRequest writes s on a fresh connection and reads one response (deadline 10 s).
func rawResponse(t *testing.T, c net.Conn) (*fasthttp.Response, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp := &fasthttp.Response{}
	err := resp.Read(bufio.NewReader(c))
	return resp, err
}

func dial(t *testing.T, e *edge) net.Conn {
	t.Helper()
	c, err := e.ln.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func requestHead(id, extra string) string {
	return "POST /hooks/" + id + " HTTP/1.1\r\nHost: edge\r\nAuthorization: " + secretOf(id) + "\r\n" + extra
}

// A Content-Length over the limit is answered 413 at once: the body is never sent, so an edge that
// waited for it would block until the test's deadline.
func TestBodyLimitAnsweredBeforeBody(t *testing.T) {
	prod := &fakeProducer{}
	e := startEdge(t, tableConfig(), tableHooks(), prod)
	c := dial(t, e)
	if _, err := io.WriteString(c, requestHead(idOk, "Content-Length: 100000000\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := rawResponse(t, c)
	if err != nil {
		t.Fatalf("no answer before the body was sent: %v", err)
	}
	if resp.StatusCode() != 413 || !strings.Contains(string(resp.Body()), "payload_too_large") {
		t.Fatalf("answer %d %s; want 413 payload_too_large", resp.StatusCode(), resp.Body())
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	recs := prod.got()
	if len(recs) != 1 {
		t.Fatalf("%d records; want 1", len(recs))
	}
	checkRecord(t, "requests", &wantRecord{wire.OutcomePayloadTooLarge, nil, 100000000}, idOk, "", 413, recs[0],
		time.Now().Add(-time.Minute), time.Now())
}

// chunkedOverLimit is a request head plus a chunked body past tableMaxBody (three 1000-byte chunks) and
// without its terminating chunk: an edge that answered from the end of the body would never answer.
func chunkedOverLimit(path, auth string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: edge\r\n", path)
	if auth != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", auth)
	}
	b.WriteString("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := strings.Repeat("x", 1000)
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	return b.String()
}

// sendRaw writes raw on a fresh connection and reads the one answer.
func sendRaw(t *testing.T, e *edge, raw string) *fasthttp.Response {
	t.Helper()
	c := dial(t, e)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := rawResponse(t, c)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return resp
}

// A chunked body over the limit is answered as a Content-Length one is (the rows of the status table
// with a body over the limit), including its activity-log record: fasthttp discards the request's head
// when such a body passes the limit, and the edge restores it from the copy it made before the body.
func TestChunkedBodyOverLimit(t *testing.T) {
	overLimit := tableMaxBody + 1 // all that is known of a chunked body refused at the limit
	for _, c := range []struct {
		name   string
		raw    string
		res    result
		record *wantRecord
	}{
		{"authorized", chunkedOverLimit("/hooks/"+idOk, secretOf(idOk)), resPayloadTooLarge,
			&wantRecord{wire.OutcomePayloadTooLarge, nil, overLimit}},
		{"one chunk announcing more than the limit, none of it sent",
			requestHead(idOk, "Transfer-Encoding: chunked\r\n\r\n5f5e100\r\n"), resPayloadTooLarge,
			&wantRecord{wire.OutcomePayloadTooLarge, nil, overLimit}},
		{"wrong auth", chunkedOverLimit("/hooks/"+idOk, "Bearer x"), resAuthRejected,
			&wantRecord{wire.OutcomeAuthRejected, nil, overLimit}},
		{"no auth", chunkedOverLimit("/hooks/"+idOk, ""), resAuthRejected,
			&wantRecord{wire.OutcomeAuthRejected, nil, overLimit}},
		{"disabled", chunkedOverLimit("/hooks/"+idDisabled, secretOf(idDisabled)), resWebhookDisabled,
			&wantRecord{wire.OutcomeWebhookDisabled, nil, overLimit}},
		{"unknown webhook", chunkedOverLimit("/hooks/"+idNope, secretOf(idOk)), resWebhookNotFound, nil},
		{"other path", chunkedOverLimit("/other", secretOf(idOk)), resPayloadTooLarge, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			prod := &fakeProducer{}
			e := startEdge(t, tableConfig(), tableHooks(), prod)
			before := time.Now()
			resp := sendRaw(t, e, c.raw)
			after := time.Now()
			want := results[c.res]
			if resp.StatusCode() != want.status || string(resp.Body()) != string(want.body) {
				t.Fatalf("answer %d %s; want %d %s", resp.StatusCode(), resp.Body(), want.status, want.body)
			}
			if !resp.ConnectionClose() {
				t.Errorf("answer without Connection: close; the rest of the body is not read")
			}
			if n := e.s.heads.len(); n != 0 {
				t.Errorf("%d chunked heads kept after the answer; want 0", n)
			}
			if a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody}); a.status != 202 {
				t.Fatalf("next request: %d %s; want 202", a.status, a.body)
			}
			if err := e.stop(); err != nil {
				t.Fatal(err)
			}
			recs := prod.got()
			if c.record != nil {
				if len(recs) != 2 {
					t.Fatalf("%d records; want the rejection and the accepted request", len(recs))
				}
				id := strings.TrimPrefix(strings.Fields(c.raw)[1], "/hooks/")
				checkRecord(t, "requests", c.record, id, "", want.status, recs[0], before, after)
			} else if len(recs) != 1 {
				t.Fatalf("%d records; want only the accepted request", len(recs))
			}
			if got := e.metric(t, "inlet_ingestor_requests_total", "outcome", want.label); got != 1 {
				t.Errorf("requests_total{outcome=%s} %v; want 1", want.label, got)
			}
		})
	}
}

// Chunked rejections share the webhook's rejected-request log budget with the other rejections.
func TestChunkedBodyOverLimitRateLimited(t *testing.T) {
	cfg := tableConfig()
	cfg.RejectedLogRate = 0.001
	cfg.RejectedLogBurst = 2
	prod := &fakeProducer{}
	e := startEdge(t, cfg, tableHooks(), prod)
	for i := 0; i < 4; i++ {
		if resp := sendRaw(t, e, chunkedOverLimit("/hooks/"+idOk, secretOf(idOk))); resp.StatusCode() != 413 {
			t.Fatalf("request %d: %d; want 413", i, resp.StatusCode())
		}
	}
	_ = e.stop()
	if n := len(prod.got()); n != 2 {
		t.Errorf("%d records; want 2 (the burst)", n)
	}
	if got := e.metric(t, "inlet_ingestor_rejected_records_dropped_total", "reason", "rate_limited"); got != 2 {
		t.Errorf("dropped counter %v; want 2", got)
	}
}

// Chunked bodies within the limit are accepted and stored de-chunked, on a kept-alive connection.
func TestChunkedBodyWithinLimit(t *testing.T) {
	prod := &fakeProducer{}
	e := startEdge(t, tableConfig(), tableHooks(), prod)
	c := dial(t, e)
	for _, body := range []string{`{"a":1}`, strings.Repeat(" ", tableMaxBody-2) + "{}"} {
		half := len(body) / 2
		fmt.Fprintf(c, "%s\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", requestHead(idOk, "Transfer-Encoding: chunked\r\n"),
			half, body[:half], len(body)-half, body[half:])
		if resp, err := rawResponse(t, c); err != nil || resp.StatusCode() != 202 {
			t.Fatalf("chunked within limit (%d bytes): %v %v; want 202", len(body), resp, err)
		}
	}
	if n := e.s.heads.len(); n != 0 {
		t.Errorf("%d chunked heads kept after the answers; want 0", n)
	}
	_ = e.stop()
	recs := prod.got()
	if len(recs) != 2 || string(recs[0].Value) != `{"a":1}` || len(recs[1].Value) != tableMaxBody {
		t.Fatalf("records %d; want the two bodies de-chunked", len(recs))
	}
}

// A chunked request whose client goes away between two chunks reaches neither handler; its head copy is
// swept once ReadTimeout has passed, and never taken for another request's.
func TestChunkedHeadsSwept(t *testing.T) {
	hs := newChunkedHeads(2, time.Second)
	var a, b, c fasthttp.RequestHeader
	for _, h := range []*fasthttp.RequestHeader{&a, &b, &c} {
		h.SetMethod("POST")
		h.SetRequestURI("/hooks/" + idOk)
		h.Set("Authorization", secretOf(idOk))
	}
	now := time.Now().UnixNano()
	if !hs.put(&a, now) || !hs.put(&b, now) {
		t.Fatal("put refused below the bound")
	}
	if hs.put(&c, now+int64(time.Second/2)) {
		t.Fatal("put accepted a third live head; want refused at the bound of 2")
	}
	if !hs.put(&a, now+int64(time.Second/2)) { // the same header again replaces its copy
		t.Fatal("put refused to replace a header's own copy")
	}
	if !hs.put(&c, now+int64(1200*time.Millisecond)) { // b is older than ReadTimeout by now, a is not
		t.Fatal("put refused after b went stale")
	}
	if e := hs.take(&b); e != nil {
		t.Errorf("stale head of b still there")
	}
	if e := hs.take(&a); e == nil || string(e.uri) != "/hooks/"+idOk || string(e.header("Authorization")) != secretOf(idOk) {
		t.Errorf("head of a: %+v; want its copy", e)
	} else {
		auth := e.header("Authorization")
		hs.release(e)
		if string(auth) == secretOf(idOk) {
			t.Errorf("released copy still holds the Authorization value")
		}
	}
	if hs.len() != 1 {
		t.Errorf("%d heads; want 1 (c)", hs.len())
	}
}

func TestHeaderLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxHeaderBytes = 1024
	e := startEdge(t, cfg, tableHooks(), &fakeProducer{})
	c := dial(t, e)
	fmt.Fprintf(c, "%sX-Pad: %s\r\nContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""), strings.Repeat("p", 2000))
	resp, err := rawResponse(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 431 || !strings.Contains(string(resp.Body()), "header_too_large") {
		t.Fatalf("answer %d %s; want 431 header_too_large", resp.StatusCode(), resp.Body())
	}
	// Within the limit the same request passes.
	c2 := dial(t, e)
	fmt.Fprintf(c2, "%sX-Pad: %s\r\nContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""), strings.Repeat("p", 500))
	if resp, err := rawResponse(t, c2); err != nil || resp.StatusCode() != 202 {
		t.Fatalf("within limit: %v %v; want 202", resp, err)
	}
}

// closedWithin reports whether the edge closes c within d, reading (and discarding) whatever it sends.
func closedWithin(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("connection still open after %s", d)
		}
		return nil // EOF or reset: closed by the edge
	}
}

// Slowloris: a client that keeps dribbling header bytes is cut off by ReadTimeout, which bounds the whole
// request, not each read.
func TestSlowlorisClosed(t *testing.T) {
	cfg := testConfig()
	cfg.ReadTimeout = 300 * time.Millisecond
	e := startEdge(t, cfg, tableHooks(), &fakeProducer{})
	c := dial(t, e)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		head := requestHead(idOk, "X-Slow: ")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := c.Write([]byte{head[i%len(head)]}); err != nil {
				return
			}
		}
	}()
	if err := closedWithin(c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestIdleTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	e := startEdge(t, cfg, tableHooks(), &fakeProducer{})
	c := dial(t, e)
	fmt.Fprintf(c, "%sContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""))
	if resp, err := rawResponse(t, c); err != nil || resp.StatusCode() != 202 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	if err := closedWithin(c, 5*time.Second); err != nil {
		t.Fatalf("idle keep-alive connection: %v", err)
	}
}

// Over MaxConns a connection gets the edge's own 503 (JSON body, Retry-After, Connection: close), not
// fasthttp's plain-text one, and is counted.
func TestMaxConns(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 2
	prod := &fakeProducer{hold: true, produced: make(chan struct{}, 10)}
	e := startEdge(t, cfg, tableHooks(), prod)
	for i := 0; i < 2; i++ {
		c := dial(t, e)
		fmt.Fprintf(c, "%sContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""))
		<-prod.produced // this connection is busy waiting for its ack
	}
	c := dial(t, e)
	fmt.Fprintf(c, "%sContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""))
	resp, err := rawResponse(t, c)
	if err != nil {
		t.Fatal(err)
	}
	checkRefusal(t, resp, results[resOverloaded].body)
	if got := e.metric(t, "inlet_ingestor_connections_refused_total", "reason", "max_conns"); got != 1 {
		t.Errorf("connections_refused_total{reason=max_conns} %v; want 1", got)
	}
	if got := e.metric(t, "inlet_ingestor_open_connections"); got != 2 {
		t.Errorf("open_connections %v; want 2", got)
	}
	prod.release()
}

// checkRefusal checks the answer to a connection refused over a connection limit.
func checkRefusal(t *testing.T, resp *fasthttp.Response, wantBody []byte) {
	t.Helper()
	if resp.StatusCode() != 503 || string(resp.Body()) != string(wantBody) {
		t.Errorf("answer %d %s; want 503 %s", resp.StatusCode(), resp.Body(), wantBody)
	}
	if got := string(resp.Header.ContentType()); got != "application/json" {
		t.Errorf("Content-Type %q; want application/json", got)
	}
	if got := string(resp.Header.Peek("Retry-After")); got != "1" {
		t.Errorf("Retry-After %q; want 1", got)
	}
	if !resp.ConnectionClose() {
		t.Error("answer without Connection: close")
	}
}

func TestMaxConnsPerIP(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnsPerIP = 1
	prod := &fakeProducer{hold: true, produced: make(chan struct{}, 10)}
	e, addr := startTCPEdge(t, cfg, tableHooks(), prod)
	c1, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	fmt.Fprintf(c1, "%sContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""))
	<-prod.produced
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "%sContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""))
	resp, err := rawResponse(t, c2)
	if err != nil {
		t.Fatal(err)
	}
	checkRefusal(t, resp, connsPerIPBody)
	if got := e.metric(t, "inlet_ingestor_connections_refused_total", "reason", "max_conns_per_ip"); got != 1 {
		t.Errorf("connections_refused_total{reason=max_conns_per_ip} %v; want 1", got)
	}
	prod.release()
	if resp, err := rawResponse(t, c1); err != nil || resp.StatusCode() != 202 {
		t.Fatalf("first connection: %v %v; want 202", resp, err)
	}
}

func TestRateLimit(t *testing.T) {
	cfg := testConfig()
	cfg.RatePerWebhook = 0.5
	cfg.RateBurst = 3
	prod := &fakeProducer{}
	e := startEdge(t, cfg, tableHooks(), prod)
	for i := 0; i < 3; i++ {
		if a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody}); a.status != 202 {
			t.Fatalf("request %d within burst: %d", i, a.status)
		}
	}
	a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody})
	if a.status != 429 || a.retryAfter != "2" || !strings.Contains(a.body, "rate_limited") {
		t.Fatalf("over the rate: %+v; want 429, Retry-After 2, rate_limited", a)
	}
	if a := e.do(t, req{path: "/hooks/" + idOther, auth: secretOf(idOther), body: goodBody}); a.status != 202 {
		t.Fatalf("another webhook: %d; want 202 (limits are per webhook)", a.status)
	}
	// Unauthenticated requests do not spend the webhook's tokens.
	if a := e.do(t, req{path: "/hooks/" + idOk, auth: "Bearer nope", body: goodBody}); a.status != 401 {
		t.Fatalf("bad auth over the rate: %d; want 401", a.status)
	}
	_ = e.stop()
	if n := len(prod.got()); n != 5 { // 4 accepted + 1 auth_rejected
		t.Errorf("%d records; want 5 (no record for the 429)", n)
	}
	if got := e.metric(t, "inlet_ingestor_requests_total", "outcome", "rate_limited"); got != 1 {
		t.Errorf("rate_limited counter %v; want 1", got)
	}
}

func TestInFlightLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxInFlight = 1
	prod := &fakeProducer{hold: true, produced: make(chan struct{}, 10)}
	e := startEdge(t, cfg, tableHooks(), prod)
	first := make(chan answer, 1)
	go func() { first <- e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody}) }()
	<-prod.produced
	if got := e.metric(t, "inlet_ingestor_in_flight_requests"); got != 1 {
		t.Errorf("in-flight gauge %v; want 1", got)
	}
	a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody})
	if a.status != 503 || a.retryAfter != "1" {
		t.Fatalf("over max_in_flight: %+v; want 503 with Retry-After 1", a)
	}
	prod.release()
	if a := <-first; a.status != 202 {
		t.Fatalf("first request: %d; want 202", a.status)
	}
}

func TestAckTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.AckTimeout = 100 * time.Millisecond
	cfg.RetryAfter = 3 * time.Second
	prod := &fakeProducer{hold: true}
	e := startEdge(t, cfg, tableHooks(), prod)
	a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody})
	if a.status != 503 || a.retryAfter != "3" {
		t.Fatalf("no ack: %+v; want 503 with Retry-After 3", a)
	}
	prod.release() // the late ack must release the abandoned record without harm
	for i := 0; i < 20; i++ {
		if a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody}); a.status != 202 {
			t.Fatalf("after the late ack, request %d: %d", i, a.status)
		}
	}
	if got := e.metric(t, "inlet_ingestor_requests_total", "outcome", "kafka_timeout"); got != 1 {
		t.Errorf("kafka_timeout counter %v; want 1", got)
	}
}

func TestProducerFailures(t *testing.T) {
	for _, c := range []struct {
		name  string
		prod  *fakeProducer
		label string
	}{
		{"buffer full", &fakeProducer{full: true}, "kafka_buffer_full"},
		{"produce error", &fakeProducer{err: errors.New("NOT_ENOUGH_REPLICAS")}, "kafka_error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startEdge(t, testConfig(), tableHooks(), c.prod)
			a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody})
			if a.status != 503 || a.retryAfter == "" || !strings.Contains(a.body, `"unavailable"`) {
				t.Fatalf("%+v; want 503 unavailable with Retry-After", a)
			}
			if got := e.metric(t, "inlet_ingestor_requests_total", "outcome", c.label); got != 1 {
				t.Errorf("%s counter %v; want 1", c.label, got)
			}
		})
	}
}

func TestRejectedLogRateLimited(t *testing.T) {
	cfg := testConfig()
	cfg.RejectedLogRate = 0.001
	cfg.RejectedLogBurst = 2
	prod := &fakeProducer{}
	e := startEdge(t, cfg, tableHooks(), prod)
	for i := 0; i < 5; i++ {
		if a := e.do(t, req{path: "/hooks/" + idOk, auth: "Bearer nope", body: goodBody}); a.status != 401 {
			t.Fatalf("request %d: %d; want 401", i, a.status)
		}
	}
	// Accepted traffic is not limited by the rejected-request budget.
	if a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody}); a.status != 202 {
		t.Fatalf("good request after a flood of bad ones: %d", a.status)
	}
	_ = e.stop()
	if n := len(prod.got()); n != 3 {
		t.Errorf("%d records; want 3 (2 rejected within the burst + 1 accepted)", n)
	}
	if got := e.metric(t, "inlet_ingestor_rejected_records_dropped_total", "reason", "rate_limited"); got != 3 {
		t.Errorf("dropped counter %v; want 3", got)
	}
	if got := e.metric(t, "inlet_ingestor_rejected_records_written_total"); got != 2 {
		t.Errorf("written counter %v; want 2", got)
	}
}

func TestRejectedBacklogBounded(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRejectedPending = 1
	prod := &fakeProducer{hold: true}
	e := startEdge(t, cfg, tableHooks(), prod)
	for i := 0; i < 3; i++ {
		// The answer does not wait for the rejected record's ack (the producer holds it).
		if a := e.do(t, req{path: "/hooks/" + idOk, body: goodBody}); a.status != 401 {
			t.Fatalf("request %d: %d; want 401", i, a.status)
		}
	}
	if got := e.metric(t, "inlet_ingestor_rejected_records_dropped_total", "reason", "backlog"); got != 2 {
		t.Errorf("backlog drops %v; want 2", got)
	}
	if got := e.metric(t, "inlet_ingestor_rejected_records_pending"); got != 1 {
		t.Errorf("pending gauge %v; want 1", got)
	}
	prod.release()
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	prod := &fakeProducer{hold: true, produced: make(chan struct{}, 10)}
	e := startEdge(t, testConfig(), tableHooks(), prod)
	got := make(chan answer, 1)
	go func() { got <- e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody}) }()
	<-prod.produced
	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()
	deadline := time.Now().Add(5 * time.Second)
	for e.s.Ready(context.Background()) == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e.s.Ready(context.Background()) == nil {
		t.Fatal("still ready after shutdown began")
	}
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) while a request was waiting for its ack", err)
	case <-time.After(100 * time.Millisecond):
	}
	prod.release()
	if a := <-got; a.status != 202 {
		t.Fatalf("in-flight request: %d; want 202", a.status)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	prod.mu.Lock()
	defer prod.mu.Unlock()
	if prod.flushed != 1 {
		t.Errorf("producer flushed %d times; want 1", prod.flushed)
	}
}
