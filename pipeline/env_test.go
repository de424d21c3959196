package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// fakeHooks is an in-memory webhook.Cache.
type fakeHooks struct {
	mu sync.Mutex
	m  map[string]*webhook.Hook
}

func (f *fakeHooks) Get(_ context.Context, id string) (*webhook.Hook, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.m[id]; ok {
		return h, nil
	}
	return nil, fmt.Errorf("webhook %s: %w", id, domainerr.ErrNotFound)
}

func (f *fakeHooks) put(h *webhook.Hook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*webhook.Hook{}
	}
	f.m[h.PublicID] = h
}

// fakeResolver is an in-memory directory; down makes it fail like an unreachable PostgreSQL.
type fakeResolver struct {
	subjects map[identify.Kind]map[string]pipeline.Subject
	down     atomic.Bool
	calls    atomic.Int64
}

func (f *fakeResolver) Resolve(_ context.Context, _ int64, kind identify.Kind, values []string) (map[string]pipeline.Subject, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, errors.New("directory down")
	}
	out := map[string]pipeline.Subject{}
	for _, v := range values {
		if s, ok := f.subjects[kind][v]; ok {
			out[v] = s
		}
	}
	return out, nil
}

// standardFixtures are the webhooks and users every end-to-end test uses.
func standardFixtures() (*fakeHooks, *fakeResolver) {
	hooks := &fakeHooks{}
	seedMappings := []webhook.TypedMapping{
		{Attribute: "email", Type: webhook.TypeString, Field: "email_address"},
		{Attribute: "total", Type: webhook.TypePrice, Field: "price"},
		{Attribute: "order_id", Type: webhook.TypeString, Field: "order_number"},
		{Attribute: "purchase_date", Type: webhook.TypeDate, Field: "purchase_date"},
	}
	hooks.put(&webhook.Hook{PublicID: "wh_uid", ProjectID: 1, Enabled: true, Version: 1, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"}, Mappings: seedMappings})
	hooks.put(&webhook.Hook{PublicID: "wh_email", ProjectID: 1, Enabled: true, Version: 1, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: identify.ByEmail, Field: "email_address"}, Mappings: seedMappings})
	hooks.put(&webhook.Hook{PublicID: "wh_hwid", ProjectID: 1, Enabled: true, Version: 1, EventName: "ItemShipped",
		Identify: webhook.Identify{Kind: identify.ByHWID, Field: "device.hwid"},
		Mappings: []webhook.TypedMapping{
			{Attribute: "sku", Type: webhook.TypeString, Field: "items[0].sku"},
			{Attribute: "order", Type: webhook.TypeInteger, Field: `["order.id"]`},
			{Attribute: "tags", Type: webhook.TypeList, Field: "tags"},
			{Attribute: "gift", Type: webhook.TypeBoolean, Field: "meta.gift"},
		}})
	// Its unknown users wait (unknown_user hold); a pipeline without a hold store fails them.
	hooks.put(&webhook.Hook{PublicID: "wh_hold", ProjectID: 1, Enabled: true, Version: 1, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"}, Mappings: seedMappings,
		UnknownUser: webhook.UnknownUserHold})
	hooks.put(&webhook.Hook{PublicID: "wh_strict", ProjectID: 1, Enabled: true, Version: 1, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		Mappings: []webhook.TypedMapping{{Attribute: "qty", Type: webhook.TypeInteger, Field: "order_number"}}})
	// Webhooks that keep sender headers and de-duplicate on the sender's key (with a delivery store:
	// env.withDeliveries).
	kept := func(names ...string) []webhook.KeptHeader {
		var out []webhook.KeptHeader
		for _, n := range names {
			out = append(out, webhook.NewKeptHeader(n))
		}
		return out
	}
	byUserID := webhook.Identify{Kind: identify.ByUserID, Field: "user_id"}
	hooks.put(&webhook.Hook{PublicID: "wh_shop", ProjectID: 1, Enabled: true, Version: 1, EventName: "OrderCreated",
		Identify: byUserID, Headers: kept("X-Shopify-Topic", "X-Shopify-Webhook-Id"),
		Dedup: webhook.Dedup{Key: "header:X-Shopify-Webhook-Id"},
		Mappings: []webhook.TypedMapping{
			{Attribute: "topic", Type: webhook.TypeString, Field: `headers["X-Shopify-Topic"]`},
			{Attribute: "total", Type: webhook.TypePrice, Field: "price"},
		}})
	hooks.put(&webhook.Hook{PublicID: "wh_stripe", ProjectID: 1, Enabled: true, Version: 1, EventName: "Paid",
		Identify: byUserID, Dedup: webhook.Dedup{Key: "body:id"},
		Mappings: []webhook.TypedMapping{{Attribute: "event_id", Type: webhook.TypeString, Field: "id"}}})
	hooks.put(&webhook.Hook{PublicID: "wh_hash", ProjectID: 1, Enabled: true, Version: 1, EventName: "Ping",
		Identify: byUserID, Headers: kept("X-Topic"),
		Dedup: webhook.Dedup{Key: webhook.DedupBodyHash, HashHeaders: []string{"X-Topic"}}})
	hooks.put(&webhook.Hook{PublicID: "wh_short", ProjectID: 1, Enabled: true, Version: 1, EventName: "Ping",
		Identify: byUserID, Headers: kept("Delivery-Id"),
		Dedup: webhook.Dedup{Key: "header:Delivery-Id", Window: verify.Duration(time.Minute)}})
	hooks.put(&webhook.Hook{PublicID: "wh_hdr", ProjectID: 1, Enabled: true, Version: 1, EventName: "Ping",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "headers.x-user-id"}, Headers: kept("X-User-Id", "X-Event"),
		Mappings: []webhook.TypedMapping{
			{Attribute: "event", Type: webhook.TypeString, Field: `headers["X-Event"]`},
			{Attribute: "count", Type: webhook.TypeInteger, Field: "headers.X-Count"}, // not kept: the payload's
		}})
	// A fan-out: one ItemOrdered per line item, identified by the order's user.
	hooks.put(&webhook.Hook{PublicID: "wh_fan", ProjectID: 1, Enabled: true, Version: 1,
		Routes: []webhook.HookRoute{{Name: "items", ForEach: "line_items", EventName: "ItemOrdered",
			Identify: webhook.Identify{Kind: identify.ByUserID, Field: "$.user_id"},
			Mappings: []webhook.TypedMapping{
				{Attribute: "sku", Type: webhook.TypeString, Field: "sku"},
				{Attribute: "quantity", Type: webhook.TypeInteger, Field: "quantity"},
				{Attribute: "order_id", Type: webhook.TypeString, Field: "$.order_number"},
			}}}})
	res := &fakeResolver{subjects: map[identify.Kind]map[string]pipeline.Subject{
		identify.ByUserID: {"12345": {UserID: "12345", HWIDs: []string{"hw-a", "hw-b"}}},
		identify.ByEmail:  {"jane@example.com": {UserID: "12345", HWIDs: []string{"hw-a", "hw-b"}}},
		identify.ByHWID:   {"hw-a": {UserID: "12345", HWID: "hw-a", HWIDs: []string{"hw-a", "hw-b"}}},
	}}
	for i := range 50 {
		u := "u" + strconv.Itoa(i)
		res.subjects[identify.ByUserID][u] = pipeline.Subject{UserID: u}
	}
	return hooks, res
}

