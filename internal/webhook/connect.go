package webhook

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/fieldpath"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/wire"
)

// MaxHandshakeToken bounds Meta's verify token.
const MaxHandshakeToken = 256

// neverKept are the request headers no webhook may keep with its records: credentials travel in them.
// The verification's own signature header is refused too (see connection.validate).
var neverKept = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key"}

// connection is the sender-facing part of a webhook as it is stored: the sender, how its requests are
// verified, what is kept of their headers, the dedup key and the handshake token.
type connection struct {
	Sender         string
	Verification   verify.Config
	SenderHeaders  []string
	Dedup          Dedup
	HandshakeToken string
}

// validate checks c, reporting every problem into e under the API's field names.
func (c *connection) validate(e *domainerr.ValidationError) {
	snd, ok := LookupSender(c.Sender)
	if !ok {
		names := make([]string, 0, len(senders))
		for _, s := range Senders() {
			names = append(names, s.Name)
		}
		e.Add("sender", "unknown sender %q: want one of %s", c.Sender, strings.Join(names, ", "))
	}
	if err := c.Verification.Validate(); err != nil {
		addPrefixed(e, "verification.", err)
	}

	// Kept headers: the user's list, checked; the effective list adds the sender's and the dedup's.
	sig := signatureHeaders(c.Verification)
	seen := map[string]bool{}
	for i, name := range c.SenderHeaders {
		f := fmt.Sprintf("sender_headers[%d]", i)
		switch {
		case !verify.ValidHeaderName(name):
			e.Add(f, "%q is not a header name", name)
		case slices.ContainsFunc(neverKept, func(n string) bool { return strings.EqualFold(n, name) }):
			e.Add(f, "%s carries credentials and is never kept", name)
		case slices.ContainsFunc(sig, func(n string) bool { return strings.EqualFold(n, name) }):
			e.Add(f, "%s is the signature header and is never kept", name)
		case seen[strings.ToLower(name)]:
			e.Add(f, "%s is listed twice", name)
		}
		seen[strings.ToLower(name)] = true
	}
	if n := len(c.keptHeaders(snd)); n > wire.MaxSenderHeaders {
		e.Add("sender_headers", "%d headers kept with the sender's and the dedup header; at most %d", n, wire.MaxSenderHeaders)
	}

	kind, arg := c.Dedup.Source()
	switch kind {
	case "":
		if c.Dedup.Window != 0 || len(c.Dedup.HashHeaders) > 0 {
			e.Add("dedup.key", "required when window or hash_headers is set")
		}
	case "header":
		if !verify.ValidHeaderName(arg) {
			e.Add("dedup.key", "%q is not a header name", arg)
		} else if slices.ContainsFunc(neverKept, func(n string) bool { return strings.EqualFold(n, arg) }) ||
			slices.ContainsFunc(sig, func(n string) bool { return strings.EqualFold(n, arg) }) {
			e.Add("dedup.key", "%s carries credentials or the signature and cannot be a delivery id", arg)
		}
	case "body":
		if _, err := fieldpath.Parse(arg); err != nil {
			e.Add("dedup.key", "body:%s: %v", arg, err)
		}
	case DedupBodyHash:
	default:
		e.Add("dedup.key", "%q: want header:<name>, body:<field path> or body_hash", c.Dedup.Key)
	}
	if kind != "" && kind != "invalid" {
		w, maxW := time.Duration(c.Dedup.Window), MaxDedupWindow
		if kind == DedupBodyHash {
			maxW = MaxHashWindow
		}
		if w != 0 && (w < MinDedupWindow || w > maxW) {
			e.Add("dedup.window", "%s is outside [%s, %s]", w, MinDedupWindow, maxW)
		}
	}
	if len(c.Dedup.HashHeaders) > 0 && kind != DedupBodyHash {
		e.Add("dedup.hash_headers", "only for key body_hash")
	}
	if len(c.Dedup.HashHeaders) > MaxHashHeaders {
		e.Add("dedup.hash_headers", "%d headers; at most %d", len(c.Dedup.HashHeaders), MaxHashHeaders)
	}
	for i, name := range c.Dedup.HashHeaders {
		if !verify.ValidHeaderName(name) {
			e.Add(fmt.Sprintf("dedup.hash_headers[%d]", i), "%q is not a header name", name)
		}
	}

	if c.HandshakeToken != "" && snd.Handshake != HandshakeMeta {
		e.Add("handshake_token", "only for sender meta (its verify token)")
	}
	if len(c.HandshakeToken) > MaxHandshakeToken {
		e.Add("handshake_token", "longer than %d bytes", MaxHandshakeToken)
	}
}

// keptHeaders is the effective list of headers kept with each record: the sender's, the user's, the
// dedup key's header and the body hash's headers, each once (ignoring case), in that order.
func (c *connection) keptHeaders(snd Sender) []string {
	var out []string
	add := func(name string) {
		if name != "" && !slices.ContainsFunc(out, func(n string) bool { return strings.EqualFold(n, name) }) {
			out = append(out, name)
		}
	}
	for _, h := range snd.Headers {
		add(h)
	}
	for _, h := range c.SenderHeaders {
		add(h)
	}
	if kind, arg := c.Dedup.Source(); kind == "header" {
		add(arg)
	}
	for _, h := range c.Dedup.HashHeaders {
		add(h)
	}
	return out
}

// signatureHeaders are the headers that carry the verification's credential or signature.
func signatureHeaders(v verify.Config) []string {
	switch v.Mode {
	case verify.ModeHMAC:
		h := v.HMAC
		if h.Preset != "" {
			h, _ = verify.Preset(h.Preset)
		}
		if h.Header != "" {
			return []string{h.Header}
		}
	}
	return nil
}

