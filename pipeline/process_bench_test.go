package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
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
// attributes, the event JSON and the rows. Kafka and ClickHouse are not involved.
func BenchmarkProcess(b *testing.B) {
	const perPoll = 1000
	hook := &webhook.Hook{PublicID: "wh_bench", ProjectID: 1, Version: 1, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		Mappings: []webhook.TypedMapping{
			{Attribute: "email", Type: webhook.TypeString, Field: "email_address"},
			{Attribute: "total", Type: webhook.TypePrice, Field: "price"},
			{Attribute: "order_id", Type: webhook.TypeString, Field: "order_number"},
			{Attribute: "purchase_date", Type: webhook.TypeDate, Field: "purchase_date"},
		}}
	res := mapResolver{}
	recs := make([]*kgo.Record, perPoll)
	now := time.Now().UnixMilli()
	bytes := 0
	for i := range recs {
		u := "user-" + strconv.Itoa(i%500)
		res[u] = Subject{UserID: u, HWIDs: []string{"hw-" + u}}
		body := fmt.Sprintf(`{"user_id":%q,"email_address":"jane@example.com","mobile":"+15551234567","purchase_date":"2024-03-15","order_number":"ORD-%d","price":99.99,"payment_state":"success"}`, u, i)
		bytes += len(body)
		h := new(wire.RequestHeaders)
		recs[i] = &kgo.Record{Key: []byte("wh_bench"), Value: []byte(body), Partition: 0, Offset: int64(i), Headers: h.Encode(&wire.Request{
			ID: uuid.Must(uuid.NewV7()), WebhookID: "wh_bench", ProjectID: 1, ReceivedMs: now, ConfigVersion: 1,
			Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(body)})}
	}
	cfg := Defaults()
	cfg.BatchRows = 1_000_000
	m, log := newMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler)
	p := &processor{
		cfg:      &cfg,
		lim:      cfg.limits(),
		hooks:    mapHooks{"wh_bench": hook},
		resolver: res,
		retry:    &retrier{maxBackoff: cfg.RetryMaxBackoff, m: m, log: log},
		log:      log,
		m:        m,
		b:        newBatch(),
		parts:    map[int32]*partState{0: {hwm: [chstore.NumTables]int64{-1, -1, -1}, streaks: map[string]*streak{}}},
		compiled: map[string]*compiledHook{},
	}
	ctx := context.Background()
	items := make([]item, perPoll)
	b.ReportAllocs()
	b.SetBytes(int64(bytes / perPoll))
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(perPoll, b.N-done)
		for i := range n {
			parseRecord(recs[i], &items[i], nil)
		}
		if err := p.process(ctx, items[:n]); err != nil {
			b.Fatal(err)
		}
		if len(p.b.activity) != n || len(p.b.fire) != n {
			b.Fatalf("batch has %d rows and %d events; want %d successes", len(p.b.activity), len(p.b.fire), n)
		}
		p.b.reset()
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
