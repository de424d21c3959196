package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/hold"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// The crash tests run the pipeline in a child process (this test binary, re-executed) so that a real
// SIGKILL can hit it at a failpoint. The child reads where to work from these variables.
const (
	childEnv         = "INLET_PIPELINE_TEST_CHILD"
	childRequestsEnv = "INLET_PIPELINE_TEST_REQUESTS"
	childEventsEnv   = "INLET_PIPELINE_TEST_EVENTS"
	childDatabaseEnv = "INLET_PIPELINE_TEST_DATABASE"
	childGroupEnv    = "INLET_PIPELINE_TEST_GROUP"
	childPostgresEnv = "INLET_PIPELINE_TEST_POSTGRES" // the delivery store's database; "" for none
	// childCHAddrsEnv, when set, are the ClickHouse addresses the child reads and inserts through (one
	// replica of a cluster, say); running inserts are still looked up on every replica.
	childCHAddrsEnv = "INLET_PIPELINE_TEST_CH_ADDRS"
	// childInstanceEnv, when set, is the child's static group member id (default kill-test-child).
	childInstanceEnv = "INLET_PIPELINE_TEST_INSTANCE"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	if os.Getenv(replayChildEnv) == "1" {
		os.Exit(runReplayChild())
	}
	code := m.Run()
	testenv.RemoveInlet()
	os.Exit(code)
}

func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	kcfg := testenv.KafkaConfig()
	kcfg.RequestsTopic = os.Getenv(childRequestsEnv)
	kcfg.EventsTopic = os.Getenv(childEventsEnv)
	all := testenv.ClickHouseConfig()
	all.Database = os.Getenv(childDatabaseEnv)
	chcfg := all
	if a := os.Getenv(childCHAddrsEnv); a != "" {
		chcfg.Addrs = strings.Split(a, ",")
	}
	conn, err := chdb.Open(ctx, chcfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	defer conn.Close()
	var replicas []driver.Conn
	if all.Replicated() {
		if replicas, err = chdb.OpenReplicas(ctx, all); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		defer func() {
			for _, r := range replicas {
				r.Close()
			}
		}()
	}
	var deliveries pipeline.Deliveries
	var holds pipeline.Holds
	if dsn := os.Getenv(childPostgresEnv); dsn != "" {
		pgcfg := testenv.PostgresConfig()
		pgcfg.DSN = dsn
		pool, err := pgdb.Open(ctx, pgcfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		defer pool.Close()
		deliveries = delivery.NewStore(pool)
		holds = hold.NewStore(pool)
	}
	hooks, res := standardFixtures()
	cfg := testConfig()
	cfg.Group = os.Getenv(childGroupEnv)
	cfg.BatchRows = 40
	// A restarted child takes its predecessor's place at once (static membership) instead of waiting
	// for the dead member's session to time out.
	cfg.InstanceID = "kill-test-child"
	if id := os.Getenv(childInstanceEnv); id != "" {
		cfg.InstanceID = id
	}
	cfg.SessionTimeout = 6 * time.Second
	p, err := pipeline.New(cfg, pipeline.Deps{
		Kafka: kcfg, ClickHouse: conn, ClickHouseReplicas: replicas, InsertQuorum: all.Quorum(),
		Hooks: hooks, Resolver: res, Deliveries: deliveries, Holds: holds,
		Registry: prometheus.NewRegistry(), Logger: testenv.Logger(),
		Failpoint: pipeline.FailpointFromEnv(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if err := p.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// startChild runs the pipeline in a child process; failpoint "" runs it without one.
func (e *env) startChild(t *testing.T, failpoint string) *exec.Cmd {
	t.Helper()
	return e.startChildEnv(t, failpoint)
}

// startChildEnv is startChild with more variables (NAME=value) for the child.
func (e *env) startChildEnv(t *testing.T, failpoint string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		childRequestsEnv+"="+e.kcfg.RequestsTopic,
		childEventsEnv+"="+e.kcfg.EventsTopic,
		childDatabaseEnv+"="+e.chcfg.Database,
		childGroupEnv+"="+e.group,
		childPostgresEnv+"="+e.pgcfg.DSN,
		pipeline.FailpointEnv+"="+failpoint,
	)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// waitExit waits for the child and returns how it ended.
func waitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration) *os.ProcessState {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("child did not exit within %s", timeout)
		return nil
	}
}

// crashWorkload is 200 requests over the three partitions: successes, business failures, edge
// failures and a streak of auth failures, so every table gets rows.
func crashWorkload() (reqs []req, successes int) {
	for i := range 200 {
		var r req
		switch {
		case i%10 == 3:
			r = newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"nobody"}`)
		case i%10 == 6:
			r = newReq("wh_strict", wire.OutcomeAccepted, seedPayload)
		case i >= 100 && i < 110:
			r = newReq("wh_email", wire.OutcomeAuthRejected, ``)
		default:
			r = newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"u`+strconv.Itoa(i%50)+`","price":`+strconv.Itoa(i)+`.5}`)
			successes++
		}
		reqs = append(reqs, r)
	}
	return reqs, successes
}

func TestKillAtFailpoints(t *testing.T) {
	for _, fp := range []string{pipeline.FailBeforeInsert, pipeline.FailBetweenInsert, pipeline.FailAfterInserts} {
		t.Run(fp, func(t *testing.T) {
			e := newEnv(t)
			reqs, successes := crashWorkload()
			e.produce(t, reqs...)

			first := e.startChild(t, fp)
			st := waitExit(t, first, 90*time.Second)
			if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("first child ended with %v; want killed by SIGKILL at %s", st, fp)
			}
			activity := e.count(t, "SELECT count() FROM activity_log")
			events := e.count(t, "SELECT count() FROM events")
			t.Logf("after the kill at %s: %d activity rows, %d events rows", fp, activity, events)
			switch fp {
			case pipeline.FailBeforeInsert:
				if activity != 0 || events != 0 {
					t.Fatalf("killed before the first insert, yet %d activity and %d events rows", activity, events)
				}
			case pipeline.FailBetweenInsert:
				if activity == 0 || events != 0 {
					t.Fatalf("killed between the inserts: %d activity, %d events rows; want some activity, no events", activity, events)
				}
			case pipeline.FailAfterInserts:
				// The batch's events rows are all there, however many its requests fired (a first batch
				// may hold only one partition's records, of a webhook that fires none).
				fired := e.count(t, "SELECT toUInt64(sum(events_fired)) FROM activity_log")
				if activity == 0 || events != fired {
					t.Fatalf("killed after the inserts: %d activity rows that fired %d events, and %d events rows; want some activity and every event", activity, fired, events)
				}
			}

			second := e.startChild(t, "")
			e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 90*time.Second)
			e.waitCount(t, "SELECT count() FROM events", uint64(successes), 30*time.Second)
			e.waitCount(t, "SELECT count() FROM notifications", 1, 30*time.Second)
			_ = second.Process.Signal(syscall.SIGTERM)
			if st := waitExit(t, second, 60*time.Second); !st.Success() {
				t.Errorf("second child ended with %v; want a clean exit", st)
			}

			for _, q := range []struct {
				sql  string
				want uint64
			}{
				{"SELECT uniqExact(request_id) FROM activity_log", uint64(len(reqs))},
				{"SELECT count() FROM activity_log", uint64(len(reqs))},
				{"SELECT uniqExact(event_id) FROM events", uint64(successes)},
				{"SELECT count() FROM events", uint64(successes)},
				{"SELECT count() FROM activity_log WHERE status = 'success'", uint64(successes)},
				{"SELECT count() FROM notifications", 1},
				{"SELECT toUInt64(sum(hits)) FROM activity_minute", uint64(len(reqs))},
			} {
				if got := e.count(t, q.sql); got != q.want {
					t.Errorf("%s = %d; want %d", q.sql, got, q.want)
				}
			}
			// webhooks.events is at least once: a kill before the inserts re-fires, but every event id
			// is there and no other.
			evs := e.events(t, successes, 30*time.Second)
			ids := map[string]bool{}
			for _, r := range evs {
				ev, err := wire.DecodeEvent(r)
				if err != nil {
					t.Fatal(err)
				}
				ids[ev.EventID] = true
			}
			if len(ids) != successes || len(evs) < successes {
				t.Errorf("events topic: %d records with %d distinct ids; want ≥%d records with exactly %d ids", len(evs), len(ids), successes, successes)
			}
			t.Logf("events topic: %d records, %d distinct event ids", len(evs), len(ids))
		})
	}
}

