package pipeline_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// A replay runner child process (TestBulkReplayKilled): it runs replay jobs and, after producing its
// second page and before saving the position after it, says so on stdout and waits to be killed.
const (
	replayChildEnv = "INLET_REPLAY_TEST_CHILD"
	replayStopLine = "REPLAY CHILD: page 2 produced"
)

func runReplayChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	kcfg := testenv.KafkaConfig()
	kcfg.RequestsTopic = os.Getenv(childRequestsEnv)
	kcfg.EventsTopic = os.Getenv(childEventsEnv)
	chcfg := testenv.ClickHouseConfig()
	chcfg.Database = os.Getenv(childDatabaseEnv)
	conn, err := chdb.Open(ctx, chcfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replay child:", err)
		return 1
	}
	defer conn.Close()
	pgcfg := testenv.PostgresConfig()
	pgcfg.DSN = os.Getenv(childPostgresEnv)
	pool, err := pgdb.Open(ctx, pgcfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replay child:", err)
		return 1
	}
	defer pool.Close()
	prod, err := replay.NewProducer(kcfg, testenv.Logger())
	if err != nil {
		fmt.Fprintln(os.Stderr, "replay child:", err)
		return 1
	}
	defer prod.Close()
	r := replay.NewRunner(bulkRunnerConfig("child"), replay.NewStore(pool), chstore.NewReader(conn), prod, testenv.Logger())
	r.SetAfterProduce(func(page int) {
		if page == 2 {
			fmt.Println(replayStopLine)
			<-ctx.Done() // killed here: page 2 produced, its position not saved
		}
	})
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "replay child:", err)
		return 1
	}
	return 0
}

func bulkRunnerConfig(owner string) replay.RunnerConfig {
	return replay.RunnerConfig{Owner: owner, Lease: 2 * time.Second, PageSize: 40, Poll: 100 * time.Millisecond}
}

