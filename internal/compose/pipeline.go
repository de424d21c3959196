package compose

import (
	"context"
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/hold"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/tracing"
	"github.com/inlet-dev/inlet/pipeline"
)

// Pipeline is the pipeline process's component: the consumer that resolves users, fires events and
// writes ClickHouse, with the config plane, the directory resolver and the ClickHouse connection it
// reads and writes through.
type Pipeline struct {
	plane    *configPlane
	resolver *directory.Resolver
	ch       driver.Conn
	replicas []driver.Conn // a ClickHouse cluster's replicas, each; nil on a single server
	p        *pipeline.Pipeline
	// attempts produces the attempts of held requests (their release or expiry); releaser finds them.
	attempts *replay.Producer
	releaser *hold.Releaser
	tracing  *tracing.Provider // nil: tracing off
	log      *slog.Logger
}

// NewPipeline builds the pipeline from cfg: the config plane, the resolver (invalidated through the
// plane's listener), the senders' delivery keys in the config database, the ClickHouse connection of
// cfg.ClickHouse, and notifications POSTed to each project's notification URL.
func NewPipeline(ctx context.Context, cfg *config.Config, d Deps) (*Pipeline, error) {
	d = d.withDefaults()
	plane, err := openConfigPlane(ctx, cfg, d.Registry, d.Logger, false)
	if err != nil {
		return nil, err
	}
	c := &Pipeline{plane: plane, log: d.Logger}
	if c.tracing, err = tracing.New(cfg.Tracing, "pipeline", tracing.Options{Exporter: d.SpanExporter}); err != nil {
		c.Close()
		return nil, err
	}
	if c.resolver, err = directory.NewResolver(plane.stores.Pool, plane.notifier, plane.stores.Projects, cfg.Directory, d.Registry, d.Logger); err != nil {
		c.Close()
		return nil, err
	}
	if c.ch, err = chdb.Open(ctx, cfg.ClickHouse); err != nil {
		c.Close()
		return nil, err
	}
	holds := hold.NewStore(plane.stores.Pool)
	if c.attempts, err = replay.NewProducer(cfg.Kafka, d.Logger); err != nil {
		c.Close()
		return nil, err
	}
	c.releaser = hold.NewReleaser(holds, c.resolver, c.attempts, hold.ReleaserConfig{
		PollInterval: cfg.Pipeline.HoldPollInterval, RescanInterval: cfg.Pipeline.HoldRescanInterval,
	}, d.Registry, d.Logger)
	// A user or device created (API, import, another webhook's create) wakes the releaser at once.
	plane.notifier.Subscribe("user:", c.releaser)
	plane.notifier.Subscribe("device:", c.releaser)
	if cfg.ClickHouse.Replicated() {
		if c.replicas, err = chdb.OpenReplicas(ctx, cfg.ClickHouse); err != nil {
			c.Close()
			return nil, err
		}
	}
	c.p, err = pipeline.New(cfg.Pipeline, pipeline.Deps{
		Kafka:              cfg.Kafka,
		ClickHouse:         c.ch,
		ClickHouseReplicas: c.replicas,
		InsertQuorum:       cfg.ClickHouse.Quorum(),
		Hooks:              plane.hooks,
		Resolver:           c.resolver,
		Creator:            c.resolver,
		Deliveries:         delivery.NewStore(plane.stores.Pool),
		Holds:              holds,
		Notifier:           streakNotifier{plane.stores.Alerts},
		Retentions:         retentions(plane.stores.Projects),
		Registry:           d.Registry,
		Logger:             d.Logger,
		Failpoint:          d.Failpoint,
		Tracer:             c.tracing.Tracer("github.com/inlet-dev/inlet/pipeline"),
		MaxTraceLinks:      cfg.Tracing.MaxLinks,
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ReadyChecks: ClickHouse, PostgreSQL, and the consumer's progress (not ready while a partition is
// stalled).
func (c *Pipeline) ReadyChecks() ReadyChecks {
	return ReadyChecks{
		"clickhouse": c.ch.Ping,
		"postgres":   c.plane.stores.Pool.Ping,
		"progress":   c.p.Ready,
	}
}

// Run consumes until ctx is done, with the config listener and the cache's warm-up beside it; all stop
// together when ctx is done, the pipeline after its own ordered shutdown (pipeline.Pipeline.Run).
func (c *Pipeline) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.plane.notifier.Run(gctx) })
	g.Go(func() error { return c.plane.warm(gctx) })
	g.Go(func() error { return c.p.Run(gctx) })
	g.Go(func() error { return c.releaser.Run(gctx) })
	return g.Wait()
}

// Close exports the spans still queued (within traceFlushTimeout), closes the ClickHouse connection,
// the resolver, then the cache and the pool. Call it after Run has returned.
func (c *Pipeline) Close() {
	shutdownTracing(c.tracing, c.log)
	if c.ch != nil {
		c.ch.Close()
	}
	for _, r := range c.replicas {
		r.Close()
	}
	if c.attempts != nil {
		c.attempts.Close()
	}
	if c.resolver != nil {
		c.resolver.Close()
	}
	c.plane.close()
}

// streakNotifier hands the pipeline's five-failures notifications to the alert store, which records
// the alert and queues its signed notification (delivered by the admin processes).
type streakNotifier struct{ s *alert.Store }

func (n streakNotifier) Notify(ctx context.Context, x pipeline.Notification) error {
	st := alert.Streak{ProjectID: x.ProjectID, WebhookID: x.WebhookID, ID: x.ID, CreatedAt: x.CreatedAt, Message: x.Message}
	if x.Kind == pipeline.KindStreakEnded {
		return n.s.ResolveStreak(ctx, st)
	}
	return n.s.RecordStreak(ctx, st)
}

// retentions reads the projects' own retentions for the pipeline's retention loop.
func retentions(projects *project.Store) func(ctx context.Context) ([]chstore.ProjectRetention, error) {
	return func(ctx context.Context) ([]chstore.ProjectRetention, error) {
		rs, err := projects.Retentions(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]chstore.ProjectRetention, len(rs))
		for i, r := range rs {
			out[i] = chstore.ProjectRetention{ProjectID: r.ProjectID, ActivityDays: r.ActivityDays, PayloadDays: r.PayloadDays, EventsDays: r.EventsDays}
		}
		return out, nil
	}
}
