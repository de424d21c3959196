package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/verify"
)

// connectWebhook is seedWebhook connected as sender, with the given secret (none when empty).
func connectWebhook(name, sender, secret string) map[string]any {
	in := seedWebhook("CheckoutSuccess")
	in["name"] = name
	in["sender"] = sender
	if secret != "" {
		in["secret"] = secret
	}
	return in
}

// TestSendersEndpoint: the catalog with each sender's steps, Inlet's own modes first, and what a preset
// checks.
func TestSendersEndpoint(t *testing.T) {
	e := newEnv(t)
	var got struct {
		Senders []struct {
			Name, Title  string
			URLHelp      string `json:"url_help"`
			SecretHelp   string `json:"secret_help"`
			Provider     bool
			Headers      []string
			Dedup        struct{ Key string }
			Handshake    string
			Verification struct {
				Mode string
				HMAC struct{ Preset string }
			}
			Signature *struct {
				Header, Algorithm, Encoding string
				Tolerance                   string
			}
		}
	}
	decodeInto(t, e.want("GET", "/api/v1/senders", e.keyA, nil, 200), &got)
	if len(got.Senders) < 10 || got.Senders[0].Name != "inlet" || got.Senders[0].Provider {
		t.Fatalf("senders = %+v; want the catalog, the Bearer secret first and not a provider", got.Senders)
	}
	byName := map[string]int{}
	for i, s := range got.Senders {
		byName[s.Name] = i
		if s.Title == "" || s.URLHelp == "" || s.SecretHelp == "" {
			t.Errorf("%s: title, url_help or secret_help missing", s.Name)
		}
	}
	shop := got.Senders[byName["shopify"]]
	if !shop.Provider || shop.Verification.Mode != "hmac" || shop.Verification.HMAC.Preset != "shopify" ||
		shop.Dedup.Key != "header:X-Shopify-Webhook-Id" || !strings.Contains(strings.Join(shop.Headers, ","), "X-Shopify-Topic") {
		t.Errorf("shopify = %+v", shop)
	}
	if shop.Signature == nil || shop.Signature.Header != "X-Shopify-Hmac-Sha256" || shop.Signature.Algorithm != "sha256" || shop.Signature.Encoding != "base64" {
		t.Errorf("shopify's signature = %+v; want X-Shopify-Hmac-Sha256, sha256, base64", shop.Signature)
	}
	if st := got.Senders[byName["stripe"]]; st.Signature == nil || st.Signature.Tolerance != "5m0s" {
		t.Errorf("stripe's signature = %+v; want a 5m0s tolerance", st.Signature)
	}
	if m := got.Senders[byName["meta"]]; m.Handshake != "meta_hub_challenge" {
		t.Errorf("meta's handshake = %q", m.Handshake)
	}
	for _, generic := range []string{"basic", "token", "hmac"} {
		if s := got.Senders[byName[generic]]; s.Provider || s.Signature != nil {
			t.Errorf("%s = %+v; want one of Inlet's own modes, without a preset", generic, s)
		}
	}
	e.want("GET", "/api/v1/senders", "", nil, 401)
}

// credsOf is the credentials answer.
type credsOf struct {
	URL            string
	Sender, Mode   string
	Secret         string
	Authorization  string
	Username       string
	QueryParam     string `json:"query_param"`
	HandshakeToken string `json:"handshake_token"`
	ExampleRequest string `json:"example_request"`
	TestCommand    string `json:"test_command"`
}

