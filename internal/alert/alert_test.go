package alert_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
)

type fixture struct {
	pool    *pgxpool.Pool
	ch      driver.Conn
	store   *alert.Store
	svc     *alert.Service
	project int64
}

// newFixture makes a project in a fresh PostgreSQL database (and, with ch, a fresh ClickHouse one) and
// an alert service on them with cfg.
func newFixture(t *testing.T, cfg alert.Config, withCH bool) *fixture {
	t.Helper()
	_, pool := testenv.Postgres(t)
	sealer, err := secret.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	f := &fixture{pool: pool, store: alert.NewStore(pool, sealer, cfg)}
	p, _, err := project.NewStore(pool).Create(context.Background(), "Shop")
	if err != nil {
		t.Fatal(err)
	}
	f.project = p.ID
	var rollup alert.Rollup
	if withCH {
		_, f.ch = testenv.ClickHouse(t)
		rollup = chstore.NewReader(f.ch)
	}
	f.svc = alert.NewService(cfg, f.store, rollup, nil, testenv.Logger())
	return f
}

func (f *fixture) setURL(t *testing.T, url, format string) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), `UPDATE projects SET notification_url = $2, notification_format = $3 WHERE id = $1`,
		f.project, url, format); err != nil {
		t.Fatal(err)
	}
}

func fastConfig() alert.Config {
	cfg := alert.Defaults()
	cfg.BackoffBase = 10 * time.Millisecond
	cfg.BackoffMax = 50 * time.Millisecond
	cfg.DeliveryTimeout = 2 * time.Second
	cfg.AllowPrivateTargets = true // the receivers of these tests listen on 127.0.0.1
	return cfg
}

// deliverUntil runs delivery rounds until the notification id reaches a final state, and returns it.
func (f *fixture) deliverUntil(t *testing.T, id uuid.UUID) alert.Delivery {
	t.Helper()
	ctx := context.Background()
	var d alert.Delivery
	testenv.WaitFor(t, "notification "+id.String()+" finished", 30*time.Second, func() bool {
		if _, err := f.svc.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		var err error
		if d, err = f.store.Delivery(ctx, f.project, id); err != nil {
			t.Fatal(err)
		}
		return d.State != "pending"
	})
	return d
}

func (f *fixture) streak(t *testing.T) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if err := f.store.RecordStreak(context.Background(), alert.Streak{ProjectID: f.project, WebhookID: "hook1", ID: id,
		CreatedAt: time.Now(), Message: "5 consecutive requests failed verification"}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSignedAndRetried: the receiver fails twice, then verifies the signature with the Standard
// Webhooks library and accepts; every attempt is recorded.
func TestSignedAndRetried(t *testing.T) {
	f := newFixture(t, fastConfig(), false)
	ctx := context.Background()
	sec, err := f.store.SigningSecret(ctx, f.project)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(sec)
	if err != nil {
		t.Fatalf("the Standard Webhooks library refuses the secret %.8s…: %v", sec, err)
	}
	var calls atomic.Int32
	var mu sync.Mutex
	var verified []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		verified = append(verified, r.Header.Get("webhook-id"))
		mu.Unlock()
		if !strings.Contains(string(body), `"kind":"auth_failures"`) || !strings.Contains(string(body), `"type":"alert.fired"`) {
			t.Errorf("body %s: want kind auth_failures, type alert.fired", body)
		}
	}))
	defer srv.Close()
	f.setURL(t, srv.URL, alert.FormatStandard)

	id := f.streak(t)
	// A replay of the same notification records nothing more.
	if err := f.store.RecordStreak(ctx, alert.Streak{ProjectID: f.project, WebhookID: "hook1", ID: id, CreatedAt: time.Now(), Message: "again"}); err != nil {
		t.Fatal(err)
	}
	d := f.deliverUntil(t, id)
	if d.State != "delivered" || d.Attempts != 3 || len(d.AttemptLog) != 3 {
		t.Fatalf("delivery %+v; want delivered after 3 attempts, 3 recorded", d)
	}
	for i, want := range []int{503, 503, 200} {
		a := d.AttemptLog[i]
		if a.StatusCode != want || a.Attempt != i+1 || a.URL != srv.URL || (want == 200) != (a.Error == "") {
			t.Errorf("attempt %d = %+v; want status %d", i+1, a, want)
		}
	}
	if len(verified) != 1 || verified[0] != id.String() {
		t.Errorf("verified webhook-ids %v; want [%s]", verified, id)
	}
	as, err := f.store.Alerts(ctx, f.project, false, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Kind != alert.KindAuthFailures || as[0].State != "firing" {
		t.Errorf("alerts %+v; want one auth_failures alert", as)
	}

	// After a rotation, notifications are signed with the new secret: the old one no longer verifies.
	rotated, err := f.store.RotateSigningSecret(ctx, f.project)
	if err != nil || rotated == sec {
		t.Fatalf("rotate: %v (same secret: %v)", err, rotated == sec)
	}
	wh2, _ := standardwebhooks.NewWebhook(rotated)
	var gotOld, gotNew error
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		gotOld, gotNew = wh.Verify(body, r.Header), wh2.Verify(body, r.Header)
	}))
	defer srv2.Close()
	f.setURL(t, srv2.URL, alert.FormatStandard)
	if d := f.deliverUntil(t, f.streak(t)); d.State != "delivered" {
		t.Fatalf("after rotation: %+v", d)
	}
	if gotOld == nil || gotNew != nil {
		t.Errorf("after rotation: old secret verifies: %v, new: %v; want only the new one", gotOld == nil, gotNew)
	}
}

