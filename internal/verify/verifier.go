package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"sync"
	"time"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/secret"
)

// Request is what Verify reads of a request. Every method returns bytes owned by the request, valid
// until Verify returns, and must not allocate: fasthttp's RequestCtx backs it at the edge
// (Request.Header.Peek, QueryArgs().Peek).
type Request interface {
	// Method is the request method ("POST").
	Method() []byte
	// URI is the full URL the sender called, "https://host/path?query", escapes as received, for the
	// schemes that sign it ({uri}, {hubspot_uri}: HubSpot v3, Twilio). Behind TLS termination or a
	// proxy only the receiver's configuration knows the scheme and host the sender used (the edge's
	// public_url).
	URI() []byte
	// Body is the raw body as received, before any decoding.
	Body() []byte
	// Header is the value of the named header (case-insensitive), nil when absent.
	Header(name string) []byte
	// Query is the value of the named query parameter, decoded, nil when absent.
	Query(name string) []byte
}

// Result is the outcome of Verify: OK or why not. Its string is the detail recorded for a rejected
// request.
type Result string

// The results.
const (
	OK Result = "ok"
	// SignatureHeaderMissing: the signature header (or another header the signature needs, such as
	// Standard Webhooks' webhook-id) is absent or empty.
	SignatureHeaderMissing Result = "signature_header_missing"
	// SignatureMalformed: the signature header is there but cannot be read: wrong prefix, bad hex or
	// base64, wrong length, no t= or v1= (Stripe), no v1 (Standard Webhooks), a timestamp that is not
	// an integer.
	SignatureMalformed Result = "signature_malformed"
	// SignatureMismatch: well formed, but no signature matches any secret.
	SignatureMismatch Result = "signature_mismatch"
	// TimestampMissing: the scheme signs a timestamp and its header is absent or empty.
	TimestampMissing Result = "timestamp_missing"
	// TimestampOutsideTolerance: the signed timestamp is further from now than the tolerance, either
	// way (a replay, or a badly wrong clock).
	TimestampOutsideTolerance Result = "timestamp_outside_tolerance"
	// CredentialsMissing: bearer, basic or token mode, and no credential of that kind was presented.
	CredentialsMissing Result = "credentials_missing"
	// CredentialsMismatch: a credential was presented and matches no secret.
	CredentialsMismatch Result = "credentials_mismatch"
)

// Bounds of what Verify reads.
const (
	// maxSignatures is how many signatures of one header (Stripe's v1=, Standard Webhooks' v1,) are
	// tried; a header with more is signature_malformed. Providers send one, two while rolling.
	maxSignatures = 8
	// maxCredential bounds a Basic credential (decoded) and a query token: longer ones cannot match.
	maxCredential = 512
	// maxTimestampDigits bounds a timestamp: 13 digits is milliseconds until the year 2286.
	maxTimestampDigits = 15
)

// Verifier checks requests against one webhook's Config and secrets. Build it once per config
// version; it is safe for concurrent use.
type Verifier struct {
	mode       Mode
	h          HMAC
	parts      []part
	queryParam string
	prefix     []byte // h.Prefix, converted once
	size       int    // the MAC's size in bytes
	// digests of the expected credentials, one per secret: "Bearer <secret>" (bearer),
	// "<user>:<password>" (basic), the token (token).
	digests [][32]byte
	pool    sync.Pool // of *state
	// sign is the HMAC of the current secret, for Sign (handshakes); nil outside ModeHMAC.
	sign func() hash.Hash
}

// state is the per-request scratch of an HMAC Verifier: keyed HMAC states, one per secret (Reset keeps
// the key), and the buffers Sum and the decoders write into, so that nothing escapes to the heap.
type state struct {
	macs []hash.Hash
	sums [MaxSecrets][sha512.Size]byte
	got  [sha512.Size]byte
	// params are the body's parameters, sorted ({form_params}); capacity MaxFormParams, nil when the
	// scheme does not sign them.
	params []formParam
	// scratch holds decoded bytes on their way into a MAC ({form_params}, {hubspot_uri}).
	scratch [256]byte
}

