package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/verify"
)

// CacheConfig bounds and tunes the data path's webhook cache.
type CacheConfig struct {
	// MaxCost bounds the cache's memory, in (estimated) bytes of cached configs. Default 128 MiB, room for
	// ~130k typical webhooks (about 1 KiB each by the estimate): a deployment with more live webhooks than
	// fit reads evicted configs from PostgreSQL again on their next request (and the pipeline compiles
	// them again), which costs far more CPU than the memory saved. Raising it costs memory in every
	// ingestor and pipeline process, only as the configs are used.
	MaxCost int64 `yaml:"max_cost"`
	// TTL is the backstop after which an entry is re-read even without a change notification (one
	// PostgreSQL query per active webhook per TTL). Default 30s.
	TTL time.Duration `yaml:"ttl"`
	// NegativeTTL is how long an unknown id is remembered as unknown, so that repeated requests for it
	// do not reach PostgreSQL. Default 2s; a webhook created meanwhile is seen at once anyway (its INSERT
	// is notified).
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// LoadTimeout bounds one PostgreSQL lookup. Default 2s.
	LoadTimeout time.Duration `yaml:"load_timeout"`
	// RetryInterval is how long after a failed lookup the cache stops asking PostgreSQL: stale entries
	// are served and misses fail at once. Default 1s.
	RetryInterval time.Duration `yaml:"retry_interval"`
	// MaxMissRate bounds lookups of ids the cache has never seen, per second per process, so that a
	// sender spraying random ids cannot turn each request into a query. Above it such requests answer
	// domainerr.ErrUnavailable. Default 500.
	MaxMissRate float64 `yaml:"max_miss_rate"`
	// WarmMax is how many live webhooks a process loads into the cache when it starts (Warm), in pages
	// of 1000, so that the first request of each does not wait for PostgreSQL; with many webhooks and
	// max_miss_rate, a cold start would otherwise answer 503 to some. Default 100000; 0 disables it.
	WarmMax int `yaml:"warm_max"`
}

// DefaultCacheConfig returns the settings used when the file says nothing.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{
		MaxCost:       128 << 20,
		TTL:           30 * time.Second,
		NegativeTTL:   2 * time.Second,
		LoadTimeout:   2 * time.Second,
		RetryInterval: time.Second,
		MaxMissRate:   500,
		WarmMax:       100000,
	}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c *CacheConfig) Validate() error {
	switch {
	case c.MaxCost < 1<<20:
		return fmt.Errorf("max_cost: %d must be at least 1 MiB", c.MaxCost)
	case c.TTL <= 0:
		return fmt.Errorf("ttl: %s must be positive", c.TTL)
	case c.NegativeTTL <= 0 || c.NegativeTTL > c.TTL:
		return fmt.Errorf("negative_ttl: %s must be positive and at most ttl", c.NegativeTTL)
	case c.LoadTimeout <= 0:
		return fmt.Errorf("load_timeout: %s must be positive", c.LoadTimeout)
	case c.RetryInterval <= 0:
		return fmt.Errorf("retry_interval: %s must be positive", c.RetryInterval)
	case c.WarmMax < 0:
		return fmt.Errorf("warm_max: %d must not be negative", c.WarmMax)
	case c.MaxMissRate <= 0:
		return fmt.Errorf("max_miss_rate: %v must be positive", c.MaxMissRate)
	}
	return nil
}

// HookLoader reads one webhook's data-path view; *Store is the real one. It answers domainerr.ErrNotFound for
// an unknown or deleted id and any other error when it cannot tell.
type HookLoader interface {
	Hook(ctx context.Context, publicID string) (*Hook, error)
}

// Cache is the webhook config lookup of the ingestor (on every request) and the pipeline. A warm hit is
// a ristretto lookup and three atomic loads, without allocating.
//
// Freshness: a change to a webhook or an event is pushed through pgdb.Notifier (see Subscribe) and
// marks the entry stale, so the next Get re-reads it; a listener reconnect or an event change marks
// everything stale; TTL bounds the age of an entry if a notification is lost anyway.
//
// Failures: when PostgreSQL cannot answer, a stale entry keeps serving its last known config
// (stale-if-error), and an id with nothing cached answers domainerr.ErrUnavailable, never
// domainerr.ErrNotFound: the edge fails closed with 503 rather than telling a sender its webhook does not
// exist.
type Cache struct {
	cfg    CacheConfig
	loader HookLoader
	log    *slog.Logger
	rc     *ristretto.Cache[string, *entry]
	group  singleflight.Group
	m      *cacheMetrics

	// base anchors the monotonic clock; times below are nanoseconds since base.
	base  time.Time
	clock func() int64

	// epoch grows on every "invalidate everything"; an entry loaded under an older epoch is stale.
	epoch atomic.Uint64
	// downUntil: after a failed lookup, no lookups until then.
	downUntil atomic.Int64
	// changes counts per-webhook change notifications, so that Warm can tell a page read during one.
	changes atomic.Uint64

	mu      sync.Mutex
	flights map[string]*flight // loads in progress, by id
	misses  bucket
}

