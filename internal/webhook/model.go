// Package webhook is the configuration model shared by the admin API, the ingestor and the pipeline:
// events with typed attributes, webhooks with their identifier and mappings, their PostgreSQL store and
// the cached, push-invalidated lookup the data path uses.
package webhook

import (
	"time"

	"github.com/inlet-dev/inlet/internal/identify"
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

// Mapping fills one event attribute from one payload field (a path, see package fieldpath).
type Mapping struct {
	Attribute string `json:"attribute"`
	Field     string `json:"field"`
}

// Identify says which payload field holds the subscriber's identifier and what kind it is.
type Identify struct {
	Kind  identify.Kind `json:"kind"`
	Field string        `json:"field"`
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

	EventName string
	Identify  Identify
	// Mappings carry the attribute type so the pipeline needs no second lookup.
	Mappings []TypedMapping
}

// TypedMapping is a Mapping with the attribute's type resolved from the event.
type TypedMapping struct {
	Attribute string
	Type      AttrType
	Field     string
}

// AcceptsPrevious reports whether the previous secret still works at now.
func (h *Hook) AcceptsPrevious(now time.Time) bool {
	return !h.PrevSecretUntil.IsZero() && now.Before(h.PrevSecretUntil)
}
