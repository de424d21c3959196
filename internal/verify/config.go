// Package verify decides whether an inbound webhook request comes from its sender, in whichever way
// that sender proves it: Inlet's own bearer secret, HTTP Basic credentials, a token in the URL's query,
// or an HMAC signature in a provider's own scheme (Shopify, Stripe, GitHub, WooCommerce, HubSpot v3,
// Slack, Meta, Zoom, Standard Webhooks, Twilio, or one described field by field). A webhook's Config
// says which; a Verifier is built from it and the webhook's secrets once per config version and then
// checks every request without allocating, comparing in constant time, over the raw body bytes as
// received (or, for Twilio's form posts, over the body's parameters). The webhook
// store builds each webhook's Verifiers (internal/webhook's Hook) and the edge calls them on every
// request. A Signer is the Verifier's mirror: it authenticates a request exactly as the sender would,
// for `inlet webhook test` and the bench's load generator.
package verify

import (
	"strings"
	"time"

	"github.com/inlet-dev/inlet/internal/domainerr"
)

// Mode is how a sender proves who it is.
type Mode string

// The modes.
const (
	// ModeBearer: "Authorization: Bearer whsec_…", Inlet's own secret, checked as the edge does today
	// (SHA-256 digests compared in constant time, the scheme in any case; see internal/secret).
	ModeBearer Mode = "bearer"
	// ModeBasic: "Authorization: Basic base64(user:password)" (RFC 7617); Config.Username is the user,
	// the secret is the password.
	ModeBasic Mode = "basic"
	// ModeToken: the secret in the URL's query (Config.QueryParam, "token" by default), for senders
	// that can set neither a header nor a signature. The URL ends up in proxies' logs: the weakest mode.
	ModeToken Mode = "token"
	// ModeHMAC: an HMAC of the request, keyed by the secret, in a header (Config.HMAC).
	ModeHMAC Mode = "hmac"
)

// Algorithm is the hash of an HMAC.
type Algorithm string

// The algorithms.
const (
	SHA1   Algorithm = "sha1"
	SHA256 Algorithm = "sha256"
	SHA512 Algorithm = "sha512"
)

// Encoding is how a signature's bytes are written in its header.
type Encoding string

// The encodings.
const (
	Hex Encoding = "hex"
	// Base64 is standard base64 with padding (RFC 4648 §4), which every provider here uses.
	Base64 Encoding = "base64"
)

// Format is how the signature header is laid out.
type Format string

// The formats.
const (
	// FormatPlain: the header is one signature, after HMAC.Prefix ("sha256=…", "v0=…", or bare).
	FormatPlain Format = "plain"
	// FormatStripe: "t=<unix seconds>,v1=<sig>[,v1=<sig>…]" (other keys ignored): the timestamp is in
	// the signature header itself, and any v1 signature may match.
	FormatStripe Format = "stripe"
	// FormatStandard: Standard Webhooks' "v1,<sig> v1,<sig>…" (space-separated; other versions
	// ignored), any of which may match.
	FormatStandard Format = "standard"
)

// TimestampUnit is the unit of a timestamp header's integer.
type TimestampUnit string

// The units.
const (
	Seconds      TimestampUnit = "s"
	Milliseconds TimestampUnit = "ms"
)

// SecretFormat is how a configured secret becomes the HMAC key.
type SecretFormat string

// The secret formats.
const (
	// SecretRaw: the secret's bytes are the key.
	SecretRaw SecretFormat = "raw"
	// SecretWhsecBase64: Standard Webhooks' "whsec_<base64>": the key is the base64 after the prefix,
	// decoded (the prefix is optional, as in the Standard Webhooks libraries).
	SecretWhsecBase64 SecretFormat = "whsec_base64"
)

// The placeholders of HMAC.Signed.
const (
	PartMethod = "{method}" // the request method, "POST"
	// PartURI is Request.URI as received: the full URL the sender called, escapes as sent (Twilio).
	PartURI = "{uri}"
	// PartHubSpotURI is Request.URI with the percent-escapes HubSpot's v3 scheme decodes before
	// signing (%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B, in either case); every other escape
	// stays as sent.
	PartHubSpotURI = "{hubspot_uri}"
	PartBody       = "{body}" // the raw body as received
	// PartFormParams signs an application/x-www-form-urlencoded body by its parameters, as Twilio
	// does: sorted by name (bytewise), each name followed by its value, both decoded; a name repeated
	// with several values gives each distinct value in order. The body's raw bytes are not signed, so
	// a body whose parameters read the same verifies the same. A body with more than
	// MaxFormParams parameters, or a malformed escape, is signature_malformed.
	PartFormParams = "{form_params}"
	PartTimestamp  = "{timestamp}" // the timestamp as it appears in its header, byte for byte
	PartID         = "{id}"        // the message id header (HMAC.IDHeader)
)

