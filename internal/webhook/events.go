package webhook

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/inlet-dev/inlet/internal/domainerr"
)

// ErrInUse: the event is used by a webhook that is not deleted, so it cannot be deleted.
var ErrInUse = domainerr.New(domainerr.ErrConflict, "event in use")

// MaxDescriptionLen bounds an event's description, in characters.
const MaxDescriptionLen = 1000

// EventInput is the body of an event create or update (an update replaces every field).
//
// Names: an event name is 1..MaxEventNameLen characters and an attribute name 1..MaxAttributeNameLen;
// both use ASCII letters, digits, '_', '-' and '.', and start with a letter (so names starting with
// "__", like the __webhook attribute the pipeline adds, are reserved). Event names are unique in a
// project, case-sensitively, as in the seed platform.
type EventInput struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Attributes  []Attribute `json:"attributes"`
}

func validName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func (in *EventInput) validate() *domainerr.ValidationError {
	var e domainerr.ValidationError
	switch {
	case in.Name == "":
		e.Add("name", "required")
	case !validName(in.Name):
		e.Add("name", "use letters, digits, '_', '-' and '.', starting with a letter")
	case len(in.Name) > MaxEventNameLen:
		e.Add("name", "%d characters; at most %d", len(in.Name), MaxEventNameLen)
	}
	if !utf8.ValidString(in.Description) {
		e.Add("description", "not valid UTF-8")
	} else if n := utf8.RuneCountInString(in.Description); n > MaxDescriptionLen {
		e.Add("description", "%d characters; at most %d", n, MaxDescriptionLen)
	}
	if len(in.Attributes) > MaxAttributes {
		e.Add("attributes", "%d attributes; at most %d", len(in.Attributes), MaxAttributes)
		return &e
	}
	seen := make(map[string]int, len(in.Attributes))
	for i, a := range in.Attributes {
		f := fmt.Sprintf("attributes[%d]", i)
		switch {
		case a.Name == "":
			e.Add(f+".name", "required")
		case !validName(a.Name):
			e.Add(f+".name", "use letters, digits, '_', '-' and '.', starting with a letter")
		case len(a.Name) > MaxAttributeNameLen:
			e.Add(f+".name", "%d characters; at most %d", len(a.Name), MaxAttributeNameLen)
		default:
			if j, dup := seen[a.Name]; dup {
				e.Add(f+".name", "%q is already attributes[%d]", a.Name, j)
			} else {
				seen[a.Name] = i
			}
		}
		if !a.Type.Valid() {
			e.Add(f+".type", "%q is not one of integer, string, list, date, boolean, price", a.Type)
		}
	}
	return &e
}

const eventColumns = `id, project_id, name, description, attributes, version, created_at, updated_at`

func scanEvent(row pgx.Row) (*Event, error) {
	var ev Event
	if err := row.Scan(&ev.ID, &ev.ProjectID, &ev.Name, &ev.Description, &ev.Attributes, &ev.Version, &ev.CreatedAt, &ev.UpdatedAt); err != nil {
		return nil, err
	}
	if ev.Attributes == nil {
		ev.Attributes = []Attribute{}
	}
	return &ev, nil
}

func attrsOrEmpty(a []Attribute) []Attribute {
	if a == nil {
		return []Attribute{}
	}
	return a
}

