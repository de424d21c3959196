package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// fakeLoader serves hooks from a map and counts calls; fail makes it answer like an unreachable
// database; gate, when set, holds every call until closed.
type fakeLoader struct {
	mu    sync.Mutex
	hooks map[string]*Hook
	fail  bool
	gate  chan struct{}
	calls atomic.Int64
}

func (f *fakeLoader) Hook(ctx context.Context, id string) (*Hook, error) {
	f.calls.Add(1)
	// Read first, then wait at the gate: like a query whose snapshot predates what happens meanwhile.
	f.mu.Lock()
	gate, fail := f.gate, f.fail
	h, ok := f.hooks[id]
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail {
		return nil, errors.New("dial tcp 127.0.0.1:15432: connection refused")
	}
	if !ok {
		return nil, fmt.Errorf("webhook %s: %w", id, domainerr.ErrNotFound)
	}
	return h, nil
}

func (f *fakeLoader) set(id string, h *Hook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h == nil {
		delete(f.hooks, id)
	} else {
		f.hooks[id] = h
	}
}

func (f *fakeLoader) setFail(b bool) {
	f.mu.Lock()
	f.fail = b
	f.mu.Unlock()
}

// testCache returns a cache on a fake loader with a manual clock (advance moves it).
func testCache(t *testing.T) (*Cache, *fakeLoader, func(time.Duration)) {
	t.Helper()
	fl := &fakeLoader{hooks: map[string]*Hook{"hookA": {PublicID: "hookA", Version: 1, Enabled: true}}}
	c, err := NewCache(fl, DefaultCacheConfig(), prometheus.NewRegistry(), testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var now atomic.Int64
	c.clock = now.Load
	return c, fl, func(d time.Duration) { now.Add(int64(d)) }
}

func mustGet(t *testing.T, c *Cache, id string) *Hook {
	t.Helper()
	h, err := c.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return h
}

func TestCacheHitAndTTL(t *testing.T) {
	c, fl, advance := testCache(t)
	h := mustGet(t, c, "hookA")
	for range 10 {
		if got := mustGet(t, c, "hookA"); got != h {
			t.Fatal("warm Get returned another Hook")
		}
	}
	if n := fl.calls.Load(); n != 1 {
		t.Fatalf("loader called %d times; want 1", n)
	}
	fl.set("hookA", &Hook{PublicID: "hookA", Version: 2})
	advance(29 * time.Second)
	if got := mustGet(t, c, "hookA"); got.Version != 1 {
		t.Errorf("before TTL: version %d; want the cached 1", got.Version)
	}
	advance(2 * time.Second)
	if got := mustGet(t, c, "hookA"); got.Version != 2 {
		t.Errorf("after TTL: version %d; want 2", got.Version)
	}
	if got := counter(c.m.hits); got != 11 {
		t.Errorf("hits = %v; want 11", got)
	}
}

func TestCacheSingleflight(t *testing.T) {
	c, fl, _ := testCache(t)
	fl.gate = make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { mustGet(t, c, "hookA") })
	}
	// Let every goroutine reach the flight, then release the one load.
	for counter(c.m.misses) < 50 {
		time.Sleep(time.Millisecond)
	}
	close(fl.gate)
	wg.Wait()
	if n := fl.calls.Load(); n != 1 {
		t.Errorf("50 concurrent misses made %d loads; want 1", n)
	}
}

func TestCacheNegative(t *testing.T) {
	c, fl, advance := testCache(t)
	for range 5 {
		if _, err := c.Get(context.Background(), "unknown"); !errors.Is(err, domainerr.ErrNotFound) {
			t.Fatalf("got %v; want domainerr.ErrNotFound", err)
		}
	}
	if n := fl.calls.Load(); n != 1 {
		t.Fatalf("5 lookups of an unknown id made %d loads; want 1", n)
	}
	advance(2100 * time.Millisecond)
	_, _ = c.Get(context.Background(), "unknown")
	if n := fl.calls.Load(); n != 2 {
		t.Errorf("after the negative TTL: %d loads; want 2", n)
	}
	// A creation notification ends the negative entry at once.
	fl.set("unknown", &Hook{PublicID: "unknown"})
	c.Changed("webhook:unknown")
	mustGet(t, c, "unknown")
	// Garbage ids never reach the loader.
	for _, id := range []string{"", "../etc", "a b", string(make([]byte, 65))} {
		if _, err := c.Get(context.Background(), id); !errors.Is(err, domainerr.ErrNotFound) {
			t.Errorf("Get(%q) = %v; want domainerr.ErrNotFound", id, err)
		}
	}
	if n := fl.calls.Load(); n != 3 {
		t.Errorf("loads = %d; want 3 (garbage ids never loaded)", n)
	}
}