// TestBulkReplayKilled: a webhook's mapping fails 160 requests (attribute_type_mismatch) among
// successes; the mapping is fixed and a replay job of its failures is started. The runner, a child
// process, is killed with SIGKILL after producing its second page and before saving its position;
// another runner takes the job over once the lease has expired and finishes it. Every failure is now a
// success: each request has exactly one later attempt, each event id is on the events topic once, the
// job says what it produced, and the summary counts every request once, as a success.
func TestBulkReplayKilled(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	hooks := &fakeHooks{}
	broken := &webhook.Hook{PublicID: "wh_bulk", ProjectID: 1, Enabled: true, Version: 1, EventName: "Order",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		Mappings: []webhook.TypedMapping{{Attribute: "qty", Type: webhook.TypeInteger, Field: "qty"}}}
	hooks.put(broken)
	_, res := standardFixtures()
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO projects (name) VALUES ('bulk')`); err != nil {
		t.Fatal(err)
	}
	var reqs []req
	failing := map[uuid.UUID]bool{}
	for i := range 200 {
		qty := `"` + strconv.Itoa(i) + ` pcs"` // not an integer until the mapping says string
		if i%5 == 0 {
			qty = strconv.Itoa(i)
		}
		r := newReq("wh_bulk", wire.OutcomeAccepted, `{"user_id":"u`+strconv.Itoa(i%50)+`","qty":`+qty+`}`)
		if i%5 != 0 {
			failing[r.id] = true
		}
		reqs = append(reqs, r)
	}
	e.produce(t, reqs...)
	cfg := testConfig()
	stop := e.runDeps(t, cfg, pipeline.Deps{Hooks: hooks, Resolver: res})
	e.waitCount(t, "SELECT count() FROM activity_log", 200, 60*time.Second)
	// The pipeline is stopped while the first runner runs: the attempts of its second page are still
	// waiting in Kafka when the second runner produces them again.
	stop()
	if n := e.count(t, "SELECT count() FROM activity_log WHERE reason = 'attribute_type_mismatch'"); n != uint64(len(failing)) {
		t.Fatalf("%d failures; want %d", n, len(failing))
	}

	fixed := *broken
	fixed.Version = 2
	fixed.Mappings = []webhook.TypedMapping{{Attribute: "qty", Type: webhook.TypeString, Field: "qty"}}
	hooks.put(&fixed)

	ctx := context.Background()
	reader := chstore.NewReader(e.conn)
	filter := replay.Filter{WebhookID: "wh_bulk", Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Minute), Reason: wire.ReasonAttributeTypeMismatch}
	total, err := reader.CountReplayable(ctx, chstore.ReplayQuery{ProjectID: 1, WebhookID: "wh_bulk", SinceMs: filter.Since.UnixMilli(), UntilMs: filter.Until.UnixMilli(), Reason: filter.Reason})
	if err != nil || total != uint64(len(failing)) {
		t.Fatalf("replayable count %d, %v; want %d", total, err, len(failing))
	}
	jobs := replay.NewStore(e.pool)
	job, err := jobs.Create(ctx, 1, filter, int64(total))
	if err != nil {
		t.Fatal(err)
	}

	// The first runner, killed after producing page 2.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), replayChildEnv+"=1", childRequestsEnv+"="+e.kcfg.RequestsTopic, childEventsEnv+"="+e.kcfg.EventsTopic,
		childDatabaseEnv+"="+e.chcfg.Database, childPostgresEnv+"="+e.pgcfg.DSN)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	stopped := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), replayStopLine) {
				stopped <- true
				return
			}
		}
		stopped <- false
	}()
	select {
	case ok := <-stopped:
		if !ok {
			t.Fatal("the replay child exited before its second page")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the replay child did not produce its second page within 60s")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	mid, err := jobs.Get(ctx, 1, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A page is 40 requests in receive order, every fifth a success: 32 failures each.
	if mid.State != replay.StateRunning || mid.Produced != 32 {
		t.Errorf("after the kill: state %s, produced %d; want running, the first page's 32 saved", mid.State, mid.Produced)
	}

	// Another runner takes the job over when the lease has expired and finishes it; then the pipeline
	// runs again, and finds page 2's attempts twice.
	prod := newProducer(t, e)
	rctx, cancel := context.WithCancel(ctx)
	runner := replay.NewRunner(bulkRunnerConfig("second"), jobs, reader, prod, testenv.Logger())
	done := make(chan error, 1)
	go func() { done <- runner.Run(rctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		j, err := jobs.Get(ctx, 1, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == replay.StateDone {
			if j.Produced != int64(len(failing)) || j.Expired+j.Truncated+j.Skipped != 0 {
				t.Errorf("job done: %+v; want %d produced, nothing else", j, len(failing))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not done within 90s: %+v", j)
		}
		time.Sleep(100 * time.Millisecond)
	}
	reg := prometheus.NewRegistry()
	stop = e.runDeps(t, cfg, pipeline.Deps{Hooks: hooks, Resolver: res, Registry: reg})
	defer stop()
	e.waitCount(t, "SELECT count() FROM activity_log WHERE attempt = 1", uint64(len(failing)), 60*time.Second)
	deadline = time.Now().Add(30 * time.Second)
	for sumMetric(t, reg, "inlet_pipeline_attempt_copies_total") < 32 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if n := sumMetric(t, reg, "inlet_pipeline_attempt_copies_total"); n != 32 {
		t.Errorf("%v attempt copies dropped; want 32 (page 2's, produced by both runners)", n)
	}

	if n := e.count(t, "SELECT count() FROM (SELECT request_id FROM activity_log GROUP BY request_id HAVING count() != if(argMax(attempt, attempt) = 1, 2, 1) OR max(attempt) > 1)"); n != 0 {
		t.Errorf("%d requests with other rows than one first attempt and at most one replay", n)
	}
	if n := e.count(t, "SELECT count() FROM activity_log WHERE attempt = 1 AND (status != 'success' OR attempt_job != '"+job.ID+"' OR replaces_reason != 'attribute_type_mismatch')"); n != 0 {
		t.Errorf("%d replayed requests not a success of the job replacing attribute_type_mismatch", n)
	}
	rows := e.count(t, "SELECT count() FROM activity_log WHERE attempt = 1")
	if rows != uint64(len(failing)) {
		t.Errorf("%d replays; want %d", rows, len(failing))
	}
	ids := eventIDs(t, e, len(reqs))
	for _, r := range reqs {
		if ids[r.id.String()] != 1 {
			t.Errorf("event %s on the topic %d times; want once", r.id, ids[r.id.String()])
		}
	}
	if len(ids) != len(reqs) {
		t.Errorf("%d distinct events; want %d", len(ids), len(reqs))
	}
	s, err := reader.Summary24h(ctx, 1, "wh_bulk", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s.Hits != 200 || s.Success != 200 || s.Failed != 0 {
		t.Errorf("summary %+v; want 200 hits, all successes", s)
	}
	j, err := jobs.Get(ctx, 1, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := reader.JobOutcomes(ctx, 1, "wh_bulk", job.ID, filter.Since.UnixMilli(), filter.Until.UnixMilli())
	if err != nil || outs[chstore.StatusSuccess] != uint64(j.Total) {
		t.Errorf("job outcomes %v, %v; want %d successes", outs, err, j.Total)
	}
}

// erasedUsers says the users in it were erased after every request.
type erasedUsers map[string]bool

func (e erasedUsers) Erased(_ context.Context, _ int64, kind identify.Kind, value string, _ time.Time) (bool, error) {
	return kind == identify.ByUserID && e[value], nil
}

// TestReplayJobRefusesErased: a replay job does not run a request whose subject was erased since it
// came (erasure.Store in production): it is counted skipped and never produced.
func TestReplayJobRefusesErased(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	hooks, _ := standardFixtures()
	res := &lockedResolver{users: map[string]pipeline.Subject{}}
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO projects (name) VALUES ('erased')`); err != nil {
		t.Fatal(err)
	}
	reqs := []req{newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"gone"}`), newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"kept"}`)}
	e.produce(t, reqs...)
	stop := e.runDeps(t, testConfig(), pipeline.Deps{Hooks: hooks, Resolver: res})
	e.waitCount(t, "SELECT count() FROM activity_log WHERE reason = 'user_not_found'", 2, 60*time.Second)
	ctx := context.Background()
	jobs := replay.NewStore(e.pool)
	job, err := jobs.Create(ctx, 1, replay.Filter{WebhookID: "wh_uid", Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Minute)}, 2)
	if err != nil {
		t.Fatal(err)
	}
	runner := replay.NewRunner(bulkRunnerConfig("erasing"), jobs, chstore.NewReader(e.conn), newProducer(t, e), testenv.Logger())
	runner.SetErased(erasedUsers{"gone": true})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Run(rctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := jobs.Get(ctx, 1, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == replay.StateDone {
			if j.Produced != 1 || j.Skipped != 1 {
				t.Errorf("job %+v; want 1 produced, 1 skipped (erased)", j)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not done: %+v", j)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.waitCount(t, "SELECT count() FROM activity_log WHERE attempt = 1", 1, 60*time.Second)
	stop()
	if got := e.attempts(t, reqs[0].id); len(got) != 1 {
		t.Errorf("the erased user's request has %d rows; want its first attempt only", len(got))
	}
}