// New builds the Verifier of cfg with its secrets: several while a rotation's grace period lets the old
// secret verify too. An invalid cfg, or secrets that are missing, too many, too long or (whsec_base64)
// undecodable, are a *domainerr.ValidationError (field "secrets" for the latter).
func New(cfg Config, secrets [][]byte) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var verr domainerr.ValidationError
	switch {
	case len(secrets) == 0:
		verr.Add("secrets", "at least one secret is required")
	case len(secrets) > MaxSecrets:
		verr.Add("secrets", "%d secrets; at most %d", len(secrets), MaxSecrets)
	}
	for i, s := range secrets {
		if len(s) == 0 {
			verr.Add(fmt.Sprintf("secrets[%d]", i), "empty")
		} else if len(s) > MaxSecretLen {
			verr.Add(fmt.Sprintf("secrets[%d]", i), "%d bytes; at most %d", len(s), MaxSecretLen)
		}
	}
	if err := verr.Err(); err != nil {
		return nil, err
	}
	v := &Verifier{mode: cfg.Mode}
	switch cfg.Mode {
	case "", ModeBearer:
		v.mode = ModeBearer
		for _, s := range secrets {
			v.digests = append(v.digests, secret.Digest([]byte(secret.Authorization(string(s)))))
		}
	case ModeBasic:
		for _, s := range secrets {
			if len(cfg.Username)+1+len(s) > maxCredential {
				return nil, domainerr.Invalid("secrets", "user and password longer than %d bytes", maxCredential)
			}
			v.digests = append(v.digests, sha256.Sum256([]byte(cfg.Username+":"+string(s))))
		}
	case ModeToken:
		v.queryParam = cfg.QueryParam
		if v.queryParam == "" {
			v.queryParam = DefaultQueryParam
		}
		for _, s := range secrets {
			if len(s) > maxCredential {
				return nil, domainerr.Invalid("secrets", "a token is at most %d bytes", maxCredential)
			}
			v.digests = append(v.digests, sha256.Sum256(s))
		}
	case ModeHMAC:
		v.h = cfg.HMAC.resolved()
		v.prefix = []byte(v.h.Prefix)
		v.parts, _ = parseSigned(v.h.Signed) // Validate checked it
		newHash := hashOf(v.h.Algorithm)
		keys := make([][]byte, len(secrets))
		for i, s := range secrets {
			k, ok := macKey(v.h.SecretFormat, s)
			if !ok {
				return nil, domainerr.Invalid(fmt.Sprintf("secrets[%d]", i), "not whsec_ followed by base64")
			}
			keys[i] = k
		}
		v.size = newHash().Size()
		current := keys[0]
		v.sign = func() hash.Hash { return hmac.New(newHash, current) }
		signsParams := slices.ContainsFunc(v.parts, func(p part) bool { return p.kind == partFormParams })
		v.pool.New = func() any {
			st := &state{macs: make([]hash.Hash, len(keys))}
			if signsParams {
				st.params = make([]formParam, 0, MaxFormParams)
			}
			for i, k := range keys {
				st.macs[i] = hmac.New(newHash, k)
			}
			return st
		}
	}
	return v, nil
}

// NewBearer is the ModeBearer Verifier of the given digests, each secret.Digest of a full
// Authorization value ("Bearer whsec_…"), as the webhook store keeps them: a bearer secret need not be
// decrypted to be checked.
func NewBearer(digests ...[32]byte) (*Verifier, error) {
	if len(digests) == 0 || len(digests) > MaxSecrets {
		return nil, domainerr.Invalid("secrets", "%d digests; want 1 to %d", len(digests), MaxSecrets)
	}
	return &Verifier{mode: ModeBearer, digests: digests}, nil
}

// Mode is the mode v checks.
func (v *Verifier) Mode() Mode { return v.mode }

// Sign appends the MAC of msg under the current (first) secret to dst, raw, for handshakes that prove
// the receiver holds the secret (Zoom's endpoint.url_validation). It returns dst unchanged outside
// ModeHMAC. It allocates: handshakes are rare.
func (v *Verifier) Sign(dst, msg []byte) []byte {
	if v.sign == nil {
		return dst
	}
	m := v.sign()
	m.Write(msg)
	return m.Sum(dst)
}

