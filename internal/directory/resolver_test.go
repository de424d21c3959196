package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// newResolver builds a Resolver with its own pool and, when listen is set, its own Notifier running
// until the test ends — what another process would have. It returns once the listener is in place.
func newResolver(t testing.TB, e *env, cfg Config, listen bool) *Resolver {
	t.Helper()
	return NewTestResolver(t, e.cfg, cfg, listen)
}

// NewTestResolver is newResolver on the database pc; exported for the package's external tests.
func NewTestResolver(t testing.TB, pc pgdb.Config, cfg Config, listen bool) *Resolver {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := pgdb.Open(ctx, pc)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	var n *pgdb.Notifier
	if listen {
		n = pgdb.NewNotifier(pc.DSN, testenv.Logger())
	}
	r, err := NewResolver(pool, n, project.NewStore(pool), cfg, prometheus.NewRegistry(), testenv.Logger())
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		r.Close()
		pool.Close()
	})
	if listen {
		ready := &readySub{ch: make(chan struct{}, 1)}
		n.Subscribe("", ready)
		wg.Add(1)
		go func() { defer wg.Done(); _ = n.Run(ctx) }()
		select {
		case <-ready.ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("notifier did not connect within 10s")
		}
	}
	return r
}

// readySub tells when the Notifier has (re)connected.
type readySub struct{ ch chan struct{} }

