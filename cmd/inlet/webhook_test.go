package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// sent is one request as the fake edge received it, byte for byte.
type sent struct {
	method, url string
	header      http.Header
	query       map[string][]string
	body        []byte
}

// verify.Request over a received request: the URI is the full URL the sender called, as the edge
// must give it to HubSpot v3.
func (s *sent) Method() []byte            { return []byte(s.method) }
func (s *sent) URI() []byte               { return []byte(s.url) }
func (s *sent) Body() []byte              { return s.body }
func (s *sent) Header(name string) []byte { return []byte(s.header.Get(name)) }
func (s *sent) Query(name string) []byte {
	if v := s.query[name]; len(v) > 0 {
		return []byte(v[0])
	}
	return nil
}

// fakeEdge records every request and answers as the edge does: 202 with a request id, or the code
// set by answer with an error body.
type fakeEdge struct {
	*httptest.Server
	mu   sync.Mutex
	got  []*sent
	code int
}

func newFakeEdge(t *testing.T) *fakeEdge {
	t.Helper()
	e := &fakeEdge{code: http.StatusAccepted}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.got = append(e.got, &sent{method: r.Method, url: "http://" + r.Host + r.URL.RequestURI(), header: r.Header.Clone(),
			query: r.URL.Query(), body: b})
		code := e.code
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if code == http.StatusAccepted {
			_, _ = w.Write([]byte(`{"request_id":"0190a3e5-7c1d-7b6e-9f00-3c1d2a4b5c6d"}`))
		} else {
			_, _ = w.Write([]byte(`{"error":"unauthorized"}`))
		}
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *fakeEdge) answer(code int) {
	e.mu.Lock()
	e.code = code
	e.mu.Unlock()
}

func (e *fakeEdge) last(t *testing.T) *sent {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.got) == 0 {
		t.Fatal("the edge received nothing")
	}
	return e.got[len(e.got)-1]
}

// secretFor is a secret of the shape each mode takes, distinctive enough to be found if printed.
func secretFor(v verify.Config) string {
	switch {
	case v.Mode == "" || v.Mode == verify.ModeBearer:
		return secret.NewWebhookSecret()
	case v.Mode == verify.ModeHMAC && v.HMAC.Preset == "standard_webhooks":
		return "whsec_" + base64.StdEncoding.EncodeToString([]byte("the-standard-webhooks-signing-key"))
	}
	return "Zq8-secret-of-" + string(v.Mode) + "-Kp2"
}

