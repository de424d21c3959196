// Package webhook is the configuration model shared by the admin API, the ingestor and the pipeline:
// events with typed attributes, webhooks with their identifier and mappings, their PostgreSQL store and
// the cached, push-invalidated lookup the data path uses.
package webhook

import (
	"crypto/subtle"
	"fmt"
	"time"
	_ "time/tzdata" // time zones by name on any host, the same in every build: see LoadTimeZone

	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/wire"
)

// AttrType is an event attribute's type, as in the seed platform.
type AttrType string

// The attribute types.
const (
	TypeInteger AttrType = "integer"
	TypeString  AttrType = "string"
	TypeList    AttrType = "list"
	TypeDate    AttrType = "date"
	TypeBoolean AttrType = "boolean"
	TypePrice   AttrType = "price"
)

// Valid reports whether t is one of the attribute types.
func (t AttrType) Valid() bool {
	switch t {
	case TypeInteger, TypeString, TypeList, TypeDate, TypeBoolean, TypePrice:
		return true
	}
	return false
}

// Limits of the catalog and of webhooks (the seed platform's where it has them).
const (
	MaxEventNameLen     = 32
	MaxAttributeNameLen = 64
	MaxAttributes       = 128 // per event
	MaxMappings         = 128 // per webhook
	MaxWebhookNameLen   = 100
	MaxPathLen          = 512
	MaxSamplePayload    = 64 << 10
)

// Attribute is one typed attribute of an event.
type Attribute struct {
	Name string   `json:"name"`
	Type AttrType `json:"type"`
}

