package hold_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/hold"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/wire"
)

// releaserEnv is a project, the real directory, a requests topic and a releaser of its holds.
type releaserEnv struct {
	pool    *pgxpool.Pool
	kcfg    kafka.Config
	kcl     *kgo.Client
	store   *hold.Store
	r       *hold.Releaser
	project int64
}

func newReleaserEnv(t *testing.T, cfg hold.ReleaserConfig) *releaserEnv {
	t.Helper()
	_, pool := testenv.Postgres(t)
	kcfg, kcl := testenv.Kafka(t)
	projects := project.NewStore(pool)
	p, _, err := projects.Create(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	res, err := directory.NewResolver(pool, nil, projects, directory.Defaults(), nil, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(res.Close)
	prod, err := replay.NewProducer(kcfg, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	store := hold.NewStore(pool)
	r := hold.NewReleaser(store, res, prod, cfg, nil, testenv.Logger())
	return &releaserEnv{pool: pool, kcfg: kcfg, kcl: kcl, store: store, r: r, project: p.ID}
}

// hold produces a first attempt for email to the requests topic and holds it until expires.
func (e *releaserEnv) hold(t *testing.T, email string, expires time.Time) hold.Hold {
	t.Helper()
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7())
	now := time.Now()
	var h wire.RequestHeaders
	rec := &kgo.Record{Topic: e.kcfg.RequestsTopic, Key: []byte("wh"), Value: []byte(`{"email":"` + email + `"}`),
		Headers: h.Encode(&wire.Request{ID: id, WebhookID: "wh", ProjectID: e.project, ReceivedMs: now.UnixMilli(),
			ConfigVersion: 1, Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(email) + 12})}
	res := e.kcl.ProduceSync(ctx, rec)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := res[0].Record
	hd := hold.Hold{ProjectID: e.project, WebhookID: "wh", RequestID: id, Kind: identify.ByEmail, Values: []string{email},
		Partition: r.Partition, Offset: r.Offset, ReceivedAt: now, ExpiresAt: expires}
	if err := e.store.Insert(ctx, []hold.Hold{hd}); err != nil {
		t.Fatal(err)
	}
	return hd
}

// attempts reads the requests topic's attempts (records with attempt headers) until it has want.
func (e *releaserEnv) attempts(t *testing.T, want int) []wire.Request {
	t.Helper()
	cl, err := kafka.NewClient(e.kcfg, "test-attempts", kgo.ConsumeTopics(e.kcfg.RequestsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []wire.Request
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			var req wire.Request
			if bad := wire.DecodeRequest(r, &req); len(bad) == 0 && req.Attempt.Number > 0 {
				out = append(out, req)
			}
		})
	}
	return out
}

func (e *releaserEnv) state(t *testing.T, id uuid.UUID) string {
	t.Helper()
	h, ok, err := e.store.Get(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("hold of %s: %v, %v", id, ok, err)
	}
	return h.State
}

// TestReleaserPass: a pass produces the holds of a user who now exists (matched as the directory
// matches: ignoring the e-mail's case) as attempt 1 with cause release, in arrival order, and those past
// their expiry with cause expire; it leaves the others held, and marks what it produced. While another
// process holds the lease, a pass does nothing and keeps its work for the next.
func TestReleaserPass(t *testing.T) {
	e := newReleaserEnv(t, hold.ReleaserConfig{PollInterval: time.Minute, RescanInterval: time.Hour})
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	a1 := e.hold(t, "ann@example.com", later)
	a2 := e.hold(t, "Ann@Example.com", later)
	b := e.hold(t, "bob@example.com", later)
	x := e.hold(t, "gone@example.com", time.Now().Add(-time.Second))
	if _, err := e.pool.Exec(ctx, `INSERT INTO users (project_id, user_id, email) VALUES ($1, 'ann', 'ann@example.com')`, e.project); err != nil {
		t.Fatal(err)
	}

	// Another process's pass holds the lease.
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(1752132708, 0)`); err != nil {
		t.Fatal(err)
	}
	if got, err := e.r.Pass(ctx, time.Now()); err == nil || got != (hold.Passed{}) {
		t.Errorf("pass under another's lease: %+v, %v; want nothing done and an error", got, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	got, err := e.r.Pass(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got != (hold.Passed{Released: 2, Expired: 1}) {
		t.Errorf("pass: %+v; want 2 released, 1 expired", got)
	}
	atts := e.attempts(t, 3)
	if len(atts) != 3 {
		t.Fatalf("%d attempts; want 3", len(atts))
	}
	wantOrder := []struct {
		id    uuid.UUID
		cause replay.Cause
	}{{a1.RequestID, replay.CauseRelease}, {a2.RequestID, replay.CauseRelease}, {x.RequestID, replay.CauseExpire}}
	for i, w := range wantOrder {
		a := atts[i]
		if a.ID != w.id || a.Attempt.Number != 1 || a.Attempt.Cause != string(w.cause) || a.Attempt.ReplacesStatus != "held" ||
			a.Attempt.ReplacesReason != wire.ReasonWaitingForUser {
			t.Errorf("attempt %d: %s %+v; want %s, number 1, cause %s, replacing held/waiting_for_user", i, a.ID, a.Attempt, w.id, w.cause)
		}
	}
	for _, c := range []struct {
		h    hold.Hold
		want string
	}{{a1, hold.StateReleased}, {a2, hold.StateReleased}, {b, hold.StateHeld}, {x, hold.StateExpired}} {
		if s := e.state(t, c.h.RequestID); s != c.want {
			t.Errorf("hold of %s: %s; want %s", c.h.Values[0], s, c.want)
		}
	}
	// Nothing more is due: a second pass produces nothing.
	if got, err := e.r.Pass(ctx, time.Now()); err != nil || got != (hold.Passed{}) {
		t.Errorf("second pass: %+v, %v; want nothing", got, err)
	}
}

// TestReleaserWakesOnNotification: Run passes at start (a hold that ran out is expired at once) and
// again as soon as it is told a project's users changed, long before its poll interval (a minute).
func TestReleaserWakesOnNotification(t *testing.T) {
	e := newReleaserEnv(t, hold.ReleaserConfig{PollInterval: time.Minute, RescanInterval: time.Hour})
	ctx := context.Background()
	h := e.hold(t, "dan@example.com", time.Now().Add(time.Hour))
	old := e.hold(t, "old@example.com", time.Now().Add(-time.Second))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = e.r.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.WaitFor(t, "the first pass", 10*time.Second, func() bool { return e.state(t, old.RequestID) == hold.StateExpired })
	if s := e.state(t, h.RequestID); s != hold.StateHeld {
		t.Fatalf("dan's hold %s after the first pass; want held", s)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO users (project_id, user_id, email) VALUES ($1, 'dan', 'dan@example.com')`, e.project); err != nil {
		t.Fatal(err)
	}
	e.r.Changed("user:" + strconv.FormatInt(e.project, 10) + ":dan")
	testenv.WaitFor(t, "the hold released", 10*time.Second, func() bool { return e.state(t, h.RequestID) == hold.StateReleased })
}
