package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/wire"
)

// TestUnknownUserCreateConcurrentPipelines: two processors — two pipelines, each with its own
// Resolver and cache, as two processes have — handle polls for the same new users at the same time on
// the real PostgreSQL. Each user is created once, every request fires with it, and exactly one request
// of the two pipelines says it created it.
func TestUnknownUserCreateConcurrentPipelines(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	_, pool := testenv.Postgres(t)
	projects := project.NewStore(pool)
	p, _, err := projects.Create(context.Background(), "shop")
	if err != nil || p.ID != 1 {
		t.Fatalf("project %d, %v; the records carry project 1", p.ID, err)
	}
	procs := make([]*processor, 2)
	for i := range procs {
		res, err := directory.NewResolver(pool, nil, projects, directory.Defaults(), prometheus.NewRegistry(), testenv.Logger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(res.Close)
		procs[i], _ = unitProcessor(t)
		procs[i].resolver, procs[i].creator = res, res
		procs[i].hooks = mapHooks{"wh_1": createHook(true)}
	}
	const users = 20
	now := time.Now().UnixMilli()
	polls := make([][]*kgo.Record, len(procs))
	for i := range polls {
		for u := range users {
			polls[i] = append(polls[i], unitRecord(int64(u), wire.OutcomeAccepted, fmt.Sprintf(`{"email_address":"user%d@example.com","price":1}`, u), now))
		}
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, len(procs))
	for i, pr := range procs {
		wg.Go(func() {
			<-start
			errs[i] = pr.handle(context.Background(), fetches(polls[i]...))
		})
	}
	close(start)
	wg.Wait()
	created := map[string]int{}
	for i, pr := range procs {
		if errs[i] != nil {
			t.Fatalf("pipeline %d: %v", i, errs[i])
		}
		for u, row := range pr.b.activity {
			want := fmt.Sprintf("email:user%d@example.com", u)
			if row.Status != chstore.StatusSuccess || row.UserID != want {
				t.Errorf("pipeline %d, request %d: %s/%s user %q; want success, %s", i, u, row.Status, row.Reason, row.UserID, want)
			}
			if row.Detail != "" {
				created[want]++
			}
		}
		if len(pr.b.fire) != users {
			t.Errorf("pipeline %d fired %d events; want %d", i, len(pr.b.fire), users)
		}
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM users WHERE project_id = 1`).Scan(&n); err != nil || n != users {
		t.Errorf("users = %d, %v; want %d", n, err, users)
	}
	for u := range users {
		if id := fmt.Sprintf("email:user%d@example.com", u); created[id] != 1 {
			t.Errorf("%s: %d requests say they created it; want 1", id, created[id])
		}
	}
}
