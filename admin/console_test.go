package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// consoleClient is a browser-like HTTP client: a cookie jar and no automatic redirects.
type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsoleClient(t *testing.T, base string) *consoleClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleClient{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (c *consoleClient) do(method, path string, body io.Reader, header map[string]string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var (
	loginCSRFRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	metaCSRFRe  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)
)

// signIn posts the sign-in form with key and returns the session's CSRF token from the next page.
func (c *consoleClient) signIn(key string) string {
	c.t.Helper()
	_, page := c.do("GET", "/login", nil, nil)
	m := loginCSRFRe.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("sign-in page has no CSRF field:\n%s", page)
	}
	form := url.Values{"api_key": {key}, "csrf": {m[1]}, "next": {"/events"}}
	resp, body := c.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/events" {
		c.t.Fatalf("sign in = %d to %q; want 303 to /events\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || len(session.Value) < 40 {
		c.t.Fatalf("session cookie = %+v; want HttpOnly, SameSite=Strict, a long random value", session)
	}
	_, page = c.do("GET", "/events", nil, nil)
	m = metaCSRFRe.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("page has no CSRF meta tag:\n%s", page)
	}
	return m[1]
}

func TestConsoleSignInSessionAndCSRF(t *testing.T) {
	e := newEnv(t)
	c := newConsoleClient(t, e.url)

	// Signed out: pages send to /login, the API says 401.
	resp, _ := c.do("GET", "/webhooks?q=x", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fwebhooks%3Fq%3Dx" {
		t.Fatalf("signed-out page = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := c.do("GET", "/api/v1/events", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed-out API = %d; want 401", resp.StatusCode)
	}

	// A wrong key, and a form without its CSRF token, are refused.
	_, page := c.do("GET", "/login", nil, nil)
	token := loginCSRFRe.FindStringSubmatch(page)[1]
	for _, form := range []url.Values{{"api_key": {"inlet_wrong"}, "csrf": {token}}, {"api_key": {e.keyA}, "csrf": {"forged"}}} {
		resp, body := c.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if resp.StatusCode == http.StatusSeeOther || !strings.Contains(body, `role="alert"`) {
			t.Fatalf("bad sign-in %v = %d", form, resp.StatusCode)
		}
	}

	csrf := c.signIn(e.keyA)
	// Reads need no token; writes need the session's token in the header.
	if resp, body := c.do("GET", "/api/v1/project", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `"name":"A"`) {
		t.Fatalf("GET project with the session = %d %s", resp.StatusCode, body)
	}
	ev := `{"name":"CheckoutSuccess","attributes":[{"name":"total","type":"price"}]}`
	json := map[string]string{"Content-Type": "application/json"}
	if resp, _ := c.do("POST", "/api/v1/events", strings.NewReader(ev), json); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("write without CSRF token = %d; want 403", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/api/v1/events", strings.NewReader(ev), map[string]string{"Content-Type": "application/json", csrfHeader: "wrong"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("write with a wrong CSRF token = %d; want 403", resp.StatusCode)
	}
	if resp, body := c.do("POST", "/api/v1/events", strings.NewReader(ev), map[string]string{"Content-Type": "application/json", csrfHeader: csrf}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("write with the CSRF token = %d %s", resp.StatusCode, body)
	}
	// The session is project A's: B's data stays invisible.
	e.want("POST", "/api/v1/events", e.keyB, `{"name":"OnlyB"}`, 201)
	if _, body := c.do("GET", "/api/v1/events", nil, nil); strings.Contains(body, "OnlyB") {
		t.Fatalf("project A's session sees B's events: %s", body)
	}

	// Sign out needs the token too, then ends the session.
	if resp, _ := c.do("POST", "/logout", strings.NewReader("csrf=wrong"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign out without the token = %d; want 403", resp.StatusCode)
	}
	resp, _ = c.do("POST", "/logout", strings.NewReader("csrf="+url.QueryEscape(csrf)), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("sign out = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := c.do("GET", "/api/v1/project", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API after sign out = %d; want 401", resp.StatusCode)
	}
}

func TestConsolePagesAndHeaders(t *testing.T) {
	e := newEnv(t)
	c := newConsoleClient(t, e.url)
	c.signIn(e.keyA)
	e.want("POST", "/api/v1/events", e.keyA, `{"name":"Ev"}`, 201)
	e.want("POST", "/api/v1/events", e.keyB, `{"name":"Ev"}`, 201)
	mine := e.want("POST", "/api/v1/webhooks", e.keyA, map[string]any{"name": "mine", "event": "Ev", "identify": map[string]string{"kind": "user_id", "field": "user_id"}}, 201)
	theirs := e.want("POST", "/api/v1/webhooks", e.keyB, map[string]any{"name": "theirs", "event": "Ev", "identify": map[string]string{"kind": "user_id", "field": "user_id"}}, 201)
	idOf := func(b []byte) string { return regexp.MustCompile(`"id":"([^"]+)"`).FindStringSubmatch(string(b))[1] }

	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/webhooks", 200, "Inbound webhooks"},
		{"/webhooks/new", 200, "Create webhook"},
		{"/webhooks/" + idOf(mine) + "/edit", 200, "Edit webhook"},
		{"/webhooks/" + idOf(mine) + "/activity", 200, "Activity log"},
		{"/users", 200, "User Explorer"},
		{"/events", 200, "Events"},
		{"/settings", 200, "Notification URL"},
		{"/alerts", 200, "Add alert rule"},
		{"/webhooks/" + idOf(theirs) + "/edit", 404, "Not found"},
		{"/webhooks/" + idOf(theirs) + "/activity", 404, "Not found"},
		{"/webhooks/nope/activity", 404, "Not found"},
		{"/nothing-here", 404, "Not found"},
	} {
		resp, body := c.do("GET", tc.path, nil, nil)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d; want %d with %q", tc.path, resp.StatusCode, tc.status, tc.want)
		}
		if strings.Contains(body, idOf(theirs)) {
			t.Errorf("GET %s shows project B's webhook id", tc.path)
		}
		h := resp.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s headers = %v", tc.path, h)
		}
		if strings.Contains(body, " onclick=") || strings.Contains(body, "<script>") || strings.Contains(body, "style=") {
			t.Errorf("GET %s has inline script or style", tc.path)
		}
	}
	for _, asset := range []string{"/assets/console.js", "/assets/console.css", "/assets/favicon.svg"} {
		if resp, _ := c.do("GET", asset, nil, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", asset, resp.StatusCode)
		}
	}
	// Unknown API paths keep answering problem+json.
	if resp, _ := c.do("GET", "/api/v1/nope", nil, nil); resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /api/v1/nope = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestConsoleResultWords: console.js puts in words every verification result an activity entry's
