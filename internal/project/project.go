// Package project stores projects and their admin API keys. A key is shown once when it is created and
// kept only as a SHA-256 digest; every admin request is authenticated by looking the digest up, and
// everything it does afterwards is scoped to that key's project.
package project

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/phone"
	"github.com/inlet-dev/inlet/internal/secret"
)

// KeyPrefix starts every API key, so that a leaked key is recognisable by secret scanners.
const KeyPrefix = secret.APIKeyPrefix

// ErrUnauthenticated: the key is malformed, unknown or revoked. It is not a domainerr kind: the admin
// API answers it with its own 401.
var ErrUnauthenticated = errors.New("api key not recognised")

// ErrNotFound: no such project. It is domainerr.ErrNotFound.
var ErrNotFound = domainerr.New(domainerr.ErrNotFound, "project not found")

// Project is a tenant. PhoneRegion is the ISO 3166-1 alpha-2 region whose national numbering plan
// reads the project's phone numbers written without a country code; "" means directory.default_region.
type Project struct {
	ID              int64  `json:"id"`
	Name            string `json:"name"`
	NotificationURL string `json:"notification_url"`
	// NotificationFormat is the body of its notifications: "standard" (Inlet's JSON) or "slack"
	// ({"text": …}). Either is signed with the project's Standard Webhooks secret.
	NotificationFormat string `json:"notification_format"`
	PhoneRegion        string `json:"phone_region"`
	// Retention is how long the project's data is kept, within the server's bounds.
	Retention Retention `json:"retention"`
	CreatedAt time.Time `json:"created_at"`
}

// Retention is a project's retention in days; 0 keeps the server's (pipeline.retention_days).
// ActivityDays deletes activity rows, PayloadDays clears their payloads and headers (the rows stay),
// EventsDays deletes the event history.
type Retention struct {
	ActivityDays int `json:"activity_days"`
	PayloadDays  int `json:"payload_days"`
	EventsDays   int `json:"events_days"`
}

// Shorter reports whether r asks for anything shorter than the server's retention.
func (r Retention) Shorter() bool { return r.ActivityDays > 0 || r.PayloadDays > 0 || r.EventsDays > 0 }

// projectColumns are the columns Project.fields scans.
const projectColumns = `id, name, notification_url, notification_format, phone_region,
	activity_retention_days, payload_retention_days, events_retention_days, created_at`

func (p *Project) fields() []any {
	return []any{&p.ID, &p.Name, &p.NotificationURL, &p.NotificationFormat, &p.PhoneRegion,
		&p.Retention.ActivityDays, &p.Retention.PayloadDays, &p.Retention.EventsDays, &p.CreatedAt}
}

// Store reads and writes projects and keys.
type Store struct{ db *pgxpool.Pool }

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{db: pool} }

