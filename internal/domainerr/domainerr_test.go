package domainerr

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

var kinds = []error{ErrInvalid, ErrNotFound, ErrConflict, ErrVersionMismatch, ErrUnavailable}

// kindsOf lists the kinds err is, by errors.Is.
func kindsOf(err error) []error {
	var out []error
	for _, k := range kinds {
		if errors.Is(err, k) {
			out = append(out, k)
		}
	}
	return out
}

// TestKinds: every error of the vocabulary is exactly one kind, also once wrapped with the ids it is
// about, and says what it is.
func TestKinds(t *testing.T) {
	var v ValidationError
	v.Add("email", "not a valid email address")
	v.Add("mappings[2].field", "required")
	v.Add("phone", "has %d digits", 2)
	for _, tc := range []struct {
		name string
		err  error
		kind error
		msg  string
	}{
		{"bare sentinel", ErrNotFound, ErrNotFound, "not found"},
		{"wrapped with an id", fmt.Errorf("webhook %s: %w", "1Lg9DZF8", ErrNotFound), ErrNotFound, "webhook 1Lg9DZF8: not found"},
		{"wrapped twice", fmt.Errorf("revoke api key 5 of project 1: %w", New(ErrNotFound, "api key not found")), ErrNotFound,
			"revoke api key 5 of project 1: api key not found"},
		{"New", New(ErrConflict, "event in use"), ErrConflict, "event in use"},
		{"prefix", fmt.Errorf("webhook config %w: %w", ErrUnavailable, errors.New("dial tcp: refused")), ErrUnavailable,
			"webhook config unavailable: dial tcp: refused"},
		{"version", fmt.Errorf("webhook %s is at version %d, not %d: %w", "x", 3, 2, ErrVersionMismatch), ErrVersionMismatch,
			"webhook x is at version 3, not 2: version mismatch"},
		{"validation", v.Err(), ErrInvalid, "invalid email: not a valid email address; mappings[2].field: required; phone: has 2 digits"},
		{"one invalid field", Invalid("If-Match", "must be the version from the ETag, e.g. %q", "3"), ErrInvalid,
			`invalid If-Match: must be the version from the ETag, e.g. "3"`},
		{"conflict on a field", &ConflictError{Field: "email", Message: "already used by another user"}, ErrConflict,
			"email: already used by another user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := kindsOf(tc.err); !slices.Equal(got, []error{tc.kind}) {
				t.Errorf("kinds = %v; want [%v]", got, tc.kind)
			}
			if got := tc.err.Error(); got != tc.msg {
				t.Errorf("Error() = %q; want %q", got, tc.msg)
			}
		})
	}
}

// TestFieldsThroughWrapping: the fields of a validation or conflict error are found under the ids a
// caller wraps around it.
func TestFieldsThroughWrapping(t *testing.T) {
	err := fmt.Errorf("update event %d: %w", 7, Invalid("attributes[1].type", "mapped by webhook %s", "wh_1"))
	ve, ok := errors.AsType[*ValidationError](err)
	if !ok || !slices.Equal(ve.Fields, []FieldError{{Field: "attributes[1].type", Message: "mapped by webhook wh_1"}}) {
		t.Errorf("As *ValidationError = %v, %v; want the field under the wrapping", ve, ok)
	}
	err = fmt.Errorf("upsert user %q: %w", "u2", &ConflictError{Field: "phone", Message: "already used by another user"})
	if ce, ok := errors.AsType[*ConflictError](err); !ok || ce.Field != "phone" {
		t.Errorf("As *ConflictError = %v, %v; want the phone conflict", ce, ok)
	}
}

func TestValidationErrEmpty(t *testing.T) {
	var v ValidationError
	if err := v.Err(); err != nil {
		t.Errorf("Err() of no fields = %v; want nil", err)
	}
}
