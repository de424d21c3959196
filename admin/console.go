package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// The console is server-rendered pages (html/template) with one small script that calls the REST API
// with the session cookie and the page's CSRF token. Every page that names a webhook looks it up in the
// signed-in project first, so another project's id answers the console's 404 page, never data.

//go:embed console
var consoleFiles embed.FS

// consoleCSP allows nothing but this origin: no inline script or style, no framing, forms only to self.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxLoginBody bounds the sign-in form.
const maxLoginBody = 8 << 10

type console struct {
	a        *api
	pages    map[string]*template.Template
	assets   http.Handler
	assetTag string // cache-busting query of the asset URLs: a digest of their contents
}

// pageData is what every console template gets.
type pageData struct {
	Title     string
	Page      string // the script's page id (body data-page)
	Nav       string // the highlighted navigation entry
	CSRF      string
	Project   string
	AssetTag  string
	SignedIn  bool
	Error     string
	Next      string
	LoginCSRF string
	Webhook   *webhook.Webhook
	// HookURL is the page's webhook's URL at the edge (without a token-mode token).
	HookURL string
	Alert   *authAlert
}

func newConsole(a *api) *console {
	c := &console{a: a, pages: map[string]*template.Template{}}
	funcs := template.FuncMap{}
	for _, name := range []string{"login", "webhooks", "webhook_form", "activity", "users", "events", "api_keys", "alerts", "settings", "audit", "notfound"} {
		c.pages[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(consoleFiles, "console/templates/layout.html", "console/templates/"+name+".html"))
	}
	static, err := fs.Sub(consoleFiles, "console/static")
	if err != nil {
		panic(err)
	}
	h := sha256.New()
	_ = fs.WalkDir(static, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(static, path)
			h.Write(b)
		}
		return nil
	})
	c.assetTag = hex.EncodeToString(h.Sum(nil))[:12]
	c.assets = http.StripPrefix("/assets/", http.FileServerFS(static))
	return c
}

// mount adds the console's routes. They are not API operations, so they stay out of Server.routes (and
// of openapi.yaml).
func (c *console) mount(mux *http.ServeMux) {
	mux.Handle("GET /assets/", c.secure(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		c.assets.ServeHTTP(w, r)
	}))
	mux.Handle("GET /login", c.secure(c.loginPage))
	mux.Handle("POST /login", c.secure(c.login))
	mux.Handle("POST /logout", c.secure(c.logout))
	mux.Handle("GET /{$}", c.secure(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
	}))
	mux.Handle("GET /webhooks", c.page("webhooks", "Inbound webhooks", "webhooks", nil))
	mux.Handle("GET /webhooks/new", c.page("webhook_form", "Create webhook", "webhooks", nil))
	mux.Handle("GET /webhooks/{id}/edit", c.page("webhook_form", "Edit webhook", "webhooks", c.loadWebhook(false)))
	mux.Handle("GET /webhooks/{id}/activity", c.page("activity", "Activity log", "webhooks", c.loadWebhook(true)))
	mux.Handle("GET /users", c.page("users", "User Explorer", "users", nil))
	mux.Handle("GET /events", c.page("events", "Events", "events", nil))
	mux.Handle("GET /api-keys", c.page("api_keys", "API keys", "api_keys", nil))
	mux.Handle("GET /alerts", c.page("alerts", "Alerts", "alerts", nil))
	mux.Handle("GET /settings", c.page("settings", "Settings", "settings", nil))
	mux.Handle("GET /audit", c.page("audit", "Audit log", "audit", nil))
	mux.Handle("/", c.secure(c.notFound))
}

// secure sets the headers every console answer carries.
func (c *console) secure(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", consoleCSP)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		if secureRequest(r) {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h(w, r)
	})
}