// Verify checks req, signed (where the scheme has a timestamp) no further than the tolerance from now.
// It does not allocate, compares in constant time, and tries every secret whichever matches.
func (v *Verifier) Verify(req Request, now time.Time) Result {
	switch v.mode {
	case ModeBearer:
		auth := req.Header("Authorization")
		if len(auth) == 0 {
			return CredentialsMissing
		}
		got := secret.DigestBearer(auth)
		return v.matchDigest(&got)
	case ModeBasic:
		return v.verifyBasic(req.Header("Authorization"))
	case ModeToken:
		tok := req.Query(v.queryParam)
		if len(tok) == 0 {
			return CredentialsMissing
		}
		if len(tok) > maxCredential {
			return CredentialsMismatch
		}
		got := sha256.Sum256(tok)
		return v.matchDigest(&got)
	default:
		return v.verifyHMAC(req, now)
	}
}

// matchDigest compares got with every secret's digest, all of them whichever matches.
func (v *Verifier) matchDigest(got *[32]byte) Result {
	match := 0
	for i := range v.digests {
		match |= subtle.ConstantTimeCompare(got[:], v.digests[i][:])
	}
	if match == 1 {
		return OK
	}
	return CredentialsMismatch
}

func (v *Verifier) verifyBasic(auth []byte) Result {
	const scheme = "basic "
	if len(auth) <= len(scheme) {
		return CredentialsMissing
	}
	for i := 0; i < len(scheme); i++ {
		if auth[i]|0x20 != scheme[i] { // ASCII lower case; the space is 0x20 already
			return CredentialsMissing
		}
	}
	cred := bytes.TrimLeft(auth[len(scheme):], " ")
	if len(cred) == 0 {
		return CredentialsMissing
	}
	if base64.StdEncoding.DecodedLen(len(cred)) > maxCredential {
		return CredentialsMismatch
	}
	var buf [maxCredential]byte
	n, err := base64.StdEncoding.Decode(buf[:], cred)
	if err != nil {
		return CredentialsMismatch
	}
	got := sha256.Sum256(buf[:n])
	return v.matchDigest(&got)
}

func (v *Verifier) verifyHMAC(req Request, now time.Time) Result {
	h := &v.h
	sigHeader := req.Header(h.Header)
	if len(sigHeader) == 0 {
		return SignatureHeaderMissing
	}
	var id []byte
	if h.IDHeader != "" {
		if id = req.Header(h.IDHeader); len(id) == 0 {
			return SignatureHeaderMissing
		}
	}
	var ts []byte
	switch {
	case h.Format == FormatStripe:
		ts = stripeField(sigHeader, "t")
		if len(ts) == 0 {
			return SignatureMalformed
		}
	case h.TimestampHeader != "":
		if ts = req.Header(h.TimestampHeader); len(ts) == 0 {
			return TimestampMissing
		}
	}
	if ts != nil {
		n, ok := parseUint(ts)
		if !ok {
			return SignatureMalformed
		}
		var signed time.Time
		if h.TimestampUnit == Milliseconds {
			signed = time.UnixMilli(n)
		} else {
			signed = time.Unix(n, 0)
		}
		if d := now.Sub(signed); d > h.Tolerance || d < -h.Tolerance {
			return TimestampOutsideTolerance
		}
	}

	st := v.pool.Get().(*state)
	defer v.pool.Put(st)
	if st.params != nil {
		var ok bool
		if st.params, ok = parseParams(st.params[:0], req.Body()); !ok {
			return SignatureMalformed
		}
	}
	for i, mac := range st.macs {
		mac.Reset()
		for _, p := range v.parts {
			switch p.kind {
			case partLiteral:
				mac.Write(p.lit)
			case partMethod:
				mac.Write(req.Method())
			case partURI:
				mac.Write(req.URI())
			case partHubSpotURI:
				writeHubSpotURI(mac, &st.scratch, req.URI())
			case partBody:
				mac.Write(req.Body())
			case partFormParams:
				writeParams(mac, &st.scratch, st.params)
			case partTimestamp:
				mac.Write(ts)
			case partID:
				mac.Write(id)
			}
		}
		mac.Sum(st.sums[i][:0])
	}

	matched, tried := false, 0
	switch h.Format {
	case FormatPlain:
		sig, ok := bytes.CutPrefix(sigHeader, v.prefix)
		if !ok {
			return SignatureMalformed
		}
		m, ok := v.match(st, sig)
		if !ok {
			return SignatureMalformed
		}
		matched, tried = m, 1
	case FormatStripe:
		// "t=…,v1=…,v1=…,v0=…": every v1 is a candidate; other schemes (v0 is test mode's) are ignored.
		var bad bool
		if matched, tried, bad = v.matchList(st, sigHeader, ',', "v1="); bad {
			return SignatureMalformed
		}
	case FormatStandard:
		// "v1,<sig> v1,<sig>": versions other than v1 (v1a is asymmetric) are ignored.
		var bad bool
		if matched, tried, bad = v.matchList(st, sigHeader, ' ', "v1,"); bad {
			return SignatureMalformed
		}
	}
	switch {
	case tried == 0:
		return SignatureMalformed
	case matched:
		return OK
	default:
		return SignatureMismatch
	}
}

