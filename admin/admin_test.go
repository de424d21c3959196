package admin

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/bytedance/sonic"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/audit"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/erasure"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/jsonvalid"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/pipeline"
)

// testMaxBody is the edge's max_body_bytes the tests' admin server bounds a dry run's body with.
const testMaxBody = 64 << 10

// freshResolver is compose's: the directory asked every time.
type freshResolver struct{ r *directory.Resolver }

func (f freshResolver) Resolve(ctx context.Context, projectID int64, kind identify.Kind, values []string) (map[string]pipeline.Subject, error) {
	return f.r.ResolveFresh(ctx, projectID, kind, values)
}

// env is an admin server on a fresh database with two projects.
type env struct {
	t          testing.TB
	srv        *Server
	pool       *pgxpool.Pool
	ch         driver.Conn
	logs       *syncBuffer
	url        string
	keyA, keyB string
	projA      int64
	projB      int64
}

// newEnv serves with Defaults(), but with room for the thousands of refused keys some tests send from
// 127.0.0.1 (the failed-authentication limit has tests of its own, through newEnvWith).
func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, func(c *Config) { c.AuthFailureBurst = 1_000_000 })
}

// newEnvWith is newEnv with settings changed by set.
func newEnvWith(t testing.TB, set func(*Config)) *env {
	t.Helper()
	_, pool := testenv.Postgres(t)
	_, ch := testenv.ClickHouse(t)
	projects := project.NewStore(pool)
	ctx := context.Background()
	a, keyA, err := projects.Create(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	b, keyB, err := projects.Create(ctx, "B")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := directory.NewStore(pool, projects, directory.Defaults(), prometheus.NewRegistry(), testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := secret.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Defaults()
	set(&cfg)
	res, err := directory.NewResolver(pool, nil, projects, directory.Defaults(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(res.Close)
	// The erasure runner runs beside the server, as in the admin process (compose.Admin.Run).
	runner := erasure.NewRunner(pool, chstore.NewEraser(ch), log)
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(rctx) }()
	t.Cleanup(func() { stop(); <-done })
	srv := New(cfg, Deps{Logger: log, Registry: prometheus.NewRegistry(), Pool: pool, Projects: projects,
		Webhooks: webhook.NewStore(pool, sealer), Directory: dir, Activity: chstore.NewReader(ch),
		Evaluator: pipeline.NewEvaluator(pipeline.Defaults().Limits(), freshResolver{res}, res), MaxBodyBytes: testMaxBody,
		Replays: replay.NewStore(pool), ReplayCH: chstore.NewReader(ch),
		Alerts: alert.NewStore(pool, sealer, alert.Defaults()),
		Audit:  audit.NewStore(pool), Erasures: erasure.NewStore(pool), WakeErasures: runner.Wake})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &env{t: t, srv: srv, pool: pool, ch: ch, logs: logs, url: hs.URL, keyA: keyA, keyB: keyB, projA: a.ID, projB: b.ID}
}

// do sends a request with key (empty: no Authorization) and returns status and body.
func (e *env) do(method, path, key string, body any) (int, []byte) {
	e.t.Helper()
	return e.doHeader(method, path, key, body, "", "")
}

// doHeader is do with one extra request header (none when name is empty).
func (e *env) doHeader(method, path, key string, body any, name, value string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := sonic.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if name != "" {
		req.Header.Set(name, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (e *env) want(method, path, key string, body any, status int) []byte {
	e.t.Helper()
	got, out := e.do(method, path, key, body)
	if got != status {
		e.t.Fatalf("%s %s = %d %s; want %d", method, path, got, out, status)
	}
	return out
}

func TestEveryRouteNeedsAKey(t *testing.T) {
	e := newEnv(t)
	for _, r := range e.srv.routes {
		path := strings.NewReplacer("{id}", "x", "{user_id}", "x", "{hwid}", "x", "{request_id}", "x").Replace(r.path)
		for _, key := range []string{"", "inlet_wrong", e.keyA + "x"} {
			got, body := e.do(r.method, path, key, nil)
			if got != http.StatusUnauthorized {
				t.Errorf("%s %s with key %.8q = %d %s; want 401", r.method, path, key, got, body)
			}
		}
	}
}

func TestProject(t *testing.T) {
	e := newEnv(t)
	out := e.want("GET", "/api/v1/project", e.keyA, nil, 200)
	if !strings.Contains(string(out), `"name":"A"`) {
		t.Fatalf("project A = %s", out)
	}
	e.want("PATCH", "/api/v1/project", e.keyB, map[string]any{"notification_url": "https://hooks.example/alerts"}, 200)
	if out := e.want("GET", "/api/v1/project", e.keyA, nil, 200); strings.Contains(string(out), "alerts") {
		t.Fatalf("project A sees B's notification url: %s", out)
	}
	out = e.want("PATCH", "/api/v1/project", e.keyB, map[string]any{"notification_url": "ftp://x"}, 400)
	if !strings.Contains(string(out), `"field":"notification_url"`) {
		t.Fatalf("problem does not name the field: %s", out)
	}
	e.want("PATCH", "/api/v1/project", e.keyB, `{"notification_url": "https://x", "extra": 1}`, 400)
	e.want("PATCH", "/api/v1/project", e.keyB, `{"notification_url": `, 400)
	e.want("GET", "/api/v1/nope", e.keyA, nil, 404)
}

// The Authorization scheme is case-insensitive (RFC 9110 §11.1) and may be followed by several spaces;
// the key itself must match exactly, and a wrong one is still 401.
func TestAuthorizationSchemeCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	for _, scheme := range []string{"Bearer ", "bearer ", "BEARER ", "bEaReR ", "Bearer  "} {
		got, out := e.doHeader("GET", "/api/v1/project", "", nil, "Authorization", scheme+e.keyB)
		if got != http.StatusOK || !strings.Contains(string(out), `"name":"B"`) {
			t.Errorf("%q + B's key = %d %s; want 200 and project B", scheme, got, out)
		}
		for _, key := range []string{e.keyB + "x", strings.ToUpper(e.keyB), "inl_wrong"} {
			if got, out := e.doHeader("GET", "/api/v1/project", "", nil, "Authorization", scheme+key); got != http.StatusUnauthorized {
				t.Errorf("%q + a wrong key %.8q… = %d %s; want 401", scheme, key, got, out)
			}
		}
	}
	for _, auth := range []string{"Basic " + e.keyB, "Bearer" + e.keyB, "Bearer\t" + e.keyB} {
		if got, out := e.doHeader("GET", "/api/v1/project", "", nil, "Authorization", auth); got != http.StatusUnauthorized {
			t.Errorf("%.12q… = %d %s; want 401", auth, got, out)
		}
	}
	// A key pasted into the console's sign-in form with its scheme, in any case, signs in as well.
	c := newConsoleClient(t, e.url)
	c.signIn("bearer " + e.keyA)
	if resp, page := c.do("GET", "/settings", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(page, ">A<") {
		t.Errorf("signed in with \"bearer <key>\": /settings = %d; want 200 for project A", resp.StatusCode)
	}
}

// TestProjectPhoneRegion: PATCH /project sets phone_region per project; an unknown region is a 400
// problem naming the field, and then nothing (not even a valid notification_url beside it) is written.
func TestProjectPhoneRegion(t *testing.T) {
	e := newEnv(t)
	out := e.want("PATCH", "/api/v1/project", e.keyB, map[string]any{"phone_region": "GB"}, 200)
	if !strings.Contains(string(out), `"phone_region":"GB"`) {
		t.Fatalf("PATCH phone_region GB = %s; want it in the project", out)
	}
	if out := e.want("GET", "/api/v1/project", e.keyA, nil, 200); !strings.Contains(string(out), `"phone_region":""`) {
		t.Fatalf("project A = %s; want phone_region \"\" (B's region is B's)", out)
	}
	for _, region := range []string{"XX", "gb", "GBR", "001", " GB"} {
		body := map[string]any{"notification_url": "https://hooks.example/" + region, "phone_region": region}
		enc, err := sonic.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest("PATCH", e.url+"/api/v1/project", bytes.NewReader(enc))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.keyB)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(string(got), `"field":"phone_region"`) {
			t.Errorf("PATCH phone_region %q = %d %s %s; want 400 problem+json naming phone_region",
				region, resp.StatusCode, resp.Header.Get("Content-Type"), got)
		}
	}
	out = e.want("GET", "/api/v1/project", e.keyB, nil, 200)
	if !strings.Contains(string(out), `"phone_region":"GB"`) || strings.Contains(string(out), "hooks.example") {
		t.Fatalf("project B after refused PATCHes = %s; want region GB and no notification url", out)
	}
	out = e.want("PATCH", "/api/v1/project", e.keyB, map[string]any{"phone_region": ""}, 200)
	if !strings.Contains(string(out), `"phone_region":""`) {
		t.Fatalf("PATCH phone_region \"\" = %s; want it cleared", out)
	}
}

func TestSampleFields(t *testing.T) {
	e := newEnv(t)
	sample := `{"user_id":"12345","email_address":"jane@example.com","price":99.99,"customer":{"tags":["vip"]},"order.id":"X"}`
	out := e.want("POST", "/api/v1/sample-fields", e.keyA, sample, 200)
	for _, want := range []string{`"path":"user_id"`, `"path":"price","type":"number"`, `"path":"customer.tags[0]"`, `"path":"[\"order.id\"]"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("fields %s lack %s", out, want)
		}
	}
	e.want("POST", "/api/v1/sample-fields", e.keyA, `{"a":`, 400)
	e.want("POST", "/api/v1/sample-fields", e.keyA, `{"a":"`+strings.Repeat("x", 70<<10)+`"}`, 400)
}

// TestSampleFieldsRefusesWhatTheEdgeRefuses: a sample the edge would refuse as a webhook body (package
// jsonvalid) is a 400 on "body" whose message is the activity log's detail for that body, word for word.
func TestSampleFieldsRefusesWhatTheEdgeRefuses(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ name, sample, want string }{
		{"control character", "{\"user_id\":\"12345\",\"note\":\"line one\nline two\"}", "control character U+000A in string at byte 35"},
		{"invalid UTF-8", "{\"user_id\":\"12345\",\"name\":\"Jos\xe9\"}", "invalid UTF-8 at byte 30"},
		{"lone surrogate", `{"user_id":"\ud800"}`, `lone surrogate \ud800 at byte 12`},
		{"duplicate key", `{"user_id":"evil","user_id":"12345"}`, `duplicate key "user_id" at byte 18`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := e.want("POST", "/api/v1/sample-fields", e.keyA, c.sample, 400)
			var p struct {
				Errors []domainerr.FieldError `json:"errors"`
			}
			if err := sonic.Unmarshal(out, &p); err != nil || len(p.Errors) != 1 || p.Errors[0] != (domainerr.FieldError{Field: "body", Message: c.want}) {
				t.Errorf("answer %s; want one error on body: %s", out, c.want)
			}
			if err := jsonvalid.Validate([]byte(c.sample), jsonvalid.DefaultDepth); err == nil || err.Error() != c.want {
				t.Errorf("jsonvalid (the edge's check) = %v; want %s", err, c.want)
			}
		})
	}
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
