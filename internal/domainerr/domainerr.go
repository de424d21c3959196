// Package domainerr is the small vocabulary of failures that the domain stores (webhook, directory,
// project, activity) and the admin API's own input checks share: invalid input (naming its fields),
// not found, conflict, version mismatch and unavailable. A store returns one of these, wrapped with %w
// and the ids it concerns ("webhook 1Lg9…: not found"); callers decide with errors.Is and errors.As,
// never by a store's own type; the admin API turns each kind into an HTTP status in one place (its
// writeError), and the edge and the pipeline read the same kinds. A package's own, more precise
// failure (an event still in use, a project's last API key) is made with New as an error of one of
// these kinds, so that it needs no mapping of its own.
package domainerr

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds of failure. Test them with errors.Is: every error below, and every error made with New, is
// one of them.
var (
	// ErrInvalid: the input is wrong and nothing was written; the same request fails again. A
	// *ValidationError (which is ErrInvalid) names each wrong field.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: no such thing in the caller's project. Another project's row is not found either,
	// exactly like one that does not exist, so that ids of other projects cannot be probed.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the write contradicts what is stored: a name or address already taken, a row still
	// in use, a project's limit reached. A *ConflictError (which is ErrConflict) names the field when
	// one field is to blame.
	ErrConflict = errors.New("conflict")
	// ErrVersionMismatch: the version the caller expected (from the ETag, sent back in If-Match) is not
	// the current one: someone else changed the row since the caller read it. Nothing was written; read
	// the row again.
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrUnavailable: a dependency (PostgreSQL) could not be reached and nothing usable was cached: the
	// answer is neither found nor not found. Asking again later may succeed.
	ErrUnavailable = errors.New("unavailable")
)

// New returns an error that says msg and is of kind (one of the kinds above) for errors.Is: a package's
// own sentinel whose message says more than its kind, e.g.
//
//	var ErrInUse = domainerr.New(domainerr.ErrConflict, "event in use")
func New(kind error, msg string) error { return &kindError{kind: kind, msg: msg} }

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// FieldError names one field of an input and what is wrong with it. Field is the field's path in the
// input's JSON form with indexes in brackets ("name", "identify.field", "mappings[2].attribute"), or a
// query parameter or header name. Its JSON form is an element of the admin API's problem "errors".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of one input (a request, an NDJSON line), not just the
// first, so that a form can mark them all at once. Nothing was written. It is ErrInvalid.
//
// Checks collect into one and end with Err:
//
//	var v domainerr.ValidationError
//	if in.Name == "" {
//		v.Add("name", "required")
//	}
//	return v.Err()
type ValidationError struct {
	Fields []FieldError
}

// Invalid returns a *ValidationError on one field; the message is formatted as by fmt.Sprintf.
func Invalid(field, format string, args ...any) error {
	var v ValidationError
	v.Add(field, format, args...)
	return &v
}

// Add appends an error on field; the message is formatted as by fmt.Sprintf.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns e, or nil when it names no field.
func (e *ValidationError) Err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Error lists the fields: "invalid email: not a valid email address; phone: has no digits".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Field)
		b.WriteString(": ")
		b.WriteString(f.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// ConflictError says which field's value is already taken by another row (a user's email or phone).
// It is ErrConflict.
type ConflictError struct {
	Field   string
	Message string
}

// Error says "email: already used by another user".
func (e *ConflictError) Error() string { return e.Field + ": " + e.Message }

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
