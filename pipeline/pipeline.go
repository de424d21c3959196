package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-retry"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Failpoints at which a test can make the process die (see FailpointFromEnv): before the first
// INSERT of a flush (events already fired), between the activity_log and events INSERTs, and after all
// INSERTs but before the offset commit.
const (
	FailBeforeInsert  = "before_insert"
	FailBetweenInsert = "between_inserts"
	FailAfterInserts  = "after_inserts"
)

// FailpointEnv names the environment variable read by FailpointFromEnv.
const FailpointEnv = "INLET_PIPELINE_FAILPOINT"

// FailpointFromEnv returns a failpoint hook that SIGKILLs the process the first time the failpoint
// named by INLET_PIPELINE_FAILPOINT is reached, or nil when the variable is unset. It exists for the
// crash tests: a kill -9 at the worst moments must neither lose nor duplicate rows.
func FailpointFromEnv() func(string) {
	want := os.Getenv(FailpointEnv)
	if want == "" {
		return nil
	}
	return func(name string) {
		if name == want {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is asynchronous; never run past the failpoint
		}
	}
}

// Deps are what the pipeline is built from.
type Deps struct {
	Kafka      kafka.Config
	ClickHouse driver.Conn
	Hooks      Hooks
	Resolver   Resolver
	// Notifier receives auth-failure notifications after their row is written; nil sends none.
	Notifier Notifier
	Registry prometheus.Registerer
	Logger   *slog.Logger
	// Failpoint, if set, is called at the named points of a flush (tests only).
	Failpoint func(name string)
	// KafkaOpts are appended to the consumer client's options (tests: faster rebalances).
	KafkaOpts []kgo.Opt
}

// Pipeline consumes webhooks.requests and writes ClickHouse. Build it with New, run it with Run.
type Pipeline struct {
	cfg   Config
	kcfg  kafka.Config
	deps  Deps
	log   *slog.Logger
	m     *metrics
	store *store
	cl    *kgo.Client
	lim   Limits

	// progress is what the stall watch reads while the consume loop may be stuck holding mu.
	progress progress

	// mu guards everything below: the consume loop holds it from a poll to AllowRebalance, the
	// rebalance callbacks while they flush or drop.
	mu       sync.Mutex
	b        *batch
	parts    map[int32]*partState
	compiled map[string]*compiledHook
	items    []item
	arena    arena
	attrBuf  []byte
	// resume is, per partition, the first offset not known to be written: where to rewind to if the
	// work in memory is abandoned.
	resume map[int32]kgo.EpochOffset
	// rewindPending asks the consume loop to abandon and rewind before handling its next poll (a flush
	// on revocation failed, so the batch's state is unknown).
	rewindPending bool

	fence fence

	notes chan Notification
}

// partState is what the pipeline knows about one assigned partition.
type partState struct {
	hwm [numTables]int64
	// heal lists offsets of success rows already in activity_log whose events row is missing (a
	// crash between the two inserts); they are reprocessed for the events table only.
	heal    map[int64]struct{}
	streaks map[string]*streak
}

// streak is a webhook's run of consecutive auth_rejected requests.
type streak struct {
	count    int
	startMs  int64
	notified bool
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
	p := &Pipeline{
		cfg:      cfg,
		kcfg:     deps.Kafka,
		deps:     deps,
		log:      deps.Logger,
		m:        newMetrics(deps.Registry),
		store:    &store{conn: deps.ClickHouse, lookback: cfg.HighWaterLookback},
		lim:      cfg.limits(),
		b:        newBatch(),
		parts:    map[int32]*partState{},
		compiled: map[string]*compiledHook{},
		notes:    make(chan Notification, 256),
		resume:   map[int32]kgo.EpochOffset{},
	}
	p.fence = fence{grace: cfg.RebalanceGrace, onAbandon: func(waited time.Duration) {
		p.m.abandoned.Inc()
		p.log.Warn("work abandoned so that a consumer-group rebalance can proceed; its records are redone", "waited", waited)
	}}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(deps.Kafka.RequestsTopic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onLost),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { p.fence.rebalanceWaiting() }),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(cfg.SessionTimeout),
		// Fetch sizes bound compressed bytes; decompressed, a fetch is that times the compression ratio
		// (JSON: ~3-10×, a padded body: up to ~250× with lz4). One fetch in flight and 1 MiB per
		// partition keep the decompressed backlog small; a larger record still comes whole (Kafka always
		// returns at least one batch).
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(min(cfg.FetchMaxBytes, 1<<20)),
		kgo.MaxConcurrentFetches(1),
		kgo.DefaultProduceTopic(deps.Kafka.EventsTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
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
	p.cl = cl
	return p, nil
}