// entry is one cached answer. hook is nil for an id known not to exist.
type entry struct {
	id      string
	hook    *Hook
	expires int64
	epoch   uint64
	stale   atomic.Bool
}

type flight struct{ dirty bool }

type cacheMetrics struct {
	hits, misses, staleServes, refreshErrors, invalidations, limited prometheus.Counter
}

func newCacheMetrics(reg prometheus.Registerer) *cacheMetrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "inlet_webhook_cache_" + name, Help: help})
	}
	m := &cacheMetrics{
		hits:          c("hits_total", "Webhook config lookups answered from the cache (including known-unknown ids)."),
		misses:        c("misses_total", "Webhook config lookups that went to PostgreSQL (absent, stale or expired entries)."),
		staleServes:   c("stale_serves_total", "Lookups answered with a stale config because PostgreSQL could not be read."),
		refreshErrors: c("refresh_errors_total", "Failed webhook config reads from PostgreSQL."),
		invalidations: c("invalidations_total", "Change notifications and resyncs received."),
		limited:       c("limited_misses_total", "Lookups of uncached ids refused because of max_miss_rate."),
	}
	if reg != nil {
		reg.MustRegister(m.hits, m.misses, m.staleServes, m.refreshErrors, m.invalidations, m.limited)
	}
	return m
}

// NewCache builds a cache in front of loader. reg may be nil (no metrics exported). Call Subscribe
// before the notifier runs, and Close when done.
func NewCache(loader HookLoader, cfg CacheConfig, reg prometheus.Registerer, log *slog.Logger) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhook cache: %w", err)
	}
	rc, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
		// ~5 counters per entry that fits, entries costing ~1 KiB: half ristretto's advice of 10, as the
		// counters (~12 bytes each with the bloom filter) are paid up front, by every process, however
		// few webhooks it sees; admission matters little while the live configs all fit.
		NumCounters:        max(cfg.MaxCost/200, 1000),
		MaxCost:            cfg.MaxCost,
		BufferItems:        64,
		IgnoreInternalCost: true,
		// An entry that leaves the cache can no longer be marked stale by a change notification
		// (Changed finds it no more): whoever still holds it (Cached) must stop trusting it.
		OnEvict:  func(it *ristretto.Item[*entry]) { it.Value.stale.Store(true) },
		OnReject: func(it *ristretto.Item[*entry]) { it.Value.stale.Store(true) },
	})
	if err != nil {
		return nil, fmt.Errorf("webhook cache: %w", err)
	}
	c := &Cache{
		cfg:     cfg,
		loader:  loader,
		log:     log,
		rc:      rc,
		m:       newCacheMetrics(reg),
		base:    time.Now(),
		flights: map[string]*flight{},
		misses:  bucket{rate: cfg.MaxMissRate, tokens: cfg.MaxMissRate},
	}
	c.clock = func() int64 { return int64(time.Since(c.base)) }
	return c, nil
}

// Close releases the cache's goroutines.
func (c *Cache) Close() { c.rc.Close() }

// Subscribe registers the cache for webhook and event changes on n.
func (c *Cache) Subscribe(n *pgdb.Notifier) {
	n.Subscribe("webhook:", c)
	n.Subscribe("event:", c)
}

// Changed implements pgdb.Subscriber. A webhook change marks that webhook stale (and any load of it in
// progress, whose result may predate the change); an event change marks everything stale, since the
// cache does not index webhooks by event and event edits are rare.
func (c *Cache) Changed(payload string) {
	c.m.invalidations.Inc()
	id, ok := strings.CutPrefix(payload, "webhook:")
	if !ok {
		c.epoch.Add(1)
		return
	}
	c.changes.Add(1)
	c.mu.Lock()
	if f := c.flights[id]; f != nil {
		f.dirty = true
	}
	c.mu.Unlock()
	if e, ok := c.rc.Get(id); ok {
		e.stale.Store(true)
	}
}

