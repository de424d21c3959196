package ingestor

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	stripe "github.com/stripe/stripe-go/v82/webhook"
	twilio "github.com/twilio/twilio-go/client"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Every verification mode through the edge: for each preset a request signed as the provider signs
// it — with the provider's own library where one exists in Go (stripe-go, the Standard Webhooks
// library; Twilio's twilio-go can only verify, and checks what the test signs), by the provider's
// documented scheme otherwise — is accepted, and a body changed by one byte, a wrong secret, a stale
// timestamp and a missing signature header each get the one 401 with the right detail in the
// activity log's record.

// testPublicURL is the public_url of the edges these tests run: HubSpot and Twilio sign it.
const testPublicURL = "https://hooks.example.com"

// signed is what a sender adds to a request: its headers.
type signed [][2]string

// mode is one way of connecting a sender, with what it takes to sign a request.
type mode struct {
	name   string // the preset, or bearer, basic, token
	sender string // the catalog's sender (kept headers, handshake)
	cfg    verify.Config
	secret string
	body   []byte
	ctype  string // the request's Content-Type ("" JSON)
	query  string // appended to the path: URL-signing schemes sign it
	// sign makes the headers of a request with body to fullURL, signed at ts with sec.
	sign func(t testing.TB, sec string, body []byte, fullURL string, ts time.Time) signed
	// sigHeader carries the signature (or credential); tsHeader the timestamp ("" when none).
	sigHeader, tsHeader string
	tokenInQuery        bool // token mode: the credential is in the URL
}

func hmacB64(newHash func() hash.Hash, key string, msg ...[]byte) string {
	return base64.StdEncoding.EncodeToString(mac(newHash, key, msg...))
}

func hmacHex(newHash func() hash.Hash, key string, msg ...[]byte) string {
	return hex.EncodeToString(mac(newHash, key, msg...))
}

func mac(newHash func() hash.Hash, key string, msg ...[]byte) []byte {
	m := hmac.New(newHash, []byte(key))
	for _, b := range msg {
		m.Write(b)
	}
	return m.Sum(nil)
}

// hubspotURI decodes the escapes HubSpot's v3 docs list (a copy of the rule, written from the docs
// for this test).
func hubspotURI(u string) string {
	r := strings.NewReplacer("%3A", ":", "%2F", "/", "%3F", "?", "%40", "@", "%21", "!", "%24", "$", "%27", "'",
		"%28", "(", "%29", ")", "%2A", "*", "%2C", ",", "%3B", ";",
		"%3a", ":", "%2f", "/", "%3f", "?", "%2a", "*", "%2c", ",", "%3b", ";")
	return r.Replace(u)
}

// twilioSignature signs as Twilio does, with the Signer `inlet webhook test` uses (package verify's
// tests hold the copy of the scheme written from Twilio's docs); twilio-go, Twilio's own library,
// must accept it.
func twilioSignature(t testing.TB, token string, body []byte, fullURL string) string {
	t.Helper()
	signer, err := verify.NewSigner(presetConfig("twilio"), []byte(token))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.Sign(verify.Message{URL: fullURL, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	sig := signed.Get("X-Twilio-Signature")
	v := twilio.NewRequestValidator(token)
	if !v.ValidateBody(fullURL, body, sig) {
		t.Fatalf("twilio-go refuses the test's signature of %s", fullURL)
	}
	return sig
}

const twilioForm = "ToCountry=US&SmsMessageSid=SM0123456789abcdef0123456789abcdef&NumMedia=0&Body=Hello+there%21+%C3%A9t%C3%A9&" +
	"From=%2B14158675309&To=%2B18005551212&MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789abcdef&ApiVersion=2010-04-01"

func presetConfig(name string) verify.Config {
	return verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Preset: name}}
}

