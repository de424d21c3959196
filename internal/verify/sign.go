package verify

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/secret"
)

// Message is one request as its sender makes it, before it is signed.
type Message struct {
	// Method is the request method; default "POST".
	Method string
	// URL is the full URL the request is sent to, "https://host/hooks/{id}?query": what HubSpot v3
	// signs, and where ModeToken's token goes.
	URL string
	// Body is the raw body, signed byte for byte.
	Body []byte
	// Time is when the request is signed: the timestamp of the schemes that have one. Zero means
	// time.Now().
	Time time.Time
	// ID is the message id of the schemes that sign one (Standard Webhooks' webhook-id); they
	// require it (ErrNoMessageID).
	ID string
}

// Field is one header of a signed request.
type Field struct {
	Name, Value string
}

// Signed is what a sender adds to its request: the headers of its scheme and the URL to call.
type Signed struct {
	// URL is Message.URL, with the token in its query in ModeToken.
	URL string
	// Header lists the headers to set, in order. Values may be secrets (Authorization): redact them
	// before printing.
	Header []Field
}

// Get returns the value of the named header (case-insensitive), "" when absent.
func (s Signed) Get(name string) string {
	for _, f := range s.Header {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// ErrNoMessageID: the scheme signs a message id and Message.ID is empty.
var ErrNoMessageID = errors.New("verify: the scheme signs a message id and none was given")

// Signer makes the authentication of a webhook's requests exactly as its sender would: the
// Authorization header of ModeBearer and ModeBasic, ModeToken's query parameter, or the signature (and
// timestamp and id) headers of an HMAC scheme. It is the Verifier's mirror, for test requests (`inlet
// webhook test`) and load generators; it allocates and is not meant for the edge. Safe for concurrent
// use.
type Signer struct {
	mode Mode
	// authorization is the header value of ModeBearer and ModeBasic.
	authorization string
	queryParam    string
	token         string
	h             HMAC
	parts         []part
	newHash       func() hash.Hash
	key           []byte
}

// NewSigner builds the Signer of cfg with the webhook's current secret: "whsec_…" (ModeBearer), the
// password (ModeBasic), the token (ModeToken) or the provider's signing secret (ModeHMAC). An invalid
// cfg or unusable secret is a *domainerr.ValidationError, as New reports them.
func NewSigner(cfg Config, sec []byte) (*Signer, error) {
	if _, err := New(cfg, [][]byte{sec}); err != nil {
		return nil, err
	}
	s := &Signer{mode: cfg.Mode}
	switch cfg.Mode {
	case "", ModeBearer:
		s.mode = ModeBearer
		s.authorization = secret.Authorization(string(sec))
	case ModeBasic:
		s.authorization = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+string(sec)))
	case ModeToken:
		s.queryParam, s.token = cfg.QueryParam, string(sec)
		if s.queryParam == "" {
			s.queryParam = DefaultQueryParam
		}
	case ModeHMAC:
		s.h = cfg.HMAC.resolved()
		s.parts, _ = parseSigned(s.h.Signed) // New validated it
		for _, p := range s.parts {
			if !signable(p.kind) {
				return nil, fmt.Errorf("verify: NewSigner cannot sign %q yet: a placeholder of it has no case in Signer.signHMAC", s.h.Signed)
			}
		}
		s.newHash = hashOf(s.h.Algorithm)
		key, ok := macKey(s.h.SecretFormat, sec)
		if !ok {
			return nil, domainerr.Invalid("secret", "not whsec_ followed by base64")
		}
		s.key = key
	}
	return s, nil
}

// signable reports whether signHMAC writes parts of kind k; a placeholder added to parseSigned needs
// its case there and here, or NewSigner refuses the schemes that use it rather than sign them wrong.
func signable(k partKind) bool {
	switch k {
	case partLiteral, partMethod, partURI, partHubSpotURI, partBody, partTimestamp, partID, partFormParams:
		return true
	}
	return false
}

// Mode is the mode s signs for.
func (s *Signer) Mode() Mode { return s.mode }

// Static reports whether what Sign adds depends only on the URL and the body: no timestamp and no
// message id is signed, so a fixed body can be signed once and sent many times.
func (s *Signer) Static() bool {
	// Validate lets {timestamp} and {id} be signed only with their headers set.
	return s.mode != ModeHMAC || !s.h.hasTimestamp() && s.h.IDHeader == ""
}

// Sign returns the headers and URL a sender sends m with.
func (s *Signer) Sign(m Message) (Signed, error) {
	out := Signed{URL: m.URL}
	switch s.mode {
	case ModeBearer, ModeBasic:
		out.Header = []Field{{"Authorization", s.authorization}}
	case ModeToken:
		// Appended to the URL as written: re-encoding it through url.URL could change what the
		// sender asked for.
		base, frag, hasFrag := strings.Cut(m.URL, "#")
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		out.URL = base + sep + url.QueryEscape(s.queryParam) + "=" + url.QueryEscape(s.token)
		if hasFrag {
			out.URL += "#" + frag
		}
	case ModeHMAC:
		return s.signHMAC(m, out)
	}
	return out, nil
}

func (s *Signer) signHMAC(m Message, out Signed) (Signed, error) {
	h := &s.h
	t := m.Time
	if t.IsZero() {
		t = time.Now()
	}
	var ts string
	if h.hasTimestamp() {
		if h.TimestampUnit == Milliseconds {
			ts = strconv.FormatInt(t.UnixMilli(), 10)
		} else {
			ts = strconv.FormatInt(t.Unix(), 10)
		}
	}
	if h.IDHeader != "" && m.ID == "" {
		return out, ErrNoMessageID
	}
	method := m.Method
	if method == "" {
		method = "POST"
	}

	mac := hmac.New(s.newHash, s.key)
	var scratch [256]byte
	for _, p := range s.parts {
		switch p.kind {
		case partLiteral:
			mac.Write(p.lit)
		case partMethod:
			mac.Write([]byte(method))
		case partURI:
			mac.Write([]byte(m.URL))
		case partHubSpotURI:
			writeHubSpotURI(mac, &scratch, []byte(m.URL))
		case partFormParams:
			params, ok := parseParams(make([]formParam, 0, MaxFormParams), m.Body)
			if !ok {
				return out, fmt.Errorf("the body is not a form of at most %d parameters that Twilio could sign", MaxFormParams)
			}
			writeParams(mac, &scratch, params)
		case partBody:
			mac.Write(m.Body)
		case partTimestamp:
			mac.Write([]byte(ts))
		case partID:
			mac.Write([]byte(m.ID))
		}
	}
	sum := mac.Sum(nil)
	var sig string
	if h.Encoding == Hex {
		sig = hex.EncodeToString(sum)
	} else {
		sig = base64.StdEncoding.EncodeToString(sum)
	}
	switch h.Format {
	case FormatStripe:
		sig = "t=" + ts + ",v1=" + sig
	case FormatStandard:
		sig = "v1," + sig
	default:
		sig = h.Prefix + sig
	}
	if h.IDHeader != "" {
		out.Header = append(out.Header, Field{h.IDHeader, m.ID})
	}
	if h.TimestampHeader != "" {
		out.Header = append(out.Header, Field{h.TimestampHeader, ts})
	}
	out.Header = append(out.Header, Field{h.Header, sig})
	return out, nil
}
