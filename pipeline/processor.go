package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// processor turns a poll's records into a batch: the rows of every table and the events to fire. It
// looks webhooks up (Hooks), tells the sender's repeated deliveries (Deliveries), resolves identifiers
// (Resolver), maps and coerces payloads, tracks auth-failure streaks, and skips what ClickHouse already
// has (the partitions' high-water marks, read through the sink when a partition is first seen). Given
// its lookups it is pure: nothing it does leaves the process until the batch is written, but for the
// delivery claims, which are idempotent (a replay decides as the first run did). A full batch, or one
// whose UTC day ends, is handed on to flush before the next record goes in.
//
// The consumer calls it from the polling goroutine or a rebalance callback, holding its lock.
type processor struct {
	cfg         *Config
	lim         Limits
	hooks       Hooks
	hookIDs     []string         // prepare's webhook ids for HookPrefetcher, reused
	cachedHooks []webhook.Cached // the configs HookPrefetcher found cached for hookIDs (none: Get asks), reused
	resolver    Resolver
	creator     Creator    // nil: a route's unknown_user create fails as fail does, saying why
	deliveries  Deliveries // nil: requests are not de-duplicated (their detail says so)
	holds       Holds      // nil: a route's unknown_user hold fails as fail does, saying why
	sink        *sink      // reads of newly assigned partitions' state
	retry       *retrier
	m           *metrics
	log         *slog.Logger
	tr          *tracer // nil: tracing off
	eventsTopic string
	// flush writes the batch and empties it (Pipeline.flush).
	flush func(ctx context.Context) error

	b        *batch
	parts    map[int32]*partState
	compiled map[string]*compiledHook
	// routeSets are the compiled routes the configs in compiled share, by routeSetKey (nil until the
	// first compile).
	routeSets map[[32]byte]*routeSet
	// compiledExprs counts the CEL programs in compiled, those of a shared routeSet once.
	compiledExprs int
	items         []item
	arena         arena
	attrBuf       []byte
	// senders holds the sender headers of a poll's records (parseRecord); hasher, claims, claimed and
	// verdicts are the delivery claims' scratch. All are reused every poll.
	senders []wire.SenderHeader
	// elems backs the items' elements (allocElems); reused every poll. scratch is a heal's scratch.
	elems    []element
	scratch  []byte
	hasher   *delivery.Hasher
	claims   []delivery.Claim
	claimed  []int
	verdicts []delivery.Verdict
	// attemptWindow is how long the claim of a later attempt (request id, attempt number) is kept
	// (attemptWindow()).
	attemptWindow time.Duration
}

// attemptWindow is how long a later attempt's claim is kept, from the request's receive time: every copy
// of an attempt is produced while the first attempt's record is still in Kafka (it is read from there),
// so before the receive time + retention, and is read at the latest one retention later. A day is added
// for clocks and for the time a copy waits in a stopped pipeline.
func attemptWindow(retention time.Duration) time.Duration {
	return 2*max(retention, 24*time.Hour) + 24*time.Hour
}

// Bounds of the processor's compiled configs: about as many webhooks as the default webhook cache
// holds (webhook_cache.max_cost 128 MiB, ~1 KiB a config by its estimate), ~2 KiB each compiled alone
// (BenchmarkCompileHook) and ~0.4 KiB each when its routes are shared with an equal config's
// (BenchmarkCompileHookShared; BenchmarkConfigFootprint has the whole per webhook); CEL programs hold
// tens of KiB each, so they have a bound of their own (a shared route set's counted once).
const (
	maxCompiledHooks = 131_072
	maxCompiledExprs = 5_000
)

// evictCompiled makes room in the compiled configs: it drops an eighth of them, whichever the map's
// iteration order gives (random), and as many more as bring the CEL programs under 7/8 of their bound.
// Dropped configs are compiled again on their next request (~0.1 ms each). Dropping some at random,
// not all, keeps a pipeline whose live webhooks just outnumber the bound from compiling every webhook
// again on each round (as clearing all did at 100,000), and costs a round of compiles only the eighth
// it dropped.
func (p *processor) evictCompiled() {
	drop := max(len(p.compiled)/8, 1)
	for id, c := range p.compiled {
		if drop <= 0 && p.compiledExprs <= maxCompiledExprs*7/8 {
			break
		}
		p.dropCompiled(id, c)
		drop--
	}
}

// compile compiles h, sharing the compiled routes of a config in compiled whose routes and kept
// headers are equal (routeSet), and counts its CEL programs. The caller puts it in compiled.
func (p *processor) compile(h *webhook.Hook) *compiledHook {
	key := routeSetKey(h)
	s := p.routeSets[key]
	switch {
	case s == nil:
		s = compileRoutes(h)
		s.key = key
		if p.routeSets == nil {
			p.routeSets = map[[32]byte]*routeSet{}
		}
		p.routeSets[key] = s
		p.compiledExprs += s.exprs
	case !s.compiledFrom(h):
		// Another config with the same digest: compiled for this webhook alone.
		c := compileHook(h)
		p.compiledExprs += c.exprs
		return c
	}
	s.refs++
	c := compileHookWith(h, s)
	c.set = s
	return c
}

// dropCompiled removes webhook id's compiled config c from compiled, and its routes with it when no
// other config shares them.
func (p *processor) dropCompiled(id string, c *compiledHook) {
	delete(p.compiled, id)
	s := c.set
	if s == nil {
		p.compiledExprs -= c.exprs
		return
	}
	if s.refs--; s.refs == 0 {
		delete(p.routeSets, s.key)
		p.compiledExprs -= s.exprs
	}
}