// TestCredentialsPerMode: for each mode the credentials say what to paste and give a request that the
// webhook's own verifier accepts as it is (bearer, basic, token), or the `inlet webhook test` command
// with the sender and its secret (HMAC).
func TestCredentialsPerMode(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	const base = "http://127.0.0.1:8080"
	compactSample := `'` + seedSample + `'`

	cases := []struct {
		sender, secret string
		check          func(t *testing.T, id string, c credsOf)
	}{
		{"inlet", "", func(t *testing.T, id string, c credsOf) {
			if c.Mode != "bearer" || !strings.HasPrefix(c.Secret, "Bearer whsec_") || c.Authorization != c.Secret || c.URL != base+"/hooks/"+id {
				t.Errorf("bearer credentials = %+v", c)
			}
			if want := "inlet webhook test -url " + base + " -webhook " + id + " -sender inlet -secret " +
				strings.TrimPrefix(c.Secret, "Bearer ") + " -body " + compactSample; c.TestCommand != want {
				t.Errorf("test command = %q; want %q", c.TestCommand, want)
			}
		}},
		{"basic", "", func(t *testing.T, id string, c credsOf) {
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte("inlet:"+c.Secret))
			if c.Mode != "basic" || c.Username != "inlet" || c.Secret == "" || c.Authorization != want || c.URL != base+"/hooks/"+id {
				t.Errorf("basic credentials = %+v; want user inlet, a password and Authorization %q", c, want)
			}
		}},
		{"basic", "my password", func(t *testing.T, _ string, c credsOf) {
			if c.Secret != "my password" || !strings.Contains(c.ExampleRequest, "'Authorization: Basic ") {
				t.Errorf("basic credentials with the user's password = %+v", c)
			}
		}},
		{"token", "", func(t *testing.T, id string, c credsOf) {
			if c.Mode != "token" || c.QueryParam != "token" || !strings.HasPrefix(c.Secret, "tok_") || c.Authorization != "" ||
				c.URL != base+"/hooks/"+id+"?token="+url.QueryEscape(c.Secret) {
				t.Errorf("token credentials = %+v; want the token in the URL", c)
			}
			if strings.Contains(c.ExampleRequest, "Authorization") {
				t.Errorf("token example %q sends an Authorization header", c.ExampleRequest)
			}
		}},
		{"token", "a token/with&odd=chars", func(t *testing.T, id string, c credsOf) {
			if c.URL != base+"/hooks/"+id+"?token=a+token%2Fwith%26odd%3Dchars" {
				t.Errorf("token URL = %q; want the token escaped in the query", c.URL)
			}
		}},
		{"shopify", "shpss_0123456789abcdef", func(t *testing.T, id string, c credsOf) {
			want := "inlet webhook test -url " + base + " -webhook " + id + " -sender shopify -secret shpss_0123456789abcdef -body " + compactSample
			if c.Mode != "hmac" || c.Secret != "shpss_0123456789abcdef" || c.Authorization != "" || c.TestCommand != want || c.ExampleRequest != want {
				t.Errorf("shopify credentials = %+v; want the pasted secret and example = test command %q", c, want)
			}
		}},
		{"stripe", "whsec_it's quoted", func(t *testing.T, _ string, c credsOf) {
			if !strings.Contains(c.TestCommand, `-sender stripe -secret 'whsec_it'\''s quoted' -body`) {
				t.Errorf("test command = %q; want the secret quoted for the shell", c.TestCommand)
			}
		}},
		{"meta", "meta-app-secret", func(t *testing.T, _ string, c credsOf) {
			if c.Mode != "hmac" || c.HandshakeToken == "" || c.Secret != "meta-app-secret" {
				t.Errorf("meta credentials = %+v; want the app secret and a verify token", c)
			}
		}},
	}
	for i, c := range cases {
		t.Run(c.sender, func(t *testing.T) {
			name := c.sender + " " + string(rune('a'+i))
			var created struct {
				ID          string
				Credentials *credsOf
			}
			out := e.want("POST", "/api/v1/webhooks", e.keyA, connectWebhook(name, c.sender, c.secret), 201)
			decodeInto(t, out, &created)
			if c.secret != "" && (created.Credentials != nil || strings.Contains(string(out), c.secret)) {
				t.Errorf("create answer echoes the secret the caller gave: %s", out)
			}
			if c.secret == "" && created.Credentials == nil {
				t.Errorf("create answer without the credentials Inlet made: %s", out)
			}
			var cr credsOf
			decodeInto(t, e.want("GET", "/api/v1/webhooks/"+created.ID+"/credentials", e.keyA, nil, 200), &cr)
			if created.Credentials != nil && *created.Credentials != cr {
				t.Errorf("create's credentials %+v differ from the endpoint's %+v", *created.Credentials, cr)
			}
			if cr.Sender != c.sender {
				t.Errorf("sender = %q; want %q", cr.Sender, c.sender)
			}
			c.check(t, created.ID, cr)
			if cr.Mode != "hmac" {
				checkCurl(t, e, created.ID, cr.ExampleRequest)
			}
		})
	}
}