// modes are every verification mode and every preset.
func modes() []mode {
	const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	ms := []mode{
		{name: "bearer", sender: webhook.SenderInlet, cfg: verify.Config{}, secret: "whsec_bearer-secret-0123456789",
			sign: func(_ testing.TB, sec string, _ []byte, _ string, _ time.Time) signed {
				return signed{{"Authorization", "Bearer " + sec}}
			}, sigHeader: "Authorization"},
		{name: "basic", sender: "basic", cfg: verify.Config{Mode: verify.ModeBasic, Username: "inlet"}, secret: "basic-password-0123456789",
			sign: func(_ testing.TB, sec string, _ []byte, _ string, _ time.Time) signed {
				return signed{{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("inlet:"+sec))}}
			}, sigHeader: "Authorization"},
		{name: "token", sender: "token", cfg: verify.Config{Mode: verify.ModeToken}, secret: "tok_query-token-0123456789",
			tokenInQuery: true},
		{name: "shopify", sender: "shopify", secret: "shpss_0123456789abcdef",
			sign: func(_ testing.TB, sec string, body []byte, _ string, _ time.Time) signed {
				return signed{{"X-Shopify-Hmac-Sha256", hmacB64(sha256.New, sec, body)}, {"X-Shopify-Topic", "orders/create"},
					{"X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}, {"X-Shopify-Shop-Domain", "shop.myshopify.com"}}
			}, sigHeader: "X-Shopify-Hmac-Sha256"},
		{name: "stripe", sender: "stripe", secret: "whsec_stripe_test_secret",
			sign: func(_ testing.TB, sec string, body []byte, _ string, ts time.Time) signed {
				p := stripe.GenerateTestSignedPayload(&stripe.UnsignedPayload{Payload: body, Secret: sec, Timestamp: ts})
				return signed{{"Stripe-Signature", p.Header}}
			}, sigHeader: "Stripe-Signature", tsHeader: "Stripe-Signature"},
		{name: "github", sender: "github", secret: "It's a Secret to Everybody",
			sign: func(_ testing.TB, sec string, body []byte, _ string, _ time.Time) signed {
				return signed{{"X-Hub-Signature-256", "sha256=" + hmacHex(sha256.New, sec, body)}, {"X-GitHub-Event", "push"},
					{"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"}}
			}, sigHeader: "X-Hub-Signature-256"},
		{name: "woocommerce", sender: "woocommerce", secret: "woo-secret",
			sign: func(_ testing.TB, sec string, body []byte, _ string, _ time.Time) signed {
				return signed{{"X-WC-Webhook-Signature", hmacB64(sha256.New, sec, body)}, {"X-WC-Webhook-Topic", "order.created"}}
			}, sigHeader: "X-WC-Webhook-Signature"},
		{name: "hubspot_v3", sender: "hubspot", secret: "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
			query: "?portal=62515&note=a%3Ab%2Cc%20d",
			sign: func(_ testing.TB, sec string, body []byte, fullURL string, ts time.Time) signed {
				ms := strconv.FormatInt(ts.UnixMilli(), 10)
				sig := hmacB64(sha256.New, sec, []byte("POST"+hubspotURI(fullURL)), body, []byte(ms))
				return signed{{"X-HubSpot-Signature-v3", sig}, {"X-HubSpot-Request-Timestamp", ms}}
			}, sigHeader: "X-HubSpot-Signature-v3", tsHeader: "X-HubSpot-Request-Timestamp"},
		{name: "slack", sender: "slack", secret: "8f742231b10e8888abcd99yyyzzz85a5",
			sign: func(_ testing.TB, sec string, body []byte, _ string, ts time.Time) signed {
				s := strconv.FormatInt(ts.Unix(), 10)
				return signed{{"X-Slack-Signature", "v0=" + hmacHex(sha256.New, sec, []byte("v0:"+s+":"), body)},
					{"X-Slack-Request-Timestamp", s}, {"X-Slack-Retry-Num", "1"}}
			}, sigHeader: "X-Slack-Signature", tsHeader: "X-Slack-Request-Timestamp"},
		{name: "meta", sender: "meta", secret: "meta-app-secret",
			sign: func(_ testing.TB, sec string, body []byte, _ string, _ time.Time) signed {
				return signed{{"X-Hub-Signature-256", "sha256=" + hmacHex(sha256.New, sec, body)}}
			}, sigHeader: "X-Hub-Signature-256"},
		{name: "zoom", sender: "zoom", secret: "zoom-secret-token",
			sign: func(_ testing.TB, sec string, body []byte, _ string, ts time.Time) signed {
				s := strconv.FormatInt(ts.Unix(), 10)
				return signed{{"x-zm-signature", "v0=" + hmacHex(sha256.New, sec, []byte("v0:"+s+":"), body)}, {"x-zm-request-timestamp", s}}
			}, sigHeader: "x-zm-signature", tsHeader: "x-zm-request-timestamp"},
		{name: "standard_webhooks", sender: "standard_webhooks", secret: whsec,
			sign: func(t testing.TB, sec string, body []byte, _ string, ts time.Time) signed {
				t.Helper()
				wh, err := standardwebhooks.NewWebhook(sec)
				if err != nil {
					t.Fatal(err)
				}
				id := "msg_" + uuid.NewString()
				sig, err := wh.Sign(id, ts, body)
				if err != nil {
					t.Fatal(err)
				}
				return signed{{"webhook-id", id}, {"webhook-timestamp", strconv.FormatInt(ts.Unix(), 10)}, {"webhook-signature", sig}}
			}, sigHeader: "webhook-signature", tsHeader: "webhook-timestamp"},
		{name: "twilio", sender: "twilio", secret: "twilio-auth-token-0123456789", body: []byte(twilioForm),
			ctype: "application/x-www-form-urlencoded", query: "?site=shop%3A1",
			sign: func(t testing.TB, sec string, body []byte, fullURL string, _ time.Time) signed {
				return signed{{"X-Twilio-Signature", twilioSignature(t, sec, body, fullURL)},
					{"I-Twilio-Idempotency-Token", "f9a2b8c1-idem"}}
			}, sigHeader: "X-Twilio-Signature"},
	}
	for i := range ms {
		if ms[i].cfg.Mode == "" && ms[i].name != "bearer" {
			ms[i].cfg = presetConfig(ms[i].name)
		}
		if ms[i].body == nil {
			ms[i].body = goodBody
		}
	}
	return ms
}

// idOf is a test webhook id for a mode: 22 base62 characters.
func idOf(name string) string {
	id := "wh" + strings.NewReplacer("_", "", "-", "").Replace(name)
	return (id + strings.Repeat("0", 22))[:22]
}

// hookFor builds the webhook of a mode with real verifiers (the current secret, and prev during a
// rotation's grace when not empty) and the catalog's kept headers and handshake.
func hookFor(t testing.TB, m mode, prev string) *webhook.Hook {
	t.Helper()
	h := testHook(idOf(m.name))
	h.Verification = &m.cfg
	h.Sender = m.sender
	snd, ok := webhook.LookupSender(m.sender)
	if !ok {
		t.Fatalf("no sender %q in the catalog", m.sender)
	}
	for _, name := range snd.Headers {
		h.Headers = append(h.Headers, webhook.NewKeptHeader(name))
	}
	if k, arg := snd.Dedup.Source(); k == "header" && !strings.Contains(strings.ToLower(strings.Join(snd.Headers, ",")), strings.ToLower(arg)) {
		h.Headers = append(h.Headers, webhook.NewKeptHeader(arg))
	}
	h.Handshake = snd.Handshake
	cur, err := verify.New(m.cfg, [][]byte{[]byte(m.secret)})
	if err != nil {
		t.Fatalf("%s: %v", m.name, err)
	}
	var withPrev *verify.Verifier
	if prev != "" {
		if withPrev, err = verify.New(m.cfg, [][]byte{[]byte(m.secret), []byte(prev)}); err != nil {
			t.Fatal(err)
		}
		h.PrevSecretUntil = time.Now().Add(time.Hour)
	}
	h.SetVerifiers(cur, withPrev)
	if m.cfg.Mode == "" || m.cfg.Mode == verify.ModeBearer {
		h.SecretDigest = secret.Digest([]byte("Bearer " + m.secret))
	}
	return h
}

// request is m's request with body, signed with sec at ts; drop removes a header after signing.
func (m mode) request(t testing.TB, id, sec string, body []byte, ts time.Time, drop string) req {
	t.Helper()
	path := "/hooks/" + id + m.query
	var hs signed
	if m.tokenInQuery {
		if drop == "" {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			path += sep + "token=" + url.QueryEscape(sec)
		}
	} else {
		hs = m.sign(t, sec, body, testPublicURL+path, ts)
	}
	r := req{path: path, body: body, ctype: m.ctype}
	for _, h := range hs {
		if !strings.EqualFold(h[0], drop) {
			r.headers = append(r.headers, h)
		}
	}
	return r
}

// otherSecret is a secret of m's format that is not m.secret: suffix tells several apart.
func otherSecret(m mode, suffix string) string {
	if m.cfg.HMAC.Preset == "standard_webhooks" {
		return "whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret "+suffix))
	}
	return m.secret + "-" + suffix
}