// page serves a signed-in page; load (optional) fills page-specific data and may answer a not-found error.
func (c *console) page(tmpl, title, nav string, load func(r *http.Request, pid int64, d *pageData) error) http.Handler {
	return c.secure(func(w http.ResponseWriter, r *http.Request) {
		sess, err := c.a.activeSession(r)
		if err != nil {
			c.a.log.Error("console session check failed", "path", r.URL.Path, "err", err)
			d := pageData{Title: "Unavailable", Page: "notfound", AssetTag: c.assetTag,
				Error: "The console cannot reach its database right now; try again shortly."}
			c.render(w, http.StatusServiceUnavailable, "notfound", d)
			return
		}
		if sess == nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		d := c.baseData(r, sess)
		d.Title, d.Page, d.Nav = title, tmpl, nav
		if load != nil {
			if err := load(r, sess.key.ProjectID, &d); err != nil {
				if errors.Is(err, domainerr.ErrNotFound) {
					c.renderNotFound(w, d)
					return
				}
				c.a.log.Error("console page failed", "path", r.URL.Path, "err", err)
				d.Error = "Something went wrong loading this page; see the admin log."
				c.render(w, http.StatusInternalServerError, "notfound", d)
				return
			}
		}
		c.render(w, http.StatusOK, tmpl, d)
	})
}

func (c *console) baseData(r *http.Request, sess *session) pageData {
	d := pageData{AssetTag: c.assetTag}
	if sess != nil {
		d.SignedIn, d.CSRF = true, sess.csrf
		if p, err := c.a.projects.Get(r.Context(), sess.key.ProjectID); err == nil {
			d.Project = p.Name
		}
	}
	return d
}

// loadWebhook finds the page's webhook in the signed-in project (404 otherwise); withAlert also decides
// whether the auth-failure banner shows.
func (c *console) loadWebhook(withAlert bool) func(r *http.Request, pid int64, d *pageData) error {
	return func(r *http.Request, pid int64, d *pageData) error {
		wh, err := c.a.webhooks.Get(r.Context(), pid, r.PathValue("id"))
		if err != nil {
			return err
		}
		d.Webhook = wh
		d.HookURL = c.a.publicBaseURL + "/hooks/" + wh.ID
		if withAlert && c.a.activity != nil {
			alert, err := authFailureAlert(r.Context(), c.a.activity, pid, wh)
			if err != nil {
				// The banner is advice; the page still works without it.
				c.a.log.Warn("auth alert unavailable", "webhook", wh.ID, "err", err)
			}
			d.Alert = alert
		}
		return nil
	}
}

// authAlert is the activity log's banner after five consecutive auth failures.
type authAlert struct {
	Since   time.Time
	Message string
}