// fanOutWorkload is 60 orders of 10 line items each over the partitions, every fifth with one line
// item whose quantity does not map (that element fails, the other nine fire), every seventh for an
// unknown user (none fires), and plain requests between them. It returns the event ids that must be in
// ClickHouse, each exactly once.
func fanOutWorkload() (reqs []req, want map[string]bool) {
	want = map[string]bool{}
	for i := range 60 {
		user := "u" + strconv.Itoa(i%50)
		if i%7 == 0 {
			user = "nobody"
		}
		items := ""
		for j := range 10 {
			qty := strconv.Itoa(j + 1)
			if i%5 == 0 && j == 4 {
				qty = `"four"`
			}
			if j > 0 {
				items += ","
			}
			items += `{"sku":"SKU-` + strconv.Itoa(j) + `","quantity":` + qty + `}`
		}
		r := newReq("wh_fan", wire.OutcomeAccepted, `{"user_id":"`+user+`","order_number":"O-`+strconv.Itoa(i)+`","line_items":[`+items+`]}`)
		reqs = append(reqs, r)
		for j := range 10 {
			if user != "nobody" && (i%5 != 0 || j != 4) {
				want[wire.ElementEventID(r.id, j).String()] = true
			}
		}
		if i%3 == 0 {
			p := newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"`+user+`","price":1.5}`)
			reqs = append(reqs, p)
			if user != "nobody" {
				want[p.id.String()] = true
			}
		}
	}
	return reqs, want
}

// TestKillMidFanOut: a pipeline killed (SIGKILL) at each failpoint while batches hold fan-outs leaves,
// after a restart, every element's event in ClickHouse exactly once, with its derived id, and every
// request logged once with the events it fired.
func TestKillMidFanOut(t *testing.T) {
	for _, fp := range []string{pipeline.FailBeforeInsert, pipeline.FailBetweenInsert, pipeline.FailAfterInserts} {
		t.Run(fp, func(t *testing.T) {
			e := newEnv(t)
			reqs, want := fanOutWorkload()
			e.produce(t, reqs...)

			first := e.startChild(t, fp)
			st := waitExit(t, first, 90*time.Second)
			if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("first child ended with %v; want killed by SIGKILL at %s", st, fp)
			}
			t.Logf("after the kill at %s: %d activity rows, %d events rows", fp,
				e.count(t, "SELECT count() FROM activity_log"), e.count(t, "SELECT count() FROM events"))

			second := e.startChild(t, "")
			e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 90*time.Second)
			e.waitCount(t, "SELECT count() FROM events", uint64(len(want)), 30*time.Second)
			_ = second.Process.Signal(syscall.SIGTERM)
			if st := waitExit(t, second, 60*time.Second); !st.Success() {
				t.Errorf("second child ended with %v; want a clean exit", st)
			}
			for _, q := range []struct {
				sql  string
				want uint64
			}{
				{"SELECT count() FROM activity_log", uint64(len(reqs))},
				{"SELECT uniqExact(request_id) FROM activity_log", uint64(len(reqs))},
				{"SELECT count() FROM events", uint64(len(want))},
				{"SELECT uniqExact(event_id) FROM events", uint64(len(want))},
				{"SELECT sum(events_fired) FROM activity_log", uint64(len(want))},
				{"SELECT count() FROM activity_log WHERE webhook_id = 'wh_fan' AND status = 'failed' AND events_fired = 9", 10},
			} {
				if got := e.count(t, q.sql); got != q.want {
					t.Errorf("%s = %d; want %d", q.sql, got, q.want)
				}
			}
			rows, err := e.conn.Query(context.Background(), "SELECT toString(event_id) FROM events")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				if !want[id] {
					t.Errorf("events has %s, no event the workload fires", id)
				}
			}
		})
	}
}

var _ = errors.New

// TestKillBetweenHoldAndRows: a kill -9 after a batch's holds are written and before its rows are
// inserted redoes the batch, which finds its holds: each held request has one activity row, held, and
// one hold; the other requests are written as usual.
func TestKillBetweenHoldAndRows(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	ctx := context.Background()
	if _, _, err := project.NewStore(e.pool).Create(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	var reqs []req
	var waiting []uuid.UUID
	for i := range 30 {
		r := newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"u`+strconv.Itoa(i%50)+`","price":1}`)
		if i%3 == 0 {
			r = newReq("wh_hold", wire.OutcomeAccepted, `{"user_id":"later-`+strconv.Itoa(i)+`"}`)
			waiting = append(waiting, r.id)
		}
		reqs = append(reqs, r)
	}
	e.produce(t, reqs...)
	first := e.startChild(t, pipeline.FailBeforeInsert)
	st := waitExit(t, first, 90*time.Second)
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("first child ended with %v; want killed by SIGKILL before the inserts", st)
	}
	var holds int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM held_requests`).Scan(&holds); err != nil || holds == 0 {
		t.Fatalf("after the kill: %d holds (%v); want the first batch's", holds, err)
	}
	if n := e.count(t, "SELECT count() FROM activity_log"); n != 0 {
		t.Fatalf("killed before the inserts, yet %d activity rows", n)
	}
	second := e.startChild(t, "")
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 90*time.Second)
	_ = second.Process.Signal(syscall.SIGTERM)
	if st := waitExit(t, second, 60*time.Second); !st.Success() {
		t.Errorf("second child ended with %v; want a clean exit", st)
	}
	if n := e.count(t, "SELECT count() FROM activity_log WHERE status = 'held'"); n != uint64(len(waiting)) {
		t.Errorf("%d held rows; want %d", n, len(waiting))
	}
	if n := e.count(t, "SELECT uniqExact(request_id) FROM activity_log"); n != uint64(len(reqs)) {
		t.Errorf("%d requests logged; want %d, each once", n, len(reqs))
	}
	var ids []uuid.UUID
	rows, err := e.pool.Query(ctx, `SELECT request_id FROM held_requests`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	slices.SortFunc(waiting, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(ids, waiting) {
		t.Errorf("holds %v; want one per held request %v", ids, waiting)
	}
}

// TestFreezeGap: on a single ClickHouse server, a pipeline frozen between deciding to insert a batch
// and its INSERT, past its session timeout, and thawed after another member wrote its partitions,
// inserts nothing a second time (freezeGap; TestClusterFreezeGap is the cluster's).
func TestFreezeGap(t *testing.T) {
	e := newEnv(t)
	if e.chcfg.Replicated() {
		t.Skip("the single server's case; TestClusterFreezeGap is the cluster's")
	}
	freezeGap(t, e, []driver.Conn{e.conn}, nil, nil)
}