const seedPayload = `{"user_id":"12345","email_address":"jane@example.com","mobile":"+15551234567","purchase_date":"2024-03-15","order_number":"ORD-001","price":99.99,"payment_state":"success"}`

// req is one webhooks.requests record as the ingestor writes it.
type req struct {
	id         uuid.UUID
	webhook    string
	outcome    wire.Outcome
	body       string
	receivedMs int64
	version    int64
	headers    []string // sender headers: name, value, name, value, …
}

func newReq(webhookID string, outcome wire.Outcome, body string) req {
	return req{id: uuid.Must(uuid.NewV7()), webhook: webhookID, outcome: outcome, body: body,
		receivedMs: time.Now().UnixMilli(), version: 1}
}

func (r req) record(topic string) *kgo.Record {
	status := 202
	if r.outcome != wire.OutcomeAccepted {
		status = 401
	}
	var h wire.RequestHeaders
	wr := &wire.Request{ID: r.id, WebhookID: r.webhook, ProjectID: 1, ReceivedMs: r.receivedMs, ConfigVersion: r.version,
		Outcome: r.outcome, EdgeStatus: status, BodyBytes: len(r.body)}
	for i := 0; i+1 < len(r.headers); i += 2 {
		wr.Sender = append(wr.Sender, wire.SenderHeader{Key: wire.HeaderSenderPrefix + r.headers[i], Value: []byte(r.headers[i+1])})
	}
	return &kgo.Record{Topic: topic, Key: []byte(r.webhook), Value: []byte(r.body), Headers: h.Encode(wr)}
}

