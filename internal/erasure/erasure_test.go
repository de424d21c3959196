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