// changeOneByte flips the case of a letter near the middle of body: a one-byte change that keeps a
// form's escapes intact.
func changeOneByte(body []byte) []byte {
	b := bytes.Clone(body)
	for i := len(b) / 2; i < len(b); i++ {
		inEscape := i >= 1 && b[i-1] == '%' || i >= 2 && b[i-2] == '%' // %2b reads as %2B
		if c := b[i] | 0x20; c >= 'a' && c <= 'z' && !inEscape {
			b[i] ^= 0x20
			return b
		}
	}
	panic("no letter to change")
}

func presetEdgeConfig() Config {
	c := tableConfig()
	c.PublicURL = testPublicURL
	c.RejectedLogBurst = 1000
	return c
}

// TestModesThroughEdge: each mode's signed request is accepted with its record, and each way of
// failing gets the one 401, with the verification's result as the record's detail.
func TestModesThroughEdge(t *testing.T) {
	now := time.Now()
	var first401 string
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			hooks := &fakeHooks{hooks: map[string]*webhook.Hook{}}
			h := hookFor(t, m, "")
			hooks.set(h)
			prod := &fakeProducer{}
			e := startEdge(t, presetEdgeConfig(), hooks, prod)

			type sent struct {
				what   string
				r      req
				status int
				detail string
			}
			good := m.request(t, h.PublicID, m.secret, m.body, now, "")
			cases := []sent{
				{"signed", good, 202, ""},
				{"body changed by one byte", m.request(t, h.PublicID, m.secret, m.body, now, ""), 401, "signature_mismatch"},
				{"wrong secret", m.request(t, h.PublicID, otherSecret(m, "wrong"), m.body, now, ""), 401, "signature_mismatch"},
				{"signature header missing", m.request(t, h.PublicID, m.secret, m.body, now, m.sigHeader), 401, "signature_header_missing"},
			}
			cases[1].r.body = changeOneByte(m.body)
			if m.cfg.Mode != verify.ModeHMAC {
				cases = cases[:1]
				cases = append(cases,
					sent{"wrong secret", m.request(t, h.PublicID, otherSecret(m, "wrong"), m.body, now, ""), 401, "credentials_mismatch"},
					sent{"credentials missing", m.request(t, h.PublicID, m.secret, m.body, now, m.sigHeader), 401, "credentials_missing"})
				if m.tokenInQuery {
					cases[2].r = m.request(t, h.PublicID, m.secret, m.body, now, "token")
				}
			}
			if m.tsHeader != "" {
				p, _ := verify.Preset(m.name)
				stale := m.request(t, h.PublicID, m.secret, m.body, now.Add(-p.Tolerance-time.Minute), "")
				cases = append(cases, sent{"stale timestamp", stale, 401, "timestamp_outside_tolerance"})
				if m.tsHeader != m.sigHeader {
					cases = append(cases, sent{"timestamp missing", m.request(t, h.PublicID, m.secret, m.body, now, m.tsHeader), 401, "timestamp_missing"})
				}
			}
			for _, c := range cases {
				a := e.do(t, c.r)
				if a.status != c.status {
					t.Errorf("%s: %d %s; want %d", c.what, a.status, a.body, c.status)
				}
				if a.status == 401 {
					if first401 == "" {
						first401 = a.raw
					}
					if a.raw != first401 {
						t.Errorf("%s: 401 answered\n%s\nwant the same bytes as every 401:\n%s", c.what, a.raw, first401)
					}
				}
			}
			if err := e.stop(); err != nil {
				t.Fatal(err)
			}
			recs := prod.got()
			if len(recs) != len(cases) {
				t.Fatalf("%d records; want %d", len(recs), len(cases))
			}
			for i, c := range cases {
				rec := recs[i]
				want := &wantRecord{wire.OutcomeAccepted, c.r.body, len(c.r.body)}
				if c.status == 401 {
					want = &wantRecord{wire.OutcomeAuthRejected, c.r.body[:min(len(c.r.body), tableConfig().AuthPreviewBytes)], len(c.r.body)}
				}
				t.Run(c.what, func(t *testing.T) {
					checkRecordOf(t, "requests", want, h, "", c.status, rec, now.Add(-time.Minute), time.Now())
					if got, _ := header(rec, wire.HeaderEdgeDetail); got != c.detail {
						t.Errorf("detail %q; want %q", got, c.detail)
					}
					checkNoCredentials(t, rec, c.r)
				})
			}
			// The accepted record keeps the sender's headers the catalog names, and a form its type.
			acc := recs[0]
			for _, hv := range good.headers {
				kept := false
				for _, k := range h.Headers {
					kept = kept || strings.EqualFold(k.Name, hv[0])
				}
				got, ok := header(acc, wire.HeaderSenderPrefix+canonicalKept(h, hv[0]))
				if kept && (!ok || got != hv[1]) {
					t.Errorf("kept header %s = %q (present %v); want %q", hv[0], got, ok, hv[1])
				}
			}
			ct, ok := header(acc, wire.HeaderContentType)
			if m.ctype != "" && ct != m.ctype || m.ctype == "" && ok {
				t.Errorf("content type header %q (present %v); want %q", ct, ok, m.ctype)
			}
		})
	}
}