func inletCmd(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, env, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

// TestWebhookTestSignsAsTheSender: for every sender of the catalog, `inlet webhook test` sends the body
// and headers that sender would — the Verifier the edge builds from the sender's verification and the
// secret accepts exactly the bytes received — plus the sender's delivery-id header; it prints the
// request without the secret and the answer, and exits 0 on the 202.
func TestWebhookTestSignsAsTheSender(t *testing.T) {
	edge := newFakeEdge(t)
	for _, snd := range webhook.Senders() {
		t.Run(snd.Name, func(t *testing.T) {
			sec := secretFor(snd.Verification)
			code, out := inletCmd(t, nil, "webhook", "test", "-url", edge.URL, "-webhook", "1Lg9DZF8k6c7unooi37Ji7",
				"-sender", snd.Name, "-secret", sec, "-id", "delivery-42")
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			got := edge.last(t)
			v, err := verify.New(snd.Verification, [][]byte{[]byte(sec)})
			if err != nil {
				t.Fatal(err)
			}
			if res := v.Verify(got, time.Now()); res != verify.OK {
				t.Errorf("the edge's Verifier says %s of %s %v", res, got.url, got.header)
			}
			if got.method != http.MethodPost || !strings.HasPrefix(got.url, edge.URL+"/hooks/1Lg9DZF8k6c7unooi37Ji7") {
				t.Errorf("sent %s %s; want POST to the webhook's URL", got.method, got.url)
			}
			if string(got.body) != seed.Sample || got.header.Get("Content-Type") != "application/json" {
				t.Errorf("sent %q as %q; want the seed sample as application/json", got.body, got.header.Get("Content-Type"))
			}
			if kind, name := snd.Dedup.Source(); kind == "header" && got.header.Get(name) != "delivery-42" {
				t.Errorf("delivery-id header %s = %q; want the -id", name, got.header.Get(name))
			}
			if strings.Contains(out, sec) {
				t.Errorf("the secret is printed:\n%s", out)
			}
			for _, want := range []string{"> POST " + edge.URL + "/hooks/1Lg9DZF8k6c7unooi37Ji7", "> " + seed.Sample, "< 202 Accepted", `< {"request_id":`} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestWebhookTestOptions: the body from a file, a custom HMAC, a token's parameter, a header that
// replaces the signature, a non-2xx answer, and the usage errors.
func TestWebhookTestOptions(t *testing.T) {
	edge := newFakeEdge(t)
	body := filepath.Join(t.TempDir(), "order.json")
	if err := os.WriteFile(body, []byte(`{"id":"evt_1","user_id":"12345"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	custom := `{"mode":"hmac","hmac":{"header":"X-Sig","algorithm":"sha512","encoding":"base64","timestamp_header":"X-Ts","signed":"{timestamp}.{method}.{uri}.{body}"}}`
	var customCfg verify.Config
	if err := json.Unmarshal([]byte(custom), &customCfg); err != nil {
		t.Fatal(err)
	}
	base := []string{"webhook", "test", "-url", edge.URL, "-webhook", "abc"}
	code, out := inletCmd(t, nil, append(base, "-verification", custom, "-secret", "custom-key", "-body", "@"+body,
		"-content-type", "application/x-www-form-urlencoded", "-H", "X-Topic: orders/create")...)
	got := edge.last(t)
	v, _ := verify.New(customCfg, [][]byte{[]byte("custom-key")})
	if code != exitOK || v.Verify(got, time.Now()) != verify.OK {
		t.Errorf("custom HMAC: exit %d, Verify %s:\n%s", code, v.Verify(got, time.Now()), out)
	}
	if string(got.body) != `{"id":"evt_1","user_id":"12345"}` || got.header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
		got.header.Get("X-Topic") != "orders/create" {
		t.Errorf("sent %q, %v", got.body, got.header)
	}

	code, out = inletCmd(t, []string{envSenderSecret + "=tok_s3cr3t&x"}, append(base, "-mode", "token", "-query-param", "key")...)
	if got := edge.last(t); code != exitOK || got.query["key"][0] != "tok_s3cr3t&x" {
		t.Errorf("token from $%s: exit %d, query %v", envSenderSecret, code, got.query)
	}
	if strings.Contains(out, "s3cr3t") || !strings.Contains(out, "key=REDACTED") {
		t.Errorf("token not redacted:\n%s", out)
	}

	// A wrong signature on purpose: the header replaces the signer's; the edge's 401 is exit 1.
	edge.answer(http.StatusUnauthorized)
	code, out = inletCmd(t, nil, append(base, "-preset", "github", "-secret", "s", "-H", "X-Hub-Signature-256: sha256=00")...)
	if got := edge.last(t); got.header.Values("X-Hub-Signature-256")[0] != "sha256=00" || len(got.header.Values("X-Hub-Signature-256")) != 1 {
		t.Errorf("signature header %v; want the -H value alone", got.header.Values("X-Hub-Signature-256"))
	}
	if code != exitFail || !strings.Contains(out, "< 401 Unauthorized") || !strings.Contains(out, "the edge answered 401") {
		t.Errorf("401: exit %d:\n%s", code, out)
	}
	edge.answer(http.StatusAccepted)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"webhook", "test", "-url", edge.URL, "-secret", "s"}, "-webhook ID is required"},
		{append(base, "-sender", "paypal", "-secret", "s"), `unknown sender "paypal"`},
		{base, "no secret"},
		{append(base, "-preset", "stripe", "-verification", custom, "-secret", "s"), "not both"},
		{append(base, "-preset", "paypal", "-secret", "s"), "hmac.preset"},
		{append(base, "-preset", "standard_webhooks", "-secret", "whsec_!!"), "does not fit"},
		{append(base, "-admin-url", edge.URL, "-secret", "s"), envAPIKey},
		{append(base, "-secret", "s", "extra"), "unexpected argument"},
		{[]string{"webhook", "send"}, "usage: inlet webhook test"},
	} {
		if code, out := inletCmd(t, nil, c.args...); code != exitConfig || !strings.Contains(out, c.want) {
			t.Errorf("inlet %s: exit %d, %q; want exit %d mentioning %q", strings.Join(c.args, " "), code, out, exitConfig, c.want)
		}
	}
}

// TestWebhookTestFromAdmin: with -admin-url, the sender, verification, sample payload, URL and secret
// come from the admin API, in both shapes of its credentials (the Authorization value, or the plain
// secret).
func TestWebhookTestFromAdmin(t *testing.T) {
	edge := newFakeEdge(t)
	const key = "inl_test_key"
	bearer := secret.NewWebhookSecret()
	hooks := map[string]struct{ hook, creds string }{
		"bear": {`{"id":"bear","sender":"inlet","verification":{},"sample_payload":"{\n  \"user_id\": \"12345\"\n}"}`,
			`{"url":"` + edge.URL + `/hooks/bear","secret":"Bearer ` + bearer + `","example_request":"curl …"}`},
		"shop": {`{"id":"shop","sender":"shopify","verification":{"mode":"hmac","hmac":{"preset":"shopify"}},"sample_payload":""}`,
			`{"url":"` + edge.URL + `/hooks/shop","mode":"hmac","secret":"shpss_from_admin"}`},
		"tok": {`{"id":"tok","sender":"token","verification":{"mode":"token","query_param":"key"}}`,
			`{"url":"` + edge.URL + `/hooks/tok?key=tok_abc","mode":"token","secret":"tok_abc","query_param":"key"}`},
		"none": {`{"id":"none","sender":"stripe","verification":{"mode":"hmac","hmac":{"preset":"stripe"}}}`,
			`{"url":"` + edge.URL + `/hooks/none","secret":""}`},
	}
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		id, creds := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/webhooks/"), "/credentials")
		h, ok := hooks[id]
		switch {
		case !ok:
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		case creds:
			_, _ = w.Write([]byte(h.creds))
		default:
			_, _ = w.Write([]byte(h.hook))
		}
	}))
	defer admin.Close()
	env := []string{envAPIKey + "=" + key}

	code, out := inletCmd(t, env, "webhook", "test", "-admin-url", admin.URL, "-webhook", "bear")
	got := edge.last(t)
	if code != exitOK || got.header.Get("Authorization") != "Bearer "+bearer || string(got.body) != `{"user_id":"12345"}` {
		t.Errorf("bearer from admin: exit %d, Authorization %q, body %q:\n%s", code, got.header.Get("Authorization"), got.body, out)
	}

	code, out = inletCmd(t, env, "webhook", "test", "-admin-url", admin.URL, "-webhook", "shop")
	got = edge.last(t)
	v, _ := verify.New(verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Preset: "shopify"}}, [][]byte{[]byte("shpss_from_admin")})
	if code != exitOK || v.Verify(got, time.Now()) != verify.OK || string(got.body) != seed.Sample || got.header.Get("X-Shopify-Webhook-Id") == "" {
		t.Errorf("shopify from admin: exit %d, body %q, headers %v:\n%s", code, got.body, got.header, out)
	}

	code, out = inletCmd(t, env, "webhook", "test", "-admin-url", admin.URL, "-webhook", "tok")
	if got := edge.last(t); code != exitOK || got.url != edge.URL+"/hooks/tok?key=tok_abc" {
		t.Errorf("token from admin: exit %d, sent to %s; want the token once:\n%s", code, got.url, out)
	}

	if code, out := inletCmd(t, env, "webhook", "test", "-admin-url", admin.URL, "-webhook", "none"); code != exitConfig || !strings.Contains(out, "gives no secret") {
		t.Errorf("no secret from admin: exit %d, %s", code, out)
	}
	if code, out := inletCmd(t, env, "webhook", "test", "-admin-url", admin.URL, "-webhook", "gone"); code != exitFail || !strings.Contains(out, "404") {
		t.Errorf("unknown webhook: exit %d, %s", code, out)
	}
	if code, out := inletCmd(t, []string{envAPIKey + "=inl_wrong"}, "webhook", "test", "-admin-url", admin.URL, "-webhook", "bear"); code != exitFail || !strings.Contains(out, "401") {
		t.Errorf("wrong API key: exit %d, %s", code, out)
	}
}

// TestEdgeBaseURL: the default edge is the settings' listen address, a wildcard host made loopback.
func TestEdgeBaseURL(t *testing.T) {
	for addr, want := range map[string]string{"127.0.0.1:8080": "http://127.0.0.1:8080", "0.0.0.0:9000": "http://127.0.0.1:9000",
		":7000": "http://127.0.0.1:7000", "[::]:8080": "http://127.0.0.1:8080", "edge.internal:80": "http://edge.internal:80"} {
		cfg, err := config.Load("", []string{"INLET_INGESTOR_LISTEN_ADDR=" + addr})
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if got := edgeBaseURL(cfg); got != want {
			t.Errorf("listen_addr %s: %s; want %s", addr, got, want)
		}
	}
}
