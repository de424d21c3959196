package ingestor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Handshakes are answered as each provider's docs expect, from the config alone: nothing reaches the
// producer, and a webhook that is still disabled (being connected) answers them too.

// modeNamed is the mode of that name from modes().
func modeNamed(t testing.TB, name string) mode {
	t.Helper()
	for _, m := range modes() {
		if m.name == name {
			return m
		}
	}
	t.Fatalf("no mode %s", name)
	return mode{}
}

// handshakeEdge serves one disabled webhook of mode name on a producer that must stay empty.
func handshakeEdge(t *testing.T, name string, edit func(*webhook.Hook)) (*edge, *webhook.Hook, mode, *fakeProducer) {
	t.Helper()
	m := modeNamed(t, name)
	h := hookFor(t, m, "")
	h.Enabled = false // being connected: the sender checks the URL before the webhook is enabled
	if edit != nil {
		edit(h)
	}
	hooks := &fakeHooks{hooks: map[string]*webhook.Hook{}}
	hooks.set(h)
	prod := &fakeProducer{}
	return startEdge(t, presetEdgeConfig(), hooks, prod), h, m, prod
}

// noRecords: the handshakes touched no producer.
func noRecords(t *testing.T, e *edge, prod *fakeProducer) {
	t.Helper()
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	if recs := prod.got(); len(recs) != 0 {
		t.Errorf("%d records appended; want none for handshakes", len(recs))
	}
}