// canonicalKept is the webhook's spelling of a kept header name.
func canonicalKept(h *webhook.Hook, name string) string {
	for _, k := range h.Headers {
		if strings.EqualFold(k.Name, name) {
			return k.Name
		}
	}
	return name
}

// checkNoCredentials: no signature, credential or token a request carried reaches its record.
func checkNoCredentials(t *testing.T, rec *kgo.Record, r req) {
	t.Helper()
	secretish := func(name string) bool {
		n := strings.ToLower(name)
		return n == "authorization" || strings.Contains(n, "signature") || strings.Contains(n, "hmac")
	}
	var creds []string
	for _, h := range r.headers {
		if secretish(h[0]) {
			creds = append(creds, h[1])
		}
	}
	if u, err := url.Parse(r.path); err == nil && u.Query().Get("token") != "" {
		creds = append(creds, u.Query().Get("token"))
	}
	for _, h := range rec.Headers {
		if secretish(strings.TrimPrefix(h.Key, wire.HeaderSenderPrefix)) {
			t.Errorf("record header %s kept", h.Key)
		}
		for _, c := range creds {
			if strings.Contains(string(h.Value), c) {
				t.Errorf("record header %s holds a credential of the request", h.Key)
			}
		}
	}
	for _, c := range creds {
		if bytes.Contains(rec.Value, []byte(c)) {
			t.Errorf("record value holds a credential of the request")
		}
	}
}

