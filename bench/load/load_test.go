package load

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/bench/null"
)

// startNull serves a null fasthttp server on a loopback port for the duration of the test.
func startNull(t *testing.T) (*null.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := null.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("null server: %v", err)
		}
	})
	return s, ln.Addr().String()
}

func fixed(body string) Source {
	r := &Request{Path: "/hooks/x", Authorization: "Bearer whsec_x", ContentType: "application/json", Body: []byte(body)}
	return func(int64) *Request { return r }
}

// The open loop sends Rate × Duration requests, counted by the server, not by the generator. The
// tolerance is wide because the machine may be loaded; what it catches is a scheduler that drifts
// (sends as fast as it can, or only a fraction).
func TestOpenLoopHoldsRate(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		dur   time.Duration
		conns int
	}{
		{rate: 200, dur: 2 * time.Second, conns: 4},
		{rate: 2000, dur: 2 * time.Second, conns: 16},
	} {
		srv, addr := startNull(t)
		res, err := Run(context.Background(), Config{Addr: addr, Mode: Open, Conns: tc.conns, Rate: tc.rate,
			Duration: tc.dur, Timeout: 5 * time.Second, Drain: 5 * time.Second}, fixed(`{"a":1}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := tc.rate * tc.dur.Seconds()
		got := float64(srv.Requests.Load())
		if math.Abs(got-want) > 0.1*want {
			t.Errorf("rate %g for %s: server counted %g requests; want %g ± 10%%", tc.rate, tc.dur, got, want)
		}
		if res.Accepted() != int64(got) {
			t.Errorf("rate %g: generator counted %d accepted; server %g", tc.rate, res.Accepted(), got)
		}
		if res.Sent+res.Unsent != int64(want) {
			t.Errorf("rate %g: sent %d + unsent %d; want %g scheduled", tc.rate, res.Sent, res.Unsent, want)
		}
	}
}

// MaxRequests bounds a closed loop exactly.
func TestClosedLoopBounded(t *testing.T) {
	srv, addr := startNull(t)
	res, err := Run(context.Background(), Config{Addr: addr, Mode: Closed, Conns: 8, Duration: 10 * time.Second,
		MaxRequests: 500, Timeout: 5 * time.Second, CollectIDs: true}, fixed(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests.Load(); got != 500 {
		t.Errorf("server counted %d requests; want 500", got)
	}
	if res.Sent != 500 || res.Status(202) != 500 || len(res.IDs) != 500 || res.IDErrors != 0 {
		t.Errorf("sent %d, 202s %d, ids %d, id errors %d; want 500, 500, 500, 0", res.Sent, res.Status(202), len(res.IDs), res.IDErrors)
	}
	if res.Latency.TotalCount() != 500 {
		t.Errorf("latency count %d; want 500", res.Latency.TotalCount())
	}
}

// A server that answers slower than the schedule: the open loop's latency includes the time requests
// waited for a free connection (measured from the scheduled time), which the closed loop cannot see.
func TestOpenLoopCountsQueueing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
					if _, err := c.Write([]byte("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	// One connection, 50 ms per answer, 40 requests/s scheduled over 1 s: each request waits for the
	// previous ones, so the last is answered ~1 s after its schedule... at least far above 50 ms.
	res, err := Run(context.Background(), Config{Addr: ln.Addr().String(), Mode: Open, Conns: 1, Rate: 40,
		Duration: time.Second, Timeout: 5 * time.Second, Drain: 10 * time.Second}, fixed(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p99 := time.Duration(res.Latency.ValueAtQuantile(99)) * time.Microsecond; p99 < 500*time.Millisecond {
		t.Errorf("p99 %s; want ≥ 500ms: queueing behind the slow server must count", p99)
	}
	if res.Status(202) != 40 {
		t.Errorf("202s %d; want 40", res.Status(202))
	}
}

// Percentiles read back from the histogram match known inputs within its precision.
func TestHistogramPercentiles(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 10000; v++ { // 1 µs .. 10 ms, uniform
		if err := h.RecordValue(v); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		q    float64
		want int64
	}{{50, 5000}, {99, 9900}, {99.9, 9990}, {100, 10000}} {
		got := h.ValueAtQuantile(tc.q)
		if math.Abs(float64(got-tc.want)) > 0.002*float64(tc.want) {
			t.Errorf("p%g = %d; want %d ± 0.2%%", tc.q, got, tc.want)
		}
	}
	// A heavy tail: 990 fast, 10 slow. p99 is still fast, p99.9 is the slow ones.
	h = NewHistogram()
	_ = h.RecordValues(1000, 990)
	_ = h.RecordValues(2_000_000, 10)
	if got := h.ValueAtQuantile(99); got > 1001 {
		t.Errorf("p99 = %d; want ~1000", got)
	}
	if got := h.ValueAtQuantile(99.9); got < 1_990_000 {
		t.Errorf("p99.9 = %d; want ~2000000", got)
	}
}

func TestRequestID(t *testing.T) {
	want := uuid.MustParse("01900000-0000-7000-8000-0000000000ab")
	got, ok := RequestID([]byte(`{"request_id":"01900000-0000-7000-8000-0000000000ab"}`))
	if !ok || got != want {
		t.Errorf("got %x %v; want %x", got, ok, want)
	}
	for _, bad := range []string{``, `{}`, `{"request_id":"nope"}`, `{"request_id":"0190`} {
		if _, ok := RequestID([]byte(bad)); ok {
			t.Errorf("RequestID(%q) ok; want not", bad)
		}
	}
}

func TestValidateRefusesRemote(t *testing.T) {
	c := Config{Addr: "10.0.0.1:80", Mode: Closed, Conns: 1, Duration: time.Second, Timeout: time.Second}
	if err := c.Validate(); err == nil {
		t.Error("non-loopback address accepted")
	}
}

// A request's extra headers (a signature scheme's) reach the server as given.
func TestHeadersSent(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Clone():
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	r := &Request{Path: "/hooks/x", ContentType: "application/json", Body: []byte(`{}`),
		Headers: []Header{{"X-Shopify-Hmac-Sha256", "c2lnbmF0dXJl"}, {"webhook-id", "msg_1"}}}
	_, err := Run(context.Background(), Config{Addr: strings.TrimPrefix(srv.URL, "http://"), Mode: Closed, Conns: 1,
		Duration: 5 * time.Second, MaxRequests: 1, Timeout: 5 * time.Second}, func(int64) *Request { return r }, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := <-got
	if h.Get("X-Shopify-Hmac-Sha256") != "c2lnbmF0dXJl" || h.Get("Webhook-Id") != "msg_1" || h.Get("Content-Type") != "application/json" {
		t.Errorf("server got headers %v", h)
	}
}
