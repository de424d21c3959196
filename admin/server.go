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
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/domainerr"
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

// route is one API endpoint; the OpenAPI test compares this table with openapi.yaml.
type route struct {
	method, path string
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
		{"GET", "/api/v1/project", a.getProject},
		{"PATCH", "/api/v1/project", a.patchProject},
		{"GET", "/api/v1/project/signing-secret", a.getSigningSecret},
		{"POST", "/api/v1/project/signing-secret/rotate", a.rotateSigningSecret},
		{"GET", "/api/v1/alert-rules", a.listRules},
		{"POST", "/api/v1/alert-rules", a.createRule},
		{"GET", "/api/v1/alert-rules/{id}", a.getRule},
		{"PUT", "/api/v1/alert-rules/{id}", a.putRule},
		{"DELETE", "/api/v1/alert-rules/{id}", a.deleteRule},
		{"GET", "/api/v1/alerts", a.listAlerts},
		{"GET", "/api/v1/notifications", a.listDeliveries},
		{"GET", "/api/v1/notifications/{id}", a.getDelivery},
		{"GET", "/api/v1/api-keys", a.listKeys},
		{"POST", "/api/v1/api-keys", a.createKey},
		{"GET", "/api/v1/api-keys/{id}", a.getKey},
		{"POST", "/api/v1/api-keys/{id}/revoke", a.revokeKey},
		{"POST", "/api/v1/sample-fields", a.sampleFields},
		{"GET", "/api/v1/senders", a.listSenders},

		{"GET", "/api/v1/events", a.listEvents},
		{"POST", "/api/v1/events", a.createEvent},
		{"GET", "/api/v1/events/{id}", a.getEvent},
		{"PUT", "/api/v1/events/{id}", a.putEvent},
		{"DELETE", "/api/v1/events/{id}", a.deleteEvent},

		{"GET", "/api/v1/webhooks", a.listWebhooks},
		{"POST", "/api/v1/webhooks", a.createWebhook},
		{"GET", "/api/v1/webhooks/{id}", a.getWebhook},
		{"PATCH", "/api/v1/webhooks/{id}", a.patchWebhook},
		{"DELETE", "/api/v1/webhooks/{id}", a.deleteWebhook},
		{"POST", "/api/v1/webhooks/{id}/enable", a.setEnabled(true)},
		{"POST", "/api/v1/webhooks/{id}/disable", a.setEnabled(false)},
		{"GET", "/api/v1/webhooks/{id}/credentials", a.getCredentials},
		{"POST", "/api/v1/webhooks/{id}/rotate-secret", a.rotateSecret},
		{"GET", "/api/v1/webhooks/{id}/summary", a.summary},
		{"GET", "/api/v1/webhooks/{id}/activity", a.listActivity},
		{"GET", "/api/v1/webhooks/{id}/activity/{request_id}", a.getActivity},
		{"POST", "/api/v1/webhooks/{id}/activity/{request_id}/replay", a.replayRequest},
		{"GET", "/api/v1/webhooks/{id}/notifications", a.listNotifications},
		{"POST", "/api/v1/webhooks/test", a.testDraft},
		{"POST", "/api/v1/webhooks/{id}/test", a.testWebhook},
		{"POST", "/api/v1/webhooks/{id}/backtest", a.backtest},

		{"PUT", "/api/v1/users/{user_id}", a.putUser},
		{"GET", "/api/v1/users/{user_id}", a.getUser},
		{"DELETE", "/api/v1/users/{user_id}", a.deleteUser},
		{"PUT", "/api/v1/devices/{hwid}", a.putDevice},
		{"GET", "/api/v1/devices/{hwid}", a.getDevice},
		{"DELETE", "/api/v1/devices/{hwid}", a.deleteDevice},
		{"GET", "/api/v1/users/{user_id}/events", a.history(chstore.SubjectUser, "user_id")},
		{"GET", "/api/v1/devices/{hwid}/events", a.history(chstore.SubjectDevice, "hwid")},
		{"GET", "/api/v1/lookup", a.lookup},
		{"POST", "/api/v1/directory/import", a.importDirectory},

		{"GET", "/api/v1/replays", a.listReplays},
		{"POST", "/api/v1/replays", a.createReplay},
		{"GET", "/api/v1/replays/{id}", a.getReplay},
		{"POST", "/api/v1/replays/{id}/cancel", a.cancelReplay},
	}
	mux := http.NewServeMux()
	for _, r := range s.routes {
		mux.Handle(r.method+" "+r.path, a.authed(r.method+" "+r.path, r.h))
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
