package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// footprintHooks is how many webhooks BenchmarkConfigFootprint holds.
const footprintHooks = 20_000

// BenchmarkConfigFootprint: what the pipeline keeps per webhook it has met, and what that costs the
// garbage collector. It holds footprintHooks webhooks as a pipeline does, each Hook made as the store
// reads it (webhook.Store.HookOf: the same decoding as a PostgreSQL row) and compiled by the processor
// (processor.hook), 1,000 to a project as in the bench's webhooks family, and reports, after a
// collection, the heap bytes, heap objects and scannable bytes (pointer-bearing memory, which every
// mark phase reads) per webhook, and the wall time of a forced collection with all of them live (the
// mark cost they add: the bench's pipeline at 100,000 webhooks spends most of its extra CPU there).
// Counts, not times, are the figures to compare; gc-ms is noisy on a shared machine.
//
// Variants: same, every webhook with the seed's config (the bench's: many shops connected from one
// template); distinct, each with its own attribute names and paths; signed, same with an HMAC sender
// (Shopify), whose secrets the ingestor needs and the pipeline does not.
func BenchmarkConfigFootprint(b *testing.B) {
	for _, v := range []struct {
		name     string
		distinct bool
		sender   string
	}{{"same", false, ""}, {"distinct", true, ""}, {"signed", false, "shopify"}} {
		b.Run(v.name, func(b *testing.B) {
			store := footprintStore(b)
			var perHook, objects, scan, gcMs, baseMs float64
			for b.Loop() {
				baseMs = forcedGCms()
				before := heapNow()
				p := &processor{compiled: map[string]*compiledHook{}}
				hooks := make([]*webhook.Hook, footprintHooks) // the webhook cache's
				for i := range hooks {
					h, err := store.HookOf(fmt.Sprintf("wh_footprint_%06d", i), int64(1+i/1000), 1, footprintInput(i, v.distinct, v.sender),
						[]*webhook.Event{footprintEvent(i, v.distinct)})
					if err != nil {
						b.Fatal(err)
					}
					hooks[i] = h
					it := &item{webhookID: h.PublicID, configVersion: 1}
					if _, err := p.hook(context.Background(), it, webhook.Cached{Hook: h}); err != nil {
						b.Fatal(err)
					}
				}
				after := heapNow()
				gcMs = forcedGCms()
				perHook = float64(after.bytes-before.bytes) / footprintHooks
				objects = float64(after.objects-before.objects) / footprintHooks
				scan = float64(after.scan-before.scan) / footprintHooks
				runtime.KeepAlive(hooks)
				runtime.KeepAlive(p)
			}
			b.ReportMetric(perHook, "B/webhook")
			b.ReportMetric(objects, "objects/webhook")
			b.ReportMetric(scan, "scan-B/webhook")
			b.ReportMetric(gcMs, "gc-ms")
			b.ReportMetric(baseMs, "gc-base-ms")
		})
	}
}

// footprintStore is a store without PostgreSQL, for HookOf, reading as the pipeline's does (without
// verifiers: see compose's openConfigPlane).
func footprintStore(tb testing.TB) *webhook.Store {
	tb.Helper()
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return webhook.NewStore(nil, sealer).WithoutVerifiers()
}

// footprintInput is webhook i's config: the seed's (seed.Webhook, as the bench makes them), or with
// names and paths of its own.
func footprintInput(i int, distinct bool, sender string) webhook.WebhookInput {
	in := seed.Webhook(fmt.Sprintf("bench-%06d", i), "CheckoutSuccess", "")
	in.Sender = sender
	if sender != "" {
		in.Secret = "shpss_footprint"
	}
	if distinct {
		sfx := fmt.Sprintf("_%d", i)
		in.Identify.Field += sfx
		for j := range in.Mappings {
			in.Mappings[j].Attribute += sfx
			in.Mappings[j].Field = "order." + in.Mappings[j].Field + sfx
		}
	}
	return in
}

// footprintEvent is the event webhook i's route fires, with the attributes footprintInput maps.
func footprintEvent(i int, distinct bool) *webhook.Event {
	ev := &webhook.Event{ID: int64(1 + i/1000), Name: "CheckoutSuccess", Attributes: []webhook.Attribute{
		{Name: "email", Type: webhook.TypeString}, {Name: "total", Type: webhook.TypePrice},
		{Name: "order_id", Type: webhook.TypeString}, {Name: "purchase_date", Type: webhook.TypeDate},
		{Name: "payment_state", Type: webhook.TypeString},
	}}
	if distinct {
		for j := range ev.Attributes {
			ev.Attributes[j].Name += fmt.Sprintf("_%d", i)
		}
	}
	return ev
}

type heapState struct{ bytes, objects, scan uint64 }

// heapNow collects, then reads the live heap's bytes and objects and how much of it the collector
// scans.
func heapNow() heapState {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := []rtmetrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	rtmetrics.Read(s)
	return heapState{bytes: ms.HeapAlloc, objects: ms.HeapObjects, scan: s[0].Value.Uint64()}
}

// forcedGCms is the median wall time of a forced collection, in milliseconds.
func forcedGCms() float64 {
	var ts [7]time.Duration
	for i := range ts {
		start := time.Now()
		runtime.GC()
		ts[i] = time.Since(start)
	}
	slices.Sort(ts[:])
	return float64(ts[len(ts)/2].Microseconds()) / 1000
}
