// Package pipeline consumes webhooks.requests, identifies and resolves the subscriber, maps the payload
// to a typed event, fires it, and writes the activity log and event history to ClickHouse exactly once.
//
// A record flows one way through three stages, each a type with its own state: the consumer
// (consumer.go: the Kafka poll loop, rebalances, the fence, rewinds, offset commits, the stall watch)
// hands each poll to the processor (processor.go, item.go, coerce.go: record → rows and events to
// fire, given its lookups), whose batch the writer (writer.go: fire the events) and the sink (sink.go:
// ClickHouse exactly once, through internal/chstore, which holds the SQL and the row layouts) write.
// This file wires them and orders a flush.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/kafka"
)

// FailpointEnv names the environment variable read by FailpointFromEnv.
const FailpointEnv = "INLET_PIPELINE_FAILPOINT"

// FailpointFromEnv returns a failpoint hook that SIGKILLs the process the first time the failpoint
// named by INLET_PIPELINE_FAILPOINT is reached, or nil when the variable is unset. It exists for the
// crash tests: a kill -9 at the worst moments must neither lose nor duplicate rows. "stop@<failpoint>"
// SIGSTOPs the process there instead, once (the freeze tests): it goes on where it stopped after SIGCONT.
func FailpointFromEnv() func(string) {
	want := os.Getenv(FailpointEnv)
	if want == "" {
		return nil
	}
	stop := strings.HasPrefix(want, "stop@")
	want = strings.TrimPrefix(want, "stop@")
	var once sync.Once
	return func(name string) {
		if name != want {
			return
		}
		if stop {
			once.Do(func() { _ = syscall.Kill(os.Getpid(), syscall.SIGSTOP) })
			return
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is asynchronous; never run past the failpoint
	}
}

// Deps are what the pipeline is built from.
type Deps struct {
	Kafka      kafka.Config
	ClickHouse driver.Conn
	// ClickHouseReplicas, on a ClickHouse cluster, are one connection to each replica of the shard
	// ClickHouse reaches, and InsertQuorum the replicas an insert must reach (chstore.NewReplicatedWriter);
	// nil on a single server.
	ClickHouseReplicas []driver.Conn
	InsertQuorum       int
	Hooks              Hooks
	Resolver           Resolver
	// Creator creates the users of routes whose unknown-user policy is create (directory.Resolver);
	// nil creates none: such a route's unknown users fail with user_not_found, saying why.
	Creator Creator
	// Deliveries remembers the senders' delivery keys (delivery.Store on the config database); nil
	// de-duplicates nothing, and the detail of a request whose webhook asks for it says so.
	Deliveries Deliveries
	// Holds keeps the requests of routes whose unknown-user policy is hold (hold.Store on the config
	// database); nil holds none: such requests fail with user_not_found, saying why.
	Holds Holds
	// Notifier receives auth-failure notifications after their row is written (the alert store in
	// production); nil sends none.
	Notifier Notifier
	// Retentions lists the projects whose retention is shorter than the server's (project.Store
	// Retentions in production); nil: every project keeps the server's.
	Retentions func(ctx context.Context) ([]chstore.ProjectRetention, error)
	// Registry gets the pipeline's metrics; nil registers them on a registry of their own.
	Registry prometheus.Registerer
	// Logger receives the pipeline's logs; nil discards them.
	Logger *slog.Logger
	// Failpoint, if set, is called at the named points of a flush (tests only).
	Failpoint func(name string)
	// KafkaOpts are appended to the consumer client's options (tests: faster rebalances).
	KafkaOpts []kgo.Opt
	// Tracer records the pipeline's spans of the requests the edge sampled (see trace.go); nil:
	// tracing off, and nothing of it runs.
	Tracer trace.Tracer
	// MaxTraceLinks bounds the links of one batch span to its requests' edge spans (tracing.max_links);
	// 0 is 128.
	MaxTraceLinks int
}

// Pipeline consumes webhooks.requests and writes ClickHouse. Build it with New, run it with Run.
type Pipeline struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	m     *metrics
	b     *batch
	cons  *consumer
	proc  *processor
	out   *writer
	sink  *sink
	notes chan Notification
}

