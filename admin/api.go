package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bytedance/sonic"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/audit"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/erasure"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/pipeline"
)

// Limits of the admin API's inputs.
const (
	// maxJSONBody bounds every JSON request body; the largest legitimate one is a webhook with a 64 KiB
	// sample payload.
	maxJSONBody = 256 << 10
	// maxImportBody bounds one NDJSON import request.
	maxImportBody = 512 << 20
)

// Problem is an RFC 9457 problem detail; Errors lists every invalid field of a request.
type Problem struct {
	Type   string                 `json:"type"`
	Title  string                 `json:"title"`
	Status int                    `json:"status"`
	Detail string                 `json:"detail,omitempty"`
	Errors []domainerr.FieldError `json:"errors,omitempty"`
}

// Error kinds of the API itself; writeError maps them, and the stores' (package domainerr), to a status
// in one place.
var (
	errUnauthenticated = errors.New("missing or unknown API key")
	// errCSRF: a write with the console's session cookie but without its CSRF token (403).
	errCSRF = &statusError{http.StatusForbidden, "missing or wrong " + csrfHeader + " header; reload the console page"}
)

// statusError carries an explicit status for errors no sentinel describes.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// throttled: the client address has no failed authentication left (429 with Retry-After).
type throttled struct{ retryAfter time.Duration }

func (e *throttled) Error() string {
	return fmt.Sprintf("too many failed authentications from this address; retry in %d s", retrySeconds(e.retryAfter))
}

// retrySeconds rounds a wait up to whole seconds, as Retry-After carries it (after rounding to the
// millisecond, so that floating-point dust does not add a second).
func retrySeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Round(time.Millisecond).Seconds())))
}

type ctxKey struct{}

// caller returns the authenticated caller.
func caller(ctx context.Context) project.Caller { return ctx.Value(ctxKey{}).(project.Caller) }

// projectID returns the authenticated caller's project.
func projectID(ctx context.Context) int64 { return caller(ctx).ProjectID }

// handlerFunc is an API handler: it returns the value to encode (with status) or an error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (int, any, error)

// api holds what every handler needs.
type api struct {
	log       *slog.Logger
	projects  *project.Store
	webhooks  *webhook.Store
	directory *directory.Store
	activity  Activity
	audit     *audit.Store
	erasures  *erasure.Store
	// wakeErasures starts the erasure of a deleted subject at once; nil: the runners' next poll.
	wakeErasures func()
	// evaluator answers dry runs and backtests; nil: they answer 503. maxBodyBytes bounds a dry run's
	// body as the edge bounds a request's.
	evaluator *pipeline.Evaluator
	// replays are the replay jobs; replayCH what their endpoints read of ClickHouse. nil: 503.
	replays      *replay.Store
	replayCH     Replays
	alerts       *alert.Store
	retention    RetentionBounds
	maxBodyBytes int
	// publicBaseURL has no trailing slash.
	publicBaseURL string
	metrics       *metrics
	// sessions are the console's sign-ins; the API accepts one in place of a Bearer key.
	sessions *sessionStore
	// limiter counts failed authentications per client address (sign-in form and Bearer keys).
	limiter           *authLimiter
	trustForwardedFor bool
}

type metrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// authFailures and authThrottled count refused keys and the attempts answered 429 unchecked, by
	// where they were presented (api, sign_in).
	authFailures  *prometheus.CounterVec
	authThrottled *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_admin_requests_total", Help: "Admin API requests by route.",
		}, []string{"route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_admin_errors_total", Help: "Admin API answers with status >= 400 by route and status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "inlet_admin_request_duration_seconds", Help: "Admin API latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_admin_auth_failures_total", Help: "API keys refused, on the API or the console's sign-in form.",
		}, []string{"via"}),
		authThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_admin_auth_throttled_total", Help: "Authentication attempts answered 429 unchecked: the client address failed too often.",
		}, []string{"via"}),
	}
	reg.MustRegister(m.requests, m.errors, m.latency, m.authFailures, m.authThrottled)
	return m
}

