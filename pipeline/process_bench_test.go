package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

type mapHooks map[string]*webhook.Hook

func (m mapHooks) Get(_ context.Context, id string) (*webhook.Hook, error) {
	if h, ok := m[id]; ok {
		return h, nil
	}
	return nil, domainerr.ErrNotFound
}

type mapResolver map[string]Subject

func (m mapResolver) Resolve(_ context.Context, _ int64, _ identify.Kind, values []string) (map[string]Subject, error) {
	out := make(map[string]Subject, len(values))
	for _, v := range values {
		if s, ok := m[v]; ok {
			out[v] = s
		}
	}
	return out, nil
}

// BenchmarkProcess measures per-record processing with a warm config cache and directory: header
// parsing, identifier lookup, batched resolution, mapping with coercion of the seed payload's four
// attributes, the event JSON and the rows. Kafka and ClickHouse are not involved. The webhook keeps no
// sender headers and has no dedup key: the cost every request pays.
func BenchmarkProcess(b *testing.B) {
	benchProcess(b, benchHook(), nil, nil)
}

// BenchmarkProcessExpressions is BenchmarkProcess with the same four attributes filled by CEL
// expressions instead of field paths (the body decoded once per record for them), and one more
// expression doing arithmetic: the cost of expressions per event, beside BenchmarkProcess.
func BenchmarkProcessExpressions(b *testing.B) {
	h := benchHook()
	h.Mappings = []webhook.TypedMapping{
		{Attribute: "email", Type: webhook.TypeString, Expr: "body.email_address"},
		{Attribute: "total", Type: webhook.TypePrice, Expr: "body.price"},
		{Attribute: "order_id", Type: webhook.TypeString, Expr: "body.order_number"},
		{Attribute: "purchase_date", Type: webhook.TypeDate, Expr: "body.purchase_date"},
	}
	benchProcess(b, h, nil, nil)
}

// BenchmarkProcessCondition is BenchmarkProcess behind a route condition on the body that holds.
func BenchmarkProcessCondition(b *testing.B) {
	h := benchHook()
	h.Routes = []webhook.HookRoute{{When: `body.payment_state == "success"`, EventName: h.EventName, Identify: h.Identify, Mappings: h.Mappings}}
	benchProcess(b, h, nil, nil)
}

// BenchmarkProcessFanOut10 fans each record out over an array of 10 line items, each element
// identified by the order's user and mapped (sku, quantity, the order's number): events/s and allocs
// per event are the figures to compare with BenchmarkProcess's per record.
func BenchmarkProcessFanOut10(b *testing.B) {
	h := &webhook.Hook{PublicID: "wh_bench", ProjectID: 1, Version: 1,
		Routes: []webhook.HookRoute{{ForEach: "line_items", EventName: "ItemOrdered",
			Identify: webhook.Identify{Kind: identify.ByUserID, Field: "$.user_id"},
			Mappings: []webhook.TypedMapping{
				{Attribute: "sku", Type: webhook.TypeString, Field: "sku"},
				{Attribute: "quantity", Type: webhook.TypeInteger, Field: "quantity"},
				{Attribute: "order_id", Type: webhook.TypeString, Field: "$.order_number"},
			}}}}
	benchProcessBodies(b, h, nil, nil, fanOutBody, 10)
}

// fanOutBody is an order of user u with 10 line items.
func fanOutBody(u string, i int) string {
	var items strings.Builder
	for j := range 10 {
		if j > 0 {
			items.WriteByte(',')
		}
		fmt.Fprintf(&items, `{"sku":"SKU-%d","quantity":%d,"price":"9.99"}`, j, j+1)
	}
	return fmt.Sprintf(`{"user_id":%q,"order_number":"ORD-%d","line_items":[%s]}`, u, i, items.String())
}

// BenchmarkProcessSenderHeaders is BenchmarkProcess with three kept sender headers on every record,
// written to the activity row as JSON, and one attribute mapped from a header.
func BenchmarkProcessSenderHeaders(b *testing.B) {
	h := benchHook()
	h.Headers = []webhook.KeptHeader{webhook.NewKeptHeader("X-Shopify-Topic"), webhook.NewKeptHeader("X-Shopify-Webhook-Id"),
		webhook.NewKeptHeader("X-Shopify-Shop-Domain")}
	h.Mappings = append(h.Mappings, webhook.TypedMapping{Attribute: "topic", Type: webhook.TypeString, Field: `headers["X-Shopify-Topic"]`})
	benchProcess(b, h, shopifyHeaders, nil)
}

