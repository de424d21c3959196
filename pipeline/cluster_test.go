package pipeline_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/pipeline"
)

// The cluster tests run against the local cluster's two ClickHouse replicas (deploy/cluster), never
// against the single-node stack: `make cluster-test` starts the cluster's services and runs them with
// INLET_CLICKHOUSE_CLUSTER, INLET_CLICKHOUSE_ADDRS, INLET_KAFKA_BROKERS (replication factor 3) and
// INLET_POSTGRES_DSN pointing at it.

// needCluster skips, saying why, unless the environment names a ClickHouse cluster of two replicas that
// answer; it returns one connection per replica to database db ("" for none).
func needCluster(t *testing.T, db string) []driver.Conn {
	t.Helper()
	cfg := testenv.ClickHouseConfig()
	if !cfg.Replicated() {
		t.Skip("needs the local cluster (deploy/cluster/up services) and INLET_CLICKHOUSE_CLUSTER: run `make cluster-test`")
	}
	if len(cfg.Addrs) < 2 {
		t.Skipf("needs two ClickHouse replicas in INLET_CLICKHOUSE_ADDRS, have %v", cfg.Addrs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if db == "" {
		cfg.Database = "default"
	} else {
		cfg.Database = db
	}
	replicas, err := chdb.OpenReplicas(ctx, cfg)
	if err != nil {
		t.Skipf("the local cluster's ClickHouse replicas %v do not answer (deploy/cluster/up services starts them): %v", cfg.Addrs, err)
	}
	t.Cleanup(func() {
		for _, r := range replicas {
			r.Close()
		}
	})
	return replicas
}

// countOn is a count on one replica.
func countOn(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestClusterKillOtherReplica: a pipeline that reads and inserts through replica 1 is killed (SIGKILL) at
// each failpoint of a flush — before the first insert, between the activity_log and events inserts, after
// both — and its successor reads the high-water marks, heals and inserts through replica 2 only. Every
// request is logged once and every event fired once, on both replicas: what the quorum insert put on
// replica 1 is on replica 2 when the successor reads, and replica 2's marks (sequentially consistent)
// say so.
func TestClusterKillOtherReplica(t *testing.T) {
	needCluster(t, "")
	cfg := testenv.ClickHouseConfig()
	for _, fp := range []string{pipeline.FailBeforeInsert, pipeline.FailBetweenInsert, pipeline.FailAfterInserts} {
		t.Run(fp, func(t *testing.T) {
			e := newEnv(t)
			replicas := needCluster(t, e.chcfg.Database)
			reqs, successes := crashWorkload()
			e.produce(t, reqs...)

			first := e.startChildEnv(t, fp, childCHAddrsEnv+"="+cfg.Addrs[0])
			st := waitExit(t, first, 90*time.Second)
			if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("first child ended with %v; want killed by SIGKILL at %s", st, fp)
			}
			// The inserts were quorum inserts of both replicas: replica 2 has them without waiting.
			activity := countOn(t, replicas[1], "SELECT count() FROM activity_log")
			events := countOn(t, replicas[1], "SELECT count() FROM events")
			t.Logf("after the kill at %s, replica 2 has %d activity rows, %d events rows", fp, activity, events)
			switch fp {
			case pipeline.FailBeforeInsert:
				if activity != 0 || events != 0 {
					t.Fatalf("killed before the first insert, yet %d activity and %d events rows", activity, events)
				}
			case pipeline.FailBetweenInsert:
				if activity == 0 || events != 0 {
					t.Fatalf("killed between the inserts: replica 2 has %d activity, %d events rows; want some activity, no events", activity, events)
				}
			case pipeline.FailAfterInserts:
				// The batch's events rows are all there, however many its requests fired (a first batch
				// may hold only one partition's records, of a webhook that fires none).
				fired := countOn(t, replicas[1], "SELECT toUInt64(sum(events_fired)) FROM activity_log")
				if activity == 0 || events != fired {
					t.Fatalf("killed after the inserts: replica 2 has %d activity rows that fired %d events, and %d events rows; want some activity and every event", activity, fired, events)
				}
			}

			second := e.startChildEnv(t, "", childCHAddrsEnv+"="+cfg.Addrs[1])
			waitOn(t, replicas[1], "SELECT count() FROM activity_log", uint64(len(reqs)), 90*time.Second)
			waitOn(t, replicas[1], "SELECT count() FROM events", uint64(successes), 30*time.Second)
			waitOn(t, replicas[1], "SELECT count() FROM notifications", 1, 30*time.Second)
			_ = second.Process.Signal(syscall.SIGTERM)
			if st := waitExit(t, second, 60*time.Second); !st.Success() {
				t.Errorf("second child ended with %v; want a clean exit", st)
			}
			for i, r := range replicas {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				for _, tb := range []string{"activity_log", "events", "notifications", "activity_minute"} {
					if err := r.Exec(ctx, "SYSTEM SYNC REPLICA "+tb); err != nil {
						t.Fatalf("replica %d: SYSTEM SYNC REPLICA %s: %v", i+1, tb, err)
					}
				}
				cancel()
				for _, q := range []struct {
					sql  string
					want uint64
				}{
					{"SELECT count() FROM activity_log", uint64(len(reqs))},
					{"SELECT uniqExact(request_id) FROM activity_log", uint64(len(reqs))},
					{"SELECT count() FROM events", uint64(successes)},
					{"SELECT uniqExact(event_id) FROM events", uint64(successes)},
					{"SELECT count() FROM notifications", 1},
					{"SELECT toUInt64(sum(hits)) FROM activity_minute", uint64(len(reqs))},
				} {
					if got := countOn(t, r, q.sql); got != q.want {
						t.Errorf("replica %d: %s = %d; want %d", i+1, q.sql, got, q.want)
					}
				}
			}
		})
	}
}

// waitOn polls a count on one replica until it is want, failing after timeout.
func waitOn(t *testing.T, conn driver.Conn, q string, want uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got uint64
	for time.Now().Before(deadline) {
		if got = countOn(t, conn, q); got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %d after %s; want %d", q, got, timeout, want)
}

// TestClusterFreezeGap: a pipeline frozen (SIGSTOP) after it decided to insert a batch and before the
// insert reached ClickHouse, for longer than its session timeout, while another member takes its
// partitions over and writes them through the other replica; then thawed and stopped. The thawed
// member's insert must land nothing: the new owner's claim fences it (chstore.Gate). Before the claims
// it doubled its batch (~20 rows) in about two runs of three. TestFreezeGap is the single server's.
func TestClusterFreezeGap(t *testing.T) {
	needCluster(t, "")
	cfg := testenv.ClickHouseConfig()
	e := newEnv(t)
	replicas := needCluster(t, e.chcfg.Database)
	freezeGap(t, e, replicas, []string{childCHAddrsEnv + "=" + cfg.Addrs[0]}, []string{childCHAddrsEnv + "=" + cfg.Addrs[1]})
}

// freezeGap runs the frozen-writer case: the first child (extra env first) stops at its first insert;
// the second (second) is started, and once the group has given it every partition the first is thawed
// and stopped. Every replica in conns must then hold each request once.
func freezeGap(t *testing.T, e *env, conns []driver.Conn, first, second []string) {
	reqs, _ := crashWorkload()
	e.produce(t, reqs...)

	a := e.startChildEnv(t, "stop@"+pipeline.FailBeforeInsert, append(first, childInstanceEnv+"=freeze-a")...)
	for deadline := time.Now().Add(60 * time.Second); !stopped(a.Process.Pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first child never stopped at its failpoint")
		}
	}
	b := e.startChildEnv(t, "", append(second, childInstanceEnv+"=freeze-b")...)
	// Thaw the first once the group has given every partition to the second (the frozen member's session
	// timed out): from then on the first member's writes are the ones the fence must stop. The second may
	// be waiting, rightly, for an insert the first had started before it froze.
	adm := kadm.NewClient(e.kcl)
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the group never gave every partition to the second child")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		groups, err := adm.DescribeGroups(ctx, e.group)
		cancel()
		if err != nil {
			continue
		}
		g := groups[e.group]
		n := 0
		others := false
		for _, m := range g.Members {
			id := ""
			if m.InstanceID != nil {
				id = *m.InstanceID
			}
			if id != "freeze-b" {
				others = true
				continue
			}
			if as, ok := m.Assigned.AsConsumer(); ok {
				for _, tp := range as.Topics {
					n += len(tp.Partitions)
				}
			}
		}
		if !others && n == e.kcfg.Partitions {
			break
		}
	}
	// Thawed, the first goes on from its failpoint to its INSERT, then learns from the group that it
	// lost its partitions, rejoins and takes some back: it is stopped only after every request is in.
	_ = a.Process.Signal(syscall.SIGCONT)
	last := conns[len(conns)-1]
	for deadline := time.Now().Add(90 * time.Second); countOn(t, last, "SELECT uniqExact(request_id) FROM activity_log") < uint64(len(reqs)); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second child did not log every request within 90 s")
		}
	}
	for _, c := range []*exec.Cmd{a, b} {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range []*exec.Cmd{a, b} {
		if st := waitExit(t, c, 60*time.Second); !st.Success() {
			t.Errorf("child ended with %v; want a clean exit", st)
		}
	}
	for i, r := range conns {
		if len(conns) > 1 {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err := r.Exec(ctx, "SYSTEM SYNC REPLICA activity_log")
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		}
		rows := countOn(t, r, "SELECT count() FROM activity_log")
		ids := countOn(t, r, "SELECT uniqExact(request_id) FROM activity_log")
		hits := countOn(t, r, "SELECT toUInt64(sum(hits)) FROM activity_minute")
		if rows != uint64(len(reqs)) || ids != uint64(len(reqs)) || hits != uint64(len(reqs)) {
			t.Errorf("ClickHouse %d: %d activity rows for %d distinct requests, the rollup counts %d; want %d each (%d duplicated by the thawed writer)",
				i+1, rows, ids, hits, len(reqs), int64(rows)-int64(ids))
		}
	}
}

// stopped reports whether the process is stopped (state T in /proc/<pid>/stat).
func stopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'T'
}
