package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/audit"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/erasure"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/pipeline"
)

// Deps are the stores and services the admin process serves from.
type Deps struct {
	// Logger receives the API's logs; nil discards them.
	Logger *slog.Logger
	// Registry gets the API's metrics; nil registers them on a registry of their own.
	Registry prometheus.Registerer
	// Pool holds the failed-authentication limiter's table (auth_failures), shared by every admin
	// process.
	Pool      *pgxpool.Pool
	Projects  *project.Store
	Webhooks  *webhook.Store
	Directory *directory.Store
	// Activity answers the ClickHouse queries; nil leaves Received counts at 0.
	Activity Activity
	// Evaluator answers dry runs and backtests: pipeline.Evaluator with the pipeline's limits and a
	// resolver that asks the directory every time. nil: those endpoints answer 503.
	Evaluator *pipeline.Evaluator
	// Alerts holds alert rules, alerts, notifications and signing secrets; nil: those endpoints answer
	// 503.
	Alerts *alert.Store
	// Retention bounds the retention a project may set; zero: pipeline.Defaults()'s.
	Retention RetentionBounds
	// Replays are the replay jobs (PostgreSQL) and ReplayCH what the replay endpoints read of ClickHouse
	// (chstore.Reader); either nil: those endpoints answer 503.
	Replays  *replay.Store
	ReplayCH Replays
	// MaxBodyBytes bounds a dry run's body: the edge's max_body_bytes, since a larger request never
	// reaches the pipeline. 0: the edge's default, 1 MiB.
	MaxBodyBytes int
	// Audit reads the audit log; nil: GET /audit answers 503.
	Audit *audit.Store
	// Erasures reads erasure jobs; nil: their endpoints answer 503.
	Erasures *erasure.Store
	// WakeErasures, when set, is called after a user or device is deleted, so that a runner in this
	// process starts its erasure at once.
	WakeErasures func()
}

// Activity is what the admin API reads from ClickHouse (implemented by chstore.Reader).
type Activity interface {
	// Received is the all-time count of logged requests of every webhook of the project, by webhook id.
	Received(ctx context.Context, projectID int64) (map[string]uint64, error)
	Summary24h(ctx context.Context, projectID int64, webhookID string, now time.Time) (chstore.Summary, error)
	Entries(ctx context.Context, q chstore.EntriesQuery) (chstore.Page, error)
	Entry(ctx context.Context, projectID int64, webhookID, requestID string) (chstore.Entry, error)
	History(ctx context.Context, q chstore.HistoryQuery) (chstore.HistoryPage, error)
	Notifications(ctx context.Context, projectID int64, webhookID string, limit int) ([]chstore.Notification, error)
	// Recorded is the webhook's newest accepted requests, for a backtest.
	Recorded(ctx context.Context, projectID int64, webhookID string, limit int) ([]chstore.Recorded, error)
}

// route is one API endpoint and the scope a key needs to call it; the OpenAPI test compares this table
// with openapi.yaml.
type route struct {
	method, path string
	scope        string
	h            handlerFunc
}

// Server is the admin process's HTTP server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	routes  []route
	api     *api
}