// written advances the high-water marks of the partitions a batch has just been written for.
func (p *processor) written(b *batch) {
	for t := range chstore.NumTables {
		for part, off := range b.maxOffset[t] {
			if st := p.parts[part]; st != nil && off > st.hwm[t] {
				st.hwm[t] = off
			}
		}
	}
}

// forget drops what is known of partitions, as after a restart: their state is read again from
// ClickHouse when their next records arrive. nil forgets every partition.
func (p *processor) forget(parts map[int32]bool) {
	if parts == nil {
		clear(p.parts)
		return
	}
	for x := range parts {
		delete(p.parts, x)
	}
}

// partState is what the pipeline knows about one assigned partition.
type partState struct {
	hwm [chstore.NumTables]int64
	// heal lists offsets of rows already in activity_log that fired events whose events rows are
	// missing (a crash between the two inserts), with what they fired; they are reprocessed for the
	// events table only, rebuilding exactly those events.
	heal    map[int64]chstore.Fired
	streaks map[string]*streak
}

// streak is a webhook's run of consecutive auth_rejected requests.
type streak struct {
	count    int
	startMs  int64
	notified bool
	// raised: a notification was raised for this webhook's run of failures, before a secret rotation
	// restarted the count; the next authenticated request ends it all the same.
	raised bool
}

// handle processes one poll's records into the batch, flushing as the batch fills or the day changes.
func (p *processor) handle(ctx context.Context, fs kgo.Fetches) error {
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
		loaded, missing, err := p.sink.partitions(ctx, fresh)
		if err != nil {
			return err
		}
		for x, st := range loaded {
			p.parts[x] = st
		}
		for _, n := range missing {
			p.addNotification(n)
		}
	}
	items := p.items[:0]
	clear(p.senders)
	p.senders = p.senders[:0]
	senders := 0
	now := time.Now()
	fs.EachPartition(func(ft kgo.FetchTopicPartition) {
		if len(ft.Records) == 0 {
			return
		}
		st := p.parts[ft.Partition]
		for _, r := range ft.Records {
			heal := false
			var fired chstore.Fired
			if r.Offset <= st.hwm[chstore.ActivityLog] {
				fired, heal = st.heal[r.Offset]
				if !heal || r.Offset <= st.hwm[chstore.Events] {
					p.m.skipped.Inc()
					p.b.mark(r.Partition, r.Offset, r.LeaderEpoch, now)
					continue
				}
			}
			items = append(items, item{})
			it := &items[len(items)-1]
			parseRecord(r, it, &p.senders)
			it.healOnly, it.healFired = heal, fired
			senders += len(it.sender)
		}
	})
	p.items = items
	if senders > cap(p.senders) {
		p.senders = make([]wire.SenderHeader, 0, 2*senders) // the next poll decodes them in place
	}
	return p.process(ctx, items)
}

// process takes one poll's items (in offset order per partition) through lookup, resolution and
// mapping into the batch.
func (p *processor) process(ctx context.Context, items []item) error {
	if len(items) == 0 {
		return nil
	}
	defer p.resetElems()
	var start time.Time
	if p.tr != nil {
		start = time.Now()
	}
	if err := p.prepare(ctx, items); err != nil {
		return err
	}
	if err := p.dedupe(ctx, items); err != nil {
		return err
	}
	var span trace.Span
	if p.tr != nil {
		links, dropped := p.tr.pollLinks(items)
		span = p.tr.start(ctx, spanResolve, links, dropped, attribute.Int("inlet.requests", len(items)))
	}
	err := p.resolve(ctx, items)
	end(span, err)
	if err != nil {
		return err
	}
	if err := p.hold(ctx, items); err != nil {
		return err
	}
	for i := range items {
		if err := p.finish(ctx, &items[i]); err != nil {
			return err
		}
	}
	if p.tr != nil {
		p.tr.processed(ctx, items, start)
	}
	clear(items) // drop references to record values until the next poll
	return nil
}

// maxKeptElems bounds the element slab kept between polls: a poll of large fan-outs can need millions
// of elements (216 bytes each), which are let go rather than held for the life of the process.
const maxKeptElems = 64 << 10

// resetElems empties the element slab after a poll, whether it finished or not.
func (p *processor) resetElems() {
	if cap(p.elems) > maxKeptElems {
		p.elems = nil
		return
	}
	clear(p.elems)
	p.elems = p.elems[:0]
}

// allocElems hands an item n elements from the poll's slab. A slab that grows leaves the earlier
// items' elements where they were: each item reads its own only through its own slice.
func (p *processor) allocElems(n int) []element {
	start := len(p.elems)
	p.elems = slices.Grow(p.elems, n)[:start+n]
	return p.elems[start : start+n : start+n]
}