// Resync implements pgdb.Subscriber: notifications may have been missed, so everything is stale.
func (c *Cache) Resync() {
	c.m.invalidations.Inc()
	c.epoch.Add(1)
}

// Get returns the config of the webhook with public id publicID: domainerr.ErrNotFound if it does not exist
// (or was deleted), domainerr.ErrUnavailable (wrapped, with the cause) if PostgreSQL cannot be read and
// nothing usable is cached. The returned Hook is shared and must not be modified.
func (c *Cache) Get(ctx context.Context, publicID string) (*Hook, error) {
	e, ok := c.rc.Get(publicID)
	// ristretto keys by a 128-bit hash of the id, not the id: compare it, so a collision is a miss.
	if ok && e.id == publicID {
		if c.current(e, c.epoch.Load(), c.clock()) {
			c.m.hits.Inc()
			if e.hook == nil {
				return nil, domainerr.ErrNotFound
			}
			return e.hook, nil
		}
	} else {
		e = nil
	}
	return c.refresh(ctx, publicID, e)
}

// refresh reads publicID from PostgreSQL, once for all concurrent callers; old is the stale entry, if
// any, to fall back on.
func (c *Cache) refresh(ctx context.Context, id string, old *entry) (*Hook, error) {
	if old == nil && !plausibleID(id) {
		// Cannot exist (the store makes every id): not worth a query nor a cache slot.
		c.m.hits.Inc()
		return nil, domainerr.ErrNotFound
	}
	now := c.clock()
	if now < c.downUntil.Load() {
		return c.fallback(old, errors.New("postgres failed recently; retrying later"))
	}
	if old == nil && !c.allowMiss(now) {
		c.m.limited.Inc()
		return nil, fmt.Errorf("webhook config %w: more than %v lookups of uncached ids per second", domainerr.ErrUnavailable, c.cfg.MaxMissRate)
	}
	c.m.misses.Inc()
	ch := c.group.DoChan(id, func() (any, error) { return c.load(id) })
	select {
	case r := <-ch:
		if r.Err == nil {
			return r.Val.(*Hook), nil
		}
		if errors.Is(r.Err, domainerr.ErrNotFound) {
			return nil, domainerr.ErrNotFound
		}
		return c.fallback(old, r.Err)
	case <-ctx.Done():
		return c.fallback(old, ctx.Err())
	}
}

// fallback answers when PostgreSQL could not: the last known config if there is one, else fail closed.
// A known-unknown id is not served stale: the id may have been created since.
func (c *Cache) fallback(old *entry, cause error) (*Hook, error) {
	if old != nil && old.hook != nil {
		c.m.staleServes.Inc()
		return old.hook, nil
	}
	return nil, fmt.Errorf("webhook config %w: %w", domainerr.ErrUnavailable, cause)
}

// load runs inside singleflight. It is not tied to one caller's context: the others wait for it too.
func (c *Cache) load(id string) (*Hook, error) {
	epoch := c.epoch.Load()
	// A caller that missed while another's load was ending starts a flight of its own once that one
	// has stored its entry: it finds the entry here rather than reading PostgreSQL again.
	if e, ok := c.rc.Get(id); ok && e.id == id && c.current(e, epoch, c.clock()) {
		if e.hook == nil {
			return nil, domainerr.ErrNotFound
		}
		return e.hook, nil
	}
	f := &flight{}
	c.mu.Lock()
	c.flights[id] = f
	c.mu.Unlock()
	done := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.flights, id)
		return f.dirty
	}

	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.LoadTimeout)
	h, err := c.loader.Hook(ctx, id)
	cancel()
	ttl := c.cfg.TTL
	switch {
	case err == nil:
	case errors.Is(err, domainerr.ErrNotFound):
		h, ttl = nil, c.cfg.NegativeTTL
	default:
		done()
		c.m.refreshErrors.Inc()
		// Lookups stop until downUntil. Loads already in flight fail together (a burst of misses when
		// PostgreSQL goes away): only the one that opens the window logs, so that there is at most
		// about one line per RetryInterval.
		now := c.clock()
		prev := c.downUntil.Load()
		if now >= prev && c.downUntil.CompareAndSwap(prev, now+int64(c.cfg.RetryInterval)) {
			c.log.Warn("webhook config lookup failed; serving cached configs", "webhook", id, "err", err)
		}
		return nil, err
	}
	e := &entry{id: id, hook: h, expires: c.clock() + int64(ttl), epoch: epoch}
	c.set(e)
	// Set is applied asynchronously; wait so that the next Get finds the entry and Changed can mark it.
	c.rc.Wait()
	// A change notified while loading may not be in what was read: keep the result for these callers
	// but have the next Get read again.
	if done() {
		e.stale.Store(true)
	}
	if h == nil {
		return nil, domainerr.ErrNotFound
	}
	return h, nil
}

