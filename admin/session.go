package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/inlet-dev/inlet/internal/project"
)

// Console sessions. Signing in with a project API key creates a server-side session: the cookie holds
// only a random 256-bit id; PostgreSQL (project.Store's console_sessions) holds the id's SHA-256, the
// project, the key signed in with and the session's CSRF token, so every admin process behind one
// address serves every session, and a restart signs nobody out. Every use of a session looks it up
// together with its key in one indexed query (project.Store.Session): signing out, or revoking the key —
// through any admin process or the CLI — ends it on every process at its next request. Nothing is cached
// in the process, so there is nothing to go stale.
const (
	sessionCookie = "inlet_session"
	// loginCSRFCookie carries the double-submit token of the sign-in form (there is no session yet).
	loginCSRFCookie = "inlet_login"
	// sessionTTL is a session's absolute lifetime; the console then asks for the key again.
	sessionTTL = 12 * time.Hour
	// maxSessions bounds one project's sessions; past it, signing in ends the project's session closest
	// to expiry. Per project, so that one project's sign-ins cannot end another's sessions.
	maxSessions = 1_000
	// csrfHeader carries the session's CSRF token on every API write made with the session cookie.
	csrfHeader = "X-CSRF-Token"
)

type session struct {
	id string
	// key is the project and key signed in with, its name and scopes as they are now.
	key     project.Caller
	csrf    string
	expires time.Time
}

// caller is the session's project and key.
func (sess *session) caller() project.Caller { return sess.key }

// sessionStore creates and finds sessions in PostgreSQL; it keeps nothing itself.
type sessionStore struct {
	projects *project.Store
	now      func() time.Time
}

func newSessionStore(projects *project.Store) *sessionStore {
	return &sessionStore{projects: projects, now: time.Now}
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error()) // never happens on a supported OS
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for the caller that signed in.
func (s *sessionStore) create(ctx context.Context, c project.Caller) (*session, error) {
	now := s.now()
	sess := &session{id: randomToken(), key: c, csrf: randomToken(), expires: now.Add(sessionTTL)}
	err := s.projects.CreateSession(ctx, sess.id, project.Session{Caller: c, CSRF: sess.csrf, ExpiresAt: sess.expires}, now, maxSessions)
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// get returns the live session with that id (its key still active), or nil. An error means it could
// not be looked up.
func (s *sessionStore) get(ctx context.Context, id string) (*session, error) {
	if id == "" {
		return nil, nil
	}
	ps, err := s.projects.Session(ctx, id, s.now())
	if errors.Is(err, project.ErrUnauthenticated) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &session{id: id, key: ps.Caller, csrf: ps.CSRF, expires: ps.ExpiresAt}, nil
}

// delete ends the session on every admin process.
func (s *sessionStore) delete(ctx context.Context, id string) error {
	return s.projects.DeleteSession(ctx, id)
}

// fromRequest returns the request's live session, or nil.
func (s *sessionStore) fromRequest(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	return s.get(r.Context(), c.Value)
}

// validCSRF compares a presented token with the session's in constant time.
func (sess *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.csrf)) == 1
}

// safeMethod: methods that never change anything, so they need no CSRF token.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// secureRequest tells whether the console is served over https (directly or behind a TLS-terminating
// proxy that says so), which makes its cookies Secure.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name: name, Value: value, Path: "/", HttpOnly: true, Secure: secureRequest(r),
		SameSite: http.SameSiteStrictMode, MaxAge: int(maxAge / time.Second),
	}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}