// New checks the settings and builds the Kafka client; nothing is consumed until Run.
func New(cfg Config, deps Deps) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline settings: %w", err)
	}
	if deps.ClickHouse == nil || deps.Hooks == nil || deps.Resolver == nil {
		return nil, errors.New("pipeline: ClickHouse, Hooks and Resolver are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	p := &Pipeline{cfg: cfg, deps: deps, log: deps.Logger, m: newMetrics(deps.Registry), b: newBatch(),
		notes: make(chan Notification, 256)}
	retry := &retrier{maxBackoff: cfg.RetryMaxBackoff, m: p.m, log: p.log}
	store := chstore.NewWriter(deps.ClickHouse)
	if len(deps.ClickHouseReplicas) > 0 {
		store = chstore.NewReplicatedWriter(deps.ClickHouse, deps.ClickHouseReplicas, max(deps.InsertQuorum, 1))
	}
	p.sink = &sink{store: store, topic: deps.Kafka.RequestsTopic,
		lookback: cfg.HighWaterLookback, cfg: &p.cfg, retry: retry, m: p.m, log: p.log, epochs: map[int32]uint64{}}
	tr := newTracer(deps.Tracer, deps.MaxTraceLinks)
	p.proc = &processor{cfg: &p.cfg, lim: cfg.Limits(), hooks: deps.Hooks, resolver: deps.Resolver, creator: deps.Creator, deliveries: deps.Deliveries, holds: deps.Holds, sink: p.sink,
		retry: retry, m: p.m, log: p.log, tr: tr, eventsTopic: deps.Kafka.EventsTopic, flush: p.flush, b: p.b,
		parts: map[int32]*partState{}, compiled: map[string]*compiledHook{}, attemptWindow: attemptWindow(deps.Kafka.Retention)}
	c := &consumer{cfg: &p.cfg, topic: deps.Kafka.RequestsTopic, log: p.log, m: p.m, proc: p.proc, flush: p.flush,
		b: p.b, resume: map[int32]kgo.EpochOffset{}}
	c.fence = fence{grace: cfg.RebalanceGrace, onAbandon: func(waited time.Duration) {
		p.m.abandoned.Inc()
		p.log.Warn("work abandoned so that a consumer-group rebalance can proceed; its records are redone", "waited", waited)
	}}
	p.cons = c
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(deps.Kafka.RequestsTopic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { c.fence.rebalanceWaiting() }),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(cfg.SessionTimeout),
		// RebalanceGrace is measured against it: work holding up a rebalance is abandoned well before the
		// group removes this member (Config.Validate keeps the grace below 40s).
		kgo.RebalanceTimeout(rebalanceTimeout),
		// Fetch sizes bound compressed bytes; decompressed, a fetch is that times the compression ratio
		// (JSON: ~3-10×, a padded body: up to ~250× with lz4). One fetch in flight and 1 MiB per
		// partition keep the decompressed backlog small; a larger record still comes whole (Kafka always
		// returns at least one batch).
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(min(cfg.FetchMaxBytes, 1<<20)),
		kgo.MaxConcurrentFetches(1),
		kgo.DefaultProduceTopic(deps.Kafka.EventsTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kafka.Metrics(deps.Registry),
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	// The events producer's batch limit is the topics' max_message_bytes (kafka.NewClient); max_event_bytes
	// stays 64 KiB below it (checked by config), so every event within the bound is one the topic takes.
	cl, err := kafka.NewClient(deps.Kafka, "pipeline", append(opts, deps.KafkaOpts...)...)
	if err != nil {
		return nil, err
	}
	c.cl = cl
	p.sink.group = c
	p.out = &writer{cl: cl, eventsTopic: deps.Kafka.EventsTopic, sink: p.sink, holds: deps.Holds, retry: retry, m: p.m, log: p.log,
		tr: tr, failpoint: deps.Failpoint}
	return p, nil
}

// rebalanceTimeout is how long the group waits for members to finish a rebalance (Kafka's default,
// set explicitly because rebalance_grace is bounded by it).
const rebalanceTimeout = 60 * time.Second

// Run consumes until ctx is done, then shuts down in order: stop fetching, flush ClickHouse, commit,
// leave the group. It returns nil after a clean shutdown.
func (p *Pipeline) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	consumeDone := make(chan struct{})
	g.Go(func() error {
		defer close(consumeDone)
		return p.cons.consume(gctx)
	})
	g.Go(func() error { return p.retention(gctx) })
	g.Go(func() error { return p.forgetDeliveries(gctx) })
	g.Go(func() error { return p.cons.watchProgress(gctx) })
	g.Go(func() error {
		// Notifications are POSTed until the consumer has stopped producing them.
		nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		go func() { <-consumeDone; cancel() }()
		p.notify(nctx)
		return nil
	})
	err := g.Wait()
	p.log.Info("pipeline stopped")
	return err
}