// TestGivesUpAfterMaxAttempts: a receiver that always fails gets max_attempts attempts.
func TestGivesUpAfterMaxAttempts(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxAttempts = 3
	f := newFixture(t, cfg, false)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	f.setURL(t, srv.URL, alert.FormatStandard)
	d := f.deliverUntil(t, f.streak(t))
	if d.State != "failed" || d.Attempts != 3 || len(d.AttemptLog) != 3 || calls.Load() != 3 || !strings.Contains(d.LastError, "500") {
		t.Fatalf("delivery %+v after %d calls; want failed after 3 attempts, last error naming 500", d, calls.Load())
	}
}

// TestRefusesLoopbackByDefault: without allow_private_targets a target on 127.0.0.1 — here reached
// through a host name, so the check is the connection's, not the URL's — is refused at once, for good.
func TestRefusesLoopbackByDefault(t *testing.T) {
	cfg := fastConfig()
	cfg.AllowPrivateTargets = false
	f := newFixture(t, cfg, false)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	defer srv.Close()
	f.setURL(t, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), alert.FormatStandard)
	d := f.deliverUntil(t, f.streak(t))
	if d.State != "failed" || d.Attempts != 1 || calls.Load() != 0 || !strings.Contains(d.LastError, "not a public address") {
		t.Fatalf("delivery %+v, %d calls; want failed after 1 refused attempt, no call", d, calls.Load())
	}
}

func TestSenderRefusesNonPublic(t *testing.T) {
	s := alert.NewSender(time.Second, false)
	for _, url := range []string{"http://127.0.0.1:1/", "http://[::1]:1/", "http://10.1.2.3:1/", "http://169.254.169.254/",
		"http://192.168.0.1/", "http://[fe80::1]:1/", "http://0.0.0.0:1/", "http://100.64.0.1/", "http://[::ffff:127.0.0.1]:1/"} {
		res := s.Send(context.Background(), url, "id", []byte("k"), time.Now(), []byte("{}"))
		if !errors.Is(res.Err, alert.ErrRefusedTarget) {
			t.Errorf("Send(%s) = %v; want ErrRefusedTarget", url, res.Err)
		}
	}
}

// TestSlackFormat: the Slack-compatible body is {"text": …}, signed all the same.
func TestSlackFormat(t *testing.T) {
	f := newFixture(t, fastConfig(), false)
	sec, _ := f.store.SigningSecret(context.Background(), f.project)
	wh, _ := standardwebhooks.NewWebhook(sec)
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("signature: %v", err)
		}
		got <- string(body)
	}))
	defer srv.Close()
	f.setURL(t, srv.URL, alert.FormatSlack)
	if d := f.deliverUntil(t, f.streak(t)); d.State != "delivered" {
		t.Fatalf("delivery %+v", d)
	}
	if b := <-got; b != `{"text":":rotating_light: 5 consecutive requests failed verification"}` {
		t.Errorf("slack body %s", b)
	}
}