// TestTestCommandVerification: a webhook whose verification is not its sender's in the catalog gets
// the flags `inlet webhook test` needs to sign as it verifies: -username, -query-param, -mode, or
// -verification with the webhook's own verification; a preset's tolerance needs none. (The commands
// are run against the real edge in cmd/inlet's TestWebhookTestThroughTheEdge.)
func TestTestCommandVerification(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	custom := map[string]any{"mode": "hmac", "hmac": map[string]any{"header": "X-Sig", "algorithm": "sha512", "encoding": "base64",
		"timestamp_header": "X-Ts", "signed": "{timestamp}.{body}", "tolerance": "2m"}}
	cases := []struct {
		name, sender string
		verification map[string]any
		secret       string
		// flags is what the command has between -sender and -secret; asJSON wants there a
		// -verification whose JSON reads back as the webhook's verification.
		flags  string
		asJSON bool
	}{
		{name: "stripe with a tolerance", sender: "stripe", verification: map[string]any{"mode": "hmac", "hmac": map[string]any{"preset": "stripe", "tolerance": "10m"}},
			secret: "whsec_tol"},
		{name: "custom HMAC", sender: "hmac", verification: custom, secret: "custom-key", asJSON: true},
		{name: "shopify as GitHub", sender: "shopify", verification: map[string]any{"mode": "hmac", "hmac": map[string]any{"preset": "github"}},
			secret: "gh", asJSON: true},
		{name: "basic user", sender: "basic", verification: map[string]any{"mode": "basic", "username": "shop"}, flags: " -username shop"},
		{name: "basic default user", sender: "basic", verification: map[string]any{"mode": "basic", "username": "inlet"}},
		{name: "token parameter", sender: "token", verification: map[string]any{"mode": "token", "query_param": "key"}, flags: " -query-param key"},
		{name: "token default parameter", sender: "token", verification: map[string]any{"mode": "token", "query_param": "token"}},
		{name: "bearer sender in basic mode", sender: "inlet", verification: map[string]any{"mode": "basic", "username": "inlet"},
			flags: " -mode basic -username inlet"},
		{name: "basic sender in token mode", sender: "basic", verification: map[string]any{"mode": "token"}, flags: " -mode token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := connectWebhook(c.name, c.sender, c.secret)
			in["verification"] = c.verification
			var created struct {
				ID           string
				Verification json.RawMessage
			}
			decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, in, 201), &created)
			var cr credsOf
			decodeInto(t, e.want("GET", "/api/v1/webhooks/"+created.ID+"/credentials", e.keyA, nil, 200), &cr)
			secret := strings.TrimPrefix(cr.Secret, "Bearer ")
			head := "inlet webhook test -url http://127.0.0.1:8080 -webhook " + created.ID + " -sender " + c.sender
			tail := " -secret " + shellArg(secret) + " -body '" + seedSample + "'"
			if !strings.HasPrefix(cr.TestCommand, head) || !strings.HasSuffix(cr.TestCommand, tail) {
				t.Fatalf("test command = %q; want %q…%q", cr.TestCommand, head, tail)
			}
			flags := strings.TrimSuffix(strings.TrimPrefix(cr.TestCommand, head), tail)
			if !c.asJSON {
				if flags != c.flags {
					t.Errorf("test command = %q; want %q between the sender and the secret", cr.TestCommand, c.flags)
				}
				if cr.Mode != "hmac" {
					checkCurl(t, e, created.ID, cr.ExampleRequest)
				}
				return
			}
			words := shellWords(t, flags)
			if len(words) != 2 || words[0] != "-verification" {
				t.Fatalf("test command = %q; want -verification and the webhook's verification", cr.TestCommand)
			}
			var got, want verify.Config
			if err := json.Unmarshal([]byte(words[1]), &got); err != nil {
				t.Fatalf("-verification %q: %v", words[1], err)
			}
			if err := json.Unmarshal(created.Verification, &want); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("-verification %+v; want the webhook's %+v", got, want)
			}
		})
	}
}