// env is one test's slice of the real stack.
type env struct {
	kcfg  kafka.Config
	kcl   *kgo.Client
	chcfg chdb.Config
	conn  driver.Conn
	group string
	// pgcfg, pool and deliveries are set by withDeliveries: pipelines the env starts then de-duplicate.
	pgcfg      pgdb.Config
	pool       *pgxpool.Pool
	deliveries pipeline.Deliveries
}

// withDeliveries gives the env a PostgreSQL database of its own, migrated, whose delivery store the
// pipelines it starts (in this process or as children) use.
func (e *env) withDeliveries(t testing.TB) {
	t.Helper()
	e.pgcfg, e.pool = testenv.Postgres(t)
	e.deliveries = delivery.NewStore(e.pool)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	kcfg, kcl := testenv.Kafka(t)
	chcfg, conn := testenv.ClickHouse(t)
	return &env{kcfg: kcfg, kcl: kcl, chcfg: chcfg, conn: conn, group: testenv.Name("g")}
}

func (e *env) produce(t testing.TB, reqs ...req) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, len(reqs))
	for i, r := range reqs {
		recs[i] = r.record(e.kcfg.RequestsTopic)
	}
	if err := e.kcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d requests: %v", len(reqs), err)
	}
}

func testConfig() pipeline.Config {
	cfg := pipeline.Defaults()
	cfg.InternalAddr = "127.0.0.1:0"
	cfg.FlushInterval = 200 * time.Millisecond
	cfg.RetryMaxBackoff = 500 * time.Millisecond
	cfg.ConfigWait = 300 * time.Millisecond
	return cfg
}

// run starts a pipeline in this process and returns a function that stops it and waits.
func (e *env) run(t testing.TB, cfg pipeline.Config, hooks pipeline.Hooks, res pipeline.Resolver, notifier pipeline.Notifier) func() {
	t.Helper()
	return e.runDeps(t, cfg, pipeline.Deps{Hooks: hooks, Resolver: res, Notifier: notifier})
}

// runDeps is run with more dependencies chosen by the test; Kafka, and ClickHouse, Registry and Logger
// when nil, are the env's.
func (e *env) runDeps(t testing.TB, cfg pipeline.Config, deps pipeline.Deps) func() {
	t.Helper()
	_, stop := e.start(t, cfg, deps)
	return stop
}

// start is runDeps that also returns the running pipeline.
func (e *env) start(t testing.TB, cfg pipeline.Config, deps pipeline.Deps) (*pipeline.Pipeline, func()) {
	t.Helper()
	cfg.Group = e.group
	deps.Kafka = e.kcfg
	if deps.ClickHouse == nil {
		deps.ClickHouse = e.conn
	}
	if deps.Deliveries == nil {
		deps.Deliveries = e.deliveries
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Logger == nil {
		deps.Logger = testenv.Logger()
	}
	p, err := pipeline.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("pipeline Run: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("pipeline did not stop within 60s")
			}
		})
	}
	t.Cleanup(stop)
	return p, stop
}

func (e *env) count(t testing.TB, q string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n uint64
	if err := e.conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// waitCount polls until the query answers want, failing after timeout.
func (e *env) waitCount(t testing.TB, q string, want uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got uint64
	for time.Now().Before(deadline) {
		if got = e.count(t, q); got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %d after %s; want %d", q, got, timeout, want)
}

// sumMetric adds up every series of a counter or gauge family whose labels include the name, value
// pairs of labels.
func sumMetric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() // the other is nil: 0
		}
	}
	return sum
}

// activityRow is one activity_log row as the tests read it.
type activityRow struct {
	status, reason, duplicateOf, headers, detail string
}

// activity reads the activity rows of webhookID, or of every webhook when it is "", by request id; a
// request with two rows fails the test.
func (e *env) activity(t *testing.T, webhookID string) map[string]activityRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := "SELECT toString(request_id), toString(status), reason, duplicate_of, headers, detail FROM activity_log"
	var args []any
	if webhookID != "" {
		q += " WHERE webhook_id = ?"
		args = append(args, webhookID)
	}
	rows, err := e.conn.Query(ctx, q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]activityRow{}
	for rows.Next() {
		var id string
		var r activityRow
		if err := rows.Scan(&id, &r.status, &r.reason, &r.duplicateOf, &r.headers, &r.detail); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[id]; dup {
			t.Errorf("request %s has two activity rows", id)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// events reads the events topic from the start until it has at least want records (or timeout).
func (e *env) events(t *testing.T, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kafka.NewClient(e.kcfg, "test-events", kgo.ConsumeTopics(e.kcfg.EventsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}
