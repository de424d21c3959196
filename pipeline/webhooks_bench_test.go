package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// BenchmarkProcessWebhooks is BenchmarkProcess with the records spread round-robin over 1, 10,000 and
// 100,000 webhooks (1,000 to a project, as the bench's webhooks family), looked up through the real
// webhook cache (ristretto, default settings) warmed beforehand, and compiled by the processor before
// the clock starts. Every case processes the same 100,000 records, so the only difference is how many
// configs are live: the per-record cost of config lookup, of the compiled configs' map and of the
// garbage collector scanning them. The ratios of the cases' ns/op are the bench's "pipeline CPU per
// record at N webhooks" without Kafka and ClickHouse.
func BenchmarkProcessWebhooks(b *testing.B) {
	for _, n := range []int{1, 10_000, 100_000} {
		b.Run("webhooks="+strconv.Itoa(n), func(b *testing.B) {
			pp := newManyHookPolls(b, n, 100_000)
			b.ReportAllocs()
			b.SetBytes(int64(pp.bytes / len(pp.recs)))
			cpu := processCPU(b)
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(1000, b.N-done)
				pp.pollAt(b, done%len(pp.recs), n)
				done += n
			}
			b.StopTimer()
			// CPU time rather than wall time: the garbage collector's work on the other core counts, and
			// other processes on a shared machine count less.
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
		})
	}
}

// hookStore is an in-memory webhook store behind the cache: each read returns a copy, as a PostgreSQL
// read does, so that a config read again is a new *Hook (and compiled again by the processor).
type hookStore map[string]*webhook.Hook

func (s hookStore) Hook(_ context.Context, id string) (*webhook.Hook, error) {
	h, ok := s[id]
	if !ok {
		return nil, domainerr.ErrNotFound
	}
	c := *h
	return &c, nil
}

func (s hookStore) HooksByID(ctx context.Context, ids []string) ([]*webhook.Hook, error) {
	out := make([]*webhook.Hook, 0, len(ids))
	for _, id := range ids {
		if h, err := s.Hook(ctx, id); err == nil {
			out = append(out, h)
		}
	}
	return out, nil
}

// newManyHookPolls is newPolls with records records spread round-robin over n copies of benchHook
// (wh_bench_000000 and on), read through a warmed webhook.Cache, every config compiled.
func newManyHookPolls(b *testing.B, n, records int) *polls {
	b.Helper()
	pp := newPolls(b, benchHook(), nil, nil, seedBody, 1)
	store := hookStore{}
	ids := make([]string, n)
	for i := range ids {
		h := benchHook()
		h.PublicID = fmt.Sprintf("wh_bench_%06d", i)
		h.ProjectID = int64(1 + i/1000)
		store[h.PublicID] = h
		ids[i] = h.PublicID
	}
	cache, err := webhook.NewCache(store, webhook.DefaultCacheConfig(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	for i := 0; i < n; i += 1000 {
		cache.Prefetch(context.Background(), ids[i:min(i+1000, n)])
	}
	pp.p.hooks = cache
	pp.recs, pp.items, pp.bytes = make([]*kgo.Record, records), make([]item, 1000), 0
	now := time.Now().UnixMilli()
	for i := range pp.recs {
		u := "user-" + strconv.Itoa(i%500)
		body := seedBody(u, i)
		pp.bytes += len(body)
		id := ids[i%n]
		req := &wire.Request{ID: uuid.Must(uuid.NewV7()), WebhookID: id, ProjectID: store[id].ProjectID, ReceivedMs: now,
			ConfigVersion: 1, Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(body)}
		pp.recs[i] = &kgo.Record{Key: []byte(id), Value: []byte(body), Partition: 0, Offset: int64(i),
			Headers: new(wire.RequestHeaders).Encode(req)}
	}
	for at := 0; at < len(pp.recs); at += 1000 {
		pp.pollAt(b, at, min(1000, len(pp.recs)-at)) // warm: every config compiled, slices grown
	}
	runtime.GC()
	return pp
}

// pollAt is poll over the n records from the at-th.
func (pp *polls) pollAt(tb testing.TB, at, n int) {
	p := pp.p
	clear(p.senders)
	p.senders = p.senders[:0]
	for i := range n {
		parseRecord(pp.recs[at+i], &pp.items[i], &p.senders)
	}
	if err := p.process(context.Background(), pp.items[:n]); err != nil {
		tb.Fatal(err)
	}
	if len(p.b.activity) != n || len(p.b.fire) != n {
		tb.Fatalf("batch has %d rows and %d events; want %d successes (%s: %s)", len(p.b.activity), len(p.b.fire), n,
			p.b.activity[0].Reason, p.b.activity[0].Detail)
	}
	p.b.reset()
}

// processCPU is the CPU time (user and system) the process has used, in nanoseconds.
func processCPU(tb testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