// checkCurl reads the example curl line as a shell would and presents it to the webhook's own
// verifier: URL, query and Authorization header as the sender would send them.
func checkCurl(t *testing.T, e *env, id, line string) {
	t.Helper()
	words := shellWords(t, line)
	if len(words) < 5 || words[0] != "curl" || words[2] != "-X" || words[3] != "POST" {
		t.Fatalf("example %q: want curl -sS -X POST URL …", line)
	}
	u, err := url.Parse(words[4])
	if err != nil {
		t.Fatalf("example URL %q: %v", words[4], err)
	}
	req := &curlRequest{query: u.Query(), headers: map[string]string{}}
	for i := 5; i < len(words)-1; i++ {
		switch words[i] {
		case "-H":
			k, v, _ := strings.Cut(words[i+1], ": ")
			req.headers[strings.ToLower(k)] = v
		case "--data-raw":
			req.body = words[i+1]
		}
	}
	if req.body != seedSample || req.headers["content-type"] != "application/json" {
		t.Errorf("example %q: body %q, headers %v; want the sample as JSON", line, req.body, req.headers)
	}
	h, err := e.srv.api.webhooks.Hook(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Verify(req, time.Now()); got != verify.OK {
		t.Errorf("the webhook's verifier answers %s to its example request %q", got, line)
	}
}

type curlRequest struct {
	query   url.Values
	headers map[string]string
	body    string
}

func (r *curlRequest) Method() []byte { return []byte("POST") }
func (r *curlRequest) URI() []byte    { return nil }
func (r *curlRequest) Body() []byte   { return []byte(r.body) }
func (r *curlRequest) Header(name string) []byte {
	if v, ok := r.headers[strings.ToLower(name)]; ok {
		return []byte(v)
	}
	return nil
}

func (r *curlRequest) Query(name string) []byte {
	if !r.query.Has(name) {
		return nil
	}
	return []byte(r.query.Get(name))
}

// shellWords splits a command line of plain words and single-quoted strings ('\” for a quote) as a
// POSIX shell does.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestConnectFieldErrors: the connection's invalid fields are 400s naming each field, through create
// and edit, and leave nothing behind.
func TestConnectFieldErrors(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	with := func(edit func(in map[string]any)) map[string]any {
		in := seedWebhook("CheckoutSuccess")
		edit(in)
		return in
	}
	cases := []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"hmac without secret", with(func(in map[string]any) { in["sender"] = "shopify" }), []string{"secret"}},
		{"unknown sender", with(func(in map[string]any) { in["sender"] = "myspace" }), []string{"sender"}},
		{"unknown preset", with(func(in map[string]any) {
			in["sender"], in["secret"] = "hmac", "s3cret"
			in["verification"] = map[string]any{"mode": "hmac", "hmac": map[string]any{"preset": "paypal"}}
		}), []string{"verification.hmac.preset"}},
		{"tolerance out of range", with(func(in map[string]any) {
			in["sender"], in["secret"] = "stripe", "whsec_abc"
			in["verification"] = map[string]any{"mode": "hmac", "hmac": map[string]any{"preset": "stripe", "tolerance": "2h"}}
		}), []string{"verification.hmac.tolerance"}},
		{"tolerance in seconds, too short", with(func(in map[string]any) {
			in["sender"], in["secret"] = "slack", "slack-signing"
			in["verification"] = map[string]any{"mode": "hmac", "hmac": map[string]any{"preset": "slack", "tolerance": 1}}
		}), []string{"verification.hmac.tolerance"}},
		{"forbidden headers", with(func(in map[string]any) {
			in["sender"], in["secret"] = "shopify", "shpss_x"
			in["sender_headers"] = []string{"X-Request-Id", "Authorization", "X-Shopify-Hmac-Sha256"}
		}), []string{"sender_headers[1]", "sender_headers[2]"}},
		{"dedup window", with(func(in map[string]any) {
			in["dedup"] = map[string]any{"key": "header:X-Id", "window": "200h"}
		}), []string{"dedup.window"}},
		{"custom hmac without a header", with(func(in map[string]any) {
			in["sender"], in["secret"] = "hmac", "s3cret"
			in["verification"] = map[string]any{"mode": "hmac", "hmac": map[string]any{"algorithm": "md5", "encoding": "hex"}}
		}), []string{"verification.hmac.header", "verification.hmac.algorithm"}},
		{"basic user with a colon", with(func(in map[string]any) {
			in["sender"] = "basic"
			in["verification"] = map[string]any{"mode": "basic", "username": "a:b"}
		}), []string{"verification.username"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantFieldErrors(t, e.want("POST", "/api/v1/webhooks", e.keyA, c.body, 400), c.fields...)
		})
	}
	if out := e.want("GET", "/api/v1/webhooks", e.keyA, nil, 200); !strings.Contains(string(out), `"total":0`) {
		t.Fatalf("refused creates left webhooks behind: %s", out)
	}

	// The same through an edit; a refused edit changes nothing.
	var wh struct {
		ID      string
		Version int64
	}
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, seedWebhook("CheckoutSuccess"), 201), &wh)
	path := "/api/v1/webhooks/" + wh.ID
	wantFieldErrors(t, e.want("PATCH", path, e.keyA, map[string]any{"sender": "stripe"}, 400), "secret")
	wantFieldErrors(t, e.want("PATCH", path, e.keyA, map[string]any{"sender": "nope", "dedup": map[string]any{"key": "body:a..b"}}, 400), "sender", "dedup.key")
	wantFieldErrors(t, e.want("PATCH", path, e.keyA, map[string]any{"sender": "stripe", "secret": "whsec_x",
		"verification": map[string]any{"mode": "hmac", "hmac": map[string]any{"preset": "stripe", "tolerance": 7200}}}, 400), "verification.hmac.tolerance")
	wantFieldErrors(t, e.want("PATCH", path, e.keyA, map[string]any{"sender_headers": []string{"Cookie"}}, 400), "sender_headers[0]")
	var after struct {
		Sender  string
		Version int64
	}
	decodeInto(t, e.want("GET", path, e.keyA, nil, 200), &after)
	if after.Sender != "inlet" || after.Version != wh.Version {
		t.Errorf("after refused edits: sender %q version %d; want inlet, %d", after.Sender, after.Version, wh.Version)
	}
	// Rotating an HMAC webhook's secret needs the provider's new one.
	var shop struct{ ID string }
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, connectWebhook("Shop", "shopify", "shpss_one"), 201), &shop)
	wantFieldErrors(t, e.want("POST", "/api/v1/webhooks/"+shop.ID+"/rotate-secret", e.keyA, `{"grace_seconds":60}`, 400), "secret")
	wantFieldErrors(t, e.want("POST", path+"/rotate-secret", e.keyA, `{"secret":"whsec_mine"}`, 400), "secret")
}

