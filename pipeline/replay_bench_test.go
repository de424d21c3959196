package pipeline_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// BenchmarkReplay100k measures a replay job of 100,000 failed requests on the real stack: the runner's
// throughput (requests produced per second, from the job's creation to its end) and its peak heap, then
// the pipeline's throughput running the attempts. The failed first attempts are set up directly: their
// records produced to Kafka and their activity rows (user_not_found) inserted with the records' positions.
// Run it alone: go test ./pipeline -run '^$' -bench BenchmarkReplay100k -benchtime 1x
func BenchmarkReplay100k(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("INLET_REPLAY_BENCH_N")); err == nil && v > 0 {
		n = v // a shorter run while working on it
	}
	e := newEnv(b)
	e.withDeliveries(b)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO projects (name) VALUES ('bench')`); err != nil {
		b.Fatal(err)
	}
	hooks, res := standardFixtures()
	start := time.Now().Add(-time.Minute)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		r := newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"u`+strconv.Itoa(i%50)+`","price":`+strconv.Itoa(i)+`,"order_number":"ORD-`+strconv.Itoa(i)+`"}`)
		r.receivedMs = start.UnixMilli() + int64(i/100)
		recs[i] = r.record(e.kcfg.RequestsTopic)
	}
	if err := e.kcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	rows := make([]chstore.ActivityRow, n)
	for i, rec := range recs {
		var req wire.Request
		wire.DecodeRequest(rec, &req)
		rows[i] = chstore.ActivityRow{ProjectID: 1, WebhookID: "wh_uid", RequestID: req.ID, ReceivedAt: time.UnixMilli(req.ReceivedMs).UTC(),
			ReceivedMs: uint64(req.ReceivedMs), Status: chstore.StatusFailed, Reason: wire.ReasonUserNotFound, EdgeStatus: 202,
			Partition: rec.Partition, Offset: rec.Offset, Payload: string(rec.Value), PayloadBytes: uint32(len(rec.Value))}
	}
	if err := chstore.NewWriter(e.conn).InsertActivity(ctx, rows); err != nil {
		b.Fatal(err)
	}
	recs, rows = nil, nil
	runtime.GC()

	reader := chstore.NewReader(e.conn)
	filter := replay.Filter{WebhookID: "wh_uid", Since: start.Add(-time.Minute), Until: time.Now().Add(time.Minute)}
	total, err := reader.CountReplayable(ctx, chstore.ReplayQuery{ProjectID: 1, WebhookID: "wh_uid", SinceMs: filter.Since.UnixMilli(), UntilMs: filter.Until.UnixMilli()})
	if err != nil || total != uint64(n) {
		b.Fatalf("replayable %d, %v; want %d", total, err, n)
	}
	jobs := replay.NewStore(e.pool)
	prod, err := replay.NewProducer(e.kcfg, testenv.Logger())
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	runner := replay.NewRunner(replay.RunnerConfig{Owner: "bench", Poll: 50 * time.Millisecond}, jobs, reader, prod, testenv.Logger())

	var peak atomic.Uint64
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	sampling := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-sampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	b.ResetTimer()
	began := time.Now()
	job, err := jobs.Create(ctx, 1, filter, int64(total))
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Run(rctx) }()
	for {
		j, err := jobs.Get(ctx, 1, job.ID)
		if err != nil {
			b.Fatal(err)
		}
		if j.State == replay.StateDone {
			if j.Produced != int64(n) {
				b.Fatalf("job done with %d produced; want %d", j.Produced, n)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	produced := time.Since(began)
	cancel()
	<-done
	close(sampling)
	b.ReportMetric(float64(n)/produced.Seconds(), "produced_req/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "runner_peak_heap_MiB")
	b.ReportMetric(float64(base.HeapInuse)/(1<<20), "heap_before_MiB")

	// The pipeline runs the attempts (their users exist in the fixtures: every one succeeds).
	began = time.Now()
	stop := e.runDeps(b, testConfig(), pipeline.Deps{Hooks: hooks, Resolver: res})
	e.waitCount(b, "SELECT count() FROM activity_log WHERE attempt = 1 AND status = 'success'", uint64(n), 10*time.Minute)
	ran := time.Since(began)
	stop()
	b.ReportMetric(float64(n)/ran.Seconds(), "pipeline_attempts/s")
}