// CreateEvent adds an event to the project's catalog. A name already in the catalog answers
// domainerr.ErrConflict; invalid input a *domainerr.ValidationError.
func (s *Store) CreateEvent(ctx context.Context, projectID int64, in EventInput) (*Event, error) {
	if err := in.validate().Err(); err != nil {
		return nil, err
	}
	ev, err := scanEvent(s.db.QueryRow(ctx, `INSERT INTO events (project_id, name, description, attributes)
		VALUES ($1, $2, $3, $4) RETURNING `+eventColumns, projectID, in.Name, in.Description, attrsOrEmpty(in.Attributes)))
	if uniqueViolation(err, "") {
		return nil, fmt.Errorf("event %q already exists: %w", in.Name, domainerr.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("create event %q: %w", in.Name, err)
	}
	return ev, nil
}

// GetEvent returns one event of the project, or domainerr.ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, projectID, id int64) (*Event, error) {
	ev, err := scanEvent(s.db.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE id = $1 AND project_id = $2`, id, projectID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("event %d: %w", id, domainerr.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get event %d: %w", id, err)
	}
	return ev, nil
}

// GetEventByName returns the project's event with that exact name, or domainerr.ErrNotFound.
func (s *Store) GetEventByName(ctx context.Context, projectID int64, name string) (*Event, error) {
	ev, err := scanEvent(s.db.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE name = $1 AND project_id = $2`, name, projectID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("event %q: %w", name, domainerr.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get event %q: %w", name, err)
	}
	return ev, nil
}

// ListEvents returns the project's whole catalog, sorted by name. Catalogs are small (tens of events);
// the console shows them all in one dropdown.
func (s *Store) ListEvents(ctx context.Context, projectID int64) ([]Event, error) {
	rows, err := s.db.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE project_id = $1 ORDER BY name`, projectID)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		ev, err := scanEvent(r)
		if err != nil {
			return Event{}, err
		}
		return *ev, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// UpdateEvent replaces an event's name, description and attributes and bumps its version. expectedVersion 0
// skips the check; another value answers domainerr.ErrVersionMismatch unless it is current. Removing (or
// renaming) an attribute that a live webhook maps is a *domainerr.ValidationError on "attributes" naming the
// webhooks, and so is changing the type of one ("attributes[i].type"): the webhook's mapping was chosen for
// the old type, so its requests would start failing with attribute_type_mismatch, or the events it fires
// would change type under their consumers, without anyone editing the webhook. Remove the mapping from those
// webhooks first (or delete them); an attribute no live webhook maps can be retyped or removed freely. Every
// webhook of the event sees the change through the "event:" notification.
func (s *Store) UpdateEvent(ctx context.Context, projectID, id, expectedVersion int64, in EventInput) (*Event, error) {
	e := in.validate()
	var out *Event
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		cur, err := scanEvent(tx.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE id = $1 AND project_id = $2 FOR UPDATE`, id, projectID))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("event %d: %w", id, domainerr.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if expectedVersion != 0 && cur.Version != expectedVersion {
			return fmt.Errorf("event %d is at version %d, not %d: %w", id, cur.Version, expectedVersion, domainerr.ErrVersionMismatch)
		}
		var removed []string
		retyped := map[string]AttrType{} // attribute name → its current type
		for _, a := range cur.Attributes {
			i := slices.IndexFunc(in.Attributes, func(b Attribute) bool { return b.Name == a.Name })
			switch {
			case i < 0:
				removed = append(removed, a.Name)
			case in.Attributes[i].Type != a.Type:
				retyped[a.Name] = a.Type
			}
		}
		if len(removed) > 0 || len(retyped) > 0 {
			users, err := s.attributeUsers(ctx, tx, id, append(removed, slices.Sorted(maps.Keys(retyped))...))
			if err != nil {
				return err
			}
			for _, attr := range removed {
				if hooks := users[attr]; len(hooks) > 0 {
					e.Add("attributes", "attribute %q is mapped by webhook %s; remove the mapping first", attr, strings.Join(hooks, ", "))
				}
			}
			for i, a := range in.Attributes {
				was, ok := retyped[a.Name]
				if !ok {
					continue
				}
				if hooks := users[a.Name]; len(hooks) > 0 {
					e.Add(fmt.Sprintf("attributes[%d].type", i), "attribute %q is %s and mapped by webhook %s; remove the mapping before changing its type",
						a.Name, was, strings.Join(hooks, ", "))
				}
			}
		}
		if err := e.Err(); err != nil {
			return err
		}
		out, err = scanEvent(tx.QueryRow(ctx, `UPDATE events SET name = $3, description = $4, attributes = $5,
			version = version + 1, updated_at = now()
			WHERE id = $1 AND project_id = $2 AND version = $6 RETURNING `+eventColumns,
			id, projectID, in.Name, in.Description, attrsOrEmpty(in.Attributes), cur.Version))
		return err
	})
	if uniqueViolation(err, "") {
		return nil, fmt.Errorf("event %q already exists: %w", in.Name, domainerr.ErrConflict)
	}
	if err != nil {
		return nil, wrapUnlessSentinel(err, "update event %d", id)
	}
	return out, nil
}

// attributeUsers maps each of attrs that a live webhook maps for event (in any route) to those webhooks
// ("name (id)").
func (s *Store) attributeUsers(ctx context.Context, tx pgx.Tx, event int64, attrs []string) (map[string][]string, error) {
	// The first route's mappings, then the further routes' (webhooks.routes).
	rows, err := tx.Query(ctx, `SELECT DISTINCT attr, hook FROM (
		SELECT m->>'attribute' AS attr, w.name || ' (' || w.public_id || ')' AS hook, w.name AS name
		FROM webhooks w, jsonb_array_elements(w.mappings) m
		WHERE w.event_id = $1 AND w.deleted_at IS NULL AND m->>'attribute' = ANY($2)
		UNION ALL
		SELECT m->>'attribute', w.name || ' (' || w.public_id || ')', w.name
		FROM webhooks w, jsonb_array_elements(w.routes) r, jsonb_array_elements(r->'mappings') m
		WHERE (r->>'event_id')::bigint = $1 AND w.deleted_at IS NULL AND m->>'attribute' = ANY($2)
		) u ORDER BY hook`, event, attrs)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	var attr, hook string
	_, err = pgx.ForEachRow(rows, []any{&attr, &hook}, func() error {
		out[attr] = append(out[attr], hook)
		return nil
	})
	return out, err
}

// DeleteEvent removes an event from the catalog. An event that a live webhook uses answers ErrInUse.
// Webhooks that were deleted earlier and still reference it are purged with it: their rows only
// remained so that their URL answers 404, which it still does once the row is gone.
func (s *Store) DeleteEvent(ctx context.Context, projectID, id int64) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM events WHERE id = $1 AND project_id = $2 FOR UPDATE`, id, projectID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("event %d: %w", id, domainerr.ErrNotFound)
		}
		if err != nil {
			return err
		}
		var live int
		// Any route: the first one's foreign key, and webhooks.routes (saving a webhook locks the
		// event row FOR SHARE, so no route can start using it before this transaction ends).
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks w WHERE w.deleted_at IS NULL AND (w.event_id = $1
			OR EXISTS (SELECT 1 FROM jsonb_array_elements(w.routes) r WHERE (r->>'event_id')::bigint = $1))`, id).Scan(&live); err != nil {
			return err
		}
		if live > 0 {
			return fmt.Errorf("event %d is used by %d webhook(s): %w", id, live, ErrInUse)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE event_id = $1 AND deleted_at IS NOT NULL`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM events WHERE id = $1 AND project_id = $2`, id, projectID)
		return err
	})
	return wrapUnlessSentinel(err, "delete event %d", id)
}

// wrapUnlessSentinel adds context to database errors; errors of a domainerr kind (a validation error
// included) pass through unchanged, since they already say what failed.
func wrapUnlessSentinel(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, domainerr.ErrInvalid) || errors.Is(err, domainerr.ErrNotFound) ||
		errors.Is(err, domainerr.ErrConflict) || errors.Is(err, domainerr.ErrVersionMismatch) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
