package admin

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/inlet-dev/inlet/internal/testenv"
)

// fakeClock drives a limiter's time; safe to read from handlers while the test advances it.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(l *authLimiter) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	l.now = func() time.Time { return time.Unix(0, c.ns.Load()) }
	return c
}

func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// testLimiter is a limiter with cfg's settings on a fresh database.
func testLimiter(t *testing.T, cfg Config) *authLimiter {
	t.Helper()
	_, pool := testenv.Postgres(t)
	return newAuthLimiter(pool, cfg)
}

func mustWait(t *testing.T, l *authLimiter, addr netip.Addr) time.Duration {
	t.Helper()
	d, err := l.wait(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustFail(t *testing.T, l *authLimiter, addr netip.Addr) {
	t.Helper()
	if err := l.fail(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
}

func mustTracked(t *testing.T, l *authLimiter) int {
	t.Helper()
	n, err := l.tracked(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAuthLimiterBucket(t *testing.T) {
	l := testLimiter(t, Config{AuthFailuresPerMinute: 6, AuthFailureBurst: 3, AuthLimiterMaxIPs: 10})
	clock := newFakeClock(l)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := range 3 {
		if w := mustWait(t, l, a); w != 0 {
			t.Fatalf("failure %d: wait %s; want 0 within the burst", i+1, w)
		}
		mustFail(t, l, a)
	}
	if w := mustWait(t, l, a); w != 10*time.Second {
		t.Fatalf("after the burst: wait %s; want 10s (one token at 6/min)", w)
	}
	if w := mustWait(t, l, b); w != 0 {
		t.Fatalf("another address waits %s; want 0", w)
	}
	clock.advance(10 * time.Second)
	if w := mustWait(t, l, a); w != 0 {
		t.Fatalf("after 10s: wait %s; want 0", w)
	}
	// Concurrent failures that all passed the check leave a debt to wait off: the long-run rate holds.
	mustFail(t, l, a)
	mustFail(t, l, a)
	mustFail(t, l, a)
	if w := mustWait(t, l, a); w != 30*time.Second {
		t.Fatalf("after two failures beyond the bucket: wait %s; want 30s", w)
	}
}

// TestAuthLimiterShared: two processes' limiters on one database count the same failures.
func TestAuthLimiterShared(t *testing.T) {
	cfg := Config{AuthFailuresPerMinute: 6, AuthFailureBurst: 4, AuthLimiterMaxIPs: 10}
	l1 := testLimiter(t, cfg)
	l2 := newAuthLimiter(l1.db, cfg)
	clock := newFakeClock(l1)
	l2.now = l1.now
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 4 {
		l := []*authLimiter{l1, l2}[i%2]
		if w := mustWait(t, l, a); w != 0 {
			t.Fatalf("failure %d: wait %s; want 0 within the burst", i+1, w)
		}
		mustFail(t, l, a)
	}
	if w1, w2 := mustWait(t, l1, a), mustWait(t, l2, a); w1 != 10*time.Second || w2 != 10*time.Second {
		t.Fatalf("after the burst spread over two limiters: wait %s and %s; want 10s on both", w1, w2)
	}
	clock.advance(10 * time.Second)
	if w := mustWait(t, l2, a); w != 0 {
		t.Fatalf("after 10s: wait %s; want 0", w)
	}
}

func TestAuthLimiterMemoryBound(t *testing.T) {
	l := testLimiter(t, Config{AuthFailuresPerMinute: 60, AuthFailureBurst: 5, AuthLimiterMaxIPs: 100})
	l.trimEvery = 0
	clock := newFakeClock(l)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range 300 {
		clock.advance(time.Millisecond) // one failure per millisecond: nothing refills
		for range 5 {
			mustFail(t, l, addr(i))
		}
	}
	if n := mustTracked(t, l); n > 100 {
		t.Fatalf("%d addresses tracked; want at most 100", n)
	}
	// The most recent ones are kept (limited), the oldest were forgotten.
	if mustWait(t, l, addr(299)) == 0 || mustWait(t, l, addr(0)) != 0 {
		t.Fatalf("want the latest address limited and the first forgotten")
	}
	// Once their buckets have refilled (5 tokens at 1/s), idle addresses are forgotten by the next
	// failures, a batch at a time.
	clock.advance(5 * time.Second)
	mustFail(t, l, addr(5000))
	mustFail(t, l, addr(5001))
	if n := mustTracked(t, l); n != 2 {
		t.Fatalf("%d addresses tracked after they went idle; want 2", n)
	}
}

func TestAuthLimiterOff(t *testing.T) {
	l := testLimiter(t, Config{AuthFailuresPerMinute: 0, AuthFailureBurst: 1, AuthLimiterMaxIPs: 1})
	a := netip.MustParseAddr("192.0.2.1")
	for range 100 {
		mustFail(t, l, a)
	}
	if w, n := mustWait(t, l, a), mustTracked(t, l); w != 0 || n != 0 {
		t.Fatalf("limit off: wait %s, %d tracked; want 0, 0", w, n)
	}
}

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		remote, xff string
		trust       bool
		want        string
	}{
		{"192.0.2.7:5555", "", false, "192.0.2.7"},
		{"192.0.2.7:5555", "203.0.113.9", false, "192.0.2.7"}, // not behind a proxy: the header is the client's own words
		{"192.0.2.7:5555", "203.0.113.9", true, "203.0.113.9"},
		{"192.0.2.7:5555", "1.1.1.1, 203.0.113.9", true, "203.0.113.9"}, // the proxy appended the last one
		{"192.0.2.7:5555", "garbage", true, "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:5555", "", false, "2001:db8:1:2::"}, // IPv6: the /64
		{"[::ffff:192.0.2.7]:5555", "", false, "192.0.2.7"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := clientAddr(r, tc.trust); got.String() != tc.want {
			t.Errorf("clientAddr(%s, XFF %q, trust %v) = %s; want %s", tc.remote, tc.xff, tc.trust, got, tc.want)
		}
	}
}

// TestAPIAuthFailureLimit: refused Bearer keys from one address are answered 401 up to the burst, then
// 429 with Retry-After — even for a good key, which is not checked — until a token comes back; requests
// that authenticate cost nothing, and other addresses and console sessions are not affected.
func TestAPIAuthFailureLimit(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.AuthFailuresPerMinute, c.AuthFailureBurst, c.TrustForwardedFor = 2, 3, true })
	clock := newFakeClock(e.srv.api.limiter)
	session := newConsoleClient(t, e.url)
	session.signIn(e.keyA)
	from := func(ip string) (string, string) { return "X-Forwarded-For", ip }

	for range 20 {
		h, v := from("198.51.100.1")
		if code, out := e.doHeader("GET", "/api/v1/project", e.keyA, nil, h, v); code != 200 {
			t.Fatalf("good key = %d %s", code, out)
		}
	}
	for i := range 3 {
		h, v := from("198.51.100.1")
		if code, out := e.doHeader("GET", "/api/v1/project", e.keyA+"x", nil, h, v); code != 401 {
			t.Fatalf("refused key %d = %d %s; want 401 (successes must not count)", i+1, code, out)
		}
	}
	req, _ := http.NewRequest("GET", e.url+"/api/v1/project", nil)
	req.Header.Set("Authorization", "Bearer "+e.keyA)
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var p Problem
	decodeInto(t, readAll(t, resp), &p)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "30" ||
		resp.Header.Get("Content-Type") != "application/problem+json" || p.Status != 429 || !strings.Contains(p.Detail, "retry in 30 s") {
		t.Fatalf("past the burst = %d, Retry-After %q, %s %+v; want 429 problem+json, Retry-After 30 (one token at 2/min)",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), p)
	}
	// Another address, and the console session (which presents no key), carry on.
	if h, v := from("198.51.100.2"); true {
		if code, _ := e.doHeader("GET", "/api/v1/project", e.keyA, nil, h, v); code != 200 {
			t.Fatalf("another address = %d; want 200", code)
		}
	}
	if resp, _ := session.do("GET", "/api/v1/project", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("console session while its address is limited = %d; want 200", resp.StatusCode)
	}
	clock.advance(30 * time.Second)
	h, v := from("198.51.100.1")
	if code, out := e.doHeader("GET", "/api/v1/project", e.keyA, nil, h, v); code != 200 {
		t.Fatalf("after Retry-After = %d %s; want 200", code, out)
	}
	if code, _ := e.doHeader("GET", "/api/v1/project", "nope", nil, h, v); code != 401 {
		t.Fatalf("one refused key after the refill = %d; want 401", code)
	}
	if code, _ := e.doHeader("GET", "/api/v1/project", e.keyA, nil, h, v); code != 429 {
		t.Fatalf("after using the refilled token = %d; want 429", code)
	}
}

// TestSignInFailureLimit: the sign-in form shares the address's limit with the API; past it, it answers
// 429 with Retry-After and a message saying how long to wait, even for the right key; successful sign-ins
// cost nothing.
func TestSignInFailureLimit(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.AuthFailuresPerMinute, c.AuthFailureBurst = 1, 2 })
	clock := newFakeClock(e.srv.api.limiter)
	c := newConsoleClient(t, e.url)
	post := func(key string) (*http.Response, string) {
		t.Helper()
		_, page := c.do("GET", "/login", nil, nil)
		m := loginCSRFRe.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no sign-in form:\n%s", page)
		}
		form := url.Values{"api_key": {key}, "csrf": {m[1]}, "next": {"/events"}}
		return c.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	}
	for i := range 5 {
		if resp, _ := post(e.keyA); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %d = %d; want 303", i+1, resp.StatusCode)
		}
		c = newConsoleClient(t, e.url) // signed out again
	}
	if resp, _ := post("inl_wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key = %d; want 401", resp.StatusCode)
	}
	if code, _ := e.do("GET", "/api/v1/project", "inl_wrong", nil); code != 401 {
		t.Fatalf("wrong API key = %d; want 401", code)
	}
	resp, body := post(e.keyA)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" ||
		!strings.Contains(body, "Too many failed sign-in attempts") || !strings.Contains(body, "Wait 60 seconds") || !strings.Contains(body, `role="alert"`) {
		t.Fatalf("past the burst = %d Retry-After %q; want 429, 60 and the message; page:\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if !loginCSRFRe.MatchString(body) {
		t.Fatalf("the 429 page has no usable form")
	}
	clock.advance(59 * time.Second)
	if resp, body := post(e.keyA); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Wait 1 second,") {
		t.Fatalf("1 s before = %d; want 429 with 1 second; page:\n%s", resp.StatusCode, body)
	}
	clock.advance(time.Second)
	if resp, _ := post(e.keyA); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the wait = %d; want 303", resp.StatusCode)
	}
	m := e.srv.api.metrics
	if th, f := counterValue(t, m.authThrottled.WithLabelValues("sign_in")), counterValue(t, m.authFailures.WithLabelValues("sign_in")); th != 2 || f != 1 {
		t.Errorf("metrics: %v throttled and %v refused sign-ins; want 2 and 1", th, f)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