// Create makes a project with one API key and returns the key in clear: the only time it is available.
func (s *Store) Create(ctx context.Context, name string) (Project, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return Project{}, "", fmt.Errorf("project name must be 1..100 characters, got %d", len(name))
	}
	var p Project
	var key string
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO projects (name) VALUES ($1) RETURNING `+projectColumns, name).
			Scan(p.fields()...); err != nil {
			return err
		}
		var err error
		_, key, err = addKey(ctx, tx, p.ID, "", AllScopes)
		return err
	})
	if err != nil {
		return Project{}, "", fmt.Errorf("create project %q: %w", name, err)
	}
	return p, key, nil
}

// Limits of API keys.
const (
	// MaxActiveKeys bounds a project's unrevoked keys: enough for one per integration and person, few
	// enough that a leaked key cannot mint keys without bound.
	MaxActiveKeys = 100
	// MaxKeyName bounds a key's name, in characters.
	MaxKeyName = 100
	// maxListedKeys bounds ListKeys: every active key, then the most recent revoked ones.
	maxListedKeys = 500
	// lastUsedGranularity: last_used_at is written at most this often per key, so that authenticating
	// stays a read nearly always. A key's last use is therefore known to the minute.
	lastUsedGranularity = time.Minute
)

// Sentinel errors of key management, each of a domainerr kind. A refused key name is a
// *domainerr.ValidationError on "name".
var (
	// ErrKeyNotFound: no such API key in the project (another project's key is not found either). It is
	// domainerr.ErrNotFound.
	ErrKeyNotFound = domainerr.New(domainerr.ErrNotFound, "api key not found")
	// ErrLastKey: revoking this key would leave the project without an active key, and so without a way
	// to use the API or the console (only `inlet project key create` on the server could recover it). It
	// is domainerr.ErrConflict.
	ErrLastKey = domainerr.New(domainerr.ErrConflict,
		"this is the project's last active api key: create another one before revoking it")
	// ErrTooManyKeys: the project already has MaxActiveKeys active keys. It is domainerr.ErrConflict.
	ErrTooManyKeys = domainerr.New(domainerr.ErrConflict,
		fmt.Sprintf("the project already has %d active api keys: revoke one first", MaxActiveKeys))
)

// Key is an API key as it is listed: everything but the key itself, which is never stored and cannot be
// read back. Prefix (the key's first 12 characters) lets the user recognise it.
type Key struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	// Scopes are what the key may do (see Scopes).
	Scopes []string `json:"scopes"`
}

// The scopes of API keys. Each admin API route requires one; a key holds one or more, and holds them
// independently (admin does not imply read). Keys made before scopes existed have every one.
const (
	// ScopeRead: every GET except the audit log, the key list, webhook credentials and the notification
	// signing secret, and the dry runs.
	ScopeRead = "read"
	// ScopeWebhooksWrite: change events, webhooks and their routes; read a webhook's credentials;
	// replay requests.
	ScopeWebhooksWrite = "webhooks:write"
	// ScopeDirectoryWrite: create, change, import and delete (erase) users and devices.
	ScopeDirectoryWrite = "directory:write"
	// ScopeAdmin: the project's settings (notifications, retention), its alert rules and notification
	// signing secret, its API keys and the audit log.
	ScopeAdmin = "admin"
)

// AllScopes is every scope, in the order they are listed.
var AllScopes = []string{ScopeRead, ScopeWebhooksWrite, ScopeDirectoryWrite, ScopeAdmin}

// NormalizeScopes checks that scopes are known and returns them in AllScopes' order, without
// repeats. An empty list is a *domainerr.ValidationError on "scopes".
func NormalizeScopes(scopes []string) ([]string, error) {
	var out []string
	for _, sc := range scopes {
		if !slices.Contains(AllScopes, sc) {
			return nil, domainerr.Invalid("scopes", "%q is not a scope; the scopes are %s", sc, strings.Join(AllScopes, ", "))
		}
	}
	for _, sc := range AllScopes {
		if slices.Contains(scopes, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, domainerr.Invalid("scopes", "must name at least one of %s", strings.Join(AllScopes, ", "))
	}
	return out, nil
}

// Caller is who an authenticated request comes from: the key, its name and scopes, and its project.
type Caller struct {
	ProjectID int64
	KeyID     int64
	KeyName   string
	Scopes    []string
}

// Has tells whether the caller's key holds scope.
func (c Caller) Has(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Covers tells whether the caller's key holds every one of scopes.
func (c Caller) Covers(scopes []string) bool {
	for _, sc := range scopes {
		if !c.Has(sc) {
			return false
		}
	}
	return true
}

// querier is what both a pool and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CreateKey issues another key for the project (to give each integration its own, or to rotate without
// downtime) with the given scopes (NormalizeScopes) and returns it in clear: the only time it is
// available. Whether the caller may grant them is the caller's to check (Caller.Covers).
func (s *Store) CreateKey(ctx context.Context, projectID int64, name string, scopes []string) (Key, string, error) {
	name, err := validName(name)
	if err != nil {
		return Key{}, "", err
	}
	if scopes, err = NormalizeScopes(scopes); err != nil {
		return Key{}, "", err
	}
	var k Key
	var key string
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := lockProject(ctx, tx, projectID); err != nil {
			return err
		}
		var active int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE project_id = $1 AND revoked_at IS NULL`, projectID).Scan(&active); err != nil {
			return err
		}
		if active >= MaxActiveKeys {
			return ErrTooManyKeys
		}
		k, key, err = addKey(ctx, tx, projectID, name, scopes)
		return err
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("create api key in project %d: %w", projectID, err)
	}
	return k, key, nil
}

func addKey(ctx context.Context, db querier, projectID int64, name string, scopes []string) (Key, string, error) {
	key, prefix := secret.NewAPIKey()
	d := digest(key)
	var k Key
	if err := db.QueryRow(ctx, `INSERT INTO api_keys (project_id, prefix, digest, name, scopes) VALUES ($1, $2, $3, $4, $5) RETURNING `+keyColumns,
		projectID, prefix, d[:], name, scopes).Scan(k.fields()...); err != nil {
		return Key{}, "", fmt.Errorf("add api key to project %d: %w", projectID, err)
	}
	return k, key, nil
}

const keyColumns = `id, name, prefix, created_at, last_used_at, revoked_at, scopes`

func (k *Key) fields() []any {
	return []any{&k.ID, &k.Name, &k.Prefix, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt, &k.Scopes}
}

// validName trims a key name and checks its length and characters.
func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n > MaxKeyName {
		return "", domainerr.Invalid("name", "must be at most %d characters, got %d", MaxKeyName, n)
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return "", domainerr.Invalid("name", "must be UTF-8 text without control characters")
	}
	return name, nil
}

