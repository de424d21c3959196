package project

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Console sessions (table console_sessions), kept in PostgreSQL so that every admin process behind one
// address knows every session. A session is named by a random id that only the browser's cookie holds;
// the table keeps the id's SHA-256, so a copy of it gives no usable cookie.

// Session is a console sign-in: the caller it acts as, the CSRF token its writes must carry, and when it
// ends.
type Session struct {
	Caller
	CSRF      string
	ExpiresAt time.Time
}

// expiredSessionsBatch is how many expired sessions (of any project) each sign-in deletes: more than
// one, so that expired rows cannot pile up whatever the sign-in rate, and few, so that a sign-in stays
// cheap.
const expiredSessionsBatch = 100

func sessionDigest(id string) []byte {
	d := sha256.Sum256([]byte(id))
	return d[:]
}

// CreateSession records the session named id, created at now. The project keeps at most maxPerProject
// sessions: past it, those closest to their expiry are deleted (their consoles are sent back to the
// sign-in form). Up to expiredSessionsBatch expired sessions are deleted on the way. One statement.
func (s *Store) CreateSession(ctx context.Context, id string, sess Session, now time.Time, maxPerProject int) error {
	_, err := s.db.Exec(ctx, `WITH ins AS (
	INSERT INTO console_sessions (id_digest, project_id, key_id, csrf, created_at, expires_at)
	VALUES ($1, $2, $3, $4, $5, $6)),
over AS (
	DELETE FROM console_sessions WHERE id_digest IN (
		SELECT id_digest FROM console_sessions WHERE project_id = $2 ORDER BY expires_at DESC OFFSET $7)),
expired AS (
	DELETE FROM console_sessions WHERE id_digest IN (
		SELECT id_digest FROM console_sessions WHERE expires_at <= $5 LIMIT $8))
SELECT 1`,
		sessionDigest(id), sess.ProjectID, sess.KeyID, sess.CSRF, now, sess.ExpiresAt, maxPerProject-1, expiredSessionsBatch)
	if err != nil {
		return fmt.Errorf("create console session for key %d: %w", sess.KeyID, err)
	}
	return nil
}

// Session returns the live session named id, or ErrUnauthenticated when there is none: unknown, expired
// at now, signed out, or signed in with a key since revoked. One indexed query, which also records the
// key's use as Verify does.
func (s *Store) Session(ctx context.Context, id string, now time.Time) (Session, error) {
	var sess Session
	err := s.db.QueryRow(ctx, `WITH k AS (
	SELECT a.id, a.project_id, a.name, a.scopes, a.last_used_at, s.csrf, s.expires_at
	FROM console_sessions s JOIN api_keys a ON a.id = s.key_id AND a.project_id = s.project_id
	WHERE s.id_digest = $1 AND s.expires_at > $3 AND a.revoked_at IS NULL)`+touchLastUsedCTE+`
SELECT id, project_id, name, scopes, csrf, expires_at FROM k`,
		sessionDigest(id), lastUsedGranularity.Seconds(), now).Scan(&sess.KeyID, &sess.ProjectID, &sess.KeyName, &sess.Scopes, &sess.CSRF, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrUnauthenticated
	}
	if err != nil {
		return Session{}, fmt.Errorf("look up console session: %w", err)
	}
	return sess, nil
}

// DeleteSession ends the session named id (signing out); ending an unknown one is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM console_sessions WHERE id_digest = $1`, sessionDigest(id)); err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}