// TestModesRotation: during a rotation's grace both secrets verify; after it only the new one.
func TestModesRotation(t *testing.T) {
	now := time.Now()
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			hooks := &fakeHooks{hooks: map[string]*webhook.Hook{}}
			old := otherSecret(m, "old")
			h := hookFor(t, m, old)
			hooks.set(h)
			e := startEdge(t, presetEdgeConfig(), hooks, &fakeProducer{})
			for sec, want := range map[string]int{m.secret: 202, old: 202, otherSecret(m, "other"): 401} {
				if a := e.do(t, m.request(t, h.PublicID, sec, m.body, now, "")); a.status != want {
					t.Errorf("during the grace, secret %q: %d; want %d", sec, a.status, want)
				}
			}
			after := *h
			after.PrevSecretUntil = time.Now().Add(-time.Second)
			hooks.set(&after)
			if a := e.do(t, m.request(t, h.PublicID, old, m.body, now, "")); a.status != 401 {
				t.Errorf("after the grace, the old secret: %d; want 401", a.status)
			}
		})
	}
}

// TestHandlerAllocsPerMode holds the handler to no allocation per request in every mode, accepted or
// refused (signed with another secret).
func TestHandlerAllocsPerMode(t *testing.T) {
	for _, m := range modes() {
		s, ctx := benchEdge(t, m)
		refused := requestCtx(m.request(t, idOf(m.name), otherSecret(m, "wrong"), m.body, time.Now(), ""))
		for want, c := range map[int]*fasthttp.RequestCtx{202: ctx, 401: refused} {
			s.handle(c) // the first request of an id makes its state
			if n := testing.AllocsPerRun(200, func() {
				c.Response.Reset()
				s.handle(c)
			}); n != 0 {
				t.Errorf("%s, %d: %v allocs per request; want 0", m.name, want, n)
			}
			if st := c.Response.StatusCode(); st != want {
				t.Errorf("%s: status %d %s; want %d", m.name, st, c.Response.Body(), want)
			}
		}
	}
}