func TestCacheInvalidation(t *testing.T) {
	tests := []struct {
		name  string
		event func(*Cache)
	}{
		{"webhook change", func(c *Cache) { c.Changed("webhook:hookA") }},
		{"event change", func(c *Cache) { c.Changed("event:7") }},
		{"resync", func(c *Cache) { c.Resync() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fl, _ := testCache(t)
			fl.set("hookB", &Hook{PublicID: "hookB", Version: 1})
			mustGet(t, c, "hookA")
			mustGet(t, c, "hookB")
			fl.set("hookA", &Hook{PublicID: "hookA", Version: 2})
			tt.event(c)
			if got := mustGet(t, c, "hookA"); got.Version != 2 {
				t.Errorf("after %s: version %d; want 2", tt.name, got.Version)
			}
		})
	}
	// A change to another webhook does not touch this one.
	c, fl, _ := testCache(t)
	mustGet(t, c, "hookA")
	c.Changed("webhook:other")
	mustGet(t, c, "hookA")
	if n := fl.calls.Load(); n != 1 {
		t.Errorf("loads = %d; want 1", n)
	}
}

// A change notified while the entry is being loaded may not be in what the load read: the next Get must
// read again.
func TestCacheChangeDuringLoad(t *testing.T) {
	c, fl, _ := testCache(t)
	gate := make(chan struct{})
	fl.gate = gate
	got := make(chan *Hook)
	go func() { h, _ := c.Get(context.Background(), "hookA"); got <- h }()
	for fl.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// The load has read version 1; the change commits and is notified before the load finishes.
	fl.mu.Lock()
	fl.gate = nil
	fl.hooks["hookA"] = &Hook{PublicID: "hookA", Version: 2}
	fl.mu.Unlock()
	c.Changed("webhook:hookA")
	close(gate)
	if h := <-got; h.Version != 1 {
		t.Fatalf("the load in flight answered version %d; want 1", h.Version)
	}
	if h := mustGet(t, c, "hookA"); h.Version != 2 {
		t.Errorf("Get after a change during the load: version %d; want 2", h.Version)
	}
}

func TestCacheStaleIfError(t *testing.T) {
	c, fl, advance := testCache(t)
	h := mustGet(t, c, "hookA")
	fl.setFail(true)
	c.Changed("webhook:hookA")
	if got := mustGet(t, c, "hookA"); got != h {
		t.Error("invalidated entry with the database down: want the stale Hook")
	}
	// Within RetryInterval the database is not asked again, stale or miss.
	calls := fl.calls.Load()
	mustGet(t, c, "hookA")
	_, err := c.Get(context.Background(), "neverSeen")
	if !errors.Is(err, domainerr.ErrUnavailable) || errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("miss with the database down: got %v; want domainerr.ErrUnavailable", err)
	}
	if n := fl.calls.Load(); n != calls {
		t.Errorf("loads within the retry interval: %d; want none", n-calls)
	}
	advance(time.Minute) // past TTL and the retry interval
	if got := mustGet(t, c, "hookA"); got != h {
		t.Error("expired entry with the database down: want the stale Hook")
	}
	if _, err := c.Get(context.Background(), "neverSeen2"); !errors.Is(err, domainerr.ErrUnavailable) {
		t.Errorf("miss with the database down: got %v; want domainerr.ErrUnavailable", err)
	}
	if s := counter(c.m.staleServes); s != 3 {
		t.Errorf("stale serves = %v; want 3", s)
	}
	if e := counter(c.m.refreshErrors); e < 2 {
		t.Errorf("refresh errors = %v; want at least 2", e)
	}
	// Recovery.
	fl.setFail(false)
	fl.set("hookA", &Hook{PublicID: "hookA", Version: 3})
	advance(2 * time.Second)
	if got := mustGet(t, c, "hookA"); got.Version != 3 {
		t.Errorf("after recovery: version %d; want 3", got.Version)
	}
	if _, err := c.Get(context.Background(), "neverSeen"); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("after recovery: got %v; want domainerr.ErrNotFound", err)
	}
}

