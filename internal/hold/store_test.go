package hold_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/hold"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func newHold(projectID int64, offset int64, values ...string) hold.Hold {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return hold.Hold{ProjectID: projectID, WebhookID: "wh", RequestID: uuid.Must(uuid.NewV7()), Kind: identify.ByEmail,
		Values: values, Partition: 0, Offset: offset, ReceivedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// TestStoreInsertIsIdempotent: holds are written once however often their batch is written (a crash
// between the holds and the rows redoes the batch), read back as written, and counted per project
// while held; Known tells which requests are held.
func TestStoreInsertIsIdempotent(t *testing.T) {
	_, pool := testenv.Postgres(t)
	ctx := context.Background()
	projects := project.NewStore(pool)
	p1, _, err := projects.Create(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	p2, _, err := projects.Create(ctx, "two")
	if err != nil {
		t.Fatal(err)
	}
	s := hold.NewStore(pool)
	a, b, c := newHold(p1.ID, 1, "a@x.com"), newHold(p1.ID, 2, "b@x.com", "c@x.com"), newHold(p2.ID, 3, "a@x.com")
	b.Fired = []int{0, 2}
	for range 2 {
		if err := s.Insert(ctx, []hold.Hold{a, b, c}); err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM held_requests`).Scan(&rows); err != nil || rows != 3 {
		t.Fatalf("held_requests has %d rows (%v); want 3", rows, err)
	}
	got, ok, err := s.Get(ctx, b.RequestID)
	if err != nil || !ok {
		t.Fatalf("Get: %v, %v", ok, err)
	}
	if got.State != hold.StateHeld || !slices.Equal(got.Values, b.Values) || !slices.Equal(got.Fired, b.Fired) ||
		got.Offset != 2 || !got.ReceivedAt.Equal(b.ReceivedAt) || !got.ExpiresAt.Equal(b.ExpiresAt) || got.Kind != identify.ByEmail {
		t.Errorf("read back %+v; want %+v", got, b)
	}
	other := uuid.Must(uuid.NewV7())
	held, counts, err := s.Known(ctx, []uuid.UUID{a.RequestID, other}, []int64{p1.ID, p2.ID, 999})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(held[a.RequestID], a.Values) || len(held) != 1 {
		t.Errorf("Known held = %v; want only %s", held, a.RequestID)
	}
	if counts[p1.ID] != 2 || counts[p2.ID] != 1 || counts[999] != 0 {
		t.Errorf("Known counts = %v; want %d:2 %d:1", counts, p1.ID, p2.ID)
	}
	if _, err := pool.Exec(ctx, `UPDATE held_requests SET state = 'released', done_at = now() WHERE request_id = $1`, a.RequestID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(ctx, p1.ID); err != nil || n != 1 {
		t.Errorf("Count after a release = %d, %v; want 1", n, err)
	}
}
