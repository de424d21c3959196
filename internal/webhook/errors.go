package webhook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors of the store, besides ErrNotFound. The admin API maps each to one status.
var (
	// ErrConflict: the name is already taken in the project (events; live webhooks, ignoring case). 409.
	ErrConflict = errors.New("conflict")
	// ErrVersionMismatch: the caller's expected version (If-Match) is not the current one: someone else
	// changed the row since the caller read it. 412.
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrInUse: the event is used by a webhook that is not deleted, so it cannot be deleted. 409.
	ErrInUse = errors.New("event in use")
)

// FieldError names one invalid field of a request and what is wrong with it. Field is the dotted path of
// the field in the request's JSON form (the json tags of EventInput, WebhookInput, WebhookPatch), with
// indexes in brackets: "name", "identify.field", "mappings[2].attribute", "attributes[0].type".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a request, not just the first one, so that the console
// can mark them all at once. Nothing was written. The admin API answers 400 problem+json with Fields.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// errs collects field errors while a request is checked.
type errs []FieldError

func (e *errs) add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (e errs) err() error {
	if len(e) == 0 {
		return nil
	}
	return &ValidationError{Fields: e}
}

// uniqueViolation reports whether err is PostgreSQL's unique_violation on the named constraint or index
// (any when name is empty).
func uniqueViolation(err error, name string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (name == "" || pe.ConstraintName == name)
}
