package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
)

// backendHeader names, in the round-robin proxy's answers, the admin process that served the request.
const backendHeader = "X-Test-Backend"

// roundRobin is a reverse proxy in front of several admin processes that sends each request to the next
// one in turn, as a load balancer without affinity would, appending the client's address to
// X-Forwarded-For.
func roundRobin(t *testing.T, backends ...string) string {
	t.Helper()
	targets := make([]*url.URL, len(backends))
	for i, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		targets[i] = u
	}
	var n atomic.Uint64
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			i := int((n.Add(1) - 1) % uint64(len(targets)))
			r.SetURL(targets[i])
			r.SetXForwarded()
			r.Out.Header.Set(backendHeader, strconv.Itoa(i)) // read back in ModifyResponse
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set(backendHeader, resp.Request.Header.Get(backendHeader))
			return nil
		},
	}
	hs := httptest.NewServer(proxy)
	t.Cleanup(hs.Close)
	return hs.URL
}

// cookieClient is an HTTP client with a cookie jar that does not follow redirects.
type cookieClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newCookieClient(t *testing.T, base string) *cookieClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &cookieClient{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// do sends a request to the cookieClient's base URL; header holds name, value pairs.
func (b *cookieClient) do(method, path, body string, header ...string) (*http.Response, string) {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

var (
	formCSRFRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	metaCSRFRe = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)
)

const formType = "application/x-www-form-urlencoded"

// TestTwoAdmins: two admin processes behind one round-robin address, as the chart runs several replicas
// without affinity. A console signed in through the proxy keeps its session whichever process serves
// it — pages, API reads and CSRF-protected writes; signing out on one process ends the session on the
// other; failed sign-ins spread over both processes are throttled after the burst, as one process would.
func TestTwoAdmins(t *testing.T) {
	const burst = 4
	s := start(t, [2]string{"A", "B"}, false, func(cfg *config.Config) {
		cfg.Admin.AuthFailureBurst = burst
		cfg.Admin.AuthFailuresPerMinute = 1 // nothing refills during the test
		cfg.Admin.TrustForwardedFor = true  // behind the proxy
	}, compose.Deps{})
	admins := []string{s.consoleURL, s.anotherAdmin()}
	b := newCookieClient(t, roundRobin(t, admins...))
	served := map[string]int{} // requests per admin process
	check := func(resp *http.Response, what string, status int, body string) {
		t.Helper()
		served[resp.Header.Get(backendHeader)]++
		if resp.StatusCode != status {
			t.Fatalf("%s (admin %s) = %d; want %d\n%s", what, resp.Header.Get(backendHeader), resp.StatusCode, status, body)
		}
	}

	// Sign in: the form from one process, posted to the other.
	resp, page := b.do("GET", "/login", "")
	check(resp, "sign-in page", 200, page)
	m := formCSRFRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in form:\n%s", page)
	}
	loginCSRF := m[1]
	form := url.Values{"api_key": {s.keyA}, "csrf": {loginCSRF}, "next": {"/events"}}.Encode()
	resp, page = b.do("POST", "/login", form, "Content-Type", formType)
	check(resp, "sign-in", http.StatusSeeOther, page)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "inlet_session" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("sign-in set no session cookie")
	}

	// Pages, reads and writes alternate between the processes and keep the session.
	var csrf string
	for i := range 4 {
		resp, page = b.do("GET", "/events", "")
		check(resp, "events page", 200, page)
		if m := metaCSRFRe.FindStringSubmatch(page); m == nil || (csrf != "" && m[1] != csrf) {
			t.Fatalf("events page %d: CSRF token %q; want the session's one, %q", i, m, csrf)
		} else {
			csrf = m[1]
		}
		resp, page = b.do("GET", "/api/v1/project", "")
		check(resp, "API read", 200, page)
		resp, page = b.do("POST", "/api/v1/events", `{"name":"Ev`+strconv.Itoa(i)+`"}`,
			"Content-Type", "application/json", "X-CSRF-Token", csrf)
		check(resp, "API write", 201, page)
	}
	resp, page = b.do("POST", "/api/v1/events", `{"name":"NoToken"}`, "Content-Type", "application/json")
	check(resp, "API write without the CSRF token", 403, page)
	if served["0"] < 6 || served["1"] < 6 {
		t.Fatalf("requests per admin process: %v; want both to serve the session", served)
	}

	// Sign out through one process; the other refuses the cookie from its next request on.
	resp, page = b.do("POST", "/logout", url.Values{"csrf": {csrf}}.Encode(), "Content-Type", formType)
	check(resp, "sign-out", http.StatusSeeOther, page)
	signedOutOn, _ := strconv.Atoi(resp.Header.Get(backendHeader))
	other := newCookieClient(t, admins[1-signedOutOn])
	resp, page = other.do("GET", "/api/v1/project", "", "Cookie", cookie.Name+"="+cookie.Value)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the other admin after sign-out = %d; want 401\n%s", resp.StatusCode, page)
	}
	resp, _ = other.do("GET", "/events", "", "Cookie", cookie.Name+"="+cookie.Value)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("the other admin's page after sign-out = %d to %q; want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	for range 2 {
		resp, page = b.do("GET", "/api/v1/project", "")
		check(resp, "API read after sign-out", http.StatusUnauthorized, page)
	}

	// Failed sign-ins alternate between the processes and share one limit: the burst, not twice it.
	resp, page = b.do("GET", "/login", "") // a fresh form: signing in spent the first one
	check(resp, "sign-in page", 200, page)
	if m = formCSRFRe.FindStringSubmatch(page); m == nil {
		t.Fatalf("no sign-in form:\n%s", page)
	}
	loginCSRF = m[1]
	// Each answer's form carries a new token (and cookie): post the next attempt with it.
	post := func(key string) (*http.Response, string) {
		t.Helper()
		resp, page := b.do("POST", "/login", url.Values{"api_key": {key}, "csrf": {loginCSRF}}.Encode(), "Content-Type", formType)
		if m := formCSRFRe.FindStringSubmatch(page); m != nil {
			loginCSRF = m[1]
		}
		return resp, page
	}
	failures := map[string]int{}
	for i := range burst {
		resp, page = post("inl_wrong")
		check(resp, "wrong key "+strconv.Itoa(i+1), http.StatusUnauthorized, page)
		failures[resp.Header.Get(backendHeader)]++
	}
	if failures["0"] != burst/2 || failures["1"] != burst/2 {
		t.Fatalf("failures per admin process: %v; want %d each", failures, burst/2)
	}
	for i := range 2 { // one on each process, with the right key: not even checked
		resp, page = post(s.keyA)
		check(resp, "sign-in past the burst "+strconv.Itoa(i+1), http.StatusTooManyRequests, page)
		if ra := resp.Header.Get("Retry-After"); ra != "60" {
			t.Fatalf("Retry-After %q; want 60 (one failure a minute)", ra)
		}
	}
	// The API shares the address's limit.
	for range 2 {
		resp, page = b.do("GET", "/api/v1/project", "", "Authorization", "Bearer "+s.keyA)
		check(resp, "API key past the burst", http.StatusTooManyRequests, page)
	}
}