// TestNoURLIsSkipped: a project without a notification URL records the alert, and its notification
// as skipped, saying why.
func TestNoURLIsSkipped(t *testing.T) {
	f := newFixture(t, fastConfig(), false)
	id := f.streak(t)
	d, err := f.store.Delivery(context.Background(), f.project, id)
	if err != nil || d.State != "skipped" || !strings.Contains(d.LastError, "no notification URL") {
		t.Fatalf("delivery %+v, %v; want skipped for want of a URL", d, err)
	}
}

// TestQueueBound: beyond max_pending undelivered notifications, new ones are skipped.
func TestQueueBound(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxPending = 2
	f := newFixture(t, cfg, false)
	f.setURL(t, "http://127.0.0.1:1/", alert.FormatStandard) // never delivered in this test
	var ids []uuid.UUID
	for range 3 {
		ids = append(ids, f.streak(t))
	}
	for i, want := range []string{"pending", "pending", "skipped"} {
		d, err := f.store.Delivery(context.Background(), f.project, ids[i])
		if err != nil || d.State != want {
			t.Errorf("notification %d: %+v, %v; want %s", i, d, err, want)
		}
	}
}

// TestResealProjectSecrets: after a master key rotation, the signing secret and the masking key are
// rewritten under the new key and open without the old one.
func TestResealProjectSecrets(t *testing.T) {
	f := newFixture(t, fastConfig(), false)
	ctx := context.Background()
	oldKey, newKey := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	sec, err := f.store.SigningSecret(ctx, f.project)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := secret.NewSealer(oldKey)
	if _, err := f.pool.Exec(ctx, `UPDATE projects SET mask_key_ciphertext = $2 WHERE id = $1`, f.project,
		old.Seal([]byte("mask key"), webhook.MaskAAD(f.project))); err != nil {
		t.Fatal(err)
	}
	both, _ := secret.NewSealer(newKey, oldKey)
	r, err := alert.NewStore(f.pool, both, fastConfig()).ResealProjectSecrets(ctx)
	if err != nil || r.Resealed != 2 || r.Failed != 0 {
		t.Fatalf("reseal = %+v, %v; want 2 resealed", r, err)
	}
	onlyNew, _ := secret.NewSealer(newKey)
	if got, err := alert.NewStore(f.pool, onlyNew, fastConfig()).SigningSecret(ctx, f.project); err != nil || got != sec {
		t.Fatalf("signing secret under the new key only: %v (same: %v)", err, got == sec)
	}
	var sealed []byte
	_ = f.pool.QueryRow(ctx, `SELECT mask_key_ciphertext FROM projects WHERE id = $1`, f.project).Scan(&sealed)
	if pt, err := onlyNew.Open(sealed, webhook.MaskAAD(f.project)); err != nil || string(pt) != "mask key" {
		t.Fatalf("masking key under the new key only: %q, %v", pt, err)
	}
	if r, err := alert.NewStore(f.pool, both, fastConfig()).ResealProjectSecrets(ctx); err != nil || r.Current != 2 || r.Resealed != 0 {
		t.Fatalf("second reseal = %+v, %v; want 2 current", r, err)
	}
}

// TestStreakResolves: the end of a notified streak resolves the webhook's five-failures alert once,
// with one notification; a replay of the end changes nothing.
func TestStreakResolves(t *testing.T) {
	f := newFixture(t, fastConfig(), false)
	ctx := context.Background()
	f.streak(t)
	end := alert.Streak{ProjectID: f.project, WebhookID: "hook1", ID: uuid.New(), CreatedAt: time.Now(), Message: "accepted again"}
	for range 2 {
		if err := f.store.ResolveStreak(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	as, err := f.store.Alerts(ctx, f.project, false, 10)
	if err != nil || len(as) != 1 || as[0].State != "resolved" {
		t.Fatalf("alerts %+v, %v; want one, resolved", as, err)
	}
	ds, _ := f.store.Deliveries(ctx, f.project, 10)
	if len(ds) != 2 || ds[0].Event != alert.EventResolved || ds[0].ID != end.ID {
		t.Fatalf("notifications %+v; want the firing and one resolution named by the end's id", ds)
	}
	// Another webhook's end resolves nothing.
	if err := f.store.ResolveStreak(ctx, alert.Streak{ProjectID: f.project, WebhookID: "other", ID: uuid.New(), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if ds, _ := f.store.Deliveries(ctx, f.project, 10); len(ds) != 2 {
		t.Fatalf("%d notifications after another webhook's end; want 2", len(ds))
	}
}
