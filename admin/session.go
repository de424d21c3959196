package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/inlet-dev/inlet/internal/project"
)

// Console sessions. Signing in with a project API key creates a server-side session: the cookie holds
// only a random 256-bit id, the map holds the project, the key signed in with and the session's CSRF
// token. Sessions live in the admin process's memory, so a restart signs everyone out (the console sends
// them back to /login); nothing about them needs to survive it, and a stolen cookie dies with the
// process or the expiry. Every use of a session checks in PostgreSQL that its key is still active
// (api.activeSession), so revoking the key — through any admin process or the CLI — ends its sessions
// at their next request.
const (
	sessionCookie = "inlet_session"
	// loginCSRFCookie carries the double-submit token of the sign-in form (there is no session yet).
	loginCSRFCookie = "inlet_login"
	// sessionTTL is a session's absolute lifetime; the console then asks for the key again.
	sessionTTL = 12 * time.Hour
	// maxSessions bounds the map; past it the session closest to expiry is dropped.
	maxSessions = 10_000
	// csrfHeader carries the session's CSRF token on every API write made with the session cookie.
	csrfHeader = "X-CSRF-Token"
)

type session struct {
	id        string
	projectID int64
	keyID     int64
	csrf      string
	expires   time.Time
}

// caller is the session's project and key.
func (sess *session) caller() project.Caller {
	return project.Caller{ProjectID: sess.projectID, KeyID: sess.keyID}
}

// sessionStore is the in-memory session map.
type sessionStore struct {
	mu  sync.Mutex
	m   map[string]*session
	now func() time.Time
}

func newSessionStore() *sessionStore {
	return &sessionStore{m: map[string]*session{}, now: time.Now}
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
func (s *sessionStore) create(c project.Caller) *session {
	now := s.now()
	sess := &session{id: randomToken(), projectID: c.ProjectID, keyID: c.KeyID, csrf: randomToken(), expires: now.Add(sessionTTL)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		var oldest *session
		for id, x := range s.m {
			if !now.Before(x.expires) {
				delete(s.m, id)
			} else if oldest == nil || x.expires.Before(oldest.expires) {
				oldest = x
			}
		}
		if len(s.m) >= maxSessions && oldest != nil {
			delete(s.m, oldest.id)
		}
	}
	s.m[sess.id] = sess
	return sess
}

// get returns the live session with that id, or nil.
func (s *sessionStore) get(id string) *session {
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[id]
	if sess == nil {
		return nil
	}
	if !s.now().Before(sess.expires) {
		delete(s.m, id)
		return nil
	}
	return sess
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// dropKey ends this process's sessions signed in with keyID (after it is revoked here; other processes'
// sessions end at their next request, when the key is checked).
func (s *sessionStore) dropKey(keyID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sess := range s.m {
		if sess.keyID == keyID {
			delete(s.m, id)
		}
	}
}

// fromRequest returns the request's live session, or nil.
func (s *sessionStore) fromRequest(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	return s.get(c.Value)
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