// wantFieldErrors checks that a problem lists exactly the given fields (in any order).
func wantFieldErrors(t *testing.T, out []byte, fields ...string) {
	t.Helper()
	var p struct {
		Status int
		Errors []struct{ Field, Message string }
	}
	decodeInto(t, out, &p)
	got := map[string]bool{}
	for _, f := range p.Errors {
		got[f.Field] = true
		if f.Message == "" {
			t.Errorf("%s: no message", f.Field)
		}
	}
	for _, f := range fields {
		if !got[f] {
			t.Errorf("problem %s does not name %s", out, f)
		}
	}
	if len(got) != len(fields) {
		t.Errorf("problem %s names %d fields; want %v", out, len(got), fields)
	}
}

// TestConnectEditAndRotate: an edit from the Bearer secret to Shopify with a pasted secret, then to
// Stripe; a rotation with the provider's new secret keeps the old one during the grace; the sender's
// headers and dedup follow the sender unless given.
func TestConnectEditAndRotate(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	var wh struct{ ID string }
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, seedWebhook("CheckoutSuccess"), 201), &wh)
	path := "/api/v1/webhooks/" + wh.ID
	type view struct {
		Sender       string
		Verification struct {
			Mode string
			HMAC struct {
				Preset    string
				Tolerance string
			}
		}
		SenderHeaders []string `json:"sender_headers"`
		KeptHeaders   []string `json:"kept_headers"`
		Dedup         struct{ Key, Window string }
		Handshake     string
	}
	var v view
	out := e.want("PATCH", path, e.keyA, map[string]any{"sender": "shopify", "secret": "shpss_first", "sender_headers": []string{"X-Request-Id"}}, 200)
	decodeInto(t, out, &v)
	if strings.Contains(string(out), "shpss_first") {
		t.Errorf("the edit's answer echoes the secret: %s", out)
	}
	if v.Sender != "shopify" || v.Verification.HMAC.Preset != "shopify" || v.Dedup.Key != "header:X-Shopify-Webhook-Id" ||
		!strings.Contains(strings.Join(v.KeptHeaders, ","), "X-Shopify-Topic") || !strings.Contains(strings.Join(v.KeptHeaders, ","), "X-Request-Id") {
		t.Errorf("after connecting as Shopify: %+v", v)
	}
	var c credsOf
	decodeInto(t, e.want("GET", path+"/credentials", e.keyA, nil, 200), &c)
	if c.Secret != "shpss_first" || !strings.Contains(c.TestCommand, "-sender shopify -secret shpss_first") {
		t.Errorf("credentials after the edit = %+v", c)
	}

	decodeInto(t, e.want("POST", path+"/rotate-secret", e.keyA, `{"secret":"shpss_second","grace_seconds":3600}`, 200), &c)
	if c.Secret != "shpss_second" || c.Mode != "hmac" || !strings.Contains(c.TestCommand, "-secret shpss_second") {
		t.Errorf("rotated credentials = %+v", c)
	}
	var rotated struct {
		PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	}
	decodeInto(t, e.want("GET", path, e.keyA, nil, 200), &rotated)
	if rotated.PreviousSecretExpiresAt == nil || time.Until(*rotated.PreviousSecretExpiresAt) < 50*time.Minute {
		t.Errorf("previous secret expires at %v; want in about an hour", rotated.PreviousSecretExpiresAt)
	}

	// To Stripe with a tolerance: its dedup and no Shopify headers; the user's header stays.
	decodeInto(t, e.want("PATCH", path, e.keyA, map[string]any{"sender": "stripe", "secret": "whsec_stripe",
		"verification": map[string]any{"mode": "hmac", "hmac": map[string]any{"preset": "stripe", "tolerance": 600}}}, 200), &v)
	if v.Sender != "stripe" || v.Verification.HMAC.Tolerance != "10m0s" || v.Dedup.Key != "body:id" ||
		strings.Contains(strings.Join(v.KeptHeaders, ","), "X-Shopify") || strings.Join(v.SenderHeaders, ",") != "X-Request-Id" {
		t.Errorf("after connecting as Stripe: %+v", v)
	}
	decodeInto(t, e.want("GET", path+"/credentials", e.keyA, nil, 200), &c)
	if c.Secret != "whsec_stripe" || c.Sender != "stripe" {
		t.Errorf("credentials after Stripe = %+v", c)
	}
	// Dedup given explicitly wins over the sender's, and can be turned off.
	decodeInto(t, e.want("PATCH", path, e.keyA, map[string]any{"dedup": map[string]any{"key": "body_hash", "window": "15m", "hash_headers": []string{"X-Topic"}}}, 200), &v)
	if v.Dedup.Key != "body_hash" || v.Dedup.Window != "15m0s" {
		t.Errorf("dedup = %+v; want body_hash for 15m0s", v.Dedup)
	}
	v = view{}
	decodeInto(t, e.want("PATCH", path, e.keyA, map[string]any{"dedup": map[string]any{}}, 200), &v)
	if v.Dedup.Key != "" {
		t.Errorf("dedup = %+v; want none", v.Dedup)
	}
}