// New builds the API and console handlers.
func New(cfg Config, d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	a := &api{
		log:           d.Logger,
		projects:      d.Projects,
		webhooks:      d.Webhooks,
		directory:     d.Directory,
		activity:      d.Activity,
		audit:         d.Audit,
		erasures:      d.Erasures,
		wakeErasures:  d.WakeErasures,
		evaluator:     d.Evaluator,
		alerts:        d.Alerts,
		retention:     d.Retention,
		replays:       d.Replays,
		replayCH:      d.ReplayCH,
		maxBodyBytes:  d.MaxBodyBytes,
		publicBaseURL: strings.TrimRight(cfg.PublicBaseURL, "/"),
		metrics:       newMetrics(d.Registry),
		sessions:      newSessionStore(d.Projects),

		limiter:           newAuthLimiter(d.Pool, cfg),
		trustForwardedFor: cfg.TrustForwardedFor,
	}
	if a.maxBodyBytes == 0 {
		a.maxBodyBytes = defaultMaxBodyBytes
	}
	s := &Server{cfg: cfg, log: d.Logger, api: a}
	s.routes = []route{
		{"GET", "/api/v1/project", project.ScopeRead, a.getProject},
		{"PATCH", "/api/v1/project", project.ScopeAdmin, a.patchProject},
		{"GET", "/api/v1/project/signing-secret", project.ScopeAdmin, a.getSigningSecret},
		{"POST", "/api/v1/project/signing-secret/rotate", project.ScopeAdmin, a.rotateSigningSecret},
		{"GET", "/api/v1/alert-rules", project.ScopeRead, a.listRules},
		{"POST", "/api/v1/alert-rules", project.ScopeAdmin, a.createRule},
		{"GET", "/api/v1/alert-rules/{id}", project.ScopeRead, a.getRule},
		{"PUT", "/api/v1/alert-rules/{id}", project.ScopeAdmin, a.putRule},
		{"DELETE", "/api/v1/alert-rules/{id}", project.ScopeAdmin, a.deleteRule},
		{"GET", "/api/v1/alerts", project.ScopeRead, a.listAlerts},
		{"GET", "/api/v1/notifications", project.ScopeRead, a.listDeliveries},
		{"GET", "/api/v1/notifications/{id}", project.ScopeRead, a.getDelivery},
		{"GET", "/api/v1/api-keys", project.ScopeAdmin, a.listKeys},
		{"POST", "/api/v1/api-keys", project.ScopeAdmin, a.createKey},
		{"GET", "/api/v1/api-keys/{id}", project.ScopeAdmin, a.getKey},
		{"POST", "/api/v1/api-keys/{id}/revoke", project.ScopeAdmin, a.revokeKey},
		{"POST", "/api/v1/sample-fields", project.ScopeRead, a.sampleFields},
		{"GET", "/api/v1/senders", project.ScopeRead, a.listSenders},

		{"GET", "/api/v1/events", project.ScopeRead, a.listEvents},
		{"POST", "/api/v1/events", project.ScopeWebhooksWrite, a.createEvent},
		{"GET", "/api/v1/events/{id}", project.ScopeRead, a.getEvent},
		{"PUT", "/api/v1/events/{id}", project.ScopeWebhooksWrite, a.putEvent},
		{"DELETE", "/api/v1/events/{id}", project.ScopeWebhooksWrite, a.deleteEvent},

		{"GET", "/api/v1/webhooks", project.ScopeRead, a.listWebhooks},
		{"POST", "/api/v1/webhooks", project.ScopeWebhooksWrite, a.createWebhook},
		{"GET", "/api/v1/webhooks/{id}", project.ScopeRead, a.getWebhook},
		{"PATCH", "/api/v1/webhooks/{id}", project.ScopeWebhooksWrite, a.patchWebhook},
		{"DELETE", "/api/v1/webhooks/{id}", project.ScopeWebhooksWrite, a.deleteWebhook},
		{"POST", "/api/v1/webhooks/{id}/enable", project.ScopeWebhooksWrite, a.setEnabled(true)},
		{"POST", "/api/v1/webhooks/{id}/disable", project.ScopeWebhooksWrite, a.setEnabled(false)},
		{"GET", "/api/v1/webhooks/{id}/credentials", project.ScopeWebhooksWrite, a.getCredentials},
		{"POST", "/api/v1/webhooks/{id}/rotate-secret", project.ScopeWebhooksWrite, a.rotateSecret},
		{"GET", "/api/v1/webhooks/{id}/summary", project.ScopeRead, a.summary},
		{"GET", "/api/v1/webhooks/{id}/activity", project.ScopeRead, a.listActivity},
		{"GET", "/api/v1/webhooks/{id}/activity/{request_id}", project.ScopeRead, a.getActivity},
		{"POST", "/api/v1/webhooks/{id}/activity/{request_id}/replay", project.ScopeWebhooksWrite, a.replayRequest},
		{"GET", "/api/v1/webhooks/{id}/notifications", project.ScopeRead, a.listNotifications},
		{"POST", "/api/v1/webhooks/test", project.ScopeRead, a.testDraft},
		{"POST", "/api/v1/webhooks/{id}/test", project.ScopeRead, a.testWebhook},
		{"POST", "/api/v1/webhooks/{id}/backtest", project.ScopeRead, a.backtest},

		{"PUT", "/api/v1/users/{user_id}", project.ScopeDirectoryWrite, a.putUser},
		{"GET", "/api/v1/users/{user_id}", project.ScopeRead, a.getUser},
		{"DELETE", "/api/v1/users/{user_id}", project.ScopeDirectoryWrite, a.deleteUser},
		{"PUT", "/api/v1/devices/{hwid}", project.ScopeDirectoryWrite, a.putDevice},
		{"GET", "/api/v1/devices/{hwid}", project.ScopeRead, a.getDevice},
		{"DELETE", "/api/v1/devices/{hwid}", project.ScopeDirectoryWrite, a.deleteDevice},
		{"GET", "/api/v1/users/{user_id}/events", project.ScopeRead, a.history(chstore.SubjectUser, "user_id")},
		{"GET", "/api/v1/devices/{hwid}/events", project.ScopeRead, a.history(chstore.SubjectDevice, "hwid")},
		{"GET", "/api/v1/lookup", project.ScopeRead, a.lookup},
		{"POST", "/api/v1/directory/import", project.ScopeDirectoryWrite, a.importDirectory},

		{"GET", "/api/v1/replays", project.ScopeRead, a.listReplays},
		{"POST", "/api/v1/replays", project.ScopeWebhooksWrite, a.createReplay},
		{"GET", "/api/v1/replays/{id}", project.ScopeRead, a.getReplay},
		{"POST", "/api/v1/replays/{id}/cancel", project.ScopeWebhooksWrite, a.cancelReplay},

		{"GET", "/api/v1/audit", project.ScopeAdmin, a.listAudit},
		{"GET", "/api/v1/erasures", project.ScopeRead, a.listErasures},
		{"GET", "/api/v1/erasures/{id}", project.ScopeRead, a.getErasure},
	}
	mux := http.NewServeMux()
	for _, r := range s.routes {
		mux.Handle(r.method+" "+r.path, a.authed(r.method+" "+r.path, r.scope, r.h))
	}
	mux.Handle("/api/", a.wrap("other", func(http.ResponseWriter, *http.Request) (int, any, error) {
		return 0, nil, domainerr.ErrNotFound
	}))
	newConsole(a).mount(mux)
	s.handler = mux
	return s
}

// Handler serves the API (and the console).
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves on cfg.ListenAddr until ctx is done, then drains for up to 10 s.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w", s.cfg.ListenAddr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // NDJSON imports stream large bodies
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("admin serving", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("admin shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin shutdown: %w", err)
	}
	return nil
}

func (a *api) getProject(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	p, err := a.projects.Get(r.Context(), projectID(r.Context()))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p, nil
}

func (a *api) patchProject(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	var req struct {
		NotificationURL    *string            `json:"notification_url"`
		NotificationFormat *string            `json:"notification_format"`
		PhoneRegion        *string            `json:"phone_region"`
		Retention          *project.Retention `json:"retention"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Retention != nil {
		if err := a.retention.check(*req.Retention); err != nil {
			return 0, nil, err
		}
	}
	if req.NotificationURL != nil {
		if err := validNotificationURL(*req.NotificationURL); err != nil {
			return 0, nil, domainerr.Invalid("notification_url", "%v", err)
		}
	}
	p, err := a.projects.Update(r.Context(), projectID(r.Context()),
		project.Update{NotificationURL: req.NotificationURL, NotificationFormat: req.NotificationFormat, PhoneRegion: req.PhoneRegion,
			Retention: req.Retention})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p, nil
}