func TestCacheMissRateLimit(t *testing.T) {
	c, fl, advance := testCache(t)
	mustGet(t, c, "hookA")
	var limited int
	for i := range 600 {
		_, err := c.Get(context.Background(), fmt.Sprintf("random%d", i))
		if errors.Is(err, domainerr.ErrUnavailable) {
			limited++
		}
	}
	// The burst is MaxMissRate lookups, one of which warmed hookA.
	if limited != 101 || fl.calls.Load() != 500 {
		t.Errorf("600 random ids at once: %d refused, %d loaded; want 101 and 499", limited, fl.calls.Load()-1)
	}
	// Cached ids are unaffected, and the bucket refills.
	mustGet(t, c, "hookA")
	advance(time.Second)
	if _, err := c.Get(context.Background(), "random9999"); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("after a second: %v; want domainerr.ErrNotFound", err)
	}
}

func TestCacheConfigValidate(t *testing.T) {
	ok := DefaultCacheConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mod := range map[string]func(*CacheConfig){
		"max_cost":       func(c *CacheConfig) { c.MaxCost = 10 },
		"ttl":            func(c *CacheConfig) { c.TTL = 0 },
		"negative_ttl":   func(c *CacheConfig) { c.NegativeTTL = time.Hour },
		"load_timeout":   func(c *CacheConfig) { c.LoadTimeout = -1 },
		"retry_interval": func(c *CacheConfig) { c.RetryInterval = 0 },
		"max_miss_rate":  func(c *CacheConfig) { c.MaxMissRate = 0 },
	} {
		c := DefaultCacheConfig()
		mod(&c)
		if err := c.Validate(); err == nil || err.Error()[:len(name)] != name {
			t.Errorf("%s: got %v; want an error naming it", name, err)
		}
	}
}

func TestCacheHitAllocs(t *testing.T) {
	c, _, _ := testCache(t)
	mustGet(t, c, "hookA")
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _, _ = c.Get(ctx, "hookA") }); n != 0 {
		t.Errorf("warm hit allocates %v times; want 0", n)
	}
}

