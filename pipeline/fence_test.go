package pipeline_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// stuckConn is ClickHouse with inserts that hang while stuck is set, like a connection to a server
// that has stopped answering: Send waits until its context ends (and sends nothing), or until release
// is closed (and then really sends).
type stuckConn struct {
	driver.Conn
	stuck   atomic.Bool
	hung    atomic.Int64 // Sends that hung
	release chan struct{}
}

func (c *stuckConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	b, err := c.Conn.PrepareBatch(ctx, query, opts...)
	if err != nil || !c.stuck.Load() {
		return b, err
	}
	return &stuckBatch{Batch: b, ctx: ctx, c: c}, nil
}

type stuckBatch struct {
	driver.Batch
	ctx context.Context
	c   *stuckConn
}

func (b *stuckBatch) Send() error {
	b.c.hung.Add(1)
	select {
	case <-b.ctx.Done():
		_ = b.Batch.Abort()
		return fmt.Errorf("insert hung (test): %w", b.ctx.Err())
	case <-b.c.release:
		return b.Batch.Send()
	}
}

// TestRebalanceFencesStuckConsumer: a consumer whose inserts hang holds up a rebalance when a second
// consumer joins. Kafka would remove it after its rebalance timeout and give its partitions to the
// newcomer; had it then gone on to insert its batch after the newcomer read the high-water marks, every
// row of that batch would be written twice. The stuck consumer abandons its batch after
// rebalance_grace instead, the rebalance completes, and once everything is unstuck each request is in
// activity_log and events exactly once.
func TestRebalanceFencesStuckConsumer(t *testing.T) {
	e := newEnv(t)
	hooksA, resA := standardFixtures()
	hooksB, resB := standardFixtures()
	// Twelve webhooks (the record key) spread the requests over the topic's partitions.
	var reqs []req
	for i := range 12 {
		id := fmt.Sprintf("wh_p%d", i)
		h := *must(hooksA.Get(context.Background(), "wh_uid"))
		h.PublicID = id
		hooksA.put(&h)
		hooksB.put(&h)
		for j := range 25 {
			reqs = append(reqs, newReq(id, wire.OutcomeAccepted, fmt.Sprintf(`{"user_id":"u%d","price":%d}`, j, j)))
		}
	}
	e.produce(t, reqs...)

	cfg := testConfig()
	cfg.RebalanceGrace = time.Second
	cfg.InsertTimeout = 3 * time.Second
	// Kafka removes a member that holds a rebalance for 5 s: without the fence, the stuck consumer
	// would be removed while its insert hangs.
	kopts := []kgo.Opt{kgo.RebalanceTimeout(5 * time.Second), kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}
	connA := &stuckConn{Conn: e.conn, release: make(chan struct{})}
	connA.stuck.Store(true)
	regA := prometheus.NewRegistry()
	e.runDeps(t, cfg, pipeline.Deps{ClickHouse: connA, Hooks: hooksA, Resolver: resA, Registry: regA, KafkaOpts: kopts})
	testenv.WaitFor(t, "consumer A's first insert to hang", 30*time.Second, func() bool { return connA.hung.Load() > 0 })

	// B joins with its directory down, so that it holds the partitions it gets after reading their
	// high-water marks (nothing written yet) and writes only when told.
	resB.down.Store(true)
	e.runDeps(t, cfg, pipeline.Deps{Hooks: hooksB, Resolver: resB, KafkaOpts: kopts})
	testenv.WaitFor(t, "consumer B to hold partitions", 30*time.Second, func() bool { return resB.calls.Load() > 0 })
	// Past A's rebalance timeout: without the fence, Kafka has removed A by now and B owns everything.
	time.Sleep(6 * time.Second)
	if n := sumMetric(t, regA, "inlet_pipeline_abandoned_batches_total"); n < 1 {
		t.Errorf("consumer A abandoned %v batches; want at least 1", n)
	}

	// A's inserts go through again (a hung one completes); then B's directory answers.
	connA.stuck.Store(false)
	close(connA.release)
	time.Sleep(2 * time.Second)
	resB.down.Store(false)

	want := uint64(len(reqs))
	e.waitCount(t, "SELECT uniqExact(request_id) FROM activity_log", want, 90*time.Second)
	e.waitCount(t, "SELECT uniqExact(event_id) FROM events", want, 30*time.Second)
	time.Sleep(3 * time.Second) // a late duplicate would land by now
	if got := e.count(t, "SELECT count() FROM activity_log"); got != want {
		t.Errorf("activity_log has %d rows for %d requests: duplicates", got, want)
	}
	if got := e.count(t, "SELECT count() FROM events"); got != want {
		t.Errorf("events has %d rows for %d requests: duplicates", got, want)
	}
	if got := e.count(t, "SELECT uniqExact(src_partition) FROM activity_log"); got < 2 {
		t.Errorf("the requests came from %d partitions; the test needs at least 2", got)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
