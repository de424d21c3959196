// Package audit reads the audit log: every change to a project, its API keys, events, webhooks (and
// their routes), users and devices, alert rules, and the creation and cancellation of replay jobs,
// with who made it, when, and what changed. The entries are written by PostgreSQL triggers in the
// transaction that makes the change (migrations 00013 and 00015), so that no code path can change a
// row without its entry, and the table refuses UPDATE, DELETE and TRUNCATE. Who made a change is the
// session setting inlet.actor, which internal/pgdb sets on every connection acquired with a context
// carrying an Actor (WithActor): the admin API puts the caller's key there, the CLI the operator's
// user.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/domainerr"
)

// Actor is who makes the changes of a context: Via is "api" (a Bearer key), "console" (a console
// session, which acts with the key it was signed in with) or "cli" (an operator command, KeyName the OS
// user); KeyID and KeyName name the API key.
type Actor struct {
	Via     string `json:"via"`
	KeyID   int64  `json:"key_id,omitempty"`
	KeyName string `json:"key_name,omitempty"`
}

type actorKey struct{}

// WithActor returns ctx carrying a: the changes made through connections acquired with it are
// recorded as a's.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor of ctx, if any.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// Setting is the PostgreSQL setting the triggers read: the actor as JSON.
func (a Actor) Setting() string {
	b, _ := json.Marshal(a)
	return string(b)
}

// Targets are the kinds of rows the log records.
var Targets = []string{"project", "api_key", "event", "webhook", "user", "device", "alert_rule", "replay_job"}

// Entry is one recorded change. Before and After are the row's columns as JSON (only the changed ones
// for an update; Before is null for a create, After for a delete); secret columns are never in them,
// and a user's email and phone read "(redacted)".
type Entry struct {
	ID       int64           `json:"id"`
	At       time.Time       `json:"at"`
	Via      string          `json:"via"`
	KeyID    *int64          `json:"key_id"`
	KeyName  string          `json:"key_name"`
	Target   string          `json:"target"`
	TargetID string          `json:"target_id"`
	Action   string          `json:"action"`
	Before   json.RawMessage `json:"before"`
	After    json.RawMessage `json:"after"`
}

// Limits of a query.
const (
	// MaxLimit bounds one page; DefaultLimit is a page's size when none is asked for.
	MaxLimit     = 500
	DefaultLimit = 50
)

// Query selects a page of a project's entries, newest first. Zero fields select everything.
type Query struct {
	ProjectID int64
	Target    string
	TargetID  string
	KeyID     int64
	Since     time.Time
	Until     time.Time
	// Before returns the entries older than this id: the cursor of the previous page's NextBefore.
	Before int64
	Limit  int
}

// Page is one page of entries; NextBefore is the Before of the next (older) page, 0 when there is none.
type Page struct {
	Entries    []Entry `json:"entries"`
	NextBefore int64   `json:"next_before"`
}

// Store reads the log.
type Store struct{ db *pgxpool.Pool }

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{db: pool} }

// List returns one page of the project's entries matching q, newest first.
func (s *Store) List(ctx context.Context, q Query) (Page, error) {
	var v domainerr.ValidationError
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		v.Add("limit", "must be 1..%d", MaxLimit)
	}
	if q.Target != "" && !validTarget(q.Target) {
		v.Add("target", "must be one of %s", strings.Join(Targets, ", "))
	}
	if len(q.TargetID) > 256 {
		v.Add("target_id", "must be at most 256 characters")
	}
	if q.Before < 0 {
		v.Add("before", "must be a positive entry id")
	}
	if err := v.Err(); err != nil {
		return Page{}, err
	}
	where := []string{"project_id = $1"}
	args := []any{q.ProjectID}
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if q.Target != "" {
		add("target = ?", q.Target)
	}
	if q.TargetID != "" {
		add("target_id = ?", q.TargetID)
	}
	if q.KeyID != 0 {
		add("key_id = ?", q.KeyID)
	}
	if !q.Since.IsZero() {
		add("at >= ?", q.Since)
	}
	if !q.Until.IsZero() {
		add("at < ?", q.Until)
	}
	if q.Before > 0 {
		add("id < ?", q.Before)
	}
	args = append(args, q.Limit+1)
	rows, err := s.db.Query(ctx, `SELECT id, at, via, key_id, key_name, target, target_id, action,
	coalesce(before, 'null'), coalesce(after, 'null') FROM audit_log WHERE `+strings.Join(where, " AND ")+
		` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return Page{}, fmt.Errorf("list audit log of project %d: %w", q.ProjectID, err)
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		var before, after []byte
		err := row.Scan(&e.ID, &e.At, &e.Via, &e.KeyID, &e.KeyName, &e.Target, &e.TargetID, &e.Action, &before, &after)
		e.Before, e.After = before, after
		return e, err
	})
	if err != nil {
		return Page{}, fmt.Errorf("list audit log of project %d: %w", q.ProjectID, err)
	}
	p := Page{Entries: entries}
	if len(entries) > q.Limit {
		p.Entries = entries[:q.Limit]
		p.NextBefore = p.Entries[q.Limit-1].ID
	}
	if p.Entries == nil {
		p.Entries = []Entry{}
	}
	return p, nil
}

func validTarget(t string) bool {
	for _, x := range Targets {
		if x == t {
			return true
		}
	}
	return false
}