// BenchmarkProcessDedup is BenchmarkProcessSenderHeaders with a dedup key in a header: the in-process
// cost of de-duplication (reading and hashing the key, building the poll's claims, applying the
// verdicts), with a store that answers at once that every request is an original. The PostgreSQL round
// trip, one per poll, is measured by internal/delivery's BenchmarkClaim.
func BenchmarkProcessDedup(b *testing.B) {
	h := benchHook()
	h.Headers = []webhook.KeptHeader{webhook.NewKeptHeader("X-Shopify-Topic"), webhook.NewKeptHeader("X-Shopify-Webhook-Id"),
		webhook.NewKeptHeader("X-Shopify-Shop-Domain")}
	h.Mappings = append(h.Mappings, webhook.TypedMapping{Attribute: "topic", Type: webhook.TypeString, Field: `headers["X-Shopify-Topic"]`})
	h.Dedup = webhook.Dedup{Key: "header:X-Shopify-Webhook-Id"}
	store := &originals{}
	benchProcess(b, h, shopifyHeaders, store)
	if store.claims == 0 {
		b.Fatal("no claim was made")
	}
	b.ReportMetric(float64(store.claims)/float64(store.calls), "claims/roundtrip")
}

// shopifyHeaders are the sender headers of a Shopify delivery; %d is the record's number.
var shopifyHeaders = []string{"X-Shopify-Topic", "orders/create", "X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70%06d", "X-Shopify-Shop-Domain", "example.myshopify.com"}

// originals is a delivery store that decides at once that every claim is an original.
type originals struct{ calls, claims int }

func (o *originals) Claim(_ context.Context, claims []delivery.Claim, verdicts []delivery.Verdict) error {
	o.calls++
	o.claims += len(claims)
	clear(verdicts)
	return nil
}

func (o *originals) DeleteExpired(context.Context, time.Time, int) (int, error) { return 0, nil }

func benchHook() *webhook.Hook {
	return &webhook.Hook{PublicID: "wh_bench", ProjectID: 1, Version: 1, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		Mappings: []webhook.TypedMapping{
			{Attribute: "email", Type: webhook.TypeString, Field: "email_address"},
			{Attribute: "total", Type: webhook.TypePrice, Field: "price"},
			{Attribute: "order_id", Type: webhook.TypeString, Field: "order_number"},
			{Attribute: "purchase_date", Type: webhook.TypeDate, Field: "purchase_date"},
		}}
}

// benchProcess processes polls of 1000 records of hook, each with the sender headers given (name,
// value pairs; a value's %d is the record's number), as the processor's handle does after the marks.
func benchProcess(b *testing.B, hook *webhook.Hook, headers []string, deliveries Deliveries) {
	benchProcessBodies(b, hook, headers, deliveries, seedBody, 1)
}

// seedBody is the seed payload of user u, order i.
func seedBody(u string, i int) string {
	return fmt.Sprintf(`{"user_id":%q,"email_address":"jane@example.com","mobile":"+15551234567","purchase_date":"2024-03-15","order_number":"ORD-%d","price":99.99,"payment_state":"success"}`, u, i)
}

// benchProcessBodies is benchProcess with the records' bodies made by body, each firing perRecord
// events.
func benchProcessBodies(b *testing.B, hook *webhook.Hook, headers []string, deliveries Deliveries, body func(u string, i int) string, perRecord int) {
	pp := newPolls(b, hook, headers, deliveries, body, perRecord)
	b.ReportAllocs()
	b.SetBytes(int64(pp.bytes / len(pp.recs)))
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(len(pp.recs), b.N-done)
		pp.poll(b, n)
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if perRecord > 1 {
		b.ReportMetric(float64(b.N*perRecord)/b.Elapsed().Seconds(), "events/s")
	}
}

// polls is a processor with a warm config cache and directory and a poll's records to give it again
// and again: the benchmarks' and the allocation test's.
type polls struct {
	p         *processor
	recs      []*kgo.Record
	items     []item
	headers   []string
	perRecord int
	bytes     int
}

