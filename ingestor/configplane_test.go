package ingestor

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// plane is the real configuration plane (PostgreSQL store, push-invalidated cache) and the real Kafka
// behind a running edge.
type plane struct {
	store   *webhook.Store
	cache   *webhook.Cache
	pool    *pgxpool.Pool
	project int64
	kcfg    kafka.Config
	e       *edge
}

func startPlane(t *testing.T, cfg Config, cc webhook.CacheConfig) *plane {
	t.Helper()
	pcfg, pool := testenv.Postgres(t)
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	p := &plane{store: webhook.NewStore(pool, sealer), pool: pool}
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `INSERT INTO projects (name) VALUES ('edge test') RETURNING id`).Scan(&p.project); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.CreateEvent(ctx, p.project, webhook.EventInput{Name: "CheckoutSuccess",
		Attributes: []webhook.Attribute{{Name: "email", Type: webhook.TypeString}}}); err != nil {
		t.Fatal(err)
	}
	p.cache, err = webhook.NewCache(p.store, cc, newReg(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cache.Close)
	notifier := pgdb.NewNotifier(pcfg.DSN, testLog())
	p.cache.Subscribe(notifier)
	nctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = notifier.Run(nctx) }()
	t.Cleanup(func() { stop(); <-done })

	kcfg, prod := realProducer(t, cfg)
	p.kcfg = kcfg
	p.e = startEdgeOn(t, cfg, p.cache, prod, kcfg.RequestsTopic)
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
	newSec, err := p.store.RotateSecret(ctx, p.project, w.ID, time.Hour)
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
	newest, err := p.store.RotateSecret(ctx, p.project, w.ID, 0)
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