// authFailureAlert decides whether the "update the secret" banner shows: the webhook's latest
// auth-failure notification is newer than its last secret rotation (a rotation restarts the streak) and
// no request has succeeded since it was raised (a correct secret resumes at once, so one success means
// the sender has the right secret again). nil when neither holds.
func authFailureAlert(ctx context.Context, act Activity, pid int64, wh *webhook.Webhook) (*authAlert, error) {
	notes, err := act.Notifications(ctx, pid, wh.ID, 1)
	if err != nil || len(notes) == 0 {
		return nil, err
	}
	n := notes[0]
	if !n.CreatedAt.After(wh.SecretRotatedAt) {
		return nil, nil
	}
	ok, err := act.Entries(ctx, chstore.EntriesQuery{ProjectID: pid, WebhookID: wh.ID, Status: "success", Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(ok.Entries) > 0 && !ok.Entries[0].ReceivedAt.Before(n.CreatedAt.Truncate(time.Second)) {
		return nil, nil
	}
	return &authAlert{Since: n.CreatedAt, Message: n.Message}, nil
}

func (c *console) render(w http.ResponseWriter, status int, tmpl string, d pageData) {
	var buf bytes.Buffer
	if err := c.pages[tmpl].Execute(&buf, d); err != nil {
		c.a.log.Error("console template failed", "template", tmpl, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (c *console) renderNotFound(w http.ResponseWriter, d pageData) {
	d.Title, d.Page, d.Webhook, d.HookURL, d.Alert = "Not found", "notfound", nil, "", nil
	c.render(w, http.StatusNotFound, "notfound", d)
}

func (c *console) notFound(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		// Unknown API paths are the API's business (problem+json); the mux sends them here only for
		// methods its /api/ pattern does not cover, which it does not have.
		http.NotFound(w, r)
		return
	}
	sess, _ := c.a.activeSession(r) // signed out if the key cannot be checked: the 404 page shows no data
	c.renderNotFound(w, c.baseData(r, sess))
}

// safeNext keeps the post-sign-in redirect on this site: a local absolute path, never "//host" or a URL.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") || strings.HasPrefix(next, "/login") {
		return "/webhooks"
	}
	return next
}

func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	// A session whose key was revoked is not one: its pages send here, so redirecting back would loop.
	if sess, _ := c.a.activeSession(r); sess != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomToken()
	setCookie(w, r, loginCSRFCookie, token, 30*time.Minute)
	c.render(w, status, "login", pageData{Title: "Sign in", Page: "login", AssetTag: c.assetTag, Error: msg,
		Next: safeNext(r.FormValue("next")), LoginCSRF: token})
}

// login checks the API key and starts a session. The form carries a double-submit token (cookie and
// field must match), so another site cannot sign a browser into its own project. Refused keys count
// against the client address's failed-authentication limit, shared with the API: past it the form
// answers 429 with Retry-After and checks no key until the address may try again.
func (c *console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		c.showLogin(w, r, http.StatusBadRequest, "The form could not be read; try again.")
		return
	}
	ck, err := r.Cookie(loginCSRFCookie)
	if err != nil || ck.Value == "" || !(&session{csrf: ck.Value}).validCSRF(r.PostForm.Get("csrf")) {
		c.showLogin(w, r, http.StatusForbidden, "Your sign-in form expired; try again.")
		return
	}
	// A key pasted with its scheme ("Bearer inl_…", in any case) is the key.
	key := strings.TrimSpace(r.PostForm.Get("api_key"))
	if cred, ok := secret.CutBearer(key); ok {
		key = strings.TrimSpace(cred)
	}
	if key == "" {
		c.showLogin(w, r, http.StatusUnauthorized, "Enter your project's API key.")
		return
	}
	caller, err := c.a.authenticate(r, key, "sign_in")
	var th *throttled
	switch {
	case errors.As(err, &th):
		c.showThrottled(w, r, th.retryAfter)
		return
	case errors.Is(err, errUnauthenticated):
		c.showLogin(w, r, http.StatusUnauthorized, "That API key is not valid for any project, or it was revoked.")
		return
	case err != nil:
		c.a.log.Error("console sign-in failed", "err", err)
		c.showLogin(w, r, http.StatusServiceUnavailable, "Signing in is unavailable right now; try again shortly.")
		return
	}
	sess, err := c.a.sessions.create(r.Context(), caller)
	if err != nil {
		c.a.log.Error("console sign-in failed", "err", err)
		c.showLogin(w, r, http.StatusServiceUnavailable, "Signing in is unavailable right now; try again shortly.")
		return
	}
	setCookie(w, r, sessionCookie, sess.id, sessionTTL)
	setCookie(w, r, loginCSRFCookie, "", -1)
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

// showThrottled is the sign-in form's 429: it says how long to wait, in words and in Retry-After.
func (c *console) showThrottled(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := retrySeconds(wait)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	c.showLogin(w, r, http.StatusTooManyRequests, fmt.Sprintf(
		"Too many failed sign-in attempts from your network. Wait %s, then try again.", plural(secs, "second")))
}

// plural is "1 second", "30 seconds".
func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}

func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	sess, err := c.a.sessions.fromRequest(r)
	if err != nil {
		c.a.log.Error("console sign-out failed", "err", err)
		http.Error(w, "signing out is unavailable right now; try again shortly", http.StatusServiceUnavailable)
		return
	}
	if sess != nil {
		if err := r.ParseForm(); err != nil || !sess.validCSRF(r.PostForm.Get("csrf")) {
			http.Error(w, "missing or wrong CSRF token; reload the page", http.StatusForbidden)
			return
		}
		if err := c.a.sessions.delete(r.Context(), sess.id); err != nil {
			c.a.log.Error("console sign-out failed", "err", err)
			http.Error(w, "signing out is unavailable right now; try again shortly", http.StatusServiceUnavailable)
			return
		}
	}
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