// authed wraps h with authentication, authorization (the key must hold scope), metrics and error
// mapping, and makes the caller the audit actor of the request's context: every change it makes through
// the stores is recorded as the key's (package audit). route is the mux pattern. A Bearer key
// (the scheme in any case: "bearer inl_…" too, RFC 9110 §11.1) is checked in PostgreSQL on every request
// (nothing is cached, so a revoked key is refused from the revocation's commit on); without one, the
// console's session cookie is accepted, its key checked the same way.
func (a *api) authed(route, scope string, h handlerFunc) http.HandlerFunc {
	return a.wrap(route, func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		key, ok := secret.CutBearer(r.Header.Get("Authorization"))
		if !ok {
			// The console calls the API with its session cookie; a write must then carry the session's
			// CSRF token in a header, which another site's page cannot read or set.
			sess, err := a.activeSession(r)
			if err != nil {
				return 0, nil, err
			}
			if sess == nil {
				return 0, nil, errUnauthenticated
			}
			if !safeMethod(r.Method) && !sess.validCSRF(r.Header.Get(csrfHeader)) {
				return 0, nil, errCSRF
			}
			return a.authorized(w, r, sess.caller(), "console", route, scope, h)
		}
		c, err := a.authenticate(r, strings.TrimSpace(key), "api")
		if err != nil {
			return 0, nil, err
		}
		return a.authorized(w, r, c, "api", route, scope, h)
	})
}

// authorized calls h for caller c if its key holds scope, else answers 403 naming the scope missing.
func (a *api) authorized(w http.ResponseWriter, r *http.Request, c project.Caller, via, route, scope string, h handlerFunc) (int, any, error) {
	if !c.Has(scope) {
		return 0, nil, &statusError{http.StatusForbidden, fmt.Sprintf("this API key lacks the scope %q, which %s requires (the key's scopes: %s)",
			scope, route, strings.Join(c.Scopes, ", "))}
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, c)
	ctx = audit.WithActor(ctx, audit.Actor{Via: via, KeyID: c.KeyID, KeyName: c.KeyName})
	return h(w, r.WithContext(ctx))
}

// authenticate checks a key presented by r's client, under the failed-authentication limit: an address
// with no failure left gets a *throttled error without its key being looked at, a refused key takes one
// of its failures (errUnauthenticated). via names the entry point in the metrics.
func (a *api) authenticate(r *http.Request, key, via string) (project.Caller, error) {
	addr := clientAddr(r, a.trustForwardedFor)
	d, err := a.limiter.wait(r.Context(), addr)
	if err != nil {
		return project.Caller{}, err
	}
	if d > 0 {
		a.metrics.authThrottled.WithLabelValues(via).Inc()
		return project.Caller{}, &throttled{retryAfter: d}
	}
	c, err := a.projects.Authenticate(r.Context(), key)
	if errors.Is(err, project.ErrUnauthenticated) {
		if err := a.limiter.fail(r.Context(), addr); err != nil {
			// The key is refused all the same; only this failure goes uncounted.
			a.log.Warn("failed authentication not counted", "via", via, "err", err)
		}
		a.metrics.authFailures.WithLabelValues(via).Inc()
		return project.Caller{}, errUnauthenticated
	}
	return c, err
}

// activeSession returns the request's session if its key is still active, nil otherwise (the lookup
// joins the key: a session whose key was revoked is not found). An error means it could not be looked up.
func (a *api) activeSession(r *http.Request) (*session, error) {
	return a.sessions.fromRequest(r)
}

func (a *api) wrap(route string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		a.metrics.requests.WithLabelValues(route).Inc()
		status, body, err := h(w, r)
		if err != nil {
			status = a.writeError(w, r, err)
		} else if body != nil {
			writeJSON(w, status, body)
		} else if status != 0 {
			w.WriteHeader(status)
		}
		if status >= 400 {
			a.metrics.errors.WithLabelValues(route, fmt.Sprint(status)).Inc()
		}
		a.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}