// HookBatchLoader reads many webhooks in one round trip (Prefetch): the live ones among ids, in any
// order, leaving out the unknown and the deleted. *Store is one.
type HookBatchLoader interface {
	HooksByID(ctx context.Context, ids []string) ([]*Hook, error)
}

// prefetchMax is how many ids Prefetch reads per query.
const prefetchMax = 1000

// Prefetch reads, in one query per prefetchMax ids, the configs of those of ids that Get would have to
// read from PostgreSQL one by one (absent, stale, expired or loaded before an "invalidate everything"),
// so that a batch of records for many webhooks costs a round trip rather than one per webhook. An id
// not found is left for Get, which caches it as unknown; so are all of them when the loader cannot read
// many at once (not a HookBatchLoader) or PostgreSQL failed recently, and an error is left for Get to
// meet (and retry). It is meant for ids the edge has already authenticated (the pipeline's records):
// max_miss_rate does not apply. A warm hit costs one cache lookup per id and allocates nothing.
func (c *Cache) Prefetch(ctx context.Context, ids []string) {
	c.PrefetchHooks(ctx, ids, nil)
}

// PrefetchHooks is Prefetch that also hands back what it found cached: hooks (nil, or as long as ids)
// receives for each id the config Get would have answered from memory, and the zero Cached where Get
// has to be called (an id read by this prefetch, unknown, stale or implausible), so that a caller with
// a warm cache looks each id up once rather than twice (and can check it later with Fresh). The hits
// are counted as Get counts them.
func (c *Cache) PrefetchHooks(ctx context.Context, ids []string, hooks []Cached) {
	bl, ok := c.loader.(HookBatchLoader)
	if !ok || len(ids) == 0 {
		return
	}
	now := c.clock()
	if now < c.downUntil.Load() {
		return
	}
	var need []string
	set := false
	hits := 0
	for i, id := range ids {
		if i > 0 && ids[i-1] == id {
			if hooks != nil && hooks[i-1].Hook != nil {
				hooks[i] = hooks[i-1]
				hits++
			}
			continue
		}
		if !plausibleID(id) {
			continue
		}
		if e, ok := c.rc.Get(id); ok && e.id == id && c.current(e, c.epoch.Load(), now) {
			if hooks != nil && e.hook != nil {
				hooks[i] = Cached{Hook: e.hook, e: e}
				hits++
			}
			continue
		}
		need = append(need, id)
	}
	if hits > 0 {
		c.m.hits.Add(float64(hits))
	}
	for len(need) > 0 {
		chunk := need[:min(len(need), prefetchMax)]
		need = need[len(chunk):]
		seen, epoch := c.changes.Load(), c.epoch.Load()
		lctx, cancel := context.WithTimeout(ctx, c.cfg.LoadTimeout)
		hooks, err := bl.HooksByID(lctx, chunk)
		cancel()
		if err != nil {
			c.m.refreshErrors.Inc()
			c.log.Debug("webhook config prefetch failed; lookups go one by one", "webhooks", len(chunk), "err", err)
			return
		}
		c.m.misses.Add(float64(len(hooks)))
		// A change notified while reading may not be in what was read: those are stale at once, as in Warm.
		stale := c.changes.Load() != seen
		at := c.clock()
		for _, h := range hooks {
			e := &entry{id: h.PublicID, hook: h, epoch: epoch, expires: at + int64(c.cfg.TTL)}
			if stale {
				e.stale.Store(true)
			}
			c.set(e)
			set = true
		}
	}
	if set {
		// Set is applied asynchronously; wait so that the Gets that follow find the entries.
		c.rc.Wait()
	}
}

// set caches e, in place of the entry of its id if there is one: that one is marked stale, so that a
// Cached holding it is not trusted past the newer read.
func (c *Cache) set(e *entry) {
	if old, ok := c.rc.Get(e.id); ok && old != e {
		old.stale.Store(true)
	}
	c.rc.Set(e.id, e, cost(e))
}