// prepare looks each accepted request's webhook up and reads its identifier and its sender's delivery
// key.
func (p *processor) prepare(ctx context.Context, items []item) error {
	// An item whose webhook's compiled config comes from a read the cache still holds takes it at
	// once (it.hook), without a cache lookup. For the others, cached[j] is the config the prefetch found
	// cached for the j-th of them, none when Get must ask (or there is no prefetch).
	var cached []webhook.Cached
	if pf, ok := p.hooks.(HookPrefetcher); ok {
		ids := p.hookIDs[:0]
		for i := range items {
			it := &items[i]
			if it.headerErr != "" || it.outcome != wire.OutcomeAccepted {
				continue
			}
			if c := p.compiled[it.webhookID]; c != nil && c.cached.Hook == c.hook && c.hook.Version >= it.configVersion && pf.Fresh(c.cached) {
				it.hook = c
				continue
			}
			ids = append(ids, it.webhookID)
		}
		cached = slices.Grow(p.cachedHooks[:0], len(ids))[:len(ids)]
		clear(cached)
		pf.PrefetchHooks(ctx, ids, cached)
		clear(ids)
		p.hookIDs, p.cachedHooks = ids, cached
		defer clear(cached) // let go of the configs until the next poll
	}
	looked := 0
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
		c := it.hook
		if c == nil {
			var x webhook.Cached
			if looked < len(cached) {
				x = cached[looked]
			}
			looked++
			var err error
			if c, err = p.hook(ctx, it, x); err != nil {
				return err
			}
		}
		if c == nil {
			it.reason = wire.ReasonWebhookDeleted
			continue
		}
		it.hook = c
		p.guard(it, func() {
			it.extractIdentifier(&p.lim, p.allocElems)
			if it.attempt.Number > 0 {
				it.markFiredEarlier()
			}
			switch {
			case it.healOnly:
			case it.attempt.Number > 0:
				// A later attempt is not the sender's repeat (its key would say it is a duplicate of
				// itself): its claim is the attempt's own, so that a copy of it runs once.
				it.attemptKey(p.keyHasher())
			case c.dedup.on:
				it.extractKey(p.keyHasher())
			}
		})
	}
	return nil
}

// keyHasher is the hasher of delivery keys and attempt keys, made on first use.
func (p *processor) keyHasher() *delivery.Hasher {
	if p.hasher == nil {
		p.hasher = delivery.NewHasher()
	}
	return p.hasher
}

// dedupe claims the delivery keys of the poll's requests, in one round trip, and marks the requests
// that repeat a delivery (delivery.Store.Claim). A request that repeats one is a duplicate whatever else
// would become of it: the decision depends only on the key, the receive time and the Kafka position,
// never on the directory or the mapping, so it is the same on every replay. An error (PostgreSQL
// unreachable) is retried like any dependency's: nothing is marked a duplicate, or an original, until
// the store has answered.
func (p *processor) dedupe(ctx context.Context, items []item) error {
	claims, claimed := p.claims[:0], p.claimed[:0]
	for i := range items {
		it := &items[i]
		if !it.hasKey {
			continue
		}
		if p.deliveries == nil {
			it.hasKey = false
			it.detail = append(it.detail, "not de-duplicated: this pipeline has no delivery store")
			continue
		}
		window := it.hook.dedup.window
		if it.attempt.Number > 0 {
			window = p.attemptWindow
		}
		claims = append(claims, delivery.Claim{WebhookID: it.webhookID, Key: it.key, RequestID: it.requestID,
			Partition: it.partition, Offset: it.offset, ReceivedMs: it.receivedMs, Window: window})
		claimed = append(claimed, i)
	}
	p.claims, p.claimed = claims, claimed
	if len(claims) == 0 {
		return nil
	}
	verdicts := slices.Grow(p.verdicts[:0], len(claims))[:len(claims)]
	p.verdicts = verdicts
	about := logFunc(func() []any {
		return append([]any{"reading", "sender delivery keys", "claims", len(claims)}, items[claimed[0]].about()...)
	})
	if err := p.retry.do(ctx, "postgres", about, func(ctx context.Context) error {
		return p.deliveries.Claim(ctx, claims, verdicts)
	}); err != nil {
		return err
	}
	for j, i := range claimed {
		if v := verdicts[j]; v.Duplicate() {
			items[i].duplicateOf = v.DuplicateOf
			items[i].attemptCopy = items[i].attempt.Number > 0
		}
	}
	return nil
}

