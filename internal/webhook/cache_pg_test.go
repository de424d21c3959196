package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// countingLoader counts the lookups that reach PostgreSQL.
type countingLoader struct {
	*Store
	n, batches atomic.Int64
}

func (l *countingLoader) Hook(ctx context.Context, id string) (*Hook, error) {
	l.n.Add(1)
	return l.Store.Hook(ctx, id)
}

// HooksByID counts the batch reads of Prefetch apart.
func (l *countingLoader) HooksByID(ctx context.Context, ids []string) ([]*Hook, error) {
	l.batches.Add(1)
	return l.Store.HooksByID(ctx, ids)
}

// readySignal is a subscriber that reports the notifier's first (re)connect.
type readySignal chan struct{}

func (r readySignal) Changed(string) {}
func (r readySignal) Resync() {
	select {
	case r <- struct{}{}:
	default:
	}
}

// process is one simulated ingestor: its own Notifier (LISTEN connection) and Cache.
func (f *fixture) process(t *testing.T, cfg CacheConfig) (*Cache, *countingLoader) {
	t.Helper()
	loader := &countingLoader{Store: f.store}
	c, err := NewCache(loader, cfg, prometheus.NewRegistry(), testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	n := pgdb.NewNotifier(f.dsn, testenv.Logger())
	c.Subscribe(n)
	ready := make(readySignal, 1)
	n.Subscribe("webhook:", ready)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; c.Close() })
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("notifier did not connect within 10s")
	}
	return c, loader
}

// within polls until cond holds on every cache, failing after a 1 s deadline, and logs how long it took.
func within(t *testing.T, what, id string, caches []*Cache, cond func(*Hook, error) bool) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(time.Second)
	for i, c := range caches {
		for {
			h, err := c.Get(context.Background(), id)
			if cond(h, err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: process %d still sees %+v, %v after 1s", what, i, h, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	t.Logf("%s: visible in %d processes after %s", what, len(caches), time.Since(start).Round(100*time.Microsecond))
}

func TestCachePushInvalidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.store
	w, _ := f.create(t, "hook")
	a, _ := f.process(t, DefaultCacheConfig()) // TTL 30s: only the push can make these tests pass
	b, _ := f.process(t, DefaultCacheConfig())
	caches := []*Cache{a, b}
	for _, c := range caches {
		if h := mustGet(t, c, w.ID); h.Enabled {
			t.Fatal("new webhook enabled")
		}
	}

	if _, err := s.SetEnabled(ctx, f.p1, w.ID, 0, true); err != nil {
		t.Fatal(err)
	}
	within(t, "enable", w.ID, caches, func(h *Hook, err error) bool { return err == nil && h.Enabled })

	if _, err := s.SetEnabled(ctx, f.p1, w.ID, 0, false); err != nil {
		t.Fatal(err)
	}
	within(t, "disable", w.ID, caches, func(h *Hook, err error) bool { return err == nil && !h.Enabled })

	sec, err := s.RotateSecret(ctx, f.p1, w.ID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	within(t, "rotate secret", w.ID, caches, func(h *Hook, err error) bool {
		return err == nil && secret.Match([]byte("Bearer "+sec), h.SecretDigest)
	})

	maps := []Mapping{{Attribute: "total", Field: `["price"]`}}
	if _, err := s.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Mappings: &maps}); err != nil {
		t.Fatal(err)
	}
	within(t, "edit mapping", w.ID, caches, func(h *Hook, err error) bool {
		return err == nil && len(h.Mappings) == 1 && h.Mappings[0].Field == "price"
	})

	// An event change reaches every webhook of the event (a mapped attribute keeps its type: retyping
	// it is refused while mapped).
	if _, err := s.UpdateEvent(ctx, f.p1, f.event.ID, 0, EventInput{Name: "Checkout2", Attributes: []Attribute{{"total", TypePrice}, {"coupon", TypeInteger}}}); err != nil {
		t.Fatal(err)
	}
	within(t, "event change", w.ID, caches, func(h *Hook, err error) bool {
		return err == nil && h.EventName == "Checkout2" && h.Mappings[0].Type == TypePrice
	})

	if err := s.Delete(ctx, f.p1, w.ID); err != nil {
		t.Fatal(err)
	}
	within(t, "delete", w.ID, caches, func(h *Hook, err error) bool { return errors.Is(err, domainerr.ErrNotFound) })
}

func TestCacheNegativeAgainstPostgres(t *testing.T) {
	f := newFixture(t)
	c, loader := f.process(t, DefaultCacheConfig())
	id := secret.NewPublicID()
	for range 100 {
		if _, err := c.Get(context.Background(), id); !errors.Is(err, domainerr.ErrNotFound) {
			t.Fatalf("Get(unknown) = %v; want domainerr.ErrNotFound", err)
		}
	}
	if n := loader.n.Load(); n != 1 {
		t.Errorf("100 lookups of one unknown id reached PostgreSQL %d times; want 1", n)
	}
	// A webhook just created is found at once even though an id was negative-cached (its own id could
	// not have been: it is new), and warm lookups do not reach PostgreSQL.
	w, _ := f.create(t, "hook")
	for range 100 {
		mustGet(t, c, w.ID)
	}
	// The INSERT's own notification may arrive after the first lookup and mark it stale: one re-read.
	if n := loader.n.Load(); n < 2 || n > 3 {
		t.Errorf("lookups reaching PostgreSQL: %d; want 2 (3 if the INSERT's notification came late)", n)
	}
}

