// Package project stores projects and their admin API keys. A key is shown once when it is created and
// kept only as a SHA-256 digest; every admin request is authenticated by looking the digest up, and
// everything it does afterwards is scoped to that key's project.
package project

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/secret"
)

// KeyPrefix starts every API key, so that a leaked key is recognisable by secret scanners.
const KeyPrefix = secret.APIKeyPrefix

// ErrUnauthenticated: the key is malformed, unknown or revoked.
var ErrUnauthenticated = errors.New("api key not recognised")

// ErrNotFound: no such project.
var ErrNotFound = errors.New("project not found")

// Project is a tenant.
type Project struct {
	ID              int64     `json:"id"`
	Name            string    `json:"name"`
	NotificationURL string    `json:"notification_url"`
	CreatedAt       time.Time `json:"created_at"`
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
		if err := tx.QueryRow(ctx, `INSERT INTO projects (name) VALUES ($1) RETURNING id, name, notification_url, created_at`, name).
			Scan(&p.ID, &p.Name, &p.NotificationURL, &p.CreatedAt); err != nil {
			return err
		}
		var err error
		key, err = addKey(ctx, tx, p.ID)
		return err
	})
	if err != nil {
		return Project{}, "", fmt.Errorf("create project %q: %w", name, err)
	}
	return p, key, nil
}

// AddKey issues another key for the project (for rotation without downtime).
func (s *Store) AddKey(ctx context.Context, projectID int64) (string, error) {
	return addKey(ctx, s.db, projectID)
}

func addKey(ctx context.Context, db interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, projectID int64) (string, error) {
	key, prefix := secret.NewAPIKey()
	d := digest(key)
	var id int64
	if err := db.QueryRow(ctx, `INSERT INTO api_keys (project_id, prefix, digest) VALUES ($1, $2, $3) RETURNING id`,
		projectID, prefix, d[:]).Scan(&id); err != nil {
		return "", fmt.Errorf("add api key to project %d: %w", projectID, err)
	}
	return key, nil
}

func digest(key string) [32]byte { return secret.Digest([]byte(key)) }

// Authenticate returns the project id of a valid key. The lookup is by digest, so neither the time taken
// nor the query depends on how much of a wrong key matched.
func (s *Store) Authenticate(ctx context.Context, key string) (int64, error) {
	if !strings.HasPrefix(key, KeyPrefix) || len(key) > 128 {
		return 0, ErrUnauthenticated
	}
	d := digest(key)
	var projectID int64
	err := s.db.QueryRow(ctx, `SELECT project_id FROM api_keys WHERE digest = $1 AND revoked_at IS NULL`, d[:]).Scan(&projectID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrUnauthenticated
	}
	if err != nil {
		return 0, fmt.Errorf("authenticate api key: %w", err)
	}
	return projectID, nil
}

// Get returns one project.
func (s *Store) Get(ctx context.Context, id int64) (Project, error) {
	var p Project
	err := s.db.QueryRow(ctx, `SELECT id, name, notification_url, created_at FROM projects WHERE id = $1`, id).
		Scan(&p.ID, &p.Name, &p.NotificationURL, &p.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrNotFound
	}
	return p, err
}

// SetNotificationURL sets where auth-failure notifications are POSTed ("" for none).
func (s *Store) SetNotificationURL(ctx context.Context, id int64, url string) error {
	tag, err := s.db.Exec(ctx, `UPDATE projects SET notification_url = $2 WHERE id = $1`, id, url)
	if err != nil {
		return fmt.Errorf("set notification url of project %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// FindByName returns the first project with this name (used by the demo seed to stay idempotent).
func (s *Store) FindByName(ctx context.Context, name string) (Project, error) {
	var p Project
	err := s.db.QueryRow(ctx, `SELECT id, name, notification_url, created_at FROM projects WHERE name = $1 ORDER BY id LIMIT 1`, name).
		Scan(&p.ID, &p.Name, &p.NotificationURL, &p.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrNotFound
	}
	return p, err
}
