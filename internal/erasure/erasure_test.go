package erasure_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/erasure"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestRunnerRetriesThenFails: an attempt that cannot reach ClickHouse leaves the job pending with its
// error, due again after a wait; after MaxAttempts attempts it is failed. A job whose runner's lease
// ran out is taken again. The ClickHouse is real; its connection is closed.
func TestRunnerRetriesThenFails(t *testing.T) {
	_, pool := testenv.Postgres(t)
	cfg, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	var pid int64
	if err := pool.QueryRow(ctx, `INSERT INTO projects (name) VALUES ('p') RETURNING id`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	var job erasure.Job
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		job, err = erasure.Record(ctx, tx, pid, chstore.SubjectUser, "u1", erasure.Identifiers{Email: "a@example.com"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r := erasure.NewRunner(pool, chstore.NewEraser(conn), testenv.Logger())
	store := erasure.NewStore(pool)
	for attempt := 1; attempt <= erasure.MaxAttempts; attempt++ {
		ran, err := r.RunOne(ctx)
		if err != nil || !ran {
			t.Fatalf("attempt %d: ran %v, %v", attempt, ran, err)
		}
		j, err := store.Get(ctx, pid, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := erasure.StatusPending
		if attempt == erasure.MaxAttempts {
			want = erasure.StatusFailed
		}
		if j.Status != want || j.Attempts != attempt || !strings.Contains(j.Error, "erase user") {
			t.Fatalf("after attempt %d: %+v; want %s with the error", attempt, j, want)
		}
		// Not due again before its wait.
		if ran, err := r.RunOne(ctx); ran || err != nil {
			t.Fatalf("a job was taken again at once: %v, %v", ran, err)
		}
		if _, err := pool.Exec(ctx, `UPDATE erasures SET lease_until = now() - interval '1 second' WHERE id = $1`, job.ID); err != nil {
			t.Fatal(err)
		}
	}
	if ran, err := r.RunOne(ctx); ran || err != nil {
		t.Fatalf("a failed job was taken again: %v, %v", ran, err)
	}

	// A running job whose lease ran out (its runner died) is taken again.
	if _, err := pool.Exec(ctx, `UPDATE erasures SET status = 'running', attempts = 1, lease_until = now() - interval '1 second' WHERE id = $1`, job.ID); err != nil {
		t.Fatal(err)
	}
	if ran, err := r.RunOne(ctx); !ran || err != nil {
		t.Fatalf("an expired lease was not taken: %v, %v", ran, err)
	}
	if j, _ := store.Get(ctx, pid, job.ID); j.Attempts != 2 {
		t.Fatalf("after the retaken lease: %+v", j)
	}
}

// blockingEraser holds every erasure until its context ends, as a long mutation wait does.
type blockingEraser struct{ started chan struct{} }

func (b blockingEraser) Erase(ctx context.Context, _ chstore.Subject) error {
	close(b.started)
	<-ctx.Done()
	return ctx.Err()
}

// TestRunnerHandsBackOnShutdown: a runner stopped mid-attempt gives the job back, pending and
// uncounted, so that another runner takes it at once instead of after the lease.
func TestRunnerHandsBackOnShutdown(t *testing.T) {
	_, pool := testenv.Postgres(t)
	ctx := context.Background()
	var pid int64
	if err := pool.QueryRow(ctx, `INSERT INTO projects (name) VALUES ('p') RETURNING id`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	var job erasure.Job
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		job, err = erasure.Record(ctx, tx, pid, chstore.SubjectDevice, "hw-1", erasure.Identifiers{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	b := blockingEraser{started: make(chan struct{})}
	r := erasure.NewRunner(pool, b, testenv.Logger())
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := r.RunOne(rctx); done <- err }()
	<-b.started
	if j, _ := erasure.NewStore(pool).Get(ctx, pid, job.ID); j.Status != erasure.StatusRunning || j.Attempts != 1 {
		t.Fatalf("while running: %+v", j)
	}
	stop()
	if err := <-done; err == nil {
		t.Fatalf("RunOne returned nil after its context ended")
	}
	if j, _ := erasure.NewStore(pool).Get(ctx, pid, job.ID); j.Status != erasure.StatusPending || j.Attempts != 0 {
		t.Fatalf("after shutdown: %+v; want pending, 0 attempts", j)
	}
	var due bool
	if err := pool.QueryRow(ctx, `SELECT lease_until IS NULL FROM erasures WHERE id = $1`, job.ID).Scan(&due); err != nil || !due {
		t.Fatalf("the job is not due at once: %v, %v", due, err)
	}
}

// TestListIsBounded: List gives the newest 200 jobs of the project, and only its own.
func TestListIsBounded(t *testing.T) {
	_, pool := testenv.Postgres(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO projects (name) VALUES ('a'), ('b')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO erasures (project_id, subject_kind, subject, identifier_digests)
SELECT 1, 'device', 'hw-' || i, ARRAY['\x00'::bytea] FROM generate_series(1, 201) i;
INSERT INTO erasures (project_id, subject_kind, subject, identifier_digests) VALUES (2, 'device', 'hw-b', ARRAY['\x00'::bytea])`); err != nil {
		t.Fatal(err)
	}
	jobs, err := erasure.NewStore(pool).List(ctx, 1)
	if err != nil || len(jobs) != 200 || jobs[0].Subject != "hw-201" || jobs[199].Subject != "hw-2" {
		t.Fatalf("List = %d jobs (first %+v), %v; want the newest 200, hw-201 first", len(jobs), jobs[0], err)
	}
	if _, err := erasure.NewStore(pool).Get(ctx, 1, 202); err == nil {
		t.Errorf("Get of project 2's job in project 1 found it")
	}
}