// matchList tries every signature of a header listing several, separated by sep, that carries the
// version prefix (others are ignored); bad is true past maxSignatures or for one that cannot be decoded.
func (v *Verifier) matchList(st *state, header []byte, sep byte, prefix string) (matched bool, tried int, bad bool) {
	for rest := header; len(rest) > 0; {
		var item []byte
		item, rest, _ = bytes.Cut(rest, []byte{sep})
		sig, ok := bytes.CutPrefix(bytes.TrimSpace(item), []byte(prefix))
		if !ok {
			continue
		}
		if tried++; tried > maxSignatures {
			return false, tried, true
		}
		m, ok := v.match(st, sig)
		if !ok {
			return false, tried, true
		}
		matched = matched || m
	}
	return matched, tried, false
}

// match decodes one presented signature and compares it with every secret's MAC (all of them, in
// constant time); ok is false when it cannot be decoded or has the wrong length.
func (v *Verifier) match(st *state, sig []byte) (matched, ok bool) {
	var n int
	var err error
	if v.h.Encoding == Hex {
		if len(sig) != 2*v.size {
			return false, false
		}
		n, err = hex.Decode(st.got[:], sig)
	} else {
		if len(sig) != base64.StdEncoding.EncodedLen(v.size) {
			return false, false
		}
		n, err = base64.StdEncoding.Decode(st.got[:], sig)
	}
	if err != nil || n != v.size {
		return false, false
	}
	for i := range st.macs {
		if hmac.Equal(st.got[:n], st.sums[i][:v.size]) {
			matched = true
		}
	}
	return matched, true
}

// stripeField returns the value of key in a "k=v,k=v" header, the first one; nil when absent.
func stripeField(header []byte, key string) []byte {
	for len(header) > 0 {
		var item []byte
		item, header, _ = bytes.Cut(header, []byte{','})
		item = bytes.TrimSpace(item)
		if len(item) > len(key) && item[len(key)] == '=' && string(item[:len(key)]) == key {
			return item[len(key)+1:]
		}
	}
	return nil
}

// hashOf is the hash function of alg (Validate admits only the three).
func hashOf(alg Algorithm) func() hash.Hash {
	switch alg {
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	default:
		return sha512.New
	}
}

// macKey is the HMAC key a secret stands for in format; ok is false for a whsec_base64 secret that does
// not decode (or decodes to nothing).
func macKey(format SecretFormat, s []byte) (key []byte, ok bool) {
	if format != SecretWhsecBase64 {
		return s, true
	}
	k, err := base64.StdEncoding.DecodeString(string(bytes.TrimPrefix(s, []byte(secret.WebhookSecretPrefix))))
	return k, err == nil && len(k) > 0
}

// parseUint parses a decimal timestamp without allocating (strconv's errors would).
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > maxTimestampDigits {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