// lockProject serialises key creation and revocation within a project, so that two concurrent
// revocations cannot both pass the last-key check. FOR NO KEY UPDATE leaves other tables' inserts
// (which take FOR KEY SHARE through their foreign key) unblocked.
func lockProject(ctx context.Context, tx pgx.Tx, projectID int64) error {
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM projects WHERE id = $1 FOR NO KEY UPDATE`, projectID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// ListKeys returns the project's keys: the active ones newest first, then the revoked ones, most
// recently created first, in all at most 500.
func (s *Store) ListKeys(ctx context.Context, projectID int64) ([]Key, error) {
	rows, err := s.db.Query(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE project_id = $1
		ORDER BY revoked_at IS NOT NULL, id DESC LIMIT $2`, projectID, maxListedKeys)
	if err != nil {
		return nil, fmt.Errorf("list api keys of project %d: %w", projectID, err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Key, error) {
		var k Key
		err := row.Scan(k.fields()...)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list api keys of project %d: %w", projectID, err)
	}
	return keys, nil
}

// GetKey returns one key of the project.
func (s *Store) GetKey(ctx context.Context, projectID, keyID int64) (Key, error) {
	var k Key
	err := s.db.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE project_id = $1 AND id = $2`, projectID, keyID).Scan(k.fields()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, ErrKeyNotFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("get api key %d of project %d: %w", keyID, projectID, err)
	}
	return k, nil
}

// RevokeKey revokes one key of the project: from the commit on, Authenticate, Verify and Session refuse
// it, and its console sessions are deleted.
// Revoking a revoked key changes nothing and returns it. The project's last active key cannot be
// revoked (ErrLastKey).
func (s *Store) RevokeKey(ctx context.Context, projectID, keyID int64) (Key, error) {
	var k Key
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := lockProject(ctx, tx, projectID); errors.Is(err, ErrNotFound) {
			return ErrKeyNotFound
		} else if err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE project_id = $1 AND id = $2`, projectID, keyID).Scan(k.fields()...)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrKeyNotFound
		}
		if err != nil || k.RevokedAt != nil {
			return err
		}
		var others int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE project_id = $1 AND revoked_at IS NULL AND id <> $2`,
			projectID, keyID).Scan(&others); err != nil {
			return err
		}
		if others == 0 {
			return ErrLastKey
		}
		if err := tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 RETURNING `+keyColumns, keyID).Scan(k.fields()...); err != nil {
			return err
		}
		// Its console sessions would be refused anyway (Session checks the key); deleting them keeps
		// the table to the sessions that can still be used.
		_, err = tx.Exec(ctx, `DELETE FROM console_sessions WHERE key_id = $1`, keyID)
		return err
	})
	if err != nil {
		return Key{}, fmt.Errorf("revoke api key %d of project %d: %w", keyID, projectID, err)
	}
	return k, nil
}

func digest(key string) [32]byte { return secret.Digest([]byte(key)) }

// touchLastUsed is appended to the lookups of Authenticate and Verify (as a data-modifying CTE, one
// round trip): it records the use when the recorded one is older than lastUsedGranularity.
const touchLastUsed = touchLastUsedCTE + `
SELECT id, project_id, name, scopes FROM k`

// touchLastUsedCTE is touchLastUsed without its final SELECT, for lookups that return more of k.
const touchLastUsedCTE = `, touched AS (
	UPDATE api_keys SET last_used_at = now() FROM k
	WHERE api_keys.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - make_interval(secs => $2)))`

// Authenticate returns the caller of a valid, unrevoked key. The lookup is by digest, so neither the time
// taken nor the query depends on how much of a wrong key matched. Nothing is cached: a revoked key is
// refused from the revocation's commit on.
func (s *Store) Authenticate(ctx context.Context, key string) (Caller, error) {
	if !strings.HasPrefix(key, KeyPrefix) || len(key) > 128 {
		return Caller{}, ErrUnauthenticated
	}
	d := digest(key)
	var c Caller
	err := s.db.QueryRow(ctx, `WITH k AS (SELECT id, project_id, name, scopes, last_used_at FROM api_keys WHERE digest = $1 AND revoked_at IS NULL)`+touchLastUsed,
		d[:], lastUsedGranularity.Seconds()).Scan(&c.KeyID, &c.ProjectID, &c.KeyName, &c.Scopes)
	if errors.Is(err, pgx.ErrNoRows) {
		return Caller{}, ErrUnauthenticated
	}
	if err != nil {
		return Caller{}, fmt.Errorf("authenticate api key: %w", err)
	}
	return c, nil
}

