package ingestor

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/inlet-dev/inlet/internal/jsonvalid"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// Handshakes: the checks some senders make before they deliver, that the URL is their receiver's. The
// edge answers them from the cached config alone, for the webhooks whose Hook.Handshake names them,
// and appends nothing to Kafka: they are not deliveries. They are answered for a disabled webhook too,
// because a sender is connected (and checks the URL) before the webhook is enabled.

// maxChallenge bounds a challenge the edge echoes: Slack's, Zoom's plainToken and Meta's are a few
// dozen characters.
const maxChallenge = 256

var (
	slackURLVerification = []byte(`"url_verification"`)
	zoomURLValidation    = []byte(`"endpoint.url_validation"`)
	textContentType      = []byte("text/plain; charset=utf-8")
	nosniffKey           = []byte("X-Content-Type-Options")
	nosniff              = []byte("nosniff")
	allowGetPost         = []byte("GET, POST")
)

// postHandshake answers an authenticated POST that is the webhook's handshake: Slack's
// url_verification ({"type":"url_verification","challenge":…} → 200 {"challenge":…}) or Zoom's
// endpoint.url_validation ({"event":"endpoint.url_validation","payload":{"plainToken":…}} → 200
// {"plainToken":…,"encryptedToken":hex(HMAC-SHA256(secret token, plainToken))}). Both requests are
// signed like deliveries (the providers' own samples check the signature first), so the caller has
// verified it. ok is false for any other body, which goes on as a delivery.
func (s *Server) postHandshake(ctx *fasthttp.RequestCtx, h *webhook.Hook, now time.Time) (res result, ok bool) {
	body := ctx.PostBody()
	switch h.Handshake {
	case webhook.HandshakeSlack:
		if !bytes.Contains(body, slackURLVerification) || jsonvalid.Validate(body, s.cfg.MaxJSONDepth) != nil {
			return 0, false
		}
		var m struct {
			Type      string `json:"type"`
			Challenge string `json:"challenge"`
		}
		if json.Unmarshal(body, &m) != nil || m.Type != "url_verification" {
			return 0, false
		}
		if !validChallenge([]byte(m.Challenge)) {
			return s.respond(ctx, resInvalidHandshake), true
		}
		return answerJSON(ctx, struct {
			Challenge string `json:"challenge"`
		}{m.Challenge}), true
	case webhook.HandshakeZoom:
		if !bytes.Contains(body, zoomURLValidation) || jsonvalid.Validate(body, s.cfg.MaxJSONDepth) != nil {
			return 0, false
		}
		var m struct {
			Event   string `json:"event"`
			Payload struct {
				PlainToken string `json:"plainToken"`
			} `json:"payload"`
		}
		if json.Unmarshal(body, &m) != nil || m.Event != "endpoint.url_validation" {
			return 0, false
		}
		v := h.Verifier(now)
		if !validChallenge([]byte(m.Payload.PlainToken)) || v == nil {
			return s.respond(ctx, resInvalidHandshake), true
		}
		return answerJSON(ctx, struct {
			PlainToken     string `json:"plainToken"`
			EncryptedToken string `json:"encryptedToken"`
		}{m.Payload.PlainToken, hex.EncodeToString(v.Sign(nil, []byte(m.Payload.PlainToken)))}), true
	}
	return 0, false
}

// metaHandshake answers Meta's subscription check, GET ?hub.mode=subscribe&hub.verify_token=T&
// hub.challenge=C: 200 with C as text when T is the webhook's handshake token (compared as SHA-256
// digests in constant time, so that neither where nor how long they differ shows), 403 otherwise.
// The query holds the verify token: nothing of it is logged or stored.
func (s *Server) metaHandshake(ctx *fasthttp.RequestCtx, h *webhook.Hook) result {
	args := ctx.QueryArgs()
	got := sha256.Sum256(args.Peek("hub.verify_token"))
	want := sha256.Sum256([]byte(h.HandshakeToken))
	match := subtle.ConstantTimeCompare(got[:], want[:])
	if string(args.Peek("hub.mode")) != "subscribe" || h.HandshakeToken == "" || match != 1 {
		return s.respond(ctx, resHandshakeRefused)
	}
	challenge := args.Peek("hub.challenge")
	if !validChallenge(challenge) {
		return s.respond(ctx, resInvalidHandshake)
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentTypeBytes(textContentType)
	ctx.Response.Header.SetBytesKV(nosniffKey, nosniff)
	ctx.SetBody(challenge)
	return resHandshake
}

// validChallenge accepts 1 to maxChallenge letters, digits and -._~+/= : what providers send (Meta
// digits, Slack letters and digits, Zoom base64), and nothing an echo could turn into markup.
func validChallenge(c []byte) bool {
	if len(c) == 0 || len(c) > maxChallenge {
		return false
	}
	for _, b := range c {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("-._~+/=", b) >= 0) {
			return false
		}
	}
	return true
}

func answerJSON(ctx *fasthttp.RequestCtx, v any) result {
	out, err := json.Marshal(v)
	if err != nil { // strings only: cannot fail
		panic("ingestor: handshake answer: " + err.Error())
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentTypeBytes(jsonContentType)
	ctx.Response.Header.SetBytesKV(nosniffKey, nosniff)
	ctx.SetBody(out)
	return resHandshake
}