// hook returns the compiled config of the item's webhook, nil when it was deleted. x, when it holds
// one, is the config the prefetch found cached, used rather than asking again. A cached config older
// than the one the edge authenticated against is re-read for up to ConfigWait.
func (p *processor) hook(ctx context.Context, it *item, x webhook.Cached) (*compiledHook, error) {
	h := x.Hook
	var deadline time.Time
	for {
		if h == nil {
			err := p.retry.do(ctx, "webhook config", it, func(ctx context.Context) error {
				var err error
				h, err = p.hooks.Get(ctx, it.webhookID)
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
		}
		if h.Version >= it.configVersion {
			break
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(p.cfg.ConfigWait)
		}
		if !time.Now().Before(deadline) {
			break
		}
		h = nil
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
	if c != nil && c.hook != h && sameCompiled(c.hook, h) {
		c.rebind(h) // read again (ttl, a resync) but unchanged
	}
	if c == nil || c.hook != h {
		if c != nil { // replaced by the new config's
			p.dropCompiled(h.PublicID, c)
		}
		if len(p.compiled) >= maxCompiledHooks || p.compiledExprs > maxCompiledExprs {
			p.evictCompiled()
		}
		c = p.compile(h)
		p.compiled[h.PublicID] = c
	}
	// What tells prepare, next time, that the cache still holds this read: only when the prefetch
	// handed it over (a config read by Get gets one at its next prefetch).
	if x.Hook == h {
		c.cached = x
	} else if c.cached.Hook != h {
		c.cached = webhook.Cached{}
	}
	return c, nil
}

type resolveKey struct {
	project int64
	kind    identify.Kind
}

// resolve asks the directory once per project and identifier kind for the whole poll (resolveItems),
// retrying what may pass.
func (p *processor) resolve(ctx context.Context, items []item) error {
	return resolveItems(ctx, items, func(ctx context.Context, k resolveKey, values []string) (map[string]Subject, error) {
		var found map[string]Subject
		about := logFunc(func() []any {
			args := []any{"project_id", k.project, "identify_by", k.kind, "values", len(values)}
			for i := range items {
				if it := &items[i]; it.resolvable() && it.projectID == k.project && it.route.r.Identify.Kind == k.kind {
					return append(args, it.about()...) // the first record waiting
				}
			}
			return args
		})
		err := p.retry.do(ctx, "directory", about, func(ctx context.Context) error {
			var err error
			found, err = p.resolver.Resolve(ctx, k.project, k.kind, values)
			// The directory refusing the question itself (an identifier kind it does not know) is the
			// records' failure: asking again cannot change the answer.
			if _, ok := errors.AsType[*domainerr.ValidationError](err); ok {
				return fmt.Errorf("%w: %w", errPermanent, err)
			}
			return err
		})
		return found, err
	}, p.create, "created")
}

// create creates the subjects of a poll's unknown identifiers of one (project, kind) whose routes say
// create, in one directory call, retrying as resolve does. nil when there is no Creator.
func (p *processor) create(ctx context.Context, k resolveKey, values []string, contacts map[string]Contact) (Created, error) {
	if p.creator == nil {
		return Created{}, errNoCreator
	}
	var out Created
	about := logFunc(func() []any { return []any{"project_id", k.project, "identify_by", k.kind, "create", len(values)} })
	err := p.retry.do(ctx, "directory", about, func(ctx context.Context) error {
		var err error
		out, err = p.creator.Create(ctx, k.project, k.kind, values, contacts)
		if _, ok := errors.AsType[*domainerr.ValidationError](err); ok {
			return fmt.Errorf("%w: %w", errPermanent, err)
		}
		return err
	})
	return out, err
}

// errNoCreator: the pipeline was built without a Creator; a route's create policy then fails its
// unknown users as fail does.
var errNoCreator = errors.New("no creator: users are not created")

// resolveItems resolves the identifiers of the resolvable items, asking once per project and
// identifier kind (the values sorted, without repeats), and marks each item found or failed:
// user_not_found, or identifier_invalid when the directory refuses the question (an error that is a
// *domainerr.ValidationError). Any other error of ask is returned. The pipeline and a dry run
// (Evaluator) both resolve through it.
//
// Elements still not found whose route's unknown-user policy is create are then handed to create, once
// per project and kind (nil: none is created); what it makes counts as found, and the element's detail
// says the subject was <verb> ("created", or "would be created" in a dry run), with the e-mail and
// phone its route's create_email and create_phone read (of the poll's elements with one value, the
// first's: the first insert wins), and what of them was left out. A value create refuses fails its
// elements with identifier_invalid.
func resolveItems(ctx context.Context, items []item, ask func(ctx context.Context, k resolveKey, values []string) (map[string]Subject, error),
	create func(ctx context.Context, k resolveKey, values []string, contacts map[string]Contact) (Created, error), verb string) error {
	groups := map[resolveKey][]string{}
	for i := range items {
		it := &items[i]
		if !it.resolvable() {
			continue
		}
		k := resolveKey{it.projectID, it.route.r.Identify.Kind}
		for j := range it.elems {
			if e := &it.elems[j]; e.resolvable() {
				groups[k] = append(groups[k], e.identValue)
			}
		}
	}
	for k, values := range groups {
		slices.Sort(values)
		values = slices.Compact(values)
		found, err := ask(ctx, k, values)
		refused, _ := errors.AsType[*domainerr.ValidationError](err)
		if err != nil && refused == nil {
			return err
		}
		var made Created
		var createErr error
		var readNotes map[string][]string
		if refused == nil && create != nil {
			missing, contacts, notes := unknownToCreate(items, k, found)
			readNotes = notes
			if len(missing) > 0 {
				made, createErr = create(ctx, k, missing, contacts)
				if _, ok := errors.AsType[*domainerr.ValidationError](createErr); !ok && createErr != nil && !errors.Is(createErr, errPermanent) && !errors.Is(createErr, errNoCreator) {
					return createErr
				}
			}
		}
		for i := range items {
			it := &items[i]
			if !it.resolvable() || it.projectID != k.project || it.route.r.Identify.Kind != k.kind {
				continue
			}
			for j := range it.elems {
				e := &it.elems[j]
				switch {
				case !e.resolvable():
				case refused != nil:
					e.fail(wire.ReasonIdentifierInvalid, "the directory refused the lookup: %v", refused)
				default:
					if s, ok := found[e.identValue]; ok {
						e.subject, e.found = s, true
						continue
					}
					if it.route.r.UnknownUser != webhook.UnknownUserCreate {
						e.fail(wire.ReasonUserNotFound, "no %s matches %q", kindLabel(k.kind), truncateText(e.identValue))
						// The processor's hold step decides whether it waits for its user instead.
						e.holdable = it.route.r.UnknownUser == webhook.UnknownUserHold
						continue
					}
					if s, ok := made.Subjects[e.identValue]; ok {
						e.subject, e.found = s, true
						if made.New[e.identValue] {
							// The first element of the poll with the value is the one that created it;
							// the others found it, as a later poll's would.
							delete(made.New, e.identValue)
							e.created = true
							e.createdWith = made.Set[e.identValue]
							it.noteCreated(e, fmt.Sprintf("%s %s from %s %s%s", createdLabel(k.kind), verb, k.kind, truncateText(e.identValue), withContact(e.createdWith)))
							for _, n := range readNotes[e.identValue] {
								it.noteCreated(e, n)
							}
							for _, n := range made.Notes[e.identValue] {
								it.noteCreated(e, n)
							}
						}
						continue
					}
					switch why, ok := made.Refused[e.identValue]; {
					case ok:
						e.fail(wire.ReasonIdentifierInvalid, "no %s matches %q, and none can be created from it: %s", kindLabel(k.kind), truncateText(e.identValue), why)
					case createErr != nil:
						e.fail(wire.ReasonUserNotFound, "no %s matches %q, and none was created: %v", kindLabel(k.kind), truncateText(e.identValue), createErr)
					default:
						// Created, yet not found by the lookup that followed (its row changed meanwhile).
						e.fail(wire.ReasonUserNotFound, "no %s matches %q, and the one created for it was not found", kindLabel(k.kind), truncateText(e.identValue))
					}
				}
			}
		}
	}
	return nil
}

// unknownToCreate lists, sorted without repeats, the values of kind k not in found whose elements'
// routes create unknown users, with the contacts those routes read for them (create_email,
// create_phone; nil when none reads any) and the notes of what could not be read. Of several elements
// with one value, the first in the poll (arrival order) gives the contact.
func unknownToCreate(items []item, k resolveKey, found map[string]Subject) (out []string, contacts map[string]Contact, notes map[string][]string) {
	for i := range items {
		it := &items[i]
		if !it.resolvable() || it.projectID != k.project || it.route.r.Identify.Kind != k.kind ||
			it.route.r.UnknownUser != webhook.UnknownUserCreate {
			continue
		}
		reads := it.route.createFrom[0].path != "" || it.route.createFrom[1].path != ""
		for j := range it.elems {
			e := &it.elems[j]
			if !e.resolvable() {
				continue
			}
			if _, ok := found[e.identValue]; ok {
				continue
			}
			out = append(out, e.identValue)
			if !reads {
				continue
			}
			if contacts == nil {
				contacts, notes = map[string]Contact{}, map[string][]string{}
			}
			if _, seen := contacts[e.identValue]; seen {
				continue
			}
			c, n := it.readContact(e)
			contacts[e.identValue] = c
			if len(n) > 0 {
				notes[e.identValue] = n
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), contacts, notes
}

// withContact is what a "user created" note adds about the e-mail and phone set from the payload
// (not their values, which may be sensitive).
func withContact(c Contact) string {
	switch {
	case c.Email != "" && c.Phone != "":
		return ", with the e-mail and phone read from the payload"
	case c.Email != "":
		return ", with the e-mail read from the payload"
	case c.Phone != "":
		return ", with the phone read from the payload"
	}
	return ""
}

// noteCreated records that e's subject was created: in the element's detail, or, in a fan-out (whose
// successful elements' details are not shown), once per request and identifier in the request's.
func (it *item) noteCreated(e *element, note string) {
	if !it.route.fanOut {
		e.detail = append(e.detail, note)
		return
	}
	if !slices.Contains(it.detail, note) {
		it.detail = append(it.detail, note)
	}
}

// createdLabel is what the unknown-user policy creates for an identifier of kind k.
func createdLabel(k identify.Kind) string {
	if k == identify.ByHWID {
		return "device"
	}
	return "user"
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
func (p *processor) finish(ctx context.Context, it *item) error {
	day := it.receivedMs / 86_400_000
	if p.b.rows() > 0 && day != p.b.day {
		if err := p.flush(ctx); err != nil {
			return err
		}
	}
	p.b.day = day
	now := time.Now()
	p.b.mark(it.partition, it.offset, it.epoch, now)
	if it.attemptCopy {
		// A copy of an attempt an earlier position already ran (a producer that produced it twice):
		// it writes nothing and fires nothing.
		p.m.attemptCopies.Inc()
		return p.maybeFlush(ctx)
	}

	ran := it.resolvable() // its elements were identified and are mapped now
	if ran {
		for i := range it.elems {
			e := &it.elems[i]
			if e.reason != "" || e.earlier || it.healOnly && it.healFired.FanOut && !slices.Contains(it.healFired.Elements, int32(e.index)) {
				continue // failed, or (healing) not among the elements its row says fired
			}
			p.guardElem(it, e, func() { p.fireElement(it, e) })
		}
	}
	if it.healOnly {
		// The activity row is what happened: the events rows rebuilt are those of the elements it
		// says fired, as they map now. One that no longer maps (the directory or the config changed
		// since) is not rebuilt, and said so.
		want := 1
		if it.healFired.FanOut {
			want = len(it.healFired.Elements)
		}
		if n := it.fired(); n != want {
			p.log.Warn("request already logged no longer fires what its row says; only what still maps is rebuilt",
				"request_id", it.requestID, "reason", it.reason, "logged_events", want, "rebuilt_events", n,
				"partition", it.partition, "offset", it.offset)
		}
		for i := range it.elems {
			if e := &it.elems[i]; e.fired {
				p.appendEventRow(it, e)
			}
		}
		it.status = chstore.StatusSuccess // for its trace: what its row says
		return p.maybeFlush(ctx)
	}
	status := it.settle()
	it.status = status
	fired := 0
	for i := range it.elems {
		if e := &it.elems[i]; e.fired {
			p.appendEventRow(it, e)
			p.b.fire = append(p.b.fire, fireRecord{rec: e.rec, activity: len(p.b.activity), event: len(p.b.events) - 1})
			e.rec = nil
			fired++
		}
	}
	if status == chstore.StatusHeld {
		p.b.holds = append(p.b.holds, it.holdOf())
	}
	if it.attempt.Number == 0 {
		p.trackStreak(ctx, it) // a later attempt is no new traffic: it neither extends nor ends a streak
	}

	row := chstore.ActivityRow{
		ProjectID:     uint64(it.projectID),
		WebhookID:     it.webhookID,
		RequestID:     it.requestID,
		ReceivedAt:    time.UnixMilli(it.receivedMs).UTC(),
		ReceivedMs:    uint64(it.receivedMs),
		ProcessedMs:   uint64(now.UnixMilli()),
		Status:        status,
		Reason:        it.reason,
		EdgeStatus:    it.edgeStatus,
		Payload:       bytesString(it.body),
		PayloadBytes:  it.bodyBytes,
		Detail:        strings.Join(it.detail, "; "),
		ConfigVersion: uint64(max(it.configVersion, 0)),
		Partition:     it.partition,
		Offset:        it.offset,
		Headers:       p.headersJSON(it),
		EventsFired:   uint32(fired),
		ContentType:   bytesString(it.contentType),
	}
	if a := &it.attempt; a.Number > 0 {
		p.m.attempts.WithLabelValues(causeLabel(a.Cause)).Inc()
		row.Attempt, row.AttemptCause, row.AttemptJob = uint16(a.Number), a.Cause, a.Job
		if slices.Contains(chstore.Statuses, a.ReplacesStatus) {
			row.ReplacesStatus, row.ReplacesReason = a.ReplacesStatus, a.ReplacesReason
		} else {
			// The rollup's view casts it to the status enum: an unknown one would fail the insert
			// for ever. The request is then counted twice in the summary, which its detail says.
			row.Detail = joinDetail(row.Detail, fmt.Sprintf("attempt replaces status %q, which is not an activity status: the summary still counts its earlier outcome", truncateText(a.ReplacesStatus)))
		}
	}
	if it.truncated {
		row.PayloadTruncated = 1
	}
	if r := it.route; r != nil {
		row.Route = r.label
		row.IdentifierKind = string(r.r.Identify.Kind)
		row.EventName = r.r.EventName
	} else if it.hook != nil && len(it.hook.routes) == 1 {
		// A request that failed before a route took it (invalid_json, say): the single route's.
		r := &it.hook.routes[0]
		row.IdentifierKind = string(r.r.Identify.Kind)
		row.EventName = r.r.EventName
	}
	row.IdentifierValue, row.UserID, row.HWID = it.commonSubject()
	switch {
	case status == chstore.StatusSuccess && !it.route.fanOut:
		row.Attributes = it.elems[0].attrs
	case status == chstore.StatusDuplicate:
		// Neither a success nor a failure: authenticated and accepted, its event fired by the first
		// request. What else it would have become is not looked at.
		row.Reason = ""
		row.DuplicateOf = it.duplicateOf.String()
		d := &it.hook.dedup
		row.Detail = fmt.Sprintf("duplicate of request %s: the same %s within %s; no event fired", row.DuplicateOf, d.about, fmtWindow(d.window))
	}
	if ran && it.route.fanOut {
		// Only when the elements ran: a duplicate's or a request that failed as a whole has none.
		row.Outcomes = p.outcomesJSON(it)
	}
	if it.hook != nil && it.hook.mask != nil {
		p.maskRow(it, &row, it.hook.mask)
	}
	attrs := 0
	for i := range it.elems {
		attrs += len(it.elems[i].attrs)
	}
	p.b.bytes += len(it.body) + 2*attrs + len(row.Headers) + len(row.Outcomes)
	p.b.activity = append(p.b.activity, row)
	p.b.noteOffset(chstore.ActivityLog, it.partition, it.offset)
	if p.tr != nil {
		p.tr.traceBatch(p.b, it)
	}
	return p.maybeFlush(ctx)
}

// headersJSON is the record's sender headers as a JSON object (name → value, in the record's order),
// written into the arena; "" when it has none. At most wire.MaxSenderHeaders, each value cut at
// wire.MaxSenderHeaderBytes, as the edge bounds them.
func (p *processor) headersJSON(it *item) string {
	if len(it.sender) == 0 {
		return ""
	}
	a := &p.arena
	start := len(a.buf)
	a.buf = append(a.buf, '{')
	for i, h := range it.sender[:min(len(it.sender), wire.MaxSenderHeaders)] {
		if i > 0 {
			a.buf = append(a.buf, ',')
		}
		a.buf = wire.AppendJSONString(a.buf, h.Name())
		a.buf = append(a.buf, ':')
		v := h.Value[:min(len(h.Value), wire.MaxSenderHeaderBytes)]
		if m := it.hookMask(); m != nil && m.header(h.Name()) {
			a.buf = append(a.buf, m.hash(wire.AppendJSONString(nil, bytesString(v)))...)
			continue
		}
		a.buf = wire.AppendJSONString(a.buf, bytesString(v))
	}
	a.buf = append(a.buf, '}')
	s := bytesString(a.buf[start:len(a.buf):len(a.buf)])
	a.fit()
	return s
}

// outcomesJSON is a fan-out's per-element outcomes as a JSON array, written into the arena: each
// element's index, event id, status (success or failed), reason, detail, user id, hwid and the
// attributes fired.
func (p *processor) outcomesJSON(it *item) string {
	a := &p.arena
	start := len(a.buf)
	a.buf = appendOutcomes(a.buf, it)
	s := bytesString(a.buf[start:len(a.buf):len(a.buf)])
	a.fit()
	return s
}

func appendOutcomes(dst []byte, it *item) []byte {
	dst = append(dst, '[')
	for i := range it.elems {
		e := &it.elems[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"index":`...)
		dst = strconv.AppendInt(dst, int64(e.index), 10)
		dst = append(dst, `,"event_id":"`...)
		dst = wire.AppendUUID(dst, e.eventID)
		dst = append(dst, '"')
		switch {
		case e.earlier:
			// Fired by an earlier attempt of the request: a success, not fired again (heal reads
			// "earlier" and does not rebuild it).
			dst = append(dst, `,"status":"success","earlier":true`...)
		case e.reason == "" && e.fired:
			dst = append(dst, `,"status":"success"`...)
		case e.reason == wire.ReasonWaitingForUser:
			dst = append(dst, `,"status":"held","reason":"waiting_for_user"`...)
		default:
			dst = append(dst, `,"status":"failed","reason":`...)
			dst = wire.AppendJSONString(dst, e.reason)
		}
		if len(e.detail) > 0 {
			dst = append(dst, `,"detail":`...)
			dst = wire.AppendJSONString(dst, strings.Join(e.detail, "; "))
		}
		if e.identValue != "" {
			dst = append(dst, `,"identifier":`...)
			dst = wire.AppendJSONString(dst, e.identValue)
		}
		if e.found {
			dst = append(dst, `,"user_id":`...)
			dst = wire.AppendJSONString(dst, e.subject.UserID)
			if e.subject.HWID != "" {
				dst = append(dst, `,"hwid":`...)
				dst = wire.AppendJSONString(dst, e.subject.HWID)
			}
		}
		if e.fired {
			dst = append(dst, `,"attributes":`...)
			dst = append(dst, e.attrs...)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// fmtWindow writes a dedup window as people do: 24h, 10m, 90s.
func fmtWindow(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func (p *processor) maybeFlush(ctx context.Context) error {
	if p.b.rows() >= p.cfg.BatchRows || p.b.bytes >= p.cfg.BatchBytes {
		return p.flush(ctx)
	}
	return nil
}

// guard runs f, the part of an item's processing that reads its payload. A panic there (a defect in
// parsing or coercion that some input reaches) fails that item with processing_error and is counted,
// instead of crashing the pipeline on the same record at every restart.
func (p *processor) guard(it *item, f func()) {
	defer func() {
		if r := recover(); r != nil {
			p.m.panics.Inc()
			failPanic(it, r)
			p.log.Error("panic while processing a request; it fails with processing_error", "panic", r,
				"stack", string(debug.Stack()), "webhook_id", it.webhookID, "partition", it.partition, "offset", it.offset)
		}
	}()
	f()
}

// failPanic fails an item whose processing panicked with r.
func failPanic(it *item, r any) {
	it.fail(wire.ReasonProcessingError, "internal error while processing this request: %v", r)
	it.skipped = false // a failure, whatever was decided before it
}

// fireElement maps element e and builds its event record; on failure e says why.
func (p *processor) fireElement(it *item, e *element) {
	var ok bool
	p.attrBuf, ok = it.mapAttributes(p.attrBuf[:0], e, &p.lim, nil)
	if !ok {
		return
	}
	if it.healOnly {
		// Its event was fired (its row says so); only its events row is rebuilt. The size check is
		// the event's own, as when it fired.
		var ok bool
		if p.scratch, ok = it.appendEvent(p.scratch[:0], e, p.attrBuf, &p.lim); ok {
			e.attrs, e.fired = p.arena.str(p.attrBuf), true
		}
		return
	}
	if rec := p.eventRecord(it, e, p.attrBuf); rec != nil { // nil, and e failed, when the event is too large
		e.attrs, e.fired, e.rec = p.arena.str(p.attrBuf), true, rec
	}
}

// guardElem is guard for one element: a panic fails that element with processing_error.
func (p *processor) guardElem(it *item, e *element, f func()) {
	defer func() {
		if r := recover(); r != nil {
			p.m.panics.Inc()
			e.fail(wire.ReasonProcessingError, "internal error while processing this request: %v", r)
			e.fired, e.rec = false, nil
			p.log.Error("panic while processing a request; it fails with processing_error", "panic", r,
				"stack", string(debug.Stack()), "webhook_id", it.webhookID, "partition", it.partition, "offset", it.offset, "element", e.index)
		}
	}()
	f()
}

// appendEventRow adds the events row of a fired element.
func (p *processor) appendEventRow(it *item, e *element) {
	r := it.route.r
	kind, subject := subjectOf(r.Identify.Kind, e.subject)
	p.b.events = append(p.b.events, chstore.EventRow{
		ProjectID:   uint64(it.projectID),
		SubjectKind: kind,
		Subject:     subject,
		OccurredAt:  time.UnixMilli(it.receivedMs).UTC(),
		EventID:     e.eventID,
		EventName:   r.EventName,
		WebhookID:   it.webhookID,
		UserID:      e.subject.UserID,
		HWID:        e.subject.HWID,
		HWIDs:       e.subject.HWIDs,
		Attributes:  p.storedAttrs(it, e),
		ReceivedMs:  uint64(it.receivedMs),
		Partition:   it.partition,
		Offset:      it.offset,
		Element:     int32(e.index),
	})
	p.b.noteOffset(chstore.Events, it.partition, it.offset)
}

// eventRecord builds the webhooks.events record of an element that maps, or fails the element with
// event_too_large and returns nil when the value would be over max_event_bytes: such a record would
// be refused by Kafka for ever. The record's bytes come from an arena and the record from a slab:
// firing costs no allocation of its own on the hot path.
func (p *processor) eventRecord(it *item, e *element, attrs []byte) *kgo.Record {
	r := it.route.r
	_, subject := subjectOf(r.Identify.Kind, e.subject)
	a := &p.arena
	start := len(a.buf)
	a.buf = wire.AppendUUID(a.buf, e.eventID)
	eventID := a.buf[start:len(a.buf):len(a.buf)]
	valueAt := len(a.buf)
	var ok bool
	if a.buf, ok = it.appendEvent(a.buf, e, attrs, &p.lim); !ok {
		a.buf = a.buf[:start]
		return nil
	}
	val := a.buf[valueAt:len(a.buf):len(a.buf)]
	rec := a.record()
	*rec = kgo.Record{
		Topic:   p.eventsTopic,
		Key:     stringBytes(subject),
		Value:   val,
		Headers: a.headers(2),
	}
	rec.Headers[0] = kgo.RecordHeader{Key: wire.HeaderEventID, Value: eventID}
	rec.Headers[1] = kgo.RecordHeader{Key: wire.HeaderEventName, Value: stringBytes(r.EventName)}
	a.fit()
	return rec
}

// appendEvent appends the webhooks.events value of element e that maps (wire.AppendEvent) to dst.
// When the value is over Limits.EventBytes it fails e with event_too_large and returns false, dst then
// holding the value all the same (the caller cuts it). The pipeline and a dry run (Evaluator) both
// build events through it.
func (it *item) appendEvent(dst []byte, e *element, attrs []byte, lim *Limits) ([]byte, bool) {
	r := it.route.r
	kind, _ := subjectOf(r.Identify.Kind, e.subject)
	valueAt := len(dst)
	dst = wire.AppendEvent(dst, &wire.EventFields{
		ID: e.eventID, Name: r.EventName, ProjectID: it.projectID, WebhookID: it.webhookID,
		SubjectKind: kind, IdentifiedBy: string(r.Identify.Kind), UserID: e.subject.UserID,
		HWID: e.subject.HWID, HWIDs: e.subject.HWIDs, Attributes: attrs, ReceivedMs: it.receivedMs,
	})
	if size := len(dst) - valueAt; size > lim.EventBytes {
		e.fail(wire.ReasonEventTooLarge, "the event is %d bytes, more than %d", size, lim.EventBytes)
		return dst, false
	}
	return dst, true
}

// Auth-failure streaks. Records of one webhook share a partition (key = webhook id), so offset order is
// the order the edge saw them in and the streak is tracked per partition. Authenticated requests
// (accepted, invalid_json, invalid_form, unsupported_media_type, payload_too_large: the edge verifies the
// request before it reads the body) end a streak;
// webhook_disabled neither counts nor ends one; a secret rotation after the streak began restarts it.
// The notification fires once, when the streak reaches AuthFailureStreak, and again only after a reset.

const notificationKind = "auth_failures"

func authMessage(webhookID string, n int) string {
	return fmt.Sprintf("%d consecutive requests to webhook %s failed verification: the credentials or signature were missing, wrong or expired (each entry's detail says which). Check the secret in the sending service and the webhook's sender; the webhook keeps accepting requests.", n, webhookID)
}

func (p *processor) trackStreak(ctx context.Context, it *item) {
	st := p.parts[it.partition]
	if st == nil {
		return
	}
	switch it.outcome {
	case wire.OutcomeAccepted, wire.OutcomeInvalidJSON, wire.OutcomePayloadTooLarge, wire.OutcomeInvalidForm,
		wire.OutcomeUnsupportedMediaType:
		if s := st.streaks[it.webhookID]; s != nil && (s.notified || s.raised) {
			// The sender has the right secret again: the alert the streak raised resolves.
			p.b.ends = append(p.b.ends, Notification{ProjectID: it.projectID, WebhookID: it.webhookID,
				ID: uuid.NewSHA1(it.requestID, []byte(KindStreakEnded)), Kind: KindStreakEnded,
				CreatedAt: time.UnixMilli(it.receivedMs).UTC(),
				Message:   fmt.Sprintf("webhook %s accepted an authenticated request again: the auth failures have stopped", it.webhookID)})
		}
		delete(st.streaks, it.webhookID)
	case wire.OutcomeAuthRejected:
		s := st.streaks[it.webhookID]
		if s == nil {
			if len(st.streaks) > 100_000 {
				clear(st.streaks) // bound memory against a flood of ids; streaks restart
			}
			s = &streak{}
			st.streaks[it.webhookID] = s
		}
		if s.count > 0 {
			// The cache answers from memory; when it cannot, the streak just goes on.
			if h, err := p.hooks.Get(ctx, it.webhookID); err == nil && h.SecretRotatedAt.UnixMilli() > s.startMs {
				*s = streak{raised: s.raised || s.notified}
			}
		}
		if s.count == 0 {
			s.startMs = it.receivedMs
		}
		s.count++
		if s.count >= p.cfg.AuthFailureStreak && !s.notified {
			s.notified = true
			p.addNotification(chstore.NotificationRow{
				ProjectID: uint64(it.projectID),
				WebhookID: it.webhookID,
				ID:        notificationID(it.requestID),
				Kind:      notificationKind,
				CreatedAt: time.UnixMilli(it.receivedMs).UTC(),
				Message:   authMessage(it.webhookID, s.count),
				Partition: it.partition,
				Offset:    it.offset,
			})
		}
	}
}

func (p *processor) addNotification(n chstore.NotificationRow) {
	if st := p.parts[n.Partition]; st != nil && n.Offset <= st.hwm[chstore.Notifications] {
		return
	}
	p.b.notes = append(p.b.notes, n)
	p.b.noteOffset(chstore.Notifications, n.Partition, n.Offset)
	p.m.notifications.Inc()
}

// joinDetail appends part to a detail, "; " between.
func joinDetail(detail, part string) string {
	if detail == "" {
		return part
	}
	return detail + "; " + part
}

// causeLabel bounds the cause metric's label values to the known causes.
func causeLabel(c string) string {
	switch c {
	case "replay", "release", "expire":
		return c
	}
	return "other"
}