// Run consumes until ctx is done, then shuts down in order: stop fetching, flush ClickHouse, commit,
// leave the group. It returns nil after a clean shutdown.
func (p *Pipeline) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	consumeDone := make(chan struct{})
	g.Go(func() error {
		defer close(consumeDone)
		return p.consume(gctx)
	})
	g.Go(func() error { return p.retention(gctx) })
	g.Go(func() error { return p.watchProgress(gctx) })
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

func (p *Pipeline) consume(ctx context.Context) error {
	p.log.Info("pipeline consuming", "topic", p.kcfg.RequestsTopic, "group", p.cfg.Group)
	var runErr error
	for ctx.Err() == nil {
		wait := p.cfg.FlushInterval
		p.mu.Lock()
		if !p.b.started.IsZero() {
			wait = max(time.Until(p.b.started.Add(p.cfg.FlushInterval)), time.Millisecond)
		}
		p.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := p.cl.PollRecords(pctx, p.cfg.BatchRows)
		cancel()
		if fs.IsClientClosed() {
			break
		}
		fs.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				p.log.Warn("fetch failed", "topic", topic, "partition", part, "err", err)
			}
		})
		wctx := p.fence.begin(ctx)
		p.mu.Lock()
		var err error
		if p.rewindPending {
			p.abandon(fs)
		} else {
			err = p.handle(wctx, fs)
			if err == nil && !p.b.empty() && (p.b.rows() >= p.cfg.BatchRows || p.b.bytes >= p.cfg.BatchBytes || time.Since(p.b.started) >= p.cfg.FlushInterval) {
				err = p.flush(wctx)
			}
			if err != nil && abandoned(ctx, wctx) {
				p.abandon(fs)
				err = nil
			}
		}
		p.mu.Unlock()
		p.fence.end()
		p.cl.AllowRebalance()
		if err != nil {
			if ctx.Err() == nil {
				runErr = err
			}
			break
		}
	}
	p.log.Info("pipeline stopping: fetching stopped, flushing the last batch")
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ShutdownTimeout)
	defer cancel()
	p.mu.Lock()
	if err := p.flush(fctx); err != nil {
		p.log.Warn("last batch not flushed; the next consumer redoes it", "err", err, "rows", p.b.rows())
	} else {
		p.log.Info("last batch flushed and committed")
	}
	// Whatever happens now, this process writes nothing more.
	p.b.reset()
	clear(p.parts)
	p.mu.Unlock()
	p.cl.Close()
	p.log.Info("kafka client closed")
	return runErr
}

// onRevoked runs at the end of every group session (cooperative rebalancing: with the partitions moving
// to another consumer, often none). It flushes the batch so that nothing consumed is redone elsewhere;
// if ClickHouse cannot take it within the grace, the batch is abandoned (not committed): the revoked
// partitions are redone by their new owner, the others by this process after a rewind.
func (p *Pipeline) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	// The consume loop may hold mu through a flush begun after an empty poll, which the client's own
	// rebalance gate does not see.
	p.fence.rebalanceWaiting()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fence.rebalanceRunning()
	parts := partitionSet(revoked)
	fctx, cancel := context.WithTimeout(ctx, p.cfg.RebalanceGrace)
	defer cancel()
	if err := p.flush(fctx); err != nil {
		p.log.Warn("flush on revoke failed; the batch is abandoned and redone from what is known written", "err", err)
		p.m.abandoned.Inc()
		p.giveUpBatch()
	}
	p.forget(parts)
	if len(parts) > 0 {
		p.log.Info("partitions revoked", "partitions", slices.Sorted(mapsKeys(parts)))
	}
}

// onLost abandons the batch without writing it (this consumer no longer owns some of its partitions):
// the lost partitions' new owner reads the high-water marks and redoes whatever is missing; the others
// are rewound.
func (p *Pipeline) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	p.fence.rebalanceWaiting()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fence.rebalanceRunning()
	parts := partitionSet(lost)
	if !p.b.empty() {
		p.m.abandoned.Inc()
	}
	p.giveUpBatch()
	p.forget(parts)
	p.log.Warn("partitions lost", "partitions", slices.Sorted(mapsKeys(parts)))
}