// detail can be (a renamed result would show raw).
func TestConsoleResultWords(t *testing.T) {
	js, err := consoleFiles.ReadFile("console/static/console.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []verify.Result{verify.SignatureHeaderMissing, verify.SignatureMalformed, verify.SignatureMismatch,
		verify.TimestampMissing, verify.TimestampOutsideTolerance, verify.CredentialsMissing, verify.CredentialsMismatch,
		"signature_not_verified"} {
		if !strings.Contains(string(js), "\n    "+string(r)+": '") {
			t.Errorf("console.js's RESULTS has no words for %s", r)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/webhooks",
		"/users?kind=email":     "/users?kind=email",
		"//evil.example/":       "/webhooks",
		"/\\evil.example":       "/webhooks",
		"https://evil.example/": "/webhooks",
		"/login?next=/x":        "/webhooks",
		"/x\r\nSet-Cookie:":     "/webhooks",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestSessionExpiryAndBound: a session lives sessionTTL; the table keeps only digests of the ids; past
// maxSessions of one project, a sign-in ends that project's session closest to expiry (and no other
// project's); sign-ins delete expired sessions; signing out deletes the row.
func TestSessionExpiryAndBound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := newSessionStore(e.srv.api.projects)
	now := time.Now()
	s.now = func() time.Time { return now }
	callerA := e.caller(e.keyA)
	a, err := s.create(ctx, callerA)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.get(ctx, a.id); err != nil || got == nil || got.key.ProjectID != e.projA || got.key.KeyID != callerA.KeyID || got.csrf != a.csrf {
		t.Fatalf("fresh session = %+v, %v", got, err)
	}
	if a.id == a.csrf || len(a.id) < 40 {
		t.Fatalf("session id %q and token %q", a.id, a.csrf)
	}
	if n := e.sessionRows(t, fmt.Sprintf("id_digest = sha256(convert_to('%s', 'UTF8'))", a.id)); n != 1 {
		t.Fatalf("%d rows keyed by the id's SHA-256; want 1", n)
	}
	if n := e.sessionRows(t, fmt.Sprintf("id_digest = convert_to('%[1]s', 'UTF8') OR csrf = '%[1]s'", a.id)); n != 0 {
		t.Fatalf("the session id is stored in clear (%d rows)", n)
	}
	now = now.Add(sessionTTL)
	if got, err := s.get(ctx, a.id); got != nil || err != nil {
		t.Fatalf("session alive after %s: %+v, %v", sessionTTL, got, err)
	}
	// The next sign-in deletes the expired session.
	b, err := s.create(ctx, e.caller(e.keyB))
	if err != nil {
		t.Fatal(err)
	}
	if n := e.sessionRows(t, "TRUE"); n != 1 {
		t.Fatalf("%d session rows after a sign-in past the expiry; want 1", n)
	}
	for range maxSessions + 10 {
		now = now.Add(time.Millisecond)
		if _, err := s.create(ctx, callerA); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.sessionRows(t, fmt.Sprintf("project_id = %d", e.projA)); n != maxSessions {
		t.Fatalf("%d sessions of project A kept; want %d", n, maxSessions)
	}
	if got, err := s.get(ctx, b.id); got == nil || err != nil {
		t.Fatalf("project B's session ended by project A's sign-ins: %v", err)
	}
	if err := s.delete(ctx, b.id); err != nil {
		t.Fatal(err)
	}
	if got, err := s.get(ctx, b.id); got != nil || err != nil {
		t.Fatalf("session alive after sign-out: %+v, %v", got, err)
	}
}

// caller authenticates key.
func (e *env) caller(key string) project.Caller {
	e.t.Helper()
	c, err := e.srv.api.projects.Authenticate(context.Background(), key)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// sessionRows counts the console_sessions rows matching where.
func (e *env) sessionRows(t *testing.T, where string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM console_sessions WHERE `+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeActivity answers authFailureAlert's two questions.
type fakeActivity struct {
	Activity
	notes   []chstore.Notification
	success []chstore.Entry
}

func (f fakeActivity) Notifications(context.Context, int64, string, int) ([]chstore.Notification, error) {
	return f.notes, nil
}

func (f fakeActivity) Entries(_ context.Context, q chstore.EntriesQuery) (chstore.Page, error) {
	if q.Status != "success" {
		panic("unexpected query")
	}
	return chstore.Page{Entries: f.success}, nil
}

func TestAuthFailureAlert(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	note := []chstore.Notification{{CreatedAt: t0}}
	for _, tc := range []struct {
		name      string
		rotated   time.Time
		notes     []chstore.Notification
		success   []chstore.Entry
		wantAlert bool
	}{
		{"no notification", t0.Add(-time.Hour), nil, nil, false},
		{"notification, nothing since", t0.Add(-time.Hour), note, nil, true},
		{"success before it", t0.Add(-time.Hour), note, []chstore.Entry{{ReceivedAt: t0.Add(-time.Minute)}}, true},
		{"success after it", t0.Add(-time.Hour), note, []chstore.Entry{{ReceivedAt: t0.Add(time.Minute)}}, false},
		{"secret rotated after it", t0.Add(time.Minute), note, nil, false},
	} {
		got, err := authFailureAlert(context.Background(), fakeActivity{notes: tc.notes, success: tc.success}, 1,
			&webhook.Webhook{ID: "w", SecretRotatedAt: tc.rotated})
		if err != nil {
			t.Fatal(err)
		}
		if (got != nil) != tc.wantAlert {
			t.Errorf("%s: alert = %v; want %v", tc.name, got != nil, tc.wantAlert)
		}
	}
}