// Limits of the configuration.
const (
	// DefaultTolerance is how far a signed timestamp may be from now when HMAC.Tolerance is zero:
	// 5 minutes, what Stripe, Slack, HubSpot and Standard Webhooks recommend.
	DefaultTolerance = 5 * time.Minute
	// MinTolerance and MaxTolerance bound HMAC.Tolerance: under a few seconds honest clock skew fails
	// requests; over an hour a captured request can be replayed for too long.
	MinTolerance = 5 * time.Second
	MaxTolerance = time.Hour
	// MaxSecrets is how many secrets a Verifier accepts at once: the current one and those still in a
	// rotation's grace period. Each costs one HMAC per request.
	MaxSecrets = 4
	// MaxSecretLen bounds a secret (after decoding): longer keys are hashed down by HMAC anyway.
	MaxSecretLen = 1024
	// maxHeaderName bounds a configured header or query parameter name (RFC 9110 sets no limit;
	// fasthttp's default header size does).
	maxHeaderName = 128
	maxPrefix     = 32
	maxSigned     = 256
	// MaxFormParams bounds the parameters {form_params} sorts (Twilio's callbacks carry a few dozen):
	// Verify sorts them in a fixed array, by insertion.
	MaxFormParams = 128
)

// DefaultQueryParam is the query parameter of ModeToken when Config.QueryParam is empty.
const DefaultQueryParam = "token"

// Config is how one webhook's requests are verified. The zero Config is ModeBearer. Secrets are not
// part of it: they are kept sealed apart from the config (internal/secret's Sealer) and given to New.
type Config struct {
	// Mode is how the sender proves itself; empty means ModeBearer (what every webhook did before
	// modes existed).
	Mode Mode `json:"mode,omitempty"`
	// Username is ModeBasic's user (required there, unused otherwise). It is compared in constant
	// time together with the password.
	Username string `json:"username,omitempty"`
	// QueryParam is ModeToken's query parameter; default DefaultQueryParam ("token").
	QueryParam string `json:"query_param,omitempty"`
	// HMAC describes ModeHMAC's signature (required there, must be empty otherwise).
	HMAC HMAC `json:"hmac,omitzero"`
}

// HMAC describes an HMAC signature scheme: either a Preset (a provider's exact scheme; only Tolerance
// may be set besides it) or every field by hand.
type HMAC struct {
	// Preset names a provider's scheme (see PresetNames): "github", "hubspot_v3", "meta", "shopify",
	// "slack", "standard_webhooks", "stripe", "twilio", "woocommerce", "zoom".
	Preset string `json:"preset,omitempty"`
	// Header carries the signature (looked up case-insensitively by the Request). Required.
	Header string `json:"header,omitempty"`
	// Format is the header's layout; default FormatPlain.
	Format Format `json:"format,omitempty"`
	// Algorithm is the HMAC's hash. Required.
	Algorithm Algorithm `json:"algorithm,omitempty"`
	// Encoding is how the signature is written. Required.
	Encoding Encoding `json:"encoding,omitempty"`
	// Prefix precedes the signature in a FormatPlain header ("sha256=", "v0="); a header without it
	// is signature_malformed.
	Prefix string `json:"prefix,omitempty"`
	// TimestampHeader carries the time of signing, an integer in TimestampUnit since the Unix epoch;
	// empty when the scheme has none (or, FormatStripe, has it in the signature header).
	TimestampHeader string `json:"timestamp_header,omitempty"`
	// TimestampUnit is the timestamp's unit; default Seconds.
	TimestampUnit TimestampUnit `json:"timestamp_unit,omitempty"`
	// IDHeader carries the message id that {id} signs (Standard Webhooks' webhook-id).
	IDHeader string `json:"id_header,omitempty"`
	// Signed is what is signed: literal text and the placeholders {method}, {uri}, {hubspot_uri},
	// {body}, {form_params}, {timestamp}, {id}; default "{body}". Examples: "{timestamp}.{body}"
	// (Stripe), "v0:{timestamp}:{body}" (Slack), "{method}{hubspot_uri}{body}{timestamp}" (HubSpot
	// v3), "{uri}{form_params}" (Twilio). It must sign the body exactly once, as {body} or as
	// {form_params}.
	Signed string `json:"signed,omitempty"`
	// Tolerance is how far the signed timestamp may be from now, in either direction, when the scheme
	// has one; default DefaultTolerance (5 minutes), within [MinTolerance, MaxTolerance].
	Tolerance time.Duration `json:"-"` // in JSON "tolerance", as text ("5m") or seconds: see Duration
	// SecretFormat is how a secret becomes the key; default SecretRaw.
	SecretFormat SecretFormat `json:"secret_format,omitempty"`
}

