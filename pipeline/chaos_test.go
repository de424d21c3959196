package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/wire"
)

// TestChaosClickHouseDown stops the real ClickHouse while requests keep arriving: the pipeline must
// stop, retry, commit nothing, and once ClickHouse is back write everything exactly once by itself.
func TestChaosClickHouseDown(t *testing.T) {
	testenv.RequireChaos(t)
	e := newEnv(t)
	hooks, res := standardFixtures()
	batch := func(n int) []req {
		var reqs []req
		for i := range n {
			if i%4 == 0 {
				reqs = append(reqs, newReq("wh_uid", wire.OutcomeAccepted, `{"user_id":"nobody"}`))
			} else {
				reqs = append(reqs, newReq("wh_uid", wire.OutcomeAccepted, seedPayload))
			}
		}
		return reqs
	}
	cfg := testConfig()
	cfg.BatchRows = 50
	cfg.InsertTimeout = 5 * time.Second
	e.run(t, cfg, hooks, res, nil)
	e.produce(t, batch(100)...)
	e.waitCount(t, "SELECT count() FROM activity_log", 100, 60*time.Second)

	testenv.StopService(t, "clickhouse")
	e.produce(t, batch(300)...)
	time.Sleep(5 * time.Second) // the pipeline retries against a dead server meanwhile
	testenv.StartService(t, "clickhouse")

	e.waitCount(t, "SELECT count() FROM activity_log", 400, 120*time.Second)
	e.waitCount(t, "SELECT count() FROM events", 300, 30*time.Second)
	for q, want := range map[string]uint64{
		"SELECT uniqExact(request_id) FROM activity_log":  400,
		"SELECT uniqExact(event_id) FROM events":          300,
		"SELECT toUInt64(sum(hits)) FROM activity_minute": 400,
	} {
		if got := e.count(t, q); got != want {
			t.Errorf("%s = %d; want %d", q, got, want)
		}
	}
	_ = context.Background
}
