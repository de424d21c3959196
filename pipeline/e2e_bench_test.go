package pipeline_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/wire"
)

// BenchmarkEndToEnd pushes b.N seed-payload requests through the real Kafka, the pipeline and the real
// ClickHouse, from the first produce to the last activity row being visible (the consumer group is
// joined before the clock starts). Kafka producing runs concurrently and shares the machine.
func BenchmarkEndToEnd(b *testing.B) {
	e := newEnv(b)
	hooks, res := standardFixtures()
	cfg := testConfig()
	cfg.BatchRows = 20000
	cfg.FlushInterval = time.Second
	stop := e.run(b, cfg, hooks, res, nil)
	defer stop()
	e.produce(b, newReq("wh_uid", wire.OutcomeAccepted, seedPayload))
	e.waitCount(b, "SELECT count() FROM activity_log", 1, 60*time.Second)

	reqs := make([]req, b.N)
	for i := range reqs {
		reqs[i] = newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"u`+strconv.Itoa(i%50)+`","email_address":"jane@example.com","purchase_date":"2024-03-15","order_number":"ORD-001","price":99.99}`)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for start := 0; start < len(reqs); start += 10000 {
		e.produce(b, reqs[start:min(start+10000, len(reqs))]...)
	}
	e.waitCount(b, "SELECT count() FROM activity_log", uint64(b.N+1), 10*time.Minute)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