// giveUpBatch drops the batch and all partition state; the consume loop rewinds the partitions still
// assigned before it handles another poll (SetOffsets belongs in the polling goroutine).
func (p *Pipeline) giveUpBatch() {
	p.b.reset()
	clear(p.parts)
	p.rewindPending = true
}

// forget drops what is known of partitions no longer assigned.
func (p *Pipeline) forget(parts map[int32]bool) {
	for x := range parts {
		delete(p.parts, x)
		delete(p.resume, x)
		p.progress.forget(x)
		p.m.lag.DeleteLabelValues(partitionLabel(x))
	}
}

func partitionSet(m map[string][]int32) map[int32]bool {
	parts := map[int32]bool{}
	for _, ps := range m {
		for _, x := range ps {
			parts[x] = true
		}
	}
	return parts
}

func mapsKeys(m map[int32]bool) func(func(int32) bool) {
	return func(yield func(int32) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// retry calls f until it succeeds, fails permanently (errPermanent) or ctx is done, backing off
// exponentially up to RetryMaxBackoff. Only transient errors come here: whatever one record can cause
// is that record's failure, decided before or classified after the call. about names the records
// waiting on the call (webhook, partition, offset) for the log line; it is asked only once an attempt
// has failed.
func (p *Pipeline) retry(ctx context.Context, dependency string, about logRef, f func(ctx context.Context) error) error {
	// The first attempt needs no backoff state: it is the only one on the hot path.
	err := f(ctx)
	if err == nil || errors.Is(err, errPermanent) {
		return err
	}
	b := retry.WithCappedDuration(p.cfg.RetryMaxBackoff, retry.WithJitterPercent(20, retry.NewExponential(50*time.Millisecond)))
	attempt := 1
	p.m.retries.WithLabelValues(dependency).Inc()
	warn := func() {
		args := []any{"dependency", dependency, "attempt", attempt, "err", err}
		if about != nil {
			args = append(args, about.about()...)
		}
		p.log.Warn("dependency unavailable, retrying", args...)
	}
	warn()
	return retry.Do(ctx, b, func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		err = f(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, errPermanent) {
			return err
		}
		attempt++
		p.m.retries.WithLabelValues(dependency).Inc()
		if attempt%10 == 0 {
			warn()
		}
		return retry.RetryableError(err)
	})
}

// logRef names what a retried call is for, in its log line: the records waiting on it.
type logRef interface{ about() []any }

type logFunc func() []any

func (f logFunc) about() []any { return f() }

type partitionsRef []int32

func (p partitionsRef) about() []any {
	return []any{"reading", "high-water marks", "partitions", []int32(p)}
}

// errPermanent marks an error retry must not retry.
var errPermanent = errors.New("permanent")

// loadPartitions reads the high-water marks, the events to heal and the auth-failure streaks of
// partitions seen for the first time since their assignment.
func (p *Pipeline) loadPartitions(ctx context.Context, parts []int32) error {
	return p.retry(ctx, "clickhouse", partitionsRef(parts), func(ctx context.Context) error {
		// An insert of these partitions' rows that a previous owner (or this process, before abandoning
		// its batch) gave up on may still be running on the server: read the marks after it ends.
		if err := p.store.awaitInserts(ctx, p.kcfg.RequestsTopic, parts, p.cfg.InsertTimeout); err != nil {
			return err
		}
		var hwm [numTables]map[int32]int64
		for t := range numTables {
			m, err := p.store.highWater(ctx, t, parts)
			if err != nil {
				return err
			}
			hwm[t] = m
		}
		loaded := map[int32]*partState{}
		for _, x := range parts {
			st := &partState{streaks: map[string]*streak{}}
			for t := range numTables {
				st.hwm[t] = hwm[t][x]
			}
			if st.hwm[tableActivity] > st.hwm[tableEvents] {
				heal, err := p.store.successesAbove(ctx, x, st.hwm[tableEvents])
				if err != nil {
					return err
				}
				for off := range heal {
					if off > st.hwm[tableActivity] {
						delete(heal, off)
					}
				}
				if len(heal) > 0 {
					st.heal = heal
				}
			}
			missing, err := p.loadStreaks(ctx, x, st)
			if err != nil {
				return err
			}
			loaded[x] = st
			if len(missing) > 0 {
				p.log.Warn("auth-failure notifications missing after a crash, raising them now", "partition", x, "count", len(missing))
				for _, n := range missing {
					p.addNotification(n)
				}
			}
			p.log.Info("partition assigned", "partition", x, "activity_hwm", st.hwm[tableActivity],
				"events_hwm", st.hwm[tableEvents], "notifications_hwm", st.hwm[tableNotifications], "heal", len(st.heal))
		}
		maps := loaded
		for x, st := range maps {
			p.parts[x] = st
		}
		return nil
	})
}

// handle processes one poll's records into the batch, flushing as the batch fills or the day changes.
func (p *Pipeline) handle(ctx context.Context, fs kgo.Fetches) error {
	p.noteResume(fs)
	var fresh []int32
	fs.EachPartition(func(ft kgo.FetchTopicPartition) {
		if len(ft.Records) == 0 {
			return
		}
		if _, ok := p.parts[ft.Partition]; !ok {
			fresh = append(fresh, ft.Partition)
		}
	})
	if len(fresh) > 0 {
		if err := p.loadPartitions(ctx, fresh); err != nil {
			return err
		}
	}
	items := p.items[:0]
	now := time.Now()
	fs.EachPartition(func(ft kgo.FetchTopicPartition) {
		if len(ft.Records) == 0 {
			return
		}
		st := p.parts[ft.Partition]
		for _, r := range ft.Records {
			heal := false
			if r.Offset <= st.hwm[tableActivity] {
				_, heal = st.heal[r.Offset]
				if !heal || r.Offset <= st.hwm[tableEvents] {
					p.m.skipped.Inc()
					p.b.mark(r.Partition, r.Offset, r.LeaderEpoch, now)
					continue
				}
			}
			items = append(items, item{})
			it := &items[len(items)-1]
			parseRecord(r, it)
			it.healOnly = heal
		}
	})
	p.items = items
	return p.process(ctx, items)
}

// process takes one poll's items (in offset order per partition) through lookup, resolution and
// mapping into the batch.
func (p *Pipeline) process(ctx context.Context, items []item) error {
	if len(items) == 0 {
		return nil
	}
	if err := p.prepare(ctx, items); err != nil {
		return err
	}
	if err := p.resolve(ctx, items); err != nil {
		return err
	}
	for i := range items {
		if err := p.finish(ctx, &items[i]); err != nil {
			return err
		}
	}
	clear(items) // drop references to record values until the next poll
	return nil
}

// prepare looks each accepted request's webhook up and reads its identifier.
func (p *Pipeline) prepare(ctx context.Context, items []item) error {
	for i := range items {
		it := &items[i]
		switch {
		case it.headerErr != "":
			it.reason = wire.ReasonInvalidRecord
			it.detail = append(it.detail, it.headerErr)
			continue
		case it.outcome != wire.OutcomeAccepted:
			it.reason = string(it.outcome)
			continue
		}
		c, err := p.hook(ctx, it)
		if err != nil {
			return err
		}
		if c == nil {
			it.reason = wire.ReasonWebhookDeleted
			continue
		}
		it.hook = c
		p.guard(it, func() { it.extractIdentifier(&p.lim) })
	}
	return nil
}

// hook returns the compiled config of the item's webhook, nil when it was deleted. A cached config
// older than the one the edge authenticated against is re-read for up to ConfigWait.
func (p *Pipeline) hook(ctx context.Context, it *item) (*compiledHook, error) {
	var h *webhook.Hook
	deadline := time.Now().Add(p.cfg.ConfigWait)
	for {
		err := p.retry(ctx, "webhook config", it, func(ctx context.Context) error {
			var err error
			h, err = p.deps.Hooks.Get(ctx, it.webhookID)
			if errors.Is(err, domainerr.ErrNotFound) {
				return fmt.Errorf("%w: %w", errPermanent, err)
			}
			return err
		})
		if errors.Is(err, domainerr.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Version >= it.configVersion || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if h.Version < it.configVersion {
		it.detail = append(it.detail, fmt.Sprintf("processed with config version %d; the request was authenticated against version %d", h.Version, it.configVersion))
	}
	c := p.compiled[h.PublicID]
	if c == nil || c.hook != h {
		if len(p.compiled) > 100_000 {
			clear(p.compiled) // bound memory if webhooks churn
		}
		c = compileHook(h)
		p.compiled[h.PublicID] = c
	}
	return c, nil
}

type resolveKey struct {
	project int64
	kind    identify.Kind
}

// resolve asks the directory once per project and identifier kind for the whole poll.
func (p *Pipeline) resolve(ctx context.Context, items []item) error {
	groups := map[resolveKey][]string{}
	for i := range items {
		it := &items[i]
		if it.reason != "" || it.hook == nil {
			continue
		}
		k := resolveKey{it.projectID, it.hook.hook.Identify.Kind}
		groups[k] = append(groups[k], it.identValue)
	}
	for k, values := range groups {
		slices.Sort(values)
		values = slices.Compact(values)
		var found map[string]Subject
		about := logFunc(func() []any {
			args := []any{"project_id", k.project, "identify_by", k.kind, "values", len(values)}
			for i := range items {
				if it := &items[i]; it.reason == "" && it.hook != nil && it.projectID == k.project && it.hook.hook.Identify.Kind == k.kind {
					return append(args, it.about()...) // the first record waiting
				}
			}
			return args
		})
		err := p.retry(ctx, "directory", about, func(ctx context.Context) error {
			var err error
			found, err = p.deps.Resolver.Resolve(ctx, k.project, k.kind, values)
			// The directory refusing the question itself (an identifier kind it does not know) is the
			// records' failure: asking again cannot change the answer.
			if _, ok := errors.AsType[*domainerr.ValidationError](err); ok {
				return fmt.Errorf("%w: %w", errPermanent, err)
			}
			return err
		})
		refused, _ := errors.AsType[*domainerr.ValidationError](err)
		if err != nil && refused == nil {
			return err
		}
		for i := range items {
			it := &items[i]
			if it.reason != "" || it.hook == nil || it.projectID != k.project || it.hook.hook.Identify.Kind != k.kind {
				continue
			}
			if refused != nil {
				it.fail(wire.ReasonIdentifierInvalid, "the directory refused the lookup: %v", refused)
				continue
			}
			if s, ok := found[it.identValue]; ok {
				it.subject, it.found = s, true
			} else {
				it.fail(wire.ReasonUserNotFound, "no %s matches %q", kindLabel(k.kind), truncateText(it.identValue))
			}
		}
	}
	return nil
}

func kindLabel(k identify.Kind) string {
	switch k {
	case identify.ByHWID:
		return "device"
	case identify.ByUserID:
		return "user id"
	}
	return "user " + string(k)
}

// finish maps the attributes, builds the rows and the event, tracks the auth-failure streak and
// appends everything to the batch.
func (p *Pipeline) finish(ctx context.Context, it *item) error {
	day := it.receivedMs / 86_400_000
	if p.b.rows() > 0 && day != p.b.day {
		if err := p.flush(ctx); err != nil {
			return err
		}
	}
	p.b.day = day
	now := time.Now()
	p.b.mark(it.partition, it.offset, it.epoch, now)

	var attrs []byte
	var rec *kgo.Record
	if it.reason == "" && it.hook != nil {
		p.guard(it, func() {
			var ok bool
			p.attrBuf, ok = it.mapAttributes(p.attrBuf[:0], &p.lim)
			if ok {
				attrs = p.attrBuf
				rec = p.eventRecord(it, attrs) // nil, and the item failed, when the event is too large
			}
		})
		if it.reason != "" {
			attrs, rec = nil, nil
		}
	}
	success := it.reason == ""
	attrStr := string(attrs)
	if it.healOnly {
		if success {
			p.appendEventRow(it, attrStr)
		} else {
			p.log.Warn("request logged as success no longer processes; its events row is not rebuilt",
				"request_id", it.requestID, "reason", it.reason, "partition", it.partition, "offset", it.offset)
		}
		return p.maybeFlush(ctx)
	}
	if success {
		p.appendEventRow(it, attrStr)
		p.b.fire = append(p.b.fire, fireRecord{rec: rec, activity: len(p.b.activity), event: len(p.b.events) - 1})
	}
	p.trackStreak(ctx, it)

	row := activityRow{
		projectID:     uint64(it.projectID),
		webhookID:     it.webhookID,
		requestID:     it.requestID,
		receivedAt:    time.UnixMilli(it.receivedMs).UTC(),
		receivedMs:    uint64(it.receivedMs),
		processedMs:   uint64(now.UnixMilli()),
		status:        statusFailed,
		reason:        it.reason,
		edgeStatus:    it.edgeStatus,
		payload:       bytesString(it.body),
		payloadBytes:  it.bodyBytes,
		detail:        strings.Join(it.detail, "; "),
		configVersion: uint64(max(it.configVersion, 0)),
		partition:     it.partition,
		offset:        it.offset,
	}
	if it.truncated {
		row.truncated = 1
	}
	if it.hook != nil {
		h := it.hook.hook
		row.identifierKind = string(h.Identify.Kind)
		row.identifierValue = it.identValue
		row.eventName = h.EventName
	}
	if it.found {
		row.userID, row.hwid = it.subject.UserID, it.subject.HWID
	}
	if success {
		row.status = statusSuccess
		row.attributes = attrStr
	}
	p.b.bytes += len(it.body) + 2*len(attrs)
	p.b.activity = append(p.b.activity, row)
	p.b.noteOffset(tableActivity, it.partition, it.offset)
	return p.maybeFlush(ctx)
}

func (p *Pipeline) maybeFlush(ctx context.Context) error {
	if p.b.rows() >= p.cfg.BatchRows || p.b.bytes >= p.cfg.BatchBytes {
		return p.flush(ctx)
	}
	return nil
}

// guard runs f, the part of an item's processing that reads its payload. A panic there (a defect in
// parsing or coercion that some input reaches) fails that item with processing_error and is counted,
// instead of crashing the pipeline on the same record at every restart.
func (p *Pipeline) guard(it *item, f func()) {
	defer func() {
		if r := recover(); r != nil {
			p.m.panics.Inc()
			it.fail(wire.ReasonProcessingError, "internal error while processing this request: %v", r)
			p.log.Error("panic while processing a request; it fails with processing_error", "panic", r,
				"stack", string(debug.Stack()), "webhook_id", it.webhookID, "partition", it.partition, "offset", it.offset)
		}
	}()
	f()
}

// appendEventRow adds the events row of a successful item.
func (p *Pipeline) appendEventRow(it *item, attrStr string) {
	h := it.hook.hook
	kind, subject := subjectOf(h.Identify.Kind, it.subject)
	p.b.events = append(p.b.events, eventRow{
		projectID:   uint64(it.projectID),
		subjectKind: kind,
		subject:     subject,
		occurredAt:  time.UnixMilli(it.receivedMs).UTC(),
		eventID:     it.requestID,
		eventName:   h.EventName,
		webhookID:   h.PublicID,
		userID:      it.subject.UserID,
		hwid:        it.subject.HWID,
		hwids:       it.subject.HWIDs,
		attributes:  attrStr,
		receivedMs:  uint64(it.receivedMs),
		partition:   it.partition,
		offset:      it.offset,
	})
	p.b.noteOffset(tableEvents, it.partition, it.offset)
}

// eventRecord builds the webhooks.events record of an item that maps, or fails the item with
// event_too_large and returns nil when the value would be over max_event_bytes: such a record would
// be refused by Kafka for ever. The record's bytes come from an arena and the record from a slab:
// firing costs no allocation of its own on the hot path.
func (p *Pipeline) eventRecord(it *item, attrs []byte) *kgo.Record {
	h := it.hook.hook
	_, subject := subjectOf(h.Identify.Kind, it.subject)
	a := &p.arena
	start := len(a.buf)
	a.buf = appendUUID(a.buf, it.requestID)
	eventID := a.buf[start:len(a.buf):len(a.buf)]
	valueAt := len(a.buf)
	a.buf = appendEvent(a.buf, it, attrs)
	if size := len(a.buf) - valueAt; size > p.lim.EventBytes {
		a.buf = a.buf[:start]
		it.fail(wire.ReasonEventTooLarge, "the event is %d bytes, more than %d", size, p.lim.EventBytes)
		return nil
	}
	val := a.buf[valueAt:len(a.buf):len(a.buf)]
	rec := a.record()
	*rec = kgo.Record{
		Topic:   p.kcfg.EventsTopic,
		Key:     stringBytes(subject),
		Value:   val,
		Headers: a.headers(2),
	}
	rec.Headers[0] = kgo.RecordHeader{Key: wire.HeaderEventID, Value: eventID}
	rec.Headers[1] = kgo.RecordHeader{Key: wire.HeaderEventName, Value: stringBytes(h.EventName)}
	a.fit()
	return rec
}

// flush fires the batch's events, inserts its rows table by table, and commits the offsets. It retries
// until done or ctx ends; a later call resumes where a failed one stopped.
func (p *Pipeline) flush(ctx context.Context) error {
	b := p.b
	if b.empty() {
		return nil
	}
	if !b.fired && len(b.fire) > 0 {
		if err := p.fire(ctx); err != nil {
			return err
		}
	}
	b.fired = true
	p.failpoint(FailBeforeInsert)
	for t := range numTables {
		if b.done[t] {
			continue
		}
		if n := p.tableRows(t); n > 0 {
			if err := p.insert(ctx, t, n); err != nil {
				return err
			}
		}
		b.done[t] = true
		if t == tableActivity {
			p.failpoint(FailBetweenInsert)
		}
	}
	p.failpoint(FailAfterInserts)
	now := time.Now()
	for t := range numTables {
		for part, off := range b.maxOffset[t] {
			if st := p.parts[part]; st != nil && off > st.hwm[t] {
				st.hwm[t] = off
			}
		}
	}
	for i := range b.activity {
		r := &b.activity[i]
		if r.status == statusSuccess {
			p.m.records.WithLabelValues(statusSuccess).Inc()
		} else {
			p.m.records.WithLabelValues(r.reason).Inc()
		}
		p.m.endToEnd.Observe(now.Sub(b.activity[i].receivedAt.Add(time.Duration(b.activity[i].receivedMs%1000) * time.Millisecond)).Seconds())
	}
	p.commit(ctx)
	for x, m := range b.marks {
		p.resume[x] = m
		p.progress.advance(x, m.Offset)
	}
	for _, n := range b.notes {
		if p.deps.Notifier == nil {
			break
		}
		select {
		case p.notes <- n:
		default:
			p.m.notifyErrors.Inc()
			p.log.Warn("notification queue full, POST dropped (the notifications row is written)", "webhook_id", n.WebhookID)
		}
	}
	b.reset()
	return nil
}

func (p *Pipeline) tableRows(t int) int {
	switch t {
	case tableActivity:
		return len(p.b.activity)
	case tableEvents:
		return len(p.b.events)
	}
	return len(p.b.notes)
}

// fire produces the batch's events and waits for every ack; those that failed for a transient reason
// are produced again. An event Kafka refuses for good (too large for the topic, an invalid record) is
// that request's failure: its activity row says why, its events row is dropped, and the batch goes on.
func (p *Pipeline) fire(ctx context.Context) error {
	pending := make([]*kgo.Record, 0, len(p.b.fire))
	for _, f := range p.b.fire {
		pending = append(pending, f.rec)
	}
	var refused map[int]bool // events rows to drop, by index
	var waiting *fireRecord  // the first record being retried, for the log
	about := logFunc(func() []any {
		if waiting == nil {
			return nil
		}
		row := &p.b.activity[waiting.activity]
		return []any{"webhook_id", row.webhookID, "partition", row.partition, "offset", row.offset, "request_id", row.requestID}
	})
	err := p.retry(ctx, "kafka produce", about, func(ctx context.Context) error {
		var failed, suspects []*kgo.Record
		var firstErr error
		nRefused := 0
		sort := func(r kgo.ProduceResult, alone bool) {
			if r.Err == nil {
				return
			}
			if reason, ok := refusedForGood(r.Err); ok {
				if !alone {
					// The broker refuses a whole batch when it is too large: the records that were in it
					// with the culprit are tried again alone before any is refused.
					suspects = append(suspects, r.Record)
					return
				}
				if refused == nil {
					refused = map[int]bool{}
				}
				f := p.fireRecordOf(r.Record)
				p.refuseEvent(f, reason, r.Err)
				refused[f.event] = true
				nRefused++
				return
			}
			failed = append(failed, r.Record)
			if firstErr == nil {
				firstErr = r.Err
				waiting = p.fireRecordOf(r.Record)
			}
		}
		for _, r := range p.cl.ProduceSync(ctx, pending...) {
			sort(r, len(pending) == 1)
		}
		// One at a time, so that each is a batch of its own: nothing else is produced meanwhile.
		for _, rec := range suspects {
			for _, r := range p.cl.ProduceSync(ctx, rec) {
				sort(r, true)
			}
		}
		p.m.fired.Add(float64(len(pending) - len(failed) - nRefused))
		pending = failed
		if firstErr != nil {
			return fmt.Errorf("produce %d events to %s: %w", len(failed), p.kcfg.EventsTopic, firstErr)
		}
		return nil
	})
	if err == nil && len(refused) > 0 {
		p.b.dropEvents(refused)
	}
	return err
}

// refusedForGood tells the produce errors that no retry can cure, with the failure reason they give
// their request. Everything else (leaders moving, timeouts, authorization, an unknown topic) is the
// pipeline's, not the record's, and is retried.
func refusedForGood(err error) (reason string, ok bool) {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return wire.ReasonEventTooLarge, true
	case errors.Is(err, kerr.InvalidRecord):
		return wire.ReasonEventRejected, true
	}
	return "", false
}

// fireRecordOf finds the batch's fireRecord of a produced record (only on the error path).
func (p *Pipeline) fireRecordOf(r *kgo.Record) *fireRecord {
	for i := range p.b.fire {
		if p.b.fire[i].rec == r {
			return &p.b.fire[i]
		}
	}
	panic("pipeline: produced record not in the batch")
}

// refuseEvent turns the request of an event Kafka refused into a failure.
func (p *Pipeline) refuseEvent(f *fireRecord, reason string, err error) {
	row := &p.b.activity[f.activity]
	if row.status == statusFailed {
		return // already refused by an earlier attempt of this flush
	}
	row.status, row.reason, row.attributes = statusFailed, reason, ""
	detail := "kafka refused the event: " + err.Error()
	if row.detail != "" {
		detail = row.detail + "; " + detail
	}
	row.detail = detail
	p.log.Warn("event refused by kafka; its request fails", "reason", reason, "err", err,
		"webhook_id", row.webhookID, "partition", row.partition, "offset", row.offset, "request_id", row.requestID)
}

// insert writes one table's rows. A failed attempt may still have landed (the server applied the block
// but the answer was lost), so before trying again the high-water marks are read back: writing the block
// twice is the one thing that must never happen.
func (p *Pipeline) insert(ctx context.Context, t int, n int) error {
	name := tableNames[t]
	parts := make([]int32, 0, len(p.b.maxOffset[t]))
	for part := range p.b.maxOffset[t] {
		parts = append(parts, part)
	}
	var lastQuery string // query id of the previous attempt
	about := logFunc(func() []any {
		return []any{"table", name, "rows", n, "partitions_to_offset", p.b.maxOffset[t]}
	})
	return p.retry(ctx, "clickhouse", about, func(ctx context.Context) error {
		if lastQuery != "" {
			// An attempt that reported an error may still be running on the server (the client gave
			// up, the server did not): wait for it to end before reading whether it landed, or the
			// retry could write the rows a second time.
			if err := p.store.awaitQuery(ctx, lastQuery, p.cfg.InsertTimeout); err != nil {
				return err
			}
			hw, err := p.store.highWater(ctx, t, parts)
			if err != nil {
				return err
			}
			if landed(hw, p.b.maxOffset[t]) {
				p.log.Info("insert that reported an error had landed", "table", name, "rows", n)
				return nil
			}
		}
		lastQuery = insertQueryID(p.kcfg.RequestsTopic, parts)
		ictx, cancel := context.WithTimeout(clickhouse.Context(ctx, clickhouse.WithQueryID(lastQuery)), p.cfg.InsertTimeout)
		defer cancel()
		start := time.Now()
		if err := p.store.send(ictx, t, p.b); err != nil {
			p.m.insertErrors.WithLabelValues(name).Inc()
			return err
		}
		p.m.insertSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		p.m.batchRows.WithLabelValues(name).Observe(float64(n))
		return nil
	})
}

func landed(hw map[int32]int64, want map[int32]int64) bool {
	for part, off := range want {
		if hw[part] < off {
			return false
		}
	}
	return true
}

// commit stores the consumed offsets. They are advisory (the high-water marks decide what is written),
// so a failed commit only costs a re-read after a restart.
func (p *Pipeline) commit(ctx context.Context) {
	if len(p.b.marks) == 0 {
		return
	}
	offsets := map[string]map[int32]kgo.EpochOffset{p.kcfg.RequestsTopic: maps(p.b.marks)}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p.cl.CommitOffsetsSync(cctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			p.log.Warn("offset commit failed; records will be re-read and skipped after a restart", "err", err)
		}
	})
}

func maps(m map[int32]kgo.EpochOffset) map[int32]kgo.EpochOffset {
	out := make(map[int32]kgo.EpochOffset, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (p *Pipeline) failpoint(name string) {
	if p.deps.Failpoint != nil {
		p.deps.Failpoint(name)
	}
}

// notificationID is stable for a streak: the request that completed it names it.
func notificationID(requestID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(requestID, []byte("auth_failures"))
}