// retention drops daily partitions of activity_log and events older than RetentionDays, every
// RetentionInterval. Dropping a partition is instant and frees its disk at once, unlike a DELETE; the
// per-minute rollup (and so the all-time Received count) is not touched.
func (p *Pipeline) retention(ctx context.Context) error {
	t := time.NewTicker(p.cfg.RetentionInterval)
	defer t.Stop()
	for {
		if n, err := p.sink.dropExpired(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("retention failed; retried at the next interval", "err", err)
		} else if n > 0 {
			p.log.Info("retention dropped old partitions", "partitions", n)
		}
		if n, err := p.ApplyRetention(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("project retention not applied; retried at the next interval", "err", err)
		} else if n > 0 {
			p.log.Info("project retention issued mutations", "mutations", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// deliveryDeleteBatch is how many expired delivery keys one statement deletes: small enough that it
// holds its locks for milliseconds beside the claims.
const deliveryDeleteBatch = 1000

// forgetDeliveries deletes, every DedupCleanupInterval, the delivery keys whose window ended more than
// DedupGrace ago, a batch at a time, for at most half the interval. Every pipeline process does it;
// they skip the rows another is deleting.
func (p *Pipeline) forgetDeliveries(ctx context.Context) error {
	if p.deps.Deliveries == nil {
		return nil
	}
	t := time.NewTicker(p.cfg.DedupCleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := p.ForgetDeliveries(ctx, time.Now(), p.cfg.DedupCleanupInterval/2)
		switch {
		case err != nil && ctx.Err() == nil:
			p.log.Warn("expired delivery keys not deleted; retried at the next interval", "deleted", n, "err", err)
		case n > 0:
			p.log.Debug("expired delivery keys deleted", "deleted", n)
		}
	}
}

// ForgetDeliveries deletes the delivery keys whose window ended before now minus DedupGrace, in
// batches, until none is left or limit has passed, and returns how many it deleted.
func (p *Pipeline) ForgetDeliveries(ctx context.Context, now time.Time, limit time.Duration) (int, error) {
	if p.deps.Deliveries == nil {
		return 0, nil
	}
	deadline := time.Now().Add(limit)
	total := 0
	for {
		n, err := p.deps.Deliveries.DeleteExpired(ctx, now.Add(-p.cfg.DedupGrace), deliveryDeleteBatch)
		total += n
		p.m.deliveriesDeleted.Add(float64(n))
		if err != nil || n < deliveryDeleteBatch || !time.Now().Before(deadline) {
			return total, err
		}
	}
}

// Ready fails while a partition is stalled (see consumer.watchProgress).
func (p *Pipeline) Ready(ctx context.Context) error { return p.cons.Ready(ctx) }

// flush writes the batch (events, then rows), then tells the processor and the consumer what is now
// durable (high-water marks; committed offsets and rewind positions), queues the batch's notifications
// and empties it. It retries until done or ctx ends; a later call resumes where a failed one stopped.
// Called with the consumer's lock held.
func (p *Pipeline) flush(ctx context.Context) error {
	b := p.b
	if b.empty() {
		return nil
	}
	if err := p.out.write(ctx, b); err != nil {
		return err
	}
	p.proc.written(b)
	now := time.Now()
	for i := range b.activity {
		r := &b.activity[i]
		switch r.Status {
		case chstore.StatusSuccess, chstore.StatusDuplicate:
			p.m.records.WithLabelValues(r.Status).Inc()
		default:
			p.m.records.WithLabelValues(r.Reason).Inc()
		}
		p.m.endToEnd.Observe(now.Sub(r.ReceivedAt.Add(time.Duration(r.ReceivedMs%1000) * time.Millisecond)).Seconds())
	}
	p.cons.written(ctx, b)
	for i := range b.notes {
		if p.deps.Notifier == nil {
			break
		}
		n := &b.notes[i]
		select {
		case p.notes <- notificationOf(n):
		default:
			p.m.notifyErrors.Inc()
			p.log.Warn("notification queue full, POST dropped (the notifications row is written)", "webhook_id", n.WebhookID)
		}
	}
	for _, n := range b.ends {
		if p.deps.Notifier == nil {
			break
		}
		select {
		case p.notes <- n:
		default:
			p.m.notifyErrors.Inc()
			p.log.Warn("notification queue full, end of an auth-failure streak dropped", "webhook_id", n.WebhookID)
		}
	}
	b.reset()
	return nil
}

// ApplyRetention enforces the projects' own retentions at now (ALTER TABLE … DELETE / UPDATE, only
// where rows are due) and returns how many mutations it issued.
func (p *Pipeline) ApplyRetention(ctx context.Context, now time.Time) (int, error) {
	if p.deps.Retentions == nil {
		return 0, nil
	}
	rs, err := p.deps.Retentions(ctx)
	if err != nil {
		return 0, fmt.Errorf("project retentions: %w", err)
	}
	return p.sink.applyRetention(ctx, rs, now)
}

// DropExpired drops the daily partitions of activity_log and events that end before now minus
// RetentionDays and returns how many it dropped.
func (p *Pipeline) DropExpired(ctx context.Context, now time.Time) (int, error) {
	return p.sink.dropExpired(ctx, now)
}

// notificationID is stable for a streak: the request that completed it names it.
func notificationID(requestID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(requestID, []byte("auth_failures"))
}