// IsZero reports whether h is unset (for the JSON omitzero of Config.HMAC).
func (h HMAC) IsZero() bool { return h == HMAC{} }

// resolved returns h with its preset applied and defaults filled in. An unknown preset is returned as
// is (Validate reports it).
func (h HMAC) resolved() HMAC {
	if h.Preset != "" {
		p, ok := presets[h.Preset]
		if !ok {
			return h
		}
		if h.Tolerance != 0 {
			p.Tolerance = h.Tolerance
		}
		p.Preset = h.Preset
		h = p
	}
	if h.Format == "" {
		h.Format = FormatPlain
	}
	if h.TimestampUnit == "" {
		h.TimestampUnit = Seconds
	}
	if h.Signed == "" {
		h.Signed = PartBody
	}
	if h.Tolerance == 0 {
		h.Tolerance = DefaultTolerance
	}
	if h.SecretFormat == "" {
		h.SecretFormat = SecretRaw
	}
	return h
}

// hasTimestamp reports whether the (resolved) scheme signs a timestamp.
func (h HMAC) hasTimestamp() bool { return h.Format == FormatStripe || h.TimestampHeader != "" }

// Validate lists every invalid field of c as a *domainerr.ValidationError (fields "mode", "username",
// "query_param", "hmac.<field>"), or returns nil. A missing or unusable secret is reported by New,
// which is given the secrets.
func (c Config) Validate() error {
	var v domainerr.ValidationError
	switch c.Mode {
	case "", ModeBearer:
	case ModeBasic:
		if c.Username == "" {
			v.Add("username", "required for mode basic")
		} else if strings.IndexByte(c.Username, ':') >= 0 {
			v.Add("username", "must not contain ':' (RFC 7617 §2)")
		} else if len(c.Username) > maxHeaderName {
			v.Add("username", "longer than %d bytes", maxHeaderName)
		}
	case ModeToken:
		if len(c.QueryParam) > maxHeaderName {
			v.Add("query_param", "longer than %d bytes", maxHeaderName)
		}
	case ModeHMAC:
		if c.HMAC.IsZero() {
			v.Add("hmac", "required for mode hmac")
		} else {
			c.HMAC.validate(&v)
		}
	default:
		v.Add("mode", "unknown mode %q: want bearer, basic, token or hmac", c.Mode)
	}
	if c.Mode != ModeBasic && c.Username != "" {
		v.Add("username", "only for mode basic")
	}
	if c.Mode != ModeToken && c.QueryParam != "" {
		v.Add("query_param", "only for mode token")
	}
	if c.Mode != ModeHMAC && !c.HMAC.IsZero() {
		v.Add("hmac", "only for mode hmac")
	}
	return v.Err()
}