func BenchmarkCacheGetHit(b *testing.B) {
	fl := &fakeLoader{hooks: map[string]*Hook{"hookA": {PublicID: "hookA"}}}
	c, err := NewCache(fl, DefaultCacheConfig(), prometheus.NewRegistry(), testenv.Logger())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Get(ctx, "hookA"); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(ctx, "hookA"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Get(ctx, "hookA"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("negative", func(b *testing.B) {
		_, _ = c.Get(ctx, "unknownId")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(ctx, "unknownId"); !errors.Is(err, domainerr.ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
}

// counter reads a counter's value.
func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// batchLoader is a fakeLoader that reads many at once too (HookBatchLoader).
type batchLoader struct {
	*fakeLoader
	batches atomic.Int64
}

func (b *batchLoader) HooksByID(ctx context.Context, ids []string) ([]*Hook, error) {
	b.batches.Add(1)
	var out []*Hook
	for _, id := range ids {
		if h, err := b.Hook(ctx, id); err == nil {
			out = append(out, h)
		}
	}
	return out, nil
}

// Prefetch of cached webhooks reads nothing and allocates nothing (the pipeline calls it for every poll);
// with a loader that cannot read many at once it does nothing, and Get reads as before.
func TestCachePrefetchWarmAndUnbatched(t *testing.T) {
	id := secret.NewPublicID()
	bl := &batchLoader{fakeLoader: &fakeLoader{hooks: map[string]*Hook{id: {PublicID: id, Version: 1, Enabled: true}}}}
	c, err := NewCache(bl, DefaultCacheConfig(), prometheus.NewRegistry(), testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	ids := []string{id, id, id}
	c.Prefetch(ctx, ids)
	if bl.batches.Load() != 1 {
		t.Fatalf("%d batch reads; want 1", bl.batches.Load())
	}
	mustGet(t, c, id)
	if n := testing.AllocsPerRun(1000, func() { c.Prefetch(ctx, ids) }); n != 0 {
		t.Errorf("Prefetch of cached webhooks allocates %v times; want 0 (batches %d)", n, bl.batches.Load())
	}
	if bl.batches.Load() != 1 || bl.calls.Load() != 1 { // the batch read's own Hook call
		t.Errorf("Prefetch of cached webhooks read again: %d batches, %d lookups", bl.batches.Load(), bl.calls.Load())
	}

	c2, fl, _ := testCache(t)
	fl.set(id, &Hook{PublicID: id, Version: 1})
	c2.Prefetch(ctx, ids)
	if fl.calls.Load() != 0 {
		t.Fatalf("Prefetch without a batch loader made %d lookups", fl.calls.Load())
	}
	mustGet(t, c2, id)
	if fl.calls.Load() != 1 {
		t.Fatalf("%d lookups; want Get's 1", fl.calls.Load())
	}
}

// countingHandler counts the records logged at warn or above.
type countingHandler struct{ warns atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// Loads in flight when PostgreSQL goes away fail together: one warning, not one per webhook.
func TestCacheFailedBurstLogsOnce(t *testing.T) {
	fl := &fakeLoader{hooks: map[string]*Hook{}, gate: make(chan struct{})}
	fl.setFail(true)
	logs := &countingHandler{}
	c, err := NewCache(fl, DefaultCacheConfig(), prometheus.NewRegistry(), slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, _ = c.Get(context.Background(), fmt.Sprintf("hook%02d", i)) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for fl.calls.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d loads in flight; want %d", fl.calls.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	close(fl.gate)
	wg.Wait()
	if w := logs.warns.Load(); w != 1 {
		t.Errorf("%d warnings for a burst of %d failed loads; want 1", w, n)
	}
	if e := counter(c.m.refreshErrors); e != n {
		t.Errorf("refresh errors = %v; want %d (each counted)", e, n)
	}
}

// TestDefaultCacheHolds100kWebhooks: the default max_cost holds 100,000 typical webhooks (the seed's:
// one route, four mappings, a Bearer secret, ids as the store makes them) with room to spare, so that a
// deployment of that size does not evict a config it uses every few seconds and read it from
// PostgreSQL again (and the pipeline compile it again) on every request.
func TestDefaultCacheHolds100kWebhooks(t *testing.T) {
	h := &Hook{PublicID: secret.NewPublicID(), ProjectID: 1, Enabled: true, Version: 1}
	h.setMapping(connection{Sender: SenderInlet}, []Route{{EventName: "CheckoutSuccess",
		Identify: Identify{Kind: "user_id", Field: "user_id"},
		Mappings: []Mapping{{Attribute: "email", Field: "email_address"}, {Attribute: "total", Field: "price"},
			{Attribute: "order_id", Field: "order_number"}, {Attribute: "purchase_date", Field: "purchase_date"}}}},
		[][]Attribute{{{Name: "email", Type: TypeString}, {Name: "total", Type: TypePrice}, {Name: "order_id", Type: TypeString},
			{Name: "purchase_date", Type: TypeDate}}})
	per := cost(&entry{id: h.PublicID, hook: h})
	const n, headroom = 100_000, 1.25
	if got, want := DefaultCacheConfig().MaxCost, int64(float64(n*per)*headroom); got < want {
		t.Errorf("default max_cost %d; want at least %d: %d typical webhooks at %d bytes each, with %.0f%% headroom", got, want, n, per, (headroom-1)*100)
	}
}

// PrefetchHooks hands back the configs it found cached, in the ids' places, repeats included, and the
// zero Cached for those it read (or found unknown), counting the hits as Get would; with a warm cache it
// allocates nothing.
func TestCachePrefetchHooks(t *testing.T) {
	cached, fresh := secret.NewPublicID(), secret.NewPublicID()
	bl := &batchLoader{fakeLoader: &fakeLoader{hooks: map[string]*Hook{
		cached: {PublicID: cached, Version: 1, Enabled: true}, fresh: {PublicID: fresh, Version: 1, Enabled: true}}}}
	reg := prometheus.NewRegistry()
	c, err := NewCache(bl, DefaultCacheConfig(), reg, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	want := mustGet(t, c, cached)
	ids := []string{cached, cached, fresh, secret.NewPublicID(), "not an id"}
	hooks := make([]Cached, len(ids))
	hits := counter(c.m.hits)
	c.PrefetchHooks(ctx, ids, hooks)
	if hooks[0].Hook != want || hooks[1].Hook != want || hooks[2].Hook != nil || hooks[3].Hook != nil || hooks[4].Hook != nil {
		t.Fatalf("hooks = %v; want the cached config twice, then none (read now, unknown, implausible)", hooks)
	}
	if got := counter(c.m.hits) - hits; got != 2 {
		t.Errorf("%v hits counted; want 2", got)
	}
	if bl.batches.Load() != 1 {
		t.Errorf("%d batch reads; want 1", bl.batches.Load())
	}
	warm := ids[:3]
	clear(hooks)
	c.PrefetchHooks(ctx, warm, hooks)
	if hooks[2].Hook == nil || hooks[2].Hook.PublicID != fresh {
		t.Errorf("the config read by the first prefetch is not handed back by the second: %v", hooks[2])
	}
	if n := testing.AllocsPerRun(100, func() { c.PrefetchHooks(ctx, warm, hooks) }); n != 0 {
		t.Errorf("PrefetchHooks of cached webhooks allocates %v times; want 0", n)
	}
}

// A Cached stays Fresh exactly as long as Get would answer its config from memory: a change notified,
// a resync, the ttl and a newer read of the webhook each end it; Fresh counts a hit and allocates
// nothing.
func TestCacheFresh(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(c *Cache, advance func(time.Duration), x Cached)
	}{
		{"change notified", func(c *Cache, _ func(time.Duration), _ Cached) { c.Changed("webhook:hookA") }},
		{"another webhook changed", nil},
		{"resync", func(c *Cache, _ func(time.Duration), _ Cached) { c.Resync() }},
		{"event changed", func(c *Cache, _ func(time.Duration), _ Cached) { c.Changed("event:7") }},
		{"ttl", func(c *Cache, advance func(time.Duration), _ Cached) { advance(c.cfg.TTL) }},
		{"newer read", func(c *Cache, _ func(time.Duration), x Cached) {
			c.set(&entry{id: "hookA", hook: &Hook{PublicID: "hookA", Version: 2}, expires: x.e.expires, epoch: x.e.epoch})
			c.rc.Wait()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, advance := testCache(t)
			if c.Fresh(Cached{}) {
				t.Fatal("the zero Cached is fresh")
			}
			h := mustGet(t, c, "hookA")
			hooks := make([]Cached, 1)
			c.PrefetchHooks(context.Background(), []string{"hookA"}, hooks)
			if hooks[0].Hook != nil {
				t.Fatal("PrefetchHooks without a batch loader handed a config back")
			}
			e, _ := c.rc.Get("hookA")
			x := Cached{Hook: h, e: e}
			hits := counter(c.m.hits)
			if !c.Fresh(x) {
				t.Fatal("a config just read is not fresh")
			}
			if got := counter(c.m.hits) - hits; got != 1 {
				t.Errorf("Fresh counted %v hits; want 1", got)
			}
			if n := testing.AllocsPerRun(100, func() { c.Fresh(x) }); n != 0 {
				t.Errorf("Fresh allocates %v times; want 0", n)
			}
			if tc.end == nil {
				c.Changed("webhook:hookB")
				if !c.Fresh(x) {
					t.Error("a change to another webhook ended the config's freshness")
				}
				return
			}
			tc.end(c, advance, x)
			if c.Fresh(x) {
				t.Errorf("still fresh after: %s", tc.name)
			}
		})
	}
}

// An entry that leaves the cache because it is full (evicted, or refused on the way in) is no longer
// fresh: a change notified for it could not be seen any more.
func TestCacheFreshEvicted(t *testing.T) {
	cfg := DefaultCacheConfig()
	cfg.MaxCost = 1 << 20
	c, err := NewCache(&fakeLoader{}, cfg, prometheus.NewRegistry(), testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 4000 // ~4 MiB of entries, four times the room
	held := make([]Cached, n)
	for i := range held {
		h := &Hook{PublicID: fmt.Sprintf("hook%05d", i), Version: 1, HandshakeToken: strings.Repeat("x", 900)}
		e := &entry{id: h.PublicID, hook: h, expires: c.clock() + int64(time.Hour), epoch: c.epoch.Load()}
		c.set(e)
		held[i] = Cached{Hook: h, e: e}
	}
	c.rc.Wait()
	gone := 0
	for _, x := range held {
		if e, ok := c.rc.Get(x.Hook.PublicID); ok && e == x.e {
			continue
		}
		gone++
		if c.Fresh(x) {
			t.Fatalf("%s left the cache but is still fresh", x.Hook.PublicID)
		}
	}
	if gone < n/2 {
		t.Fatalf("only %d of %d entries left a cache with room for a quarter of them", gone, n)
	}
}