// writeError is the one place errors become HTTP statuses: the API's own (authentication, throttling,
// transport) and the domain stores' vocabulary (package domainerr), whatever store or check returned
// them. A client error's detail is its message, which names what failed; a bare domainerr.ErrNotFound
// (an id that cannot exist, such as a non-numeric key id) says no more than the title and has none.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	p := Problem{Type: "about:blank"}
	var se *statusError
	var th *throttled
	var ve *domainerr.ValidationError
	var ce *domainerr.ConflictError
	switch {
	case errors.As(err, &th):
		p.Status, p.Detail = http.StatusTooManyRequests, th.Error()
		w.Header().Set("Retry-After", strconv.FormatInt(retrySeconds(th.retryAfter), 10))
	case errors.As(err, &se):
		p.Status, p.Detail = se.status, se.msg
	case errors.Is(err, errUnauthenticated):
		p.Status, p.Detail = http.StatusUnauthorized, "send the project's API key as Authorization: Bearer <key>"
		w.Header().Set("WWW-Authenticate", `Bearer realm="inlet-admin"`)
	case errors.As(err, &ve):
		p.Status, p.Errors = http.StatusBadRequest, ve.Fields
	case errors.As(err, &ce):
		p.Status, p.Errors = http.StatusConflict, []domainerr.FieldError{{Field: ce.Field, Message: ce.Message}}
	case errors.Is(err, domainerr.ErrInvalid):
		p.Status = http.StatusBadRequest
	case errors.Is(err, domainerr.ErrNotFound):
		p.Status = http.StatusNotFound
	case errors.Is(err, domainerr.ErrConflict):
		p.Status = http.StatusConflict
	case errors.Is(err, domainerr.ErrVersionMismatch):
		p.Status = http.StatusPreconditionFailed
	case errors.Is(err, domainerr.ErrUnavailable):
		p.Status = http.StatusServiceUnavailable
	default:
		p.Status = http.StatusInternalServerError
		p.Detail = "internal error; see the admin log"
		a.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if p.Detail == "" && p.Status < 500 && err != domainerr.ErrNotFound {
		p.Detail = err.Error()
	}
	p.Title = http.StatusText(p.Status)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	b, _ := sonic.ConfigStd.Marshal(p)
	_, _ = w.Write(b)
	return p.Status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := sonic.ConfigStd.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"encoding failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decode reads a bounded JSON body (maxJSONBody) into v, rejecting unknown fields and trailing data.
func decode(r *http.Request, v any) error { return decodeLimit(r, v, maxJSONBody) }

// decodeLimit is decode with limit in place of maxJSONBody.
func decodeLimit(r *http.Request, v any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &statusError{http.StatusUnsupportedMediaType, "send Content-Type: application/json"}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return &statusError{http.StatusBadRequest, "reading the body: " + err.Error()}
	}
	if int64(len(b)) > limit {
		return &statusError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over %d bytes", limit)}
	}
	dec := sonic.ConfigStd.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return domainerr.Invalid("body", "%s", decodeProblem(err))
	}
	if dec.More() {
		return domainerr.Invalid("body", "unexpected data after the JSON value")
	}
	return nil
}

// sonicError is a syntax or type error of sonic's decoder, which quotes the body around the fault.
var sonicError = regexp.MustCompile(`^"?(?:Syntax error |Mismatch type (\S+) with value (\S+) "?)at index (\d+): ([^\\"]*)`)

// decodeProblem says what is wrong with a request body without quoting it: sonic's messages show the
// text around the fault, which may be a secret the request carries (a webhook's, an API key's), and a
// problem is no place to repeat one.
func decodeProblem(err error) string {
	msg := strings.TrimSpace(err.Error())
	m := sonicError.FindStringSubmatch(msg)
	switch {
	case m != nil && m[1] != "":
		return fmt.Sprintf("at byte %s: a JSON %s where %s was expected", m[3], m[2], m[1])
	case m != nil:
		return fmt.Sprintf("not valid JSON at byte %s: %s", m[3], strings.TrimSpace(m[4]))
	}
	if i := strings.Index(msg, `\n\n\t`); i >= 0 {
		return strings.TrimSpace(msg[:i])
	}
	return msg
}

func validNotificationURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL or empty")
	}
	if len(s) > 2048 {
		return errors.New("must be at most 2048 characters")
	}
	return nil
}

// RetentionBounds are the retentions, in days, a project may set (pipeline.Config.RetentionBounds):
// payloads 1..Max, activity rows and events RowsMin..Max; 0 keeps the server's.
type RetentionBounds struct{ RowsMin, Max int }

// check reports every retention outside the bounds.
func (b RetentionBounds) check(r project.Retention) error {
	if b.Max == 0 {
		c := pipeline.Defaults()
		b.RowsMin, b.Max = c.RetentionBounds()
	}
	var fe []domainerr.FieldError
	in := func(field string, v, lo int) {
		switch {
		case v == 0:
		case lo > b.Max:
			fe = append(fe, domainerr.FieldError{Field: field, Message: fmt.Sprintf(
				"this server keeps rows %d days and cannot delete them sooner than %d days (pipeline.high_water_lookback): only 0 is allowed", b.Max, lo)})
		case v < lo || v > b.Max:
			fe = append(fe, domainerr.FieldError{Field: field, Message: fmt.Sprintf("must be 0 (the server's %d days) or %d..%d, got %d", b.Max, lo, b.Max, v)})
		}
	}
	in("retention.activity_days", r.ActivityDays, b.RowsMin)
	in("retention.payload_days", r.PayloadDays, 1)
	in("retention.events_days", r.EventsDays, b.RowsMin)
	if len(fe) > 0 {
		return &domainerr.ValidationError{Fields: fe}
	}
	return nil
}