func (h HMAC) validate(v *domainerr.ValidationError) {
	if h.Preset != "" {
		if _, ok := presets[h.Preset]; !ok {
			v.Add("hmac.preset", "unknown preset %q: want one of %s", h.Preset, strings.Join(PresetNames(), ", "))
			return
		}
		given := h
		given.Preset, given.Tolerance = "", 0
		if !given.IsZero() {
			v.Add("hmac.preset", "a preset sets every field but tolerance; leave the others empty")
		}
	}
	r := h.resolved()
	if r.Tolerance < MinTolerance || r.Tolerance > MaxTolerance {
		v.Add("hmac.tolerance", "%s is outside [%s, %s]", r.Tolerance, MinTolerance, MaxTolerance)
	}
	if h.Preset != "" {
		return // the preset's own fields are checked by TestPresetsValid
	}
	checkName(v, "hmac.header", r.Header, true)
	checkName(v, "hmac.timestamp_header", r.TimestampHeader, false)
	checkName(v, "hmac.id_header", r.IDHeader, false)
	switch r.Format {
	case FormatPlain, FormatStandard:
	case FormatStripe:
		if r.TimestampHeader != "" {
			v.Add("hmac.timestamp_header", "must be empty for format stripe (the timestamp is t= in the signature header)")
		}
	default:
		v.Add("hmac.format", "unknown format %q: want plain, stripe or standard", r.Format)
	}
	if r.Prefix != "" && r.Format != FormatPlain {
		v.Add("hmac.prefix", "only for format plain")
	}
	if len(r.Prefix) > maxPrefix {
		v.Add("hmac.prefix", "longer than %d bytes", maxPrefix)
	}
	switch r.Algorithm {
	case SHA1, SHA256, SHA512:
	case "":
		v.Add("hmac.algorithm", "required: sha1, sha256 or sha512")
	default:
		v.Add("hmac.algorithm", "unknown algorithm %q: want sha1, sha256 or sha512", r.Algorithm)
	}
	switch r.Encoding {
	case Hex, Base64:
	case "":
		v.Add("hmac.encoding", "required: hex or base64")
	default:
		v.Add("hmac.encoding", "unknown encoding %q: want hex or base64", r.Encoding)
	}
	switch r.TimestampUnit {
	case Seconds, Milliseconds:
	default:
		v.Add("hmac.timestamp_unit", "unknown unit %q: want s or ms", r.TimestampUnit)
	}
	switch r.SecretFormat {
	case SecretRaw, SecretWhsecBase64:
	default:
		v.Add("hmac.secret_format", "unknown secret format %q: want raw or whsec_base64", r.SecretFormat)
	}
	parts, err := parseSigned(r.Signed)
	switch {
	case len(r.Signed) > maxSigned:
		v.Add("hmac.signed", "longer than %d bytes", maxSigned)
	case err != "":
		v.Add("hmac.signed", "%s", err)
	default:
		for _, p := range parts {
			if p.kind == partTimestamp && !r.hasTimestamp() {
				v.Add("hmac.signed", "signs {timestamp} but no timestamp_header is set")
			}
			if p.kind == partID && r.IDHeader == "" {
				v.Add("hmac.signed", "signs {id} but no id_header is set")
			}
		}
	}
}

// checkName reports a header name that is required and empty, too long, or not an RFC 9110 token.
func checkName(v *domainerr.ValidationError, field, name string, required bool) {
	if name == "" {
		if required {
			v.Add(field, "required")
		}
		return
	}
	if len(name) > maxHeaderName {
		v.Add(field, "longer than %d bytes", maxHeaderName)
		return
	}
	if !isToken(name) {
		v.Add(field, "%q is not a header name", name)
	}
}

// ValidHeaderName reports whether name can be a configured header name: an RFC 9110 token of at most
// 128 bytes (the rule of every header name a Config holds).
func ValidHeaderName(name string) bool {
	return name != "" && len(name) <= maxHeaderName && isToken(name)
}

// isToken reports whether s is made of RFC 9110 token characters only.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

type partKind uint8

const (
	partLiteral partKind = iota
	partMethod
	partURI
	partHubSpotURI
	partBody
	partFormParams
	partTimestamp
	partID
)

type part struct {
	kind partKind
	lit  []byte
}

// parseSigned splits a Signed template into literals and placeholders; problem is non-empty when it
// is invalid.
func parseSigned(s string) (parts []part, problem string) {
	bodies := 0
	for len(s) > 0 {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			parts = append(parts, part{kind: partLiteral, lit: []byte(s)})
			break
		}
		if i > 0 {
			parts = append(parts, part{kind: partLiteral, lit: []byte(s[:i])})
			s = s[i:]
		}
		j := strings.IndexByte(s, '}')
		if j < 0 {
			return nil, "unclosed '{'"
		}
		var k partKind
		switch s[:j+1] {
		case PartMethod:
			k = partMethod
		case PartURI:
			k = partURI
		case PartHubSpotURI:
			k = partHubSpotURI
		case PartBody:
			k = partBody
			bodies++
		case PartFormParams:
			k = partFormParams
			bodies++
		case PartTimestamp:
			k = partTimestamp
		case PartID:
			k = partID
		default:
			return nil, "unknown placeholder " + s[:j+1] + ": want {method}, {uri}, {hubspot_uri}, {body}, {form_params}, {timestamp} or {id}"
		}
		parts = append(parts, part{kind: k})
		s = s[j+1:]
	}
	if bodies != 1 {
		return nil, "must sign the body exactly once: {body} or {form_params}"
	}
	return parts, ""
}
