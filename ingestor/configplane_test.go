package ingestor

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// plane is the ingestor as the process assembles it (internal/compose: PostgreSQL store, push-invalidated
// cache, the real Kafka) behind a running edge, with the test's own store to change webhooks through.
type plane struct {
	store   *webhook.Store
	pool    *pgxpool.Pool
	project int64
	kcfg    kafka.Config
	e       *edge // e.s is nil: the composition root keeps the Server
}

// ComposeIngestor builds the ingestor as the process does (internal/compose), with the settings ic and
// cc, on this test's own PostgreSQL database and Kafka topics, and closes it when the test ends. It is
// set by compose_test.go: the composition root imports this package, so only a test package outside it
// (ingestor_test) can build one.
var ComposeIngestor func(t *testing.T, ic Config, cc webhook.CacheConfig) Composed

// Composed is a composed ingestor and the test's own hands on its configuration.
type Composed struct {
	// Serve serves the edge on ln, with the config listener beside it, until ctx is done.
	Serve func(ctx context.Context, ln net.Listener) error
	// Webhooks and Pool are the test's own, on the ingestor's database.
	Webhooks *webhook.Store
	Pool     *pgxpool.Pool
	// Kafka names the topics the edge appends to.
	Kafka kafka.Config
}

func startPlane(t *testing.T, cfg Config, cc webhook.CacheConfig) *plane {
	t.Helper()
	c := ComposeIngestor(t, cfg, cc)
	p := &plane{store: c.Webhooks, pool: c.Pool, kcfg: c.Kafka}
	ctx := context.Background()
	if err := p.pool.QueryRow(ctx, `INSERT INTO projects (name) VALUES ('edge test') RETURNING id`).Scan(&p.project); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.CreateEvent(ctx, p.project, webhook.EventInput{Name: "CheckoutSuccess",
		Attributes: []webhook.Attribute{{Name: "email", Type: webhook.TypeString}}}); err != nil {
		t.Fatal(err)
	}
	p.e = inmemEdge(nil, newReg())
	p.e.serveWith(t, func(ctx context.Context) error { return c.Serve(ctx, p.e.ln) })
	time.Sleep(200 * time.Millisecond) // let the notifier LISTEN before the first change
	return p
}

func (p *plane) create(t *testing.T, name string) (*webhook.Webhook, string) {
	t.Helper()
	w, sec, err := p.store.Create(context.Background(), p.project, webhook.WebhookInput{
		Name: name, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		Mappings: []webhook.Mapping{{Attribute: "email", Field: "email_address"}},
	})
	if err != nil {
		t.Fatalf("create webhook: %v", err)
	}
	// Webhooks are created disabled, as in the console ("click Enable").
	if w, err = p.store.SetEnabled(context.Background(), p.project, w.ID, w.Version, true); err != nil {
		t.Fatalf("enable webhook: %v", err)
	}
	return w, secret.Authorization(sec)
}

// within polls f every 10 ms until it is true or d has passed, and reports how long it took.
func within(d time.Duration, f func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if f() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConfigPlaneDisableAndRotate(t *testing.T) {
	p := startPlane(t, testConfig(), webhook.DefaultCacheConfig())
	ctx := context.Background()
	w, auth := p.create(t, "orders")
	path := "/hooks/" + w.ID
	post := func(auth string) int { return p.e.do(t, req{path: path, auth: auth, body: goodBody}).status }

	before := time.Now()
	a := p.e.do(t, req{path: path, auth: auth, body: goodBody})
	after := time.Now()
	if a.status != 202 {
		t.Fatalf("enabled webhook, right secret: %+v", a)
	}
	rid := checkAnswer(t, statusRows()[0], a)
	hook, err := p.store.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}

	// Disable takes effect on the running edge within 1 s (pushed, not waiting for the TTL).
	w2, err := p.store.SetEnabled(ctx, p.project, w.ID, w.Version, false)
	if err != nil {
		t.Fatal(err)
	}
	if took, ok := within(time.Second, func() bool { return post(auth) == 403 }); !ok {
		t.Fatalf("disable not in effect after %s", took)
	} else {
		t.Logf("disable took effect after %s", took)
	}
	if _, err := p.store.SetEnabled(ctx, p.project, w.ID, w2.Version, true); err != nil {
		t.Fatal(err)
	}
	if took, ok := within(time.Second, func() bool { return post(auth) == 202 }); !ok {
		t.Fatalf("enable not in effect after %s", took)
	}

	// Rotation with grace: both secrets work; without grace the old one stops.
	newSec, err := p.store.RotateSecret(ctx, p.project, w.ID, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	newAuth := secret.Authorization(newSec)
	if took, ok := within(time.Second, func() bool { return post(newAuth) == 202 }); !ok {
		t.Fatalf("new secret not accepted after %s", took)
	}
	if got := post(auth); got != 202 {
		t.Errorf("old secret during the grace period: %d; want 202", got)
	}
	newest, err := p.store.RotateSecret(ctx, p.project, w.ID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := within(time.Second, func() bool { return post(secret.Authorization(newest)) == 202 }); !ok {
		t.Fatal("newest secret not accepted within 1s")
	}
	for _, old := range []string{auth, newAuth} {
		if got := post(old); got != 401 {
			t.Errorf("secret rotated without grace: %d; want 401", got)
		}
	}

	if err := p.e.stop(); err != nil {
		t.Fatal(err)
	}
	recs := byKey(consumeAll(t, p.kcfg, p.kcfg.RequestsTopic))[w.ID]
	if len(recs) == 0 {
		t.Fatal("no record in Kafka")
	}
	checkRecordOf(t, p.kcfg.RequestsTopic, &wantRecord{wire.OutcomeAccepted, goodBody, len(goodBody)}, hook, rid, 202, recs[0], before, after)
	outcomes := map[string]int{}
	for _, r := range recs {
		o, _ := header(r, wire.HeaderEdgeOutcome)
		outcomes[o]++
	}
	if outcomes["webhook_disabled"] == 0 || outcomes["auth_rejected"] < 2 { // more if a poll raced a rotation
		t.Errorf("outcomes in Kafka %v; want webhook_disabled ≥ 1 and auth_rejected ≥ 2", outcomes)
	}
}