// TestPastedSecretNeverEchoed: a secret the user pastes is answered only by the credentials and
// rotate-secret endpoints: not by a create, a get, a list or an edit, nor by a refusal of a body that
// carries it (sonic's decode errors quote the body), and it reaches no log line, on the error paths too.
func TestPastedSecretNeverEchoed(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	const first, second, third = "shpss_FirstPastedSecret", "shpss_SecondPastedSecret", "whsec_ThirdPastedSecret"
	answers := map[string][]byte{}
	var wh struct{ ID string }
	answers["create"] = e.want("POST", "/api/v1/webhooks", e.keyA, connectWebhook("Shop", "shopify", first), 201)
	decodeInto(t, answers["create"], &wh)
	path := "/api/v1/webhooks/" + wh.ID
	answers["get"] = e.want("GET", path, e.keyA, nil, 200)
	answers["list"] = e.want("GET", "/api/v1/webhooks", e.keyA, nil, 200)
	answers["edit"] = e.want("PATCH", path, e.keyA, map[string]any{"sender": "stripe", "secret": third}, 200)
	answers["enable"] = e.want("POST", path+"/enable", e.keyA, nil, 200)
	answers["refused edit"] = e.want("PATCH", path, e.keyA, map[string]any{"secret": second, "sender_headers": []string{"Cookie"}}, 400)
	answers["refused create"] = e.want("POST", "/api/v1/webhooks", e.keyA, map[string]any{"sender": "shopify", "secret": second}, 400)
	answers["refused rotation"] = e.want("POST", path+"/rotate-secret", e.keyA, map[string]any{"secret": second, "grace_seconds": -1}, 400)
	// A body that is not JSON, or not of the right types, is refused without quoting it.
	answers["malformed body"] = e.want("POST", "/api/v1/webhooks", e.keyA, `{"secret":"`+second+`","name": }`, 400)
	answers["mistyped body"] = e.want("PATCH", path, e.keyA, `{"secret":"`+second+`","sender_headers":"X-Id"}`, 400)
	answers["malformed rotation"] = e.want("POST", path+"/rotate-secret", e.keyA, `{"secret":"`+second+`",}`, 400)
	for what, out := range answers {
		for _, s := range []string{first, second, third, "PastedSecret"} {
			if strings.Contains(string(out), s) {
				t.Errorf("the %s answer shows a pasted secret: %s", what, out)
			}
		}
	}
	// Only these answer it.
	if out := e.want("GET", path+"/credentials", e.keyA, nil, 200); !strings.Contains(string(out), third) {
		t.Errorf("credentials = %s; want the current secret", out)
	}
	if out := e.want("POST", path+"/rotate-secret", e.keyA, map[string]any{"secret": second, "grace_seconds": 60}, 200); !strings.Contains(string(out), second) {
		t.Errorf("rotation = %s; want the new secret", out)
	}
	// An internal error is logged: close the ClickHouse connection under the activity reader.
	_ = e.ch.Close()
	e.do("GET", path+"/summary", e.keyA, nil)
	logs := e.logs.String()
	if !strings.Contains(logs, "admin request failed") {
		t.Fatalf("the forced error was not logged; the test would prove nothing. logs:\n%s", logs)
	}
	if strings.Contains(logs, "PastedSecret") {
		t.Errorf("logs contain a pasted secret:\n%s", logs)
	}
}
