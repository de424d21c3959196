package ingestor

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/form"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// multipartForm builds a multipart/form-data body with mime/multipart's writer: fields as name, value
// pairs; a file part when file is set.
func multipartForm(t *testing.T, file bool, fields ...string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := w.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if file {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="photo"; filename="a.png"`)
		h.Set("Content-Type", "image/png")
		p, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte("\x89PNG\r\n"))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes()
}

// TestContentTypes: the Content-Type decides the rule a body is held to: JSON for none, JSON types
// and text/plain; a form for the two form types; 415 for the rest and for a form with a file. Every
// refusal after authentication is logged with a detail; a form's record carries its content type.
func TestContentTypes(t *testing.T) {
	ok := secretOf(idOk)
	mct, mbody := multipartForm(t, false, "user_id", "12345", "tag", "a", "tag", "b")
	fct, fbody := multipartForm(t, true, "user_id", "12345")
	form := []byte("user_id=12345&email_address=jane%40example.com")
	xml := []byte(`<order><user_id>12345</user_id></order>`)
	rows := []struct {
		name   string
		ctype  string
		body   []byte
		status int
		code   string
		// the record: its outcome, and its detail and content type headers ("" none)
		outcome        wire.Outcome
		detail, ctypeH string
	}{
		{"no content type", noContentType, goodBody, 202, "", wire.OutcomeAccepted, "", ""},
		{"application/json", "application/json", goodBody, 202, "", wire.OutcomeAccepted, "", ""},
		{"json with charset, any case", "Application/JSON; charset=utf-8", goodBody, 202, "", wire.OutcomeAccepted, "", ""},
		{"application/*+json", "application/vnd.api+json", goodBody, 202, "", wire.OutcomeAccepted, "", ""},
		{"text/plain", "text/plain; charset=utf-8", goodBody, 202, "", wire.OutcomeAccepted, "", ""},
		{"text/plain not JSON", "text/plain", []byte("hello"), 400, "invalid_json", wire.OutcomeInvalidJSON, "unexpected 'h' at byte 0", ""},
		{"urlencoded", "application/x-www-form-urlencoded", form, 202, "", wire.OutcomeAccepted, "", "application/x-www-form-urlencoded"},
		{"urlencoded with charset", "application/x-www-form-urlencoded; charset=UTF-8", form, 202, "", wire.OutcomeAccepted, "",
			"application/x-www-form-urlencoded; charset=UTF-8"},
		{"multipart", mct, mbody, 202, "", wire.OutcomeAccepted, "", mct},
		{"multipart with a file", fct, fbody, 415, "unsupported_media_type", wire.OutcomeUnsupportedMediaType,
			`multipart part 2 ("photo") is a file: only fields are accepted`, ""},
		{"urlencoded bad escape", "application/x-www-form-urlencoded", []byte("user_id=%zz"), 400, "invalid_form", wire.OutcomeInvalidForm,
			"invalid percent-escape at byte 8", ""},
		{"JSON under the form type (curl -d)", "application/x-www-form-urlencoded", goodBody, 400, "invalid_form", wire.OutcomeInvalidForm,
			"the body looks like JSON: send it with Content-Type application/json", ""},
		{"xml", "application/xml", xml, 415, "unsupported_media_type", wire.OutcomeUnsupportedMediaType,
			`content type "application/xml" is neither JSON nor a form`, ""},
		{"octet-stream", "application/octet-stream", goodBody, 415, "unsupported_media_type", wire.OutcomeUnsupportedMediaType,
			`content type "application/octet-stream" is neither JSON nor a form`, ""},
		{"multipart/mixed", "multipart/mixed; boundary=x", []byte("--x--"), 415, "unsupported_media_type", wire.OutcomeUnsupportedMediaType,
			`content type "multipart/mixed" is neither JSON nor a form`, ""},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			prod := &fakeProducer{}
			e := startEdge(t, tableConfig(), tableHooks(), prod)
			before := time.Now()
			a := e.do(t, req{path: "/hooks/" + idOk, auth: ok, body: r.body, ctype: r.ctype})
			after := time.Now()
			rid := checkAnswer(t, row{status: r.status, code: r.code}, a)
			if err := e.stop(); err != nil {
				t.Fatal(err)
			}
			recs := prod.got()
			if len(recs) != 1 {
				t.Fatalf("%d records; want 1", len(recs))
			}
			checkRecord(t, "requests", &wantRecord{r.outcome, r.body, len(r.body)}, idOk, rid, r.status, recs[0], before, after)
			if got, _ := header(recs[0], wire.HeaderEdgeDetail); got != r.detail {
				t.Errorf("detail %q; want %q", got, r.detail)
			}
			if got, _ := header(recs[0], wire.HeaderContentType); got != r.ctypeH {
				t.Errorf("content type header %q; want %q", got, r.ctypeH)
			}
		})
	}
	// Refused unauthenticated, the type is never looked at: the one 401.
	e := startEdge(t, tableConfig(), tableHooks(), &fakeProducer{})
	if a := e.do(t, req{path: "/hooks/" + idOk, auth: "Bearer x", body: xml, ctype: "application/xml"}); a.status != 401 {
		t.Errorf("xml with a wrong secret: %d; want 401", a.status)
	}
	// The 415 names the types taken.
	a := e.do(t, req{path: "/hooks/" + idOk, auth: ok, body: xml, ctype: "application/xml"})
	for _, want := range []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("415 body %s does not name %s", a.body, want)
		}
	}
}

// TestFormRecordContentTypeBounded: a form's Content-Type longer than form.MaxContentTypeBytes is an
// invalid form, so a record never carries more.
func TestFormRecordContentTypeBounded(t *testing.T) {
	prod := &fakeProducer{}
	e := startEdge(t, tableConfig(), tableHooks(), prod)
	base := "application/x-www-form-urlencoded; x="
	at := base + strings.Repeat("y", form.MaxContentTypeBytes-len(base))
	if a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: []byte("a=1"), ctype: at}); a.status != 202 {
		t.Errorf("content type of %d bytes: %d %s; want 202", len(at), a.status, a.body)
	}
	if a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: []byte("a=1"), ctype: at + "y"}); a.status != 400 {
		t.Errorf("content type of %d bytes: %d %s; want 400", len(at)+1, a.status, a.body)
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	if got, _ := header(prod.got()[0], wire.HeaderContentType); got != at {
		t.Errorf("record content type %q; want %q", got, at)
	}
}

// TestSenderHeaders: the webhook's kept headers that a request has travel with its record (in the
// webhook's order and spelling, cut to wire.MaxSenderHeaderBytes, at most wire.MaxSenderHeaders),
// accepted or refused; headers it does not keep, and the signature, never do.
func TestSenderHeaders(t *testing.T) {
	m := modeNamed(t, "shopify")
	h := hookFor(t, m, "")
	// The catalog's six Shopify headers, and the user's up to the bound.
	for i := len(h.Headers); i < wire.MaxSenderHeaders+2; i++ {
		h.Headers = append(h.Headers, webhook.NewKeptHeader("X-Extra-"+strconv.Itoa(i)))
	}
	hooks := &fakeHooks{hooks: map[string]*webhook.Hook{}}
	hooks.set(h)
	prod := &fakeProducer{}
	e := startEdge(t, presetEdgeConfig(), hooks, prod)
	r := m.request(t, h.PublicID, m.secret, goodBody, time.Now(), "")
	long := strings.Repeat("t", wire.MaxSenderHeaderBytes+100)
	r.headers = append(r.headers, [2]string{"x-shopify-api-version", "2026-01"}, [2]string{"X-Shopify-Triggered-At", long},
		[2]string{"X-Not-Kept", "n"}, [2]string{"Cookie", "session=s3cr3t"})
	for i := 6; i < wire.MaxSenderHeaders+2; i++ {
		r.headers = append(r.headers, [2]string{"X-Extra-" + strconv.Itoa(i), "e" + strconv.Itoa(i)})
	}
	if a := e.do(t, r); a.status != 202 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	bad := r
	bad.body = changeOneByte(goodBody)
	if a := e.do(t, bad); a.status != 401 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	want := []wire.SenderHeader{
		{Key: "inlet-h-X-Shopify-Topic", Value: []byte("orders/create")},
		{Key: "inlet-h-X-Shopify-Shop-Domain", Value: []byte("shop.myshopify.com")},
		{Key: "inlet-h-X-Shopify-Webhook-Id", Value: []byte("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")},
		{Key: "inlet-h-X-Shopify-Triggered-At", Value: []byte(long[:wire.MaxSenderHeaderBytes])},
		{Key: "inlet-h-X-Shopify-API-Version", Value: []byte("2026-01")},
	}
	for i := 6; len(want) < wire.MaxSenderHeaders; i++ {
		want = append(want, wire.SenderHeader{Key: "inlet-h-X-Extra-" + strconv.Itoa(i), Value: []byte("e" + strconv.Itoa(i))})
	}
	for _, rec := range prod.got() {
		var got wire.Request
		if bad := wire.DecodeRequest(rec, &got); bad != nil {
			t.Fatalf("record breaks the contract: %v", bad)
		}
		if len(got.Sender) != len(want) {
			t.Errorf("%s: %d sender headers; want %d: %v", got.Outcome, len(got.Sender), len(want), got.Sender)
			continue
		}
		for i := range want {
			if got.Sender[i].Key != want[i].Key || !bytes.Equal(got.Sender[i].Value, want[i].Value) {
				t.Errorf("%s: sender header %d = %s %.40q; want %s %.40q", got.Outcome, i, got.Sender[i].Key, got.Sender[i].Value, want[i].Key, want[i].Value)
			}
		}
		checkNoCredentials(t, rec, r)
		for _, hd := range rec.Headers {
			if strings.Contains(hd.Key, "Not-Kept") || strings.Contains(string(hd.Value), "s3cr3t") {
				t.Errorf("record header %s %q: not kept by the webhook", hd.Key, hd.Value)
			}
		}
	}
}

// TestDefaultPublicURL: without public_url the URL a sender signed is read as http:// + Host.
func TestDefaultPublicURL(t *testing.T) {
	for _, c := range []struct {
		publicURL, signedBase string
		want                  int
	}{
		{"", "http://edge", 202},
		{"", testPublicURL, 401},
		{testPublicURL + "/", testPublicURL, 202}, // a trailing slash is dropped
		{"https://example.com/inlet", "https://example.com/inlet", 202},
	} {
		m := modeNamed(t, "twilio")
		h := hookFor(t, m, "")
		hooks := &fakeHooks{hooks: map[string]*webhook.Hook{}}
		hooks.set(h)
		cfg := tableConfig()
		cfg.PublicURL = c.publicURL
		e := startEdge(t, cfg, hooks, &fakeProducer{})
		path := "/hooks/" + h.PublicID + m.query
		r := req{path: path, body: m.body, ctype: m.ctype, headers: m.sign(t, m.secret, m.body, c.signedBase+path, time.Now())}
		if a := e.do(t, r); a.status != c.want {
			t.Errorf("public_url %q, signed for %s: %d %s; want %d", c.publicURL, c.signedBase, a.status, a.body, c.want)
		}
	}
}

// TestChunkedBodyOverLimitSigned: a chunked body over the limit to a webhook whose signature covers
// the body is answered 413, its signature unverified, when all else about it is right; missing or
// malformed it is the one 401.
func TestChunkedBodyOverLimitSigned(t *testing.T) {
	for _, c := range []struct {
		name    string
		headers string
		res     result
		detail  string
	}{
		{"signed", "X-Shopify-Hmac-Sha256: " + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\r\nX-Shopify-Topic: orders/create\r\n",
			resPayloadTooLarge, string(detailUnverified)},
		{"no signature", "X-Shopify-Topic: orders/create\r\n", resAuthRejected, "signature_header_missing"},
		{"malformed signature", "X-Shopify-Hmac-Sha256: nope\r\nX-Shopify-Topic: orders/create\r\n", resAuthRejected, "signature_malformed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := modeNamed(t, "shopify")
			h := hookFor(t, m, "")
			hooks := &fakeHooks{hooks: map[string]*webhook.Hook{}}
			hooks.set(h)
			prod := &fakeProducer{}
			e := startEdge(t, presetEdgeConfig(), hooks, prod)
			raw := strings.Replace(chunkedOverLimit("/hooks/"+h.PublicID, ""), "Content-Type:", strings.TrimSuffix(c.headers, "\r\n")+"\r\nContent-Type:", 1)
			resp := sendRaw(t, e, raw)
			if resp.StatusCode() != results[c.res].status || string(resp.Body()) != string(results[c.res].body) {
				t.Errorf("answer %d %s; want %d", resp.StatusCode(), resp.Body(), results[c.res].status)
			}
			if err := e.stop(); err != nil {
				t.Fatal(err)
			}
			recs := prod.got()
			if len(recs) != 1 {
				t.Fatalf("%d records; want 1", len(recs))
			}
			checkRecordOf(t, "requests", &wantRecord{results[c.res].outcome, nil, tableMaxBody + 1}, h, "", results[c.res].status, recs[0],
				time.Now().Add(-time.Minute), time.Now())
			if got, _ := header(recs[0], wire.HeaderEdgeDetail); got != c.detail {
				t.Errorf("detail %q; want %q", got, c.detail)
			}
			if got, _ := header(recs[0], "inlet-h-X-Shopify-Topic"); got != "orders/create" {
				t.Errorf("kept header X-Shopify-Topic %q; want it restored from the head's copy", got)
			}
		})
	}
}

// TestNoTokenInLogsOrRecords: in token mode the URL carries the secret (and Meta's verify token
// travels in a query too): no log line at debug level and no record holds either, through every
// path that logs — lookup failures, produce failures, ack timeouts, unreadable requests.
func TestNoTokenInLogsOrRecords(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := presetEdgeConfig()
	cfg.AckTimeout = 100 * time.Millisecond
	cfg.MaxHeaderBytes = 2048
	m := modeNamed(t, "token")
	h := hookFor(t, m, "")
	meta := hookFor(t, modeNamed(t, "meta"), "")
	meta.Handshake, meta.HandshakeToken = webhook.HandshakeMeta, "meta-verify-token-secret"
	hooks := tableHooks()
	hooks.set(h)
	hooks.set(meta)
	prod := &fakeProducer{}
	e := startEdgeLogging(t, cfg, hooks, prod, "requests", log)
	tokenPath := func(id, tok string) string { return "/hooks/" + id + "?token=" + tok }
	for _, r := range []req{
		{path: tokenPath(h.PublicID, m.secret), body: goodBody},
		{path: tokenPath(h.PublicID, m.secret+"-wrong"), body: goodBody},
		{path: tokenPath(h.PublicID, m.secret), body: []byte(`{"broken`)},
		{path: tokenPath(h.PublicID, m.secret), body: []byte("<x/>"), ctype: "application/xml"},
		{path: tokenPath(idBroken, m.secret), body: goodBody},
		{path: tokenPath(idUnavailable, m.secret), body: goodBody},
		{method: "GET", path: "/hooks/" + meta.PublicID + "?hub.mode=subscribe&hub.challenge=1&hub.verify_token=" + meta.HandshakeToken},
		{method: "GET", path: "/hooks/" + meta.PublicID + "?hub.mode=subscribe&hub.challenge=1&hub.verify_token=" + meta.HandshakeToken + "x"},
	} {
		e.do(t, r)
	}
	prod.mu.Lock()
	prod.err = errTestBroker
	prod.mu.Unlock()
	e.do(t, req{path: tokenPath(h.PublicID, m.secret), body: goodBody})
	prod.mu.Lock()
	prod.err, prod.hold = nil, true
	prod.mu.Unlock()
	e.do(t, req{path: tokenPath(h.PublicID, m.secret), body: goodBody}) // ack timeout
	prod.release()
	// Unreadable requests with the token in their request line: a head over max_header_bytes, and a
	// malformed one.
	sendRaw(t, e, "POST "+tokenPath(h.PublicID, m.secret)+" HTTP/1.1\r\nHost: edge\r\nX-Pad: "+strings.Repeat("p", 4096)+"\r\n\r\n")
	sendRaw(t, e, "POST "+tokenPath(h.PublicID, m.secret)+" HTTP/1.1\r\nHost: edge\r\nContent-Length: nope\r\n\r\n")
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	got := logs.String()
	for _, must := range []string{"webhook lookup failed", "request not acknowledged by kafka", "request not readable"} {
		if !strings.Contains(got, must) {
			t.Fatalf("the test did not reach the %q log line, so it proves nothing; logs:\n%s", must, got)
		}
	}
	for _, secret := range []string{m.secret, meta.HandshakeToken, "token=", "verify_token"} {
		if strings.Contains(got, secret) {
			t.Errorf("logs contain %q:\n%s", secret, got)
		}
	}
	recs := prod.got()
	if len(recs) < 5 {
		t.Fatalf("%d records; the test means to check several", len(recs))
	}
	for _, rec := range recs {
		for _, hd := range rec.Headers {
			if strings.Contains(string(hd.Value), m.secret) || strings.Contains(string(hd.Value), meta.HandshakeToken) {
				t.Errorf("record header %s holds a token", hd.Key)
			}
		}
		if bytes.Contains(rec.Value, []byte(m.secret)) {
			t.Error("record value holds the token")
		}
	}
}

var errTestBroker = errors.New("broker refused")