// benchEdge is a Server with m's webhook and a request signed for it now, on a producer that
// acknowledges at once.
func benchEdge(t testing.TB, m mode) (*Server, *fasthttp.RequestCtx) {
	t.Helper()
	hooks := &fakeHooks{hooks: map[string]*webhook.Hook{}}
	h := hookFor(t, m, "")
	hooks.set(h)
	cfg := benchConfig()
	cfg.PublicURL = testPublicURL
	s, err := New(cfg, Deps{Hooks: hooks, Producer: &fakeProducer{inline: true}, Topic: "requests", Registry: newReg(), Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	return s, requestCtx(m.request(t, h.PublicID, m.secret, m.body, time.Now(), ""))
}

// requestCtx is a parsed request as the handler gets it.
func requestCtx(r req) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI(r.path)
	ctx.Request.Header.SetHost("hooks.example.com")
	if r.ctype != "" {
		ctx.Request.Header.SetContentType(r.ctype)
	}
	for _, h := range r.headers {
		ctx.Request.Header.Set(h[0], h[1])
	}
	ctx.Request.SetBody(r.body)
	return &ctx
}

// BenchmarkHandlerModes is BenchmarkHandler for every verification mode and preset (signed once, at
// the start: the timestamped schemes stay within their 5 minutes for a benchmark's run).
func BenchmarkHandlerModes(b *testing.B) {
	for _, m := range modes() {
		b.Run(m.name, func(b *testing.B) {
			s, ctx0 := benchEdge(b, m)
			r := req{path: string(ctx0.Request.RequestURI()), body: m.body, ctype: m.ctype}
			for k, v := range ctx0.Request.Header.All() {
				if !strings.EqualFold(string(k), "Host") && !strings.EqualFold(string(k), "Content-Type") && !strings.EqualFold(string(k), "Content-Length") {
					r.headers = append(r.headers, [2]string{string(k), string(v)})
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(m.body)))
			b.RunParallel(func(pb *testing.PB) {
				ctx := requestCtx(r)
				for pb.Next() {
					ctx.Response.Reset()
					s.handle(ctx)
					if ctx.Response.StatusCode() != 202 {
						b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
					}
				}
			})
		})
	}
}