// addPrefixed copies a validation error's fields into e under prefix.
func addPrefixed(e *domainerr.ValidationError, prefix string, err error) {
	var v *domainerr.ValidationError
	if !errors.As(err, &v) {
		e.Add(strings.TrimSuffix(prefix, "."), "%v", err)
		return
	}
	for _, f := range v.Fields {
		e.Add(prefix+f.Field, "%s", f.Message)
	}
}

// checkSecret reports whether sec can be the secret of v (decodable, not too long), under field.
func checkSecret(e *domainerr.ValidationError, field string, v verify.Config, sec string) {
	if _, err := verify.New(v, [][]byte{[]byte(sec)}); err != nil {
		var ve *domainerr.ValidationError
		if errors.As(err, &ve) {
			for _, f := range ve.Fields {
				if strings.HasPrefix(f.Field, "secrets") {
					e.Add(field, "%s", f.Message)
				}
			}
			return
		}
		e.Add(field, "%v", err)
	}
}

// newSecretFor makes a secret for a mode in which Inlet makes it (bearer; basic and token when none is
// given); HMAC modes take the provider's.
func newSecretFor(v verify.Config) string {
	switch v.Mode {
	case verify.ModeBasic:
		return strings.TrimPrefix(secret.NewWebhookSecret(), secret.WebhookSecretPrefix)
	case verify.ModeToken:
		return "tok_" + strings.TrimPrefix(secret.NewWebhookSecret(), secret.WebhookSecretPrefix)
	}
	return secret.NewWebhookSecret()
}

// secretDigest is what secret_digest stores: SHA-256 of "Bearer <secret>" in bearer mode (what the
// edge compares), of the secret otherwise.
func secretDigest(v verify.Config, sec string) [32]byte {
	if v.Mode == "" || v.Mode == verify.ModeBearer {
		return secret.Digest([]byte(secret.Authorization(sec)))
	}
	return sha256.Sum256([]byte(sec))
}

// resolveSecret decides the secret a create or a change of verification stores: the given one, or one
// Inlet makes; "" with a field error when the mode needs the user's and none was given.
func resolveSecret(e *domainerr.ValidationError, v verify.Config, given, senderTitle string) string {
	switch v.Mode {
	case verify.ModeHMAC:
		if given == "" {
			e.Add("secret", "required: paste the signing secret %s shows", senderTitle)
			return ""
		}
	case "", verify.ModeBearer:
		if given != "" {
			e.Add("secret", "Inlet makes Bearer secrets; leave it empty (rotate to get a new one)")
			return ""
		}
		return secret.NewWebhookSecret()
	default:
		if given == "" {
			return newSecretFor(v)
		}
	}
	checkSecret(e, "secret", v, given)
	return given
}

// merge applies a patch's connection fields to c; it reports whether the sender changed (whose
// verification and dedup then apply unless the patch gives those too).
func (c *connection) merge(patch *WebhookPatch) (senderChanged bool) {
	senderChanged = patch.Sender != nil && *patch.Sender != c.Sender
	if senderChanged {
		c.Sender = *patch.Sender
		snd, _ := LookupSender(c.Sender)
		c.Verification, c.Dedup = snd.Verification, snd.Dedup
		if snd.Handshake != HandshakeMeta {
			c.HandshakeToken = ""
		}
	}
	if patch.Verification != nil {
		c.Verification = *patch.Verification
	}
	if patch.SenderHeaders != nil {
		c.SenderHeaders = *patch.SenderHeaders
	}
	if patch.Dedup != nil {
		c.Dedup = *patch.Dedup
	}
	if patch.HandshakeToken != nil {
		c.HandshakeToken = *patch.HandshakeToken
	}
	return senderChanged
}

// patchConnection applies a patch's connection fields to cur's (locked in tx) and checks the result.
// newSecret is the secret to store instead of the current one, or "" to keep it: a change of sender
// or of mode needs a new one (the given Secret, required in HMAC modes, or one Inlet makes), and so
// does a Secret given outright. A kept secret must still fit the verification (a whsec_ base64 key).
func (s *Store) patchConnection(ctx context.Context, tx pgx.Tx, cur *Webhook, patch *WebhookPatch, ve *domainerr.ValidationError) (connection, string, error) {
	conn := cur.connection()
	var sealed []byte
	if err := tx.QueryRow(ctx, `SELECT handshake_token, secret_ciphertext FROM webhooks WHERE public_id = $1`, cur.ID).
		Scan(&conn.HandshakeToken, &sealed); err != nil {
		return conn, "", err
	}
	senderChanged := conn.merge(patch)
	conn.validate(ve)
	snd, _ := LookupSender(conn.Sender)
	if snd.Handshake == HandshakeMeta && conn.HandshakeToken == "" {
		conn.HandshakeToken = secret.NewPublicID()
	}
	modeOf := func(v verify.Config) verify.Mode {
		if v.Mode == "" {
			return verify.ModeBearer
		}
		return v.Mode
	}
	if senderChanged || modeOf(conn.Verification) != modeOf(cur.Verification) || patch.Secret != nil {
		given := ""
		if patch.Secret != nil {
			given = *patch.Secret
		}
		return conn, resolveSecret(ve, conn.Verification, given, snd.Title), nil
	}
	if conn.Verification.Mode == verify.ModeHMAC && ve.Err() == nil {
		old, err := s.sealer.Open(sealed, []byte(cur.ID))
		if err != nil {
			return conn, "", fmt.Errorf("open secret (wrong master key?): %w", err)
		}
		checkSecret(ve, "verification", conn.Verification, string(old))
	}
	return conn, "", nil
}