func TestSlackURLVerification(t *testing.T) {
	e, h, m, prod := handshakeEdge(t, "slack", nil)
	now := time.Now()
	// Slack's documented url_verification request.
	body := []byte(`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	a := e.do(t, m.request(t, h.PublicID, m.secret, body, now, ""))
	var got struct{ Challenge string }
	if a.status != 200 || json.Unmarshal([]byte(a.body), &got) != nil || got.Challenge != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("signed url_verification: %d %s; want 200 {\"challenge\":\"3eZb…\"}", a.status, a.body)
	}
	long := []byte(`{"type":"url_verification","challenge":"` + strings.Repeat("c", maxChallenge+1) + `"}`)
	if a := e.do(t, m.request(t, h.PublicID, m.secret, long, now, "")); a.status != 400 || !strings.Contains(a.body, "invalid_handshake") {
		t.Errorf("challenge over %d bytes: %d %s; want 400 invalid_handshake", maxChallenge, a.status, a.body)
	}
	atLimit := []byte(`{"type":"url_verification","challenge":"` + strings.Repeat("c", maxChallenge) + `"}`)
	if a := e.do(t, m.request(t, h.PublicID, m.secret, atLimit, now, "")); a.status != 200 {
		t.Errorf("challenge of %d bytes: %d %s; want 200", maxChallenge, a.status, a.body)
	}
	noRecords(t, e, prod)

	// Unsigned, it is refused like any request: the challenge is not echoed to whoever asks.
	e, h, m, prod = handshakeEdge(t, "slack", nil)
	if a := e.do(t, m.request(t, h.PublicID, otherSecret(m, "wrong"), body, now, "")); a.status != 401 || strings.Contains(a.body, "3eZb") {
		t.Errorf("wrongly signed url_verification: %d %s; want 401", a.status, a.body)
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	if recs := prod.got(); len(recs) != 1 {
		t.Errorf("%d records; want the one auth_rejected", len(recs))
	} else if o, _ := header(recs[0], wire.HeaderEdgeOutcome); o != string(wire.OutcomeAuthRejected) {
		t.Errorf("record outcome %q; want auth_rejected", o)
	}
}

// A webhook that is not connected to Slack takes such a body as a delivery.
func TestHandshakeOnlyForItsSender(t *testing.T) {
	body := []byte(`{"type":"url_verification","challenge":"abc","event":"endpoint.url_validation","payload":{"plainToken":"abc"}}`)
	for _, name := range []string{"bearer", "stripe"} {
		m := modeNamed(t, name)
		h := hookFor(t, m, "")
		hooks := &fakeHooks{hooks: map[string]*webhook.Hook{}}
		hooks.set(h)
		e := startEdge(t, presetEdgeConfig(), hooks, &fakeProducer{})
		if a := e.do(t, m.request(t, h.PublicID, m.secret, body, time.Now(), "")); a.status != 202 {
			t.Errorf("%s: %d %s; want 202 (a delivery)", name, a.status, a.body)
		}
		get := req{method: "GET", path: "/hooks/" + h.PublicID + "?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1"}
		if a := e.do(t, get); a.status != 405 || a.allow != "POST" {
			t.Errorf("%s: GET %d Allow %q; want 405 Allow POST", name, a.status, a.allow)
		}
	}
}

func TestZoomURLValidation(t *testing.T) {
	e, h, m, prod := handshakeEdge(t, "zoom", nil)
	now := time.Now()
	// Zoom's documented endpoint.url_validation request.
	body := []byte(`{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}`)
	a := e.do(t, m.request(t, h.PublicID, m.secret, body, now, ""))
	mac := hmac.New(sha256.New, []byte(m.secret))
	mac.Write([]byte("qgg8vlvZRS6UYooatFL8Aw"))
	var got struct{ PlainToken, EncryptedToken string }
	if a.status != 200 || json.Unmarshal([]byte(a.body), &got) != nil || got.PlainToken != "qgg8vlvZRS6UYooatFL8Aw" ||
		got.EncryptedToken != hex.EncodeToString(mac.Sum(nil)) {
		t.Errorf("signed endpoint.url_validation: %d %s; want 200 with plainToken and hex HMAC-SHA256 of it", a.status, a.body)
	}
	if a := e.do(t, m.request(t, h.PublicID, m.secret, body, now, "x-zm-signature")); a.status != 401 {
		t.Errorf("unsigned endpoint.url_validation: %d %s; want 401", a.status, a.body)
	}
	empty := []byte(`{"payload":{},"event":"endpoint.url_validation"}`)
	if a := e.do(t, m.request(t, h.PublicID, m.secret, empty, now, "")); a.status != 400 {
		t.Errorf("no plainToken: %d %s; want 400", a.status, a.body)
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	if recs := prod.got(); len(recs) != 1 { // the unsigned one's auth_rejected only
		t.Errorf("%d records; want 1 (auth_rejected)", len(recs))
	}
}

func TestMetaSubscription(t *testing.T) {
	const token = "meta-verify-token-0123"
	e, h, _, prod := handshakeEdge(t, "meta", func(h *webhook.Hook) { h.HandshakeToken = token })
	path := "/hooks/" + h.PublicID
	get := func(query string) answer {
		return e.do(t, req{method: "GET", path: path + query, ctype: noContentType})
	}

	a := get("?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=" + token)
	if a.status != 200 || a.body != "1158201444" || !strings.Contains(a.raw, "Content-Type: text/plain") {
		t.Errorf("subscribe with the token: %d %q\n%s; want 200 text/plain 1158201444", a.status, a.body, a.raw)
	}
	for what, q := range map[string]string{
		"wrong token":       "?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=" + token + "x",
		"token prefix":      "?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meta",
		"no token":          "?hub.mode=subscribe&hub.challenge=1158201444",
		"other mode":        "?hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=" + token,
		"no query":          "",
		"token not in mode": "?hub.challenge=1&hub.verify_token=" + token,
	} {
		if a := get(q); a.status != 403 || !strings.Contains(a.body, "handshake_refused") || strings.Contains(a.body, "1158201444") {
			t.Errorf("%s: %d %s; want 403 handshake_refused", what, a.status, a.body)
		}
	}
	for what, q := range map[string]string{
		"no challenge":       "?hub.mode=subscribe&hub.verify_token=" + token,
		"challenge too long": "?hub.mode=subscribe&hub.verify_token=" + token + "&hub.challenge=" + strings.Repeat("1", maxChallenge+1),
		"challenge markup":   "?hub.mode=subscribe&hub.verify_token=" + token + "&hub.challenge=%3Cscript%3E",
	} {
		if a := get(q); a.status != 400 {
			t.Errorf("%s: %d %s; want 400", what, a.status, a.body)
		}
	}
	if a := get("?hub.mode=subscribe&hub.verify_token=" + token + "&hub.challenge=" + strings.Repeat("1", maxChallenge)); a.status != 200 {
		t.Errorf("challenge of %d bytes: %d; want 200", maxChallenge, a.status)
	}
	if a := e.do(t, req{method: "PUT", path: path}); a.status != 405 || a.allow != "GET, POST" {
		t.Errorf("PUT: %d Allow %q; want 405 Allow: GET, POST", a.status, a.allow)
	}
	noRecords(t, e, prod)
}