// Verify checks that the key a console session was signed in with is still active (ErrUnauthenticated
// once it is revoked) and records its use, as Authenticate does for a key presented in clear.
func (s *Store) Verify(ctx context.Context, c Caller) error {
	var got Caller
	err := s.db.QueryRow(ctx, `WITH k AS (SELECT id, project_id, name, scopes, last_used_at FROM api_keys WHERE id = $1 AND revoked_at IS NULL)`+touchLastUsed,
		c.KeyID, lastUsedGranularity.Seconds()).Scan(&got.KeyID, &got.ProjectID, &got.KeyName, &got.Scopes)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (got.KeyID != c.KeyID || got.ProjectID != c.ProjectID)) {
		return ErrUnauthenticated
	}
	if err != nil {
		return fmt.Errorf("verify api key %d: %w", c.KeyID, err)
	}
	return nil
}

// Get returns one project.
func (s *Store) Get(ctx context.Context, id int64) (Project, error) {
	var p Project
	err := s.db.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = $1`, id).Scan(p.fields()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrNotFound
	}
	return p, err
}

// PhoneRegion returns the project's phone region ("" when none is set), or ErrNotFound. The user
// directory reads it through this method (directory.PhoneRegions) rather than from the projects table.
func (s *Store) PhoneRegion(ctx context.Context, id int64) (string, error) {
	var region string
	err := s.db.QueryRow(ctx, `SELECT phone_region FROM projects WHERE id = $1`, id).Scan(&region)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read phone region of project %d: %w", id, err)
	}
	return region, nil
}

// Update is a change to a project's settings; nil fields are left as they are.
type Update struct {
	// NotificationURL is where auth-failure notifications are POSTed ("" for none). The caller
	// validates it.
	NotificationURL *string
	// NotificationFormat is "standard" or "slack"; anything else is a *domainerr.ValidationError on
	// "notification_format" and nothing is written.
	NotificationFormat *string
	// Retention replaces the project's retention; the caller checks it against the server's bounds.
	Retention *Retention
	// PhoneRegion is an ISO 3166-1 alpha-2 region libphonenumber knows, or "" for
	// directory.default_region. Anything else is a *domainerr.ValidationError on "phone_region" and
	// nothing is written.
	PhoneRegion *string
}

// Update applies u in one statement, so that either every field changes or none does. A change of the
// phone region is announced to the resolvers ("project:<id>") by a trigger when it commits.
func (s *Store) Update(ctx context.Context, id int64, u Update) (Project, error) {
	if u.PhoneRegion != nil && !phone.ValidRegion(*u.PhoneRegion) {
		return Project{}, domainerr.Invalid("phone_region",
			"%q is not a known ISO 3166-1 alpha-2 region (e.g. \"GB\", \"US\"), nor empty", *u.PhoneRegion)
	}
	if f := u.NotificationFormat; f != nil && *f != "standard" && *f != "slack" {
		return Project{}, domainerr.Invalid("notification_format", "%q is not \"standard\" or \"slack\"", *f)
	}
	var act, pay, evs *int
	if r := u.Retention; r != nil {
		act, pay, evs = &r.ActivityDays, &r.PayloadDays, &r.EventsDays
	}
	var p Project
	err := s.db.QueryRow(ctx, `UPDATE projects SET notification_url = coalesce($2, notification_url),
	phone_region = coalesce($3, phone_region), notification_format = coalesce($4, notification_format),
	activity_retention_days = coalesce($5, activity_retention_days), payload_retention_days = coalesce($6, payload_retention_days),
	events_retention_days = coalesce($7, events_retention_days)
	WHERE id = $1 RETURNING `+projectColumns,
		id, u.NotificationURL, u.PhoneRegion, u.NotificationFormat, act, pay, evs).Scan(p.fields()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Project{}, ErrNotFound
	}
	if err != nil {
		return Project{}, fmt.Errorf("update project %d: %w", id, err)
	}
	return p, nil
}

// FindByName returns the first project with this name (used by the demo seed to stay idempotent).
func (s *Store) FindByName(ctx context.Context, name string) (Project, error) {
	var p Project
	err := s.db.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE name = $1 ORDER BY id LIMIT 1`, name).
		Scan(p.fields()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrNotFound
	}
	return p, err
}

// Retentions lists the projects whose retention is shorter than the server's, for the pipeline's
// retention loop.
func (s *Store) Retentions(ctx context.Context) ([]ProjectRetention, error) {
	rows, err := s.db.Query(ctx, `SELECT id, activity_retention_days, payload_retention_days, events_retention_days FROM projects
		WHERE activity_retention_days > 0 OR payload_retention_days > 0 OR events_retention_days > 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list project retentions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ProjectRetention, error) {
		var r ProjectRetention
		err := row.Scan(&r.ProjectID, &r.ActivityDays, &r.PayloadDays, &r.EventsDays)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list project retentions: %w", err)
	}
	return out, nil
}

// ProjectRetention is one project's Retention with its id.
type ProjectRetention struct {
	ProjectID int64
	Retention
}
