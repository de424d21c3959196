package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/verify"
)

// signedRequest is a verify.Request for the store tests.
type signedRequest struct {
	body    []byte
	headers map[string]string
	query   map[string]string
}

func (r *signedRequest) Method() []byte { return []byte("POST") }
func (r *signedRequest) URI() []byte    { return []byte("/hooks/x") }
func (r *signedRequest) Body() []byte   { return r.body }
func (r *signedRequest) Header(name string) []byte {
	for k, v := range r.headers {
		if strings.EqualFold(k, name) {
			return []byte(v)
		}
	}
	return nil
}
func (r *signedRequest) Query(name string) []byte {
	if v, ok := r.query[name]; ok {
		return []byte(v)
	}
	return nil
}

func shopifySigned(secret, body string) *signedRequest {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return &signedRequest{body: []byte(body), headers: map[string]string{
		"X-Shopify-Hmac-Sha256": base64.StdEncoding.EncodeToString(m.Sum(nil)),
	}}
}

// TestConnectValidation: every connection field is checked and named in the error.
func TestConnectValidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		edit   func(in *WebhookInput)
		fields []string
	}{
		{"unknown sender", func(in *WebhookInput) { in.Sender = "myspace" }, []string{"sender"}},
		{"hmac without secret", func(in *WebhookInput) { in.Sender = "shopify" }, []string{"secret"}},
		{"tolerance out of range", func(in *WebhookInput) {
			in.Sender, in.Secret = "stripe", "whsec_x"
			in.Verification = &verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Preset: "stripe", Tolerance: 3 * time.Hour}}
		}, []string{"verification.hmac.tolerance"}},
		{"unknown preset", func(in *WebhookInput) {
			in.Sender, in.Secret = "hmac", "s"
			in.Verification = &verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Preset: "paypal"}}
		}, []string{"verification.hmac.preset"}},
		{"bearer secret given", func(in *WebhookInput) { in.Secret = "whsec_mine" }, []string{"secret"}},
		{"credential header kept", func(in *WebhookInput) { in.SenderHeaders = []string{"X-Topic", "cookie"} }, []string{"sender_headers[1]"}},
		{"signature header kept", func(in *WebhookInput) {
			in.Sender, in.Secret, in.SenderHeaders = "shopify", "s", []string{"X-Shopify-Hmac-Sha256"}
		}, []string{"sender_headers[0]"}},
		{"bad header name", func(in *WebhookInput) { in.SenderHeaders = []string{"X Topic"} }, []string{"sender_headers[0]"}},
		{"too many headers", func(in *WebhookInput) {
			in.Sender, in.Secret = "shopify", "s"
			for i := range 12 {
				in.SenderHeaders = append(in.SenderHeaders, "X-H"+strings.Repeat("x", i))
			}
		}, []string{"sender_headers"}},
		{"dedup key", func(in *WebhookInput) { in.Dedup = &Dedup{Key: "query:id"} }, []string{"dedup.key"}},
		{"dedup body path", func(in *WebhookInput) { in.Dedup = &Dedup{Key: "body:a..b"} }, []string{"dedup.key"}},
		{"dedup window", func(in *WebhookInput) {
			in.Dedup = &Dedup{Key: "header:X-Id", Window: verify.Duration(8 * 24 * time.Hour)}
		}, []string{"dedup.window"}},
		{"hash window", func(in *WebhookInput) {
			in.Dedup = &Dedup{Key: DedupBodyHash, Window: verify.Duration(25 * time.Hour)}
		}, []string{"dedup.window"}},
		{"hash headers without body_hash", func(in *WebhookInput) {
			in.Dedup = &Dedup{Key: "header:X-Id", HashHeaders: []string{"X-Topic"}}
		}, []string{"dedup.hash_headers"}},
		{"handshake token for another sender", func(in *WebhookInput) { in.HandshakeToken = "t" }, []string{"handshake_token"}},
		{"undecodable whsec secret", func(in *WebhookInput) {
			in.Sender, in.Secret = "standard_webhooks", "whsec_!!!"
		}, []string{"secret"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := seedInput()
			in.Name = c.name
			c.edit(&in)
			_, _, err := f.store.Create(ctx, f.p1, in)
			wantFields(t, err, c.fields...)
		})
	}
}