// newPolls makes polls of 1000 records of hook, each with the sender headers given (name, value
// pairs; a value's %d is the record's number) and the body made by body, each firing perRecord events.
func newPolls(tb testing.TB, hook *webhook.Hook, headers []string, deliveries Deliveries, body func(u string, i int) string, perRecord int) *polls {
	tb.Helper()
	const perPoll = 1000
	res := mapResolver{}
	pp := &polls{recs: make([]*kgo.Record, perPoll), items: make([]item, perPoll), headers: headers, perRecord: perRecord}
	now := time.Now().UnixMilli()
	for i := range pp.recs {
		u := "user-" + strconv.Itoa(i%500)
		res[u] = Subject{UserID: u, HWIDs: []string{"hw-" + u}}
		body := body(u, i)
		pp.bytes += len(body)
		req := &wire.Request{ID: uuid.Must(uuid.NewV7()), WebhookID: "wh_bench", ProjectID: 1, ReceivedMs: now, ConfigVersion: 1,
			Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(body)}
		for j := 0; j+1 < len(headers); j += 2 {
			v := headers[j+1]
			if strings.Contains(v, "%") {
				v = fmt.Sprintf(v, i)
			}
			req.Sender = append(req.Sender, wire.SenderHeader{Key: wire.HeaderSenderPrefix + headers[j], Value: []byte(v)})
		}
		pp.recs[i] = &kgo.Record{Key: []byte("wh_bench"), Value: []byte(body), Partition: 0, Offset: int64(i), Headers: new(wire.RequestHeaders).Encode(req)}
	}
	cfg := Defaults()
	cfg.BatchRows = 1_000_000
	m, log := newMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler)
	pp.p = &processor{
		cfg:        &cfg,
		lim:        cfg.Limits(),
		hooks:      mapHooks{"wh_bench": hook},
		resolver:   res,
		deliveries: deliveries,
		retry:      &retrier{maxBackoff: cfg.RetryMaxBackoff, m: m, log: log},
		log:        log,
		m:          m,
		b:          newBatch(),
		parts:      map[int32]*partState{0: {hwm: [chstore.NumTables]int64{-1, -1, -1}, streaks: map[string]*streak{}}},
		compiled:   map[string]*compiledHook{},
		senders:    make([]wire.SenderHeader, 0, perPoll*len(headers)/2),
	}
	return pp
}

// poll processes the first n records as the processor's handle does after the marks, checks the
// batch and empties it.
func (pp *polls) poll(tb testing.TB, n int) {
	p := pp.p
	clear(p.senders)
	p.senders = p.senders[:0]
	for i := range n {
		parseRecord(pp.recs[i], &pp.items[i], &p.senders)
	}
	if err := p.process(context.Background(), pp.items[:n]); err != nil {
		tb.Fatal(err)
	}
	if len(p.b.activity) != n || len(p.b.fire) != n*pp.perRecord {
		tb.Fatalf("batch has %d rows and %d events; want %d successes with %d events each (%s: %s)", len(p.b.activity), len(p.b.fire), n, pp.perRecord,
			p.b.activity[0].Reason, p.b.activity[0].Detail)
	}
	if len(pp.headers) > 0 && p.b.activity[0].Headers == "" {
		tb.Fatal("no sender headers in the activity row")
	}
	p.b.reset()
}

// TestProcessAllocs: processing the seed payload costs less than one allocation per record (the
// arena's chunks and the poll's maps, shared by a poll's records): a change that allocates per record
// again fails here, not only in a benchmark nobody reads. Counts, not times.
func TestProcessAllocs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hook    *webhook.Hook
		headers []string
	}{
		{"field paths", benchHook(), nil},
		{"sender headers", func() *webhook.Hook {
			h := benchHook()
			h.Headers = []webhook.KeptHeader{webhook.NewKeptHeader("X-Shopify-Topic"), webhook.NewKeptHeader("X-Shopify-Webhook-Id")}
			h.Mappings = append(h.Mappings, webhook.TypedMapping{Attribute: "topic", Type: webhook.TypeString, Field: `headers["X-Shopify-Topic"]`})
			return h
		}(), shopifyHeaders[:4]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pp := newPolls(t, tc.hook, tc.headers, nil, seedBody, 1)
			pp.poll(t, len(pp.recs)) // warm: compiled config, grown slices
			perPoll := testing.AllocsPerRun(5, func() { pp.poll(t, len(pp.recs)) })
			perRecord := perPoll / float64(len(pp.recs))
			t.Logf("%.0f allocations per poll of %d records", perPoll, len(pp.recs))
			if perRecord >= 1 {
				t.Errorf("%.2f allocations per record (%.0f per poll of %d); want fewer than 1", perRecord, perPoll, len(pp.recs))
			}
		})
	}
}

// BenchmarkCompileHook: what compiling a webhook's config costs the pipeline the first time it meets
// the webhook (or again after the compiled configs were cleared), and what it keeps per webhook, when
// no webhook it holds has equal routes.
func BenchmarkCompileHook(b *testing.B) {
	h := benchHook()
	b.ReportAllocs()
	for range b.N {
		_ = compileHook(h)
	}
}

// BenchmarkCompileHookShared is BenchmarkCompileHook for a webhook whose routes and kept headers equal
// those of a webhook the processor holds (many shops connected from one template): the compiled routes
// are shared (routeSet), only the webhook's own part is made.
func BenchmarkCompileHookShared(b *testing.B) {
	h := benchHook()
	p := &processor{compiled: map[string]*compiledHook{}}
	p.compiled[h.PublicID] = p.compile(h)
	b.ReportAllocs()
	for range b.N {
		_ = p.compile(h)
	}
}