func (s *readySub) Changed(string) {}
func (s *readySub) Resync() {
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

func resolve(t testing.TB, r *Resolver, project int64, kind identify.Kind, values ...string) map[string]Subject {
	t.Helper()
	got, err := r.Resolve(context.Background(), project, kind, values)
	if err != nil {
		t.Fatalf("Resolve(%d, %s, %q): %v", project, kind, values, err)
	}
	r.cache.Wait() // ristretto applies sets asynchronously; the tests want them in place
	return got
}

// within polls cond until it holds or d has passed since start.
func within(t *testing.T, start time.Time, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not seen within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s: seen after %s", what, time.Since(start).Round(time.Millisecond))
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func queries(r *Resolver, kind identify.Kind) float64 {
	return counterValue(r.m.queries.WithLabelValues(string(kind)))
}

func TestResolveKinds(t *testing.T) {
	cfg := Defaults()
	cfg.DefaultRegion = "GB"
	e := newEnv(t, cfg)
	s := e.store
	mustUser(t, s, e.p1, User{UserID: "u1", Email: "Jane@Example.com", Phone: "020 7946 0958"})
	mustUser(t, s, e.p1, User{UserID: "u2", Email: "bob@example.com"})
	mustDevice(t, s, e.p1, Device{HWID: "a", UserID: "u1"})
	mustDevice(t, s, e.p1, Device{HWID: "b", UserID: "u1"})
	mustDevice(t, s, e.p1, Device{HWID: "anon"})
	mustDevice(t, s, e.p1, Device{HWID: "c", UserID: "no-profile"})
	// Project 2 has a same-named user with other data: it must never leak into project 1's answers.
	mustUser(t, s, e.p2, User{UserID: "u1", Email: "p2@example.com"})
	mustDevice(t, s, e.p2, Device{HWID: "p2-dev", UserID: "u1"})
	r := newResolver(t, e, cfg, false)

	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	tests := []struct {
		kind   identify.Kind
		values []string
		want   map[string]Subject
	}{
		{identify.ByUserID, []string{"u1", "u2", "no-profile", "ghost", "", "u1"}, map[string]Subject{
			"u1":         {UserID: "u1", HWIDs: []string{"a", "b"}},
			"u2":         {UserID: "u2", HWIDs: []string{}},
			"no-profile": {UserID: "no-profile", HWIDs: []string{"c"}},
		}},
		{identify.ByEmail, []string{"jane@example.COM", "Jane@Example.com", "BOB@example.com", "p2@example.com"}, map[string]Subject{
			"jane@example.COM": {UserID: "u1", HWIDs: []string{"a", "b"}},
			"Jane@Example.com": {UserID: "u1", HWIDs: []string{"a", "b"}},
			"BOB@example.com":  {UserID: "u2", HWIDs: []string{}},
		}},
		{identify.ByPhone, []string{"+44 20 7946 0958", "020-7946-0958", "not a phone", "+15550000000"}, map[string]Subject{
			"+44 20 7946 0958": {UserID: "u1", HWIDs: []string{"a", "b"}},
			"020-7946-0958":    {UserID: "u1", HWIDs: []string{"a", "b"}},
		}},
		{identify.ByHWID, []string{"b", "anon", "c", "p2-dev", "zzz"}, map[string]Subject{
			"b":    {UserID: "u1", HWID: "b", HWIDs: []string{"b", "a"}}, // the matched device first
			"anon": {HWID: "anon", HWIDs: []string{"anon"}},
			"c":    {UserID: "no-profile", HWID: "c", HWIDs: []string{"c"}},
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			before := queries(r, tt.kind)
			for round := 0; round < 2; round++ { // cold, then from the cache
				got := resolve(t, r, e.p1, tt.kind, tt.values...)
				if len(got) != len(tt.want) {
					t.Fatalf("round %d: got %d subjects %+v; want %d %+v", round, len(got), got, len(tt.want), tt.want)
				}
				for v, w := range tt.want {
					g, ok := got[v]
					if tt.kind != identify.ByHWID {
						g.HWIDs, w.HWIDs = sorted(g.HWIDs), sorted(w.HWIDs)
					}
					if !ok || g.UserID != w.UserID || g.HWID != w.HWID || !slices.Equal(g.HWIDs, w.HWIDs) {
						t.Fatalf("round %d: %q: got %+v (found %v); want %+v", round, v, g, ok, w)
					}
				}
			}
			if q := queries(r, tt.kind) - before; q != 1 {
				t.Fatalf("queries for two Resolve calls: got %v; want 1 (one for the misses, then all cached)", q)
			}
		})
	}
	_, err := r.Resolve(context.Background(), e.p1, "nickname", []string{"x"})
	wantErrIs(t, "Resolve with an unknown kind", err, domainerr.ErrInvalid)
}

func TestResolverPushInvalidation(t *testing.T) {
	cfg := Defaults()
	cfg.TTL, cfg.NegativeTTL = time.Hour, time.Hour // only a pushed change can make these entries stale
	cfg.MaxStale = time.Hour
	e := newEnv(t, cfg)
	mustUser(t, e.store, e.p1, User{UserID: "u1", Email: "old@example.com"})
	mustUser(t, e.store, e.p2, User{UserID: "p2", Email: "p2@example.com"})
	r := newResolver(t, e, cfg, true) // another process: own pool, own listener

	got := resolve(t, r, e.p1, identify.ByEmail, "old@example.com", "new@example.com")
	if _, ok := got["old@example.com"]; !ok || len(got) != 1 {
		t.Fatalf("before the change: got %+v; want only old@example.com", got)
	}
	resolve(t, r, e.p2, identify.ByEmail, "p2@example.com")
	before := queries(r, identify.ByEmail)
	resolve(t, r, e.p1, identify.ByEmail, "old@example.com", "new@example.com")
	if q := queries(r, identify.ByEmail); q != before {
		t.Fatalf("queries for a cached batch: got %v more; want none", q-before)
	}

	mustUser(t, e.store, e.p1, User{UserID: "u1", Email: "new@example.com"})
	start := time.Now()
	within(t, start, time.Second, "changed email", func() bool {
		got := resolve(t, r, e.p1, identify.ByEmail, "old@example.com", "new@example.com")
		_, old := got["old@example.com"]
		return !old && got["new@example.com"].UserID == "u1"
	})
	// A change in project 1 leaves project 2's entries cached.
	before = queries(r, identify.ByEmail)
	resolve(t, r, e.p2, identify.ByEmail, "p2@example.com")
	if q := queries(r, identify.ByEmail); q != before {
		t.Fatalf("project 2 after a change in project 1: got %v queries; want none", q-before)
	}

	// A device moving to another user changes what its hwid resolves to.
	mustDevice(t, e.store, e.p1, Device{HWID: "h", UserID: "u1"})
	if got := resolve(t, r, e.p1, identify.ByHWID, "h"); got["h"].UserID != "u1" {
		t.Fatalf("hwid h: got %+v; want user u1", got["h"])
	}
	mustDevice(t, e.store, e.p1, Device{HWID: "h", UserID: "u9"})
	within(t, time.Now(), time.Second, "device moved to u9", func() bool {
		return resolve(t, r, e.p1, identify.ByHWID, "h")["h"].UserID == "u9"
	})
	// Deleting a user is seen too.
	if _, err := e.store.DeleteUser(context.Background(), e.p1, "u1"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	within(t, time.Now(), time.Second, "deleted user", func() bool {
		return len(resolve(t, r, e.p1, identify.ByEmail, "new@example.com")) == 0
	})
}

func TestResolverNegativeThenCreated(t *testing.T) {
	cfg := Defaults()
	cfg.NegativeTTL = time.Hour // only the push can end the negative entry within the test
	cfg.TTL, cfg.MaxStale = time.Hour, time.Hour
	e := newEnv(t, cfg)
	r := newResolver(t, e, cfg, true)

	values := make([]string, 100) // a flood of unknown users costs one query
	for i := range values {
		values[i] = fmt.Sprintf("ghost-%d", i)
	}
	before := queries(r, identify.ByUserID)
	for i := 0; i < 3; i++ {
		if got := resolve(t, r, e.p1, identify.ByUserID, values...); len(got) != 0 {
			t.Fatalf("unknown users: got %+v; want none", got)
		}
	}
	if q := queries(r, identify.ByUserID) - before; q != 1 {
		t.Fatalf("queries for 3 calls with 100 unknown users: got %v; want 1", q)
	}
	mustUser(t, e.store, e.p1, User{UserID: "ghost-7"})
	within(t, time.Now(), time.Second, "created user", func() bool {
		return resolve(t, r, e.p1, identify.ByUserID, values...)["ghost-7"].UserID == "ghost-7"
	})
	// A device carrying a user id also makes it resolvable (devices-only users).
	mustDevice(t, e.store, e.p1, Device{HWID: "hx", UserID: "ghost-8"})
	within(t, time.Now(), time.Second, "user known from a device", func() bool {
		s, ok := resolve(t, r, e.p1, identify.ByUserID, values...)["ghost-8"]
		return ok && slices.Equal(s.HWIDs, []string{"hx"})
	})
}

func TestResolverNegativeTTLExpires(t *testing.T) {
	cfg := Defaults()
	cfg.NegativeTTL = 200 * time.Millisecond
	e := newEnv(t, cfg)
	r := newResolver(t, e, cfg, false) // no listener: only the TTL ends entries
	if got := resolve(t, r, e.p1, identify.ByHWID, "late"); len(got) != 0 {
		t.Fatalf("unknown device: got %+v; want none", got)
	}
	mustDevice(t, e.store, e.p1, Device{HWID: "late"})
	if got := resolve(t, r, e.p1, identify.ByHWID, "late"); len(got) != 0 {
		t.Fatalf("within the negative TTL and without push: got %+v; want the cached not-found", got)
	}
	time.Sleep(250 * time.Millisecond)
	if got := resolve(t, r, e.p1, identify.ByHWID, "late"); got["late"].HWID != "late" {
		t.Fatalf("after the negative TTL: got %+v; want the device", got)
	}
}

func TestResolverResyncAndChangedParsing(t *testing.T) {
	e := newEnv(t, Defaults())
	r := newResolver(t, e, Defaults(), false)
	mustUser(t, e.store, e.p1, User{UserID: "u"})
	resolve(t, r, e.p1, identify.ByUserID, "u")
	tests := []struct {
		name    string
		notify  func()
		refetch bool
	}{
		{"no notification", func() {}, false},
		{"other project", func() { r.Changed(fmt.Sprintf("user:%d:u", e.p2)) }, false},
		{"this project's device", func() { r.Changed(fmt.Sprintf("device:%d:h", e.p1)) }, true},
		{"this project", func() { r.Changed(fmt.Sprintf("project:%d", e.p1)) }, true},
		{"unparsable", func() { r.Changed("user:x") }, true},
		{"resync", r.Resync, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.notify()
			before := queries(r, identify.ByUserID)
			resolve(t, r, e.p1, identify.ByUserID, "u")
			if got := queries(r, identify.ByUserID) - before; (got == 1) != tt.refetch {
				t.Fatalf("queries after %s: got %v; want refetch %v", tt.name, got, tt.refetch)
			}
		})
	}
}

func TestChaosResolverStaleIfError(t *testing.T) {
	testenv.RequireChaos(t)
	cfg := Defaults()
	cfg.TTL, cfg.NegativeTTL = 100*time.Millisecond, 100*time.Millisecond
	cfg.QueryTimeout = time.Second
	e := newEnv(t, cfg)
	mustUser(t, e.store, e.p1, User{UserID: "u1", Email: "u1@example.com"})
	mustDevice(t, e.store, e.p1, Device{HWID: "h1", UserID: "u1"})
	r := newResolver(t, e, cfg, true)
	resolve(t, r, e.p1, identify.ByUserID, "u1", "unknown")
	resolve(t, r, e.p1, identify.ByHWID, "h1")
	time.Sleep(150 * time.Millisecond) // every entry is now past its TTL

	testenv.StopService(t, "postgres")
	ctx := context.Background()
	got, err := r.Resolve(ctx, e.p1, identify.ByUserID, []string{"u1", "unknown", "never-seen"})
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, domainerr.ErrUnavailable) || !slices.Equal(ue.Values, []string{"never-seen"}) {
		t.Fatalf("Resolve with PostgreSQL down: got error %v; want domainerr.ErrUnavailable for never-seen only", err)
	}
	if len(got) != 1 || !slices.Equal(got["u1"].HWIDs, []string{"h1"}) {
		t.Fatalf("Resolve with PostgreSQL down: got %+v; want the stale u1 (unknown stays not found)", got)
	}
	got, err = r.Resolve(ctx, e.p1, identify.ByHWID, []string{"h1"})
	if err != nil || got["h1"].UserID != "u1" {
		t.Fatalf("Resolve of a stale hwid with PostgreSQL down: got %+v, %v; want u1 and no error", got, err)
	}
	if n := counterValue(r.m.values.WithLabelValues("user_id", "stale")); n != 2 {
		t.Errorf("stale values counted: got %v; want 2", n)
	}

	testenv.StartService(t, "postgres")
	start := time.Now()
	for {
		got, err = r.Resolve(ctx, e.p1, identify.ByUserID, []string{"never-seen", "u1"})
		if err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("Resolve after PostgreSQL restarted: still %v after 30s", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(got) != 1 || got["u1"].UserID != "u1" {
		t.Fatalf("Resolve after PostgreSQL restarted: got %+v; want u1 only", got)
	}
	t.Logf("resolver answered again %s after PostgreSQL was started", time.Since(start).Round(time.Millisecond))
}

// TestResolverConcurrent resolves from several goroutines while users change underneath (run it with
// -race): every answer must be a user's real state at some moment, and the last state must win.
func TestResolverConcurrent(t *testing.T) {
	e := newEnv(t, Defaults())
	r := newResolver(t, e, Defaults(), true)
	for i := 0; i < 20; i++ {
		mustDevice(t, e.store, e.p1, Device{HWID: fmt.Sprintf("h%d", i), UserID: "before"})
	}
	values := make([]string, 20)
	for i := range values {
		values[i] = fmt.Sprintf("h%d", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				got, err := r.Resolve(ctx, e.p1, identify.ByHWID, values)
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
				for v, s := range got {
					if s.HWID != v || (s.UserID != "before" && s.UserID != "after") {
						errs <- fmt.Errorf("%s resolved to %+v", v, s)
						return
					}
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		mustDevice(t, e.store, e.p1, Device{HWID: fmt.Sprintf("h%d", i), UserID: "after"})
	}
	start := time.Now()
	within(t, start, time.Second, "all devices moved", func() bool {
		got := resolve(t, r, e.p1, identify.ByHWID, values...)
		for _, s := range got {
			if s.UserID != "after" {
				return false
			}
		}
		return len(got) == len(values)
	})
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestResolveFresh: ResolveFresh asks PostgreSQL whatever the cache holds, so a user created while
// "not found" is cached (and no push can end the entry) is found at once.
func TestResolveFresh(t *testing.T) {
	cfg := Defaults()
	cfg.NegativeTTL, cfg.TTL, cfg.MaxStale = time.Hour, time.Hour, time.Hour
	e := newEnv(t, cfg)
	r := newResolver(t, e, cfg, false)
	if got := resolve(t, r, e.p1, identify.ByUserID, "fresh-1"); len(got) != 0 {
		t.Fatalf("unknown user: got %+v; want none", got)
	}
	mustUser(t, e.store, e.p1, User{UserID: "fresh-1"})
	if got := resolve(t, r, e.p1, identify.ByUserID, "fresh-1"); len(got) != 0 {
		t.Fatalf("Resolve within the negative TTL: got %+v; want the cached not-found", got)
	}
	before := queries(r, identify.ByUserID)
	got, err := r.ResolveFresh(context.Background(), e.p1, identify.ByUserID, []string{"fresh-1", "fresh-1", "fresh-2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["fresh-1"].UserID != "fresh-1" {
		t.Errorf("ResolveFresh: got %+v; want fresh-1 only", got)
	}
	if q := queries(r, identify.ByUserID) - before; q != 1 {
		t.Errorf("queries of one ResolveFresh: %v; want 1", q)
	}
}
