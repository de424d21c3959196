// Package compose is Inlet's composition root: the one place where settings become running parts.
// From a validated *config.Config it opens the store bundle (OpenStores: the PostgreSQL pool, the
// secrets sealer and the project, webhook and directory stores), the config plane the data path reads
// through (the pool, the LISTEN connection that pushes changes, the webhook cache and its warm-up), and
// builds each process's component with its dependencies and readiness checks: NewIngestor (the edge and
// its Kafka producer), NewPipeline (consumer, resolver, ClickHouse, notifications) and NewAdmin (API and
// console with its stores and the ClickHouse reader).
//
// The binary (cmd/inlet) runs one component per process beside its internal listener; the bench seeds
// through OpenStores and runs the binary; the end-to-end tests (e2e) run the same components in one
// process on their own listeners, databases and topics, which they set through the settings. Nothing
// else wires the system: a dependency added here reaches all of them.
//
// A component is built by its New function, run once by Run (or Serve on a listener of the caller's),
// and released by Close after Run has returned; Close releases what New opened, in the reverse order.
package compose

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/obs"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/tracing"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// Deps are what a component is built from besides the settings.
type Deps struct {
	// Registry gets the component's metrics; nil registers them on a registry of their own.
	Registry prometheus.Registerer
	// Logger receives the component's logs; nil discards them.
	Logger *slog.Logger
	// Failpoint, if set, is called at the named points of the pipeline's flushes (crash tests only:
	// pipeline.FailpointFromEnv).
	Failpoint func(name string)
	// SpanExporter, if set, receives the ingestor's and the pipeline's spans synchronously, with
	// tracing on whatever tracing.endpoint says (tests: tracetest.InMemoryExporter); the sampling is
	// still tracing.sample_ratio's.
	SpanExporter sdktrace.SpanExporter
}

// traceFlushTimeout bounds the export of the spans still queued when a component closes: a collector
// that does not answer costs the shutdown at most this.
const traceFlushTimeout = 5 * time.Second

// shutdownTracing exports the spans p still holds, within traceFlushTimeout; a failure is logged, as
// nothing else is left to do with it.
func shutdownTracing(p *tracing.Provider, log *slog.Logger) {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		log.Warn("spans not exported on shutdown", "err", err)
	}
}

func (d Deps) withDefaults() Deps {
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return d
}

// ReadyChecks are a component's readiness checks by name, for its internal listener's /readyz.
type ReadyChecks map[string]obs.ReadyCheck

// AddTo registers every check on the internal listener s.
func (r ReadyChecks) AddTo(s *obs.Server) {
	for name, c := range r {
		s.AddReadyCheck(name, c)
	}
}

// OpenStores opens the PostgreSQL pool of cfg.Postgres and builds every store on it; webhook secrets are
// sealed with cfg.Secrets' master key and opened with it or a previous one (cfg must have been
// validated). The directory store's metrics go
// to reg (nil: not exported), its logs to log (nil: discarded). The caller closes the bundle.
func OpenStores(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (*store.Bundle, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sealer, err := secret.NewSealer(cfg.Secrets.Key(), cfg.Secrets.PreviousKeys()...)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	pool, err := pgdb.Open(ctx, cfg.Postgres)
	if err != nil {
		return nil, err
	}
	projects := project.NewStore(pool)
	dir, err := directory.NewStore(pool, projects, cfg.Directory, reg, log)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &store.Bundle{
		Pool:      pool,
		Projects:  projects,
		Webhooks:  webhook.NewStore(pool, sealer),
		Directory: dir,
		Alerts:    alert.NewStore(pool, sealer, cfg.Alerts),
	}, nil
}