// TestConnectShopify: a webhook connected as Shopify keeps the provider's secret sealed, verifies its
// signatures at the edge's lookup, keeps Shopify's headers and dedups on X-Shopify-Webhook-Id; a
// rotation with grace verifies both secrets, and the credentials endpoint shows the current one.
func TestConnectShopify(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := seedInput()
	in.Sender, in.Secret, in.SenderHeaders = "shopify", "shpss_first", []string{"X-Request-Id"}
	w, sec, err := f.store.Create(ctx, f.p1, in)
	if err != nil {
		t.Fatal(err)
	}
	if sec != "shpss_first" || w.Verification.HMAC.Preset != "shopify" || w.Dedup.Key != "header:X-Shopify-Webhook-Id" {
		t.Fatalf("created %+v, secret %q", w, sec)
	}
	if !slices.Contains(w.KeptHeaders, "X-Shopify-Topic") || !slices.Contains(w.KeptHeaders, "X-Request-Id") {
		t.Errorf("kept headers %v", w.KeptHeaders)
	}
	var stored []byte
	if err := f.pool.QueryRow(ctx, `SELECT secret_ciphertext FROM webhooks WHERE public_id = $1`, w.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), "shpss_first") {
		t.Error("the provider's secret is stored in clear")
	}
	h, err := f.store.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := `{"id":1}`
	if got := h.Verify(shopifySigned("shpss_first", body), now); got != verify.OK {
		t.Errorf("signed with the secret: %s", got)
	}
	if got := h.Verify(shopifySigned("wrong", body), now); got != verify.SignatureMismatch {
		t.Errorf("wrong secret: %s", got)
	}
	if h.Headers[0].RecordKey != "inlet-h-X-Shopify-Topic" {
		t.Errorf("kept headers %+v", h.Headers)
	}

	if _, err := f.store.RotateSecret(ctx, f.p1, w.ID, time.Hour, ""); err == nil {
		t.Error("HMAC rotation without the new secret: no error")
	}
	if _, err := f.store.RotateSecret(ctx, f.p1, w.ID, time.Hour, "shpss_second"); err != nil {
		t.Fatal(err)
	}
	h, _ = f.store.Hook(ctx, w.ID)
	for _, s := range []string{"shpss_first", "shpss_second"} {
		if got := h.Verify(shopifySigned(s, body), now); got != verify.OK {
			t.Errorf("during the grace, %s: %s", s, got)
		}
	}
	if got := h.Verify(shopifySigned("shpss_first", body), now.Add(2*time.Hour)); got != verify.SignatureMismatch {
		t.Errorf("after the grace, the old secret: %s", got)
	}
	c, err := f.store.Credentials(ctx, f.p1, w.ID)
	if err != nil || c.Secret != "shpss_second" || c.Mode != verify.ModeHMAC || c.Authorization != "" {
		t.Errorf("credentials %+v, %v", c, err)
	}
	b, _ := json.Marshal(w)
	if strings.Contains(string(b), "shpss") {
		t.Errorf("the webhook's JSON shows the secret: %s", b)
	}
}

// TestConnectChangeMode: switching modes replaces the secret at once; Inlet makes one where it can;
// a change that keeps the mode keeps the secret.
func TestConnectChangeMode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w, bearer := f.create(t, "modes")
	tok := "token"
	w2, err := f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Sender: &tok})
	if err != nil {
		t.Fatal(err)
	}
	if w2.Verification.Mode != verify.ModeToken {
		t.Fatalf("mode %q", w2.Verification.Mode)
	}
	c, _ := f.store.Credentials(ctx, f.p1, w.ID)
	if c.Secret == bearer || !strings.HasPrefix(c.Secret, "tok_") || c.QueryParam != "token" {
		t.Errorf("token credentials %+v", c)
	}
	h, _ := f.store.Hook(ctx, w.ID)
	if got := h.Verify(&signedRequest{query: map[string]string{"token": c.Secret}}, time.Now()); got != verify.OK {
		t.Errorf("token: %s", got)
	}
	if got := h.Verify(&signedRequest{headers: map[string]string{"Authorization": "Bearer " + bearer}}, time.Now()); got == verify.OK {
		t.Error("the old bearer secret still works")
	}
	qp := "key"
	w3, err := f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Verification: &verify.Config{Mode: verify.ModeToken, QueryParam: qp}})
	if err != nil {
		t.Fatal(err)
	}
	c3, _ := f.store.Credentials(ctx, f.p1, w.ID)
	if c3.Secret != c.Secret || w3.Verification.QueryParam != "key" {
		t.Errorf("same mode: secret %q (was %q), %+v", c3.Secret, c.Secret, w3.Verification)
	}
	meta := "meta"
	if _, err := f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Sender: &meta}); err == nil {
		t.Error("to meta without the app secret: no error")
	} else {
		wantFields(t, err, "secret")
	}
	appSecret := "meta-app-secret"
	w4, err := f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Sender: &meta, Secret: &appSecret})
	if err != nil {
		t.Fatal(err)
	}
	c4, _ := f.store.Credentials(ctx, f.p1, w.ID)
	if w4.Handshake != HandshakeMeta || c4.HandshakeToken == "" || c4.Secret != appSecret {
		t.Errorf("meta: %+v %+v", w4, c4)
	}
	h, _ = f.store.Hook(ctx, w.ID)
	if h.Handshake != HandshakeMeta || h.HandshakeToken != c4.HandshakeToken {
		t.Errorf("hook handshake %q %q", h.Handshake, h.HandshakeToken)
	}
}

// TestSendersCatalog: every sender's defaults are a valid connection, and its kept headers fit.
func TestSendersCatalog(t *testing.T) {
	for _, s := range Senders() {
		c := connection{Sender: s.Name, Verification: s.Verification, Dedup: s.Dedup}
		var e domainerr.ValidationError
		c.validate(&e)
		if err := e.Err(); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		if s.Title == "" || s.SecretHelp == "" || s.URLHelp == "" {
			t.Errorf("%s: title or help missing", s.Name)
		}
	}
	if Senders()[0].Name != SenderInlet {
		t.Errorf("first sender %q", Senders()[0].Name)
	}
}