func TestCacheTTLRefresh(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w, _ := f.create(t, "hook")
	cfg := DefaultCacheConfig()
	cfg.TTL = 300 * time.Millisecond
	cfg.NegativeTTL = 100 * time.Millisecond
	// No notifier: only the TTL can bring the change.
	c, err := NewCache(f.store, cfg, nil, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustGet(t, c, w.ID)
	if _, err := f.store.SetEnabled(ctx, f.p1, w.ID, 0, true); err != nil {
		t.Fatal(err)
	}
	if mustGet(t, c, w.ID).Enabled {
		t.Fatal("change visible before the TTL without a notifier; the test proves nothing")
	}
	start := time.Now()
	for !mustGet(t, c, w.ID).Enabled {
		if time.Since(start) > 5*time.Second {
			t.Fatal("change not visible 5s after it, with a 300ms TTL")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("change visible through the TTL after %s", time.Since(start).Round(time.Millisecond))
}

// TestChaosCacheStaleIfError stops the shared PostgreSQL: cached configs keep serving, misses fail closed,
// and everything recovers once it is back.
func TestChaosCacheStaleIfError(t *testing.T) {
	testenv.RequireChaos(t)
	f := newFixture(t)
	ctx := context.Background()
	w, _ := f.create(t, "hook")
	if _, err := f.store.SetEnabled(ctx, f.p1, w.ID, 0, true); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultCacheConfig()
	cfg.TTL = 500 * time.Millisecond
	cfg.NegativeTTL = 100 * time.Millisecond
	cfg.RetryInterval = 200 * time.Millisecond
	c, _ := f.process(t, cfg)
	warm := mustGet(t, c, w.ID)
	neverSeen := secret.NewPublicID()

	testenv.StopService(t, "postgres")
	if _, err := f.store.Hook(ctx, w.ID); err == nil || errors.Is(err, domainerr.ErrNotFound) {
		t.Fatalf("Store.Hook with PostgreSQL stopped: %v; want an error that is not domainerr.ErrNotFound", err)
	}
	c.Changed("webhook:" + w.ID) // invalidated…
	if h := mustGet(t, c, w.ID); h != warm {
		t.Error("invalidated entry with PostgreSQL down: want the cached Hook")
	}
	time.Sleep(cfg.TTL + cfg.RetryInterval) // …and expired
	if h := mustGet(t, c, w.ID); h != warm || !h.Enabled {
		t.Error("expired entry with PostgreSQL down: want the cached Hook")
	}
	if _, err := c.Get(ctx, neverSeen); !errors.Is(err, domainerr.ErrUnavailable) || errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("never-seen id with PostgreSQL down: got %v; want domainerr.ErrUnavailable", err)
	}
	if counter(c.m.staleServes) < 2 || counter(c.m.refreshErrors) < 1 {
		t.Errorf("stale serves %v, refresh errors %v; want ≥2 and ≥1", counter(c.m.staleServes), counter(c.m.refreshErrors))
	}

	testenv.StartService(t, "postgres")
	// Recovery: an unknown id is unknown again (not unavailable), and a change made now is seen through
	// the reconnected notifier (or, at worst, the TTL).
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := c.Get(ctx, neverSeen)
		if errors.Is(err, domainerr.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: Get(unknown) still %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		if _, err := f.store.SetEnabled(ctx, f.p1, w.ID, 0, false); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after restart: SetEnabled: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for mustGet(t, c, w.ID).Enabled {
		if time.Now().After(deadline) {
			t.Fatal("after restart: disable not visible")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCacheWarm: after Warm, the first request of every live webhook is answered from memory; a
// deleted webhook is not loaded; a change notified after warming still reaches the cache.
func TestCacheWarm(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var ids []string
	for i := range 23 {
		w, _ := f.create(t, fmt.Sprintf("warm-%d", i))
		ids = append(ids, w.ID)
	}
	gone, _ := f.create(t, "deleted")
	if err := f.store.Delete(ctx, f.p1, gone.ID); err != nil {
		t.Fatal(err)
	}
	c, loader := f.process(t, DefaultCacheConfig())

	// A max below the count stops early.
	if n, err := c.Warm(ctx, f.store, 5); err != nil || n != 5 {
		t.Fatalf("Warm(max 5) = %d, %v; want 5", n, err)
	}
	n, err := c.Warm(ctx, f.store, 100000)
	if err != nil || n != len(ids) {
		t.Fatalf("Warm = %d, %v; want %d (the deleted one left out)", n, err, len(ids))
	}
	for _, id := range ids {
		mustGet(t, c, id)
	}
	if got := loader.n.Load(); got != 0 {
		t.Fatalf("%d lookups reached PostgreSQL after Warm; want 0", got)
	}
	if _, err := c.Get(ctx, gone.ID); !errors.Is(err, domainerr.ErrNotFound) {
		t.Fatalf("deleted webhook after Warm: %v; want domainerr.ErrNotFound", err)
	}
	if _, err := f.store.SetEnabled(ctx, f.p1, ids[0], 0, false); err != nil {
		t.Fatal(err)
	}
	within(t, "disable after warm", ids[0], []*Cache{c}, func(h *Hook, err error) bool { return err == nil && !h.Enabled })
}

// Prefetch reads the uncached webhooks of a batch in one query: the Gets that follow reach PostgreSQL
// only for what it left out (a deleted one), a second Prefetch of fresh entries reads nothing, and a
// change after it is still pushed.
func TestCachePrefetch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var ids []string
	for i := range 25 {
		w, _ := f.create(t, fmt.Sprintf("prefetch-%d", i))
		ids = append(ids, w.ID, w.ID) // repeated, as records of one webhook follow each other
	}
	gone, _ := f.create(t, "deleted")
	if err := f.store.Delete(ctx, f.p1, gone.ID); err != nil {
		t.Fatal(err)
	}
	c, loader := f.process(t, DefaultCacheConfig())
	c.Prefetch(ctx, append(slices.Clone(ids), gone.ID, "not-an-id"))
	if got := loader.batches.Load(); got != 1 {
		t.Fatalf("%d batch reads; want 1", got)
	}
	for _, id := range ids {
		mustGet(t, c, id)
	}
	if got := loader.n.Load(); got != 0 {
		t.Fatalf("%d lookups one by one after Prefetch; want 0", got)
	}
	if _, err := c.Get(ctx, gone.ID); !errors.Is(err, domainerr.ErrNotFound) {
		t.Fatalf("deleted webhook after Prefetch: %v; want domainerr.ErrNotFound", err)
	}
	c.Prefetch(ctx, ids)
	if got := loader.batches.Load(); got != 1 {
		t.Fatalf("a Prefetch of cached webhooks read again (%d batch reads)", got)
	}
	if _, err := f.store.SetEnabled(ctx, f.p1, ids[0], 0, false); err != nil {
		t.Fatal(err)
	}
	within(t, "disable after prefetch", ids[0], []*Cache{c}, func(h *Hook, err error) bool { return err == nil && !h.Enabled })
	// Everything stale (a resync): read again, in one query.
	c.Resync()
	c.Prefetch(ctx, ids)
	if got := loader.batches.Load(); got != 2 {
		t.Fatalf("%d batch reads after a resync; want 2", got)
	}
}

// BenchmarkCacheMisses: what reading uncached configs costs per webhook, one Get each (one query each)
// or a Prefetch of them all first (one query), as the pipeline meets a poll's records for many
// webhooks after a resync or for webhooks it has not seen.
func BenchmarkCacheMisses(b *testing.B) {
	const n = 200
	f := newFixture(b)
	var ids []string
	for i := range n {
		w, _ := f.create(b, fmt.Sprintf("bench-%d", i))
		ids = append(ids, w.ID)
	}
	ctx := context.Background()
	for _, prefetch := range []bool{false, true} {
		name := "get"
		if prefetch {
			name = "prefetch"
		}
		b.Run(name, func(b *testing.B) {
			c, err := NewCache(f.store, DefaultCacheConfig(), nil, testenv.Logger())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			cpu := processCPU(b)
			b.ResetTimer()
			for range b.N {
				c.Resync()
				if prefetch {
					c.Prefetch(ctx, ids)
				}
				for _, id := range ids {
					if _, err := c.Get(ctx, id); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/webhook")
			// This process's CPU time (PostgreSQL's is not in it): what reading configs costs the
			// pipeline or the ingestor, which wall time on a shared machine hides.
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N*n), "cpu-ns/webhook")
		})
	}
}

// processCPU is the CPU time (user and system) the process has used, in nanoseconds.
func processCPU(tb testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkCacheConcurrentMisses: a burst of concurrent Gets of uncached webhooks (a cold ingestor),
// each read by a query of its own (store) or through a BatchLoader (batched).
func BenchmarkCacheConcurrentMisses(b *testing.B) {
	const n = 200
	f := newFixture(b)
	var ids []string
	for i := range n {
		w, _ := f.create(b, fmt.Sprintf("bench-%d", i))
		ids = append(ids, w.ID)
	}
	ctx := context.Background()
	for _, name := range []string{"store", "batched"} {
		b.Run(name, func(b *testing.B) {
			var loader HookLoader = f.store
			if name == "batched" {
				loader = NewBatchLoader(f.store, 500, 4, 2*time.Second)
			}
			c, err := NewCache(loader, DefaultCacheConfig(), nil, testenv.Logger())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ResetTimer()
			for range b.N {
				c.Resync()
				var wg sync.WaitGroup
				for _, id := range ids {
					wg.Go(func() {
						if _, err := c.Get(ctx, id); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/webhook")
		})
	}
}