// current reports whether Get answers e from memory at now: not marked stale (a change notified, a
// newer read, an eviction), read in the current epoch (no "invalidate everything" since) and not expired.
func (c *Cache) current(e *entry, epoch uint64, now int64) bool {
	return !e.stale.Load() && e.epoch == epoch && now < e.expires
}

// Cached is a config as the cache held it (PrefetchHooks), with what tells whether it still holds it
// (Fresh). The zero Cached holds nothing.
type Cached struct {
	Hook *Hook
	e    *entry
}

// Fresh reports whether Get would still answer x.Hook from memory: its entry has not been marked stale
// (a change notified, a newer read, an eviction), has not expired and predates no "invalidate
// everything". It costs three atomic loads and a clock read, no cache lookup: a caller that keeps what
// it derived from configs (the pipeline's compiled ones) checks them with it per record. A fresh answer
// counts as a hit, as Get's would.
func (c *Cache) Fresh(x Cached) bool {
	e := x.e
	if e == nil || e.hook != x.Hook || !c.current(e, c.epoch.Load(), c.clock()) {
		return false
	}
	c.m.hits.Inc()
	return true
}

// HookPager reads live webhooks page by page, in public id order; *Store is the real one.
type HookPager interface {
	Hooks(ctx context.Context, after string, limit int) ([]*Hook, error)
}

// warmPage is how many webhooks Warm reads per query.
const warmPage = 1000

// Warm loads up to max live webhooks into the cache, so that a process starting under load does not
// send the first request of every webhook to PostgreSQL (with 10,000 webhooks that is a burst of 10,000
// queries while the edge waits). The cache's cost bound still applies. A page read while a change was
// notified is marked stale, so nothing older than a notification is served. Expiries are spread over
// the second half of the TTL so that the warmed entries are not all refreshed at the same moment.
// It returns how many webhooks were loaded.
func (c *Cache) Warm(ctx context.Context, pages HookPager, max int) (int, error) {
	n := 0
	after := ""
	for n < max {
		seen, epoch := c.changes.Load(), c.epoch.Load()
		want := min(warmPage, max-n)
		hooks, err := pages.Hooks(ctx, after, want)
		if err != nil {
			return n, fmt.Errorf("warm webhook cache: %w", err)
		}
		stale := c.changes.Load() != seen
		now := c.clock()
		for _, h := range hooks {
			e := &entry{id: h.PublicID, hook: h, epoch: epoch,
				expires: now + int64(c.cfg.TTL)/2 + rand.Int64N(int64(c.cfg.TTL)/2+1)}
			if stale {
				e.stale.Store(true)
			}
			c.set(e)
		}
		n += len(hooks)
		if len(hooks) < want {
			break
		}
		after = hooks[len(hooks)-1].PublicID
	}
	c.rc.Wait()
	return n, nil
}

// cost estimates an entry's memory in bytes.
func cost(e *entry) int64 {
	n := 96 + len(e.id)
	if h := e.hook; h != nil {
		n += 320 + len(h.PublicID)
		for _, r := range h.RouteList() {
			n += 160 + len(r.Name) + len(r.When) + len(r.ForEach) + len(r.EventName) + len(r.Identify.Field)
			for _, m := range r.Mappings {
				n += 72 + len(m.Attribute) + len(m.Field) + len(m.Expr)
			}
		}
		for _, k := range h.Headers {
			n += 32 + len(k.Name) + len(k.RecordKey)
		}
		n += len(h.Dedup.Key) + len(h.HandshakeToken)
		if h.verifier != nil && h.Verification != nil && h.Verification.Mode == verify.ModeHMAC {
			// Two verifiers, each with keyed HMAC states pooled per processor (a few hundred bytes
			// per secret each) and its scratch; none in a process that does not verify
			// (Store.WithoutVerifiers).
			n += 4096
		}
	}
	return int64(n)
}

// plausibleID reports whether id could be a public id at all: ids are made by secret.NewPublicID (22
// base62 characters); this looser check (1..64 of [A-Za-z0-9_-]) turns away garbage without depending
// on that exact form.
func plausibleID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// bucket is a token bucket refilled at rate per second, holding at most rate tokens.
type bucket struct {
	rate, tokens float64
	last         int64
}

func (c *Cache) allowMiss(now int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := &c.misses
	b.tokens = min(b.rate, b.tokens+float64(now-b.last)/1e9*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