// Event is a catalog entry.
type Event struct {
	ID          int64       `json:"id"`
	ProjectID   int64       `json:"-"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Attributes  []Attribute `json:"attributes"`
	Version     int64       `json:"version"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// Mapping fills one event attribute from one payload field (a path, see package fieldpath) or from a
// CEL expression over body and headers (and item, index in a fan-out route): exactly one of Field and
// Expr.
type Mapping struct {
	Attribute string `json:"attribute"`
	Field     string `json:"field,omitempty"`
	// Expr is a CEL expression whose value fills the attribute, coerced to its type as a field's value
	// is: `body.total_cents / 100.0`, `body.first_name + " " + body.last_name`.
	Expr string `json:"expr,omitempty"`
	// OnError is what a value that cannot be coerced to the attribute's type does: "fail" (the
	// default, stored as "") fails the request with the reason of the failure; "drop" omits the
	// attribute, fires the event and says why in the request's detail.
	OnError string `json:"on_error,omitempty"`
}

// The values of Mapping.OnError.
const (
	OnErrorFail = "fail"
	OnErrorDrop = "drop"
)

// Identify says which payload field holds the subscriber's identifier and what kind it is.
type Identify struct {
	Kind  identify.Kind `json:"kind"`
	Field string        `json:"field"`
}

// DefaultTimeZone is a webhook's time zone unless it names one.
const DefaultTimeZone = "UTC"

// maxTimeZoneLen bounds a time zone name (the longest IANA name has 32 characters).
const maxTimeZoneLen = 64

// LoadTimeZone loads an IANA time zone by name ("Europe/Berlin", "UTC"), from the database embedded
// in the binary (time/tzdata) when the host has none. "" is UTC; "Local" is refused: the host's zone
// is no property of a webhook.
func LoadTimeZone(name string) (*time.Location, error) {
	switch {
	case name == "" || name == DefaultTimeZone:
		return time.UTC, nil
	case name == "Local" || len(name) > maxTimeZoneLen:
		return nil, fmt.Errorf("%q is not an IANA time zone name such as Europe/Berlin", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone name such as Europe/Berlin", name)
	}
	return loc, nil
}

// Hook is what the data path needs to know about a webhook: everything to authenticate a request, and
// everything to turn its body into an event. It is immutable once built; a change produces a new Hook
// with a higher Version.
type Hook struct {
	PublicID  string
	ProjectID int64
	Enabled   bool
	Version   int64

	// SecretDigest is SHA-256 of the full Authorization value ("Bearer whsec_…").
	SecretDigest [32]byte
	// PrevSecretDigest is accepted until PrevSecretUntil (rotation grace); zero time means none.
	PrevSecretDigest [32]byte
	PrevSecretUntil  time.Time
	// SecretRotatedAt resets the auth-failure streak.
	SecretRotatedAt time.Time

	// Sender is the sender the webhook was connected as (see LookupSender); SenderInlet by default.
	Sender string
	// Verification is how requests prove their sender; its secrets are in the verifiers. The store
	// points it at the sender's own when it is the sender's default (most webhooks), so that it costs
	// a Hook one pointer rather than the config's ~230 bytes of string headers; nil is the zero Config
	// (bearer). It must not be modified.
	Verification *verify.Config
	// verifier checks with the current secret, verifierPrev with the previous one too (during a
	// rotation's grace period). Nil in a Hook built by hand: Verify then compares SecretDigest and
	// PrevSecretDigest as bearer secrets.
	verifier, verifierPrev *verify.Verifier
	// verifiersLeftOut: read by a process that does not verify (Store.WithoutVerifiers); Verify refuses.
	verifiersLeftOut bool
	// Headers are the sender headers kept with every record: the sender's, the user's and the dedup
	// header, without duplicates.
	Headers []KeptHeader
	// Dedup is where the sender's delivery id is; zero for none.
	Dedup Dedup
	// Handshake is the challenge the edge answers for this webhook, and HandshakeToken Meta's verify
	// token.
	Handshake      Handshake
	HandshakeToken string

	// Routes are the webhook's routes in order (see Route); the store always fills them.
	Routes []HookRoute
	// EventName, Identify and Mappings are the first route's (the store sets them as it sets Routes),
	// or a single route's in a Hook built by hand without Routes (see RouteList). Mappings carry the
	// attribute type so the pipeline needs no second lookup.
	EventName string
	Identify  Identify
	Mappings  []TypedMapping
	// UnknownUser is the first (or single) route's, as EventName, Identify and Mappings are.
	UnknownUser string
	// Mask is what the stored copies of its requests mask (Sensitive with the project's key); zero
	// when nothing is.
	Mask Mask
	// HoldFor is the first (or single) route's (HookRoute.HoldFor).
	HoldFor time.Duration
	// CreateFrom is the first (or single) route's (HookRoute.CreateFrom).
	CreateFrom
	// Location is the webhook's time zone (TimeZone, loaded once per config version): dates without
	// an offset are read in it. Nil means UTC.
	Location *time.Location
}

// TypedMapping is a Mapping with the attribute's type resolved from the event.
type TypedMapping struct {
	Attribute string
	Type      AttrType
	Field     string
	Expr      string
	// OnError is what a value that does not coerce does: OnErrorFail ("" too) or OnErrorDrop.
	OnError string
}

// AcceptsPrevious reports whether the previous secret still works at now.
func (h *Hook) AcceptsPrevious(now time.Time) bool {
	return !h.PrevSecretUntil.IsZero() && now.Before(h.PrevSecretUntil)
}

// Verifier is what checks the webhook's requests at now: with the previous secret too while a
// rotation's grace period runs. Nil for a Hook built by hand without SetVerifiers.
func (h *Hook) Verifier(now time.Time) *verify.Verifier {
	if h.verifierPrev != nil && h.AcceptsPrevious(now) {
		return h.verifierPrev
	}
	return h.verifier
}

// Verify checks req with the webhook's verification at now, without allocating. A Hook built by hand
// without SetVerifiers (tests) compares SecretDigest, and PrevSecretDigest during its grace, as bearer
// secrets, in constant time.
func (h *Hook) Verify(req verify.Request, now time.Time) verify.Result {
	if v := h.Verifier(now); v != nil {
		return v.Verify(req, now)
	}
	if h.verifiersLeftOut {
		return verify.CredentialsMismatch
	}
	auth := req.Header("Authorization")
	if len(auth) == 0 {
		return verify.CredentialsMissing
	}
	d := secret.DigestBearer(auth)
	cur := subtle.ConstantTimeCompare(d[:], h.SecretDigest[:])
	prev := subtle.ConstantTimeCompare(d[:], h.PrevSecretDigest[:])
	grace := 0
	if h.AcceptsPrevious(now) {
		grace = 1
	}
	if cur|(prev&grace) == 1 {
		return verify.OK
	}
	return verify.CredentialsMismatch
}

// SetVerifiers sets the verifiers of a Hook being built: cur checks with the current secret,
// withPrev (nil when there is no previous secret) with the previous one too.
func (h *Hook) SetVerifiers(cur, withPrev *verify.Verifier) {
	h.verifier, h.verifierPrev = cur, withPrev
}

// KeptHeader is a sender header kept with each record: its name as configured and the record header
// key it travels under (wire.HeaderSenderPrefix + name), made once per config version.
type KeptHeader struct {
	Name      string
	RecordKey string
}

// NewKeptHeader returns the KeptHeader of name.
func NewKeptHeader(name string) KeptHeader {
	return KeptHeader{Name: name, RecordKey: wire.HeaderSenderPrefix + name}
}

// Dedup says where a webhook's sender puts its delivery id, so that a delivery the sender repeats
// (its retry after a timeout, a redelivery) fires no second event: a repeat within Window is answered
// 202 like any request and logged as a duplicate of the first.
type Dedup struct {
	// Key is where the delivery id is: "header:<Name>" (X-Shopify-Webhook-Id, X-GitHub-Delivery,
	// webhook-id), "body:<field path>" (Stripe's "id"), or "body_hash" for senders without one: a hash
	// of the raw body and HashHeaders, which covers the sender's retry of a request it was answered
	// 503 for. Empty: no dedup.
	Key string `json:"key,omitempty"`
	// Window is how long a key is remembered, from the first request's receipt: default 24h
	// (body_hash: 10m); 1m to 7 days (body_hash: at most 24h).
	Window verify.Duration `json:"window,omitempty"`
	// HashHeaders are hashed with the body (body_hash only): headers that tell two deliveries of the
	// same body apart, such as a topic.
	HashHeaders []string `json:"hash_headers,omitempty"`
}

// Dedup bounds and defaults.
const (
	DefaultDedupWindow = 24 * time.Hour
	DefaultHashWindow  = 10 * time.Minute
	MinDedupWindow     = time.Minute
	MaxDedupWindow     = 7 * 24 * time.Hour
	MaxHashWindow      = 24 * time.Hour
	// MaxHashHeaders bounds Dedup.HashHeaders.
	MaxHashHeaders = 4
	// DedupBodyHash is Dedup.Key's value for a key made of the body's hash.
	DedupBodyHash = "body_hash"
)

// Source splits Key into its kind ("header", "body" or "body_hash"; "" for none) and its argument
// (the header name or the field path).
func (d Dedup) Source() (kind, arg string) {
	switch {
	case d.Key == "":
		return "", ""
	case d.Key == DedupBodyHash:
		return DedupBodyHash, ""
	case len(d.Key) > len("header:") && d.Key[:len("header:")] == "header:":
		return "header", d.Key[len("header:"):]
	case len(d.Key) > len("body:") && d.Key[:len("body:")] == "body:":
		return "body", d.Key[len("body:"):]
	}
	return "invalid", d.Key
}

// EffectiveWindow is Window, or its default for the key's kind.
func (d Dedup) EffectiveWindow() time.Duration {
	if d.Window != 0 {
		return time.Duration(d.Window)
	}
	if d.Key == DedupBodyHash {
		return DefaultHashWindow
	}
	return DefaultDedupWindow
}
