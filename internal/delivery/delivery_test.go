package delivery_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/testenv"
)

const window = 10 * time.Minute

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).UnixMilli()

// req is a request of webhook "wh" carrying key, at offset of partition 0, received ms after t0.
func req(key string, offset int64, ms int64) delivery.Claim {
	return delivery.Claim{WebhookID: "wh", Key: sha256.Sum256([]byte(key)), RequestID: uuid.Must(uuid.NewV7()),
		Partition: 0, Offset: offset, ReceivedMs: t0 + ms, Window: window}
}

func claim(t *testing.T, s *delivery.Store, cs ...delivery.Claim) []delivery.Verdict {
	t.Helper()
	v := make([]delivery.Verdict, len(cs))
	if err := s.Claim(context.Background(), cs, v); err != nil {
		t.Fatal(err)
	}
	return v
}

// want checks verdicts: want[i] is the claim the i-th is a duplicate of, or nil for an original.
func want(t *testing.T, got []delivery.Verdict, cs []delivery.Claim, of ...*delivery.Claim) {
	t.Helper()
	for i := range got {
		w := uuid.Nil
		if of[i] != nil {
			w = of[i].RequestID
		}
		if got[i].DuplicateOf != w {
			t.Errorf("claim %d (offset %d): duplicate of %v; want %v", i, cs[i].Offset, got[i].DuplicateOf, w)
		}
	}
}

func rows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM sender_deliveries").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestClaim(t *testing.T) {
	_, pool := testenv.Postgres(t)
	s := delivery.NewStore(pool)

	o := req("a", 10, 0)
	d1 := req("a", 11, 1000)
	other := req("b", 12, 1000)
	want(t, claim(t, s, o), []delivery.Claim{o}, nil)
	cs := []delivery.Claim{d1, other}
	want(t, claim(t, s, cs...), cs, &o, nil)

	// Replays decide as the first run did: the original finds its own row, the duplicate the original.
	cs = []delivery.Claim{o, d1, other}
	want(t, claim(t, s, cs...), cs, nil, &o, nil)
	if n := rows(t, pool); n != 2 {
		t.Errorf("%d rows; want 2 (one per original)", n)
	}

	// Another webhook's key of the same text is its own.
	w2 := req("a", 13, 2000)
	w2.WebhookID = "wh2"
	want(t, claim(t, s, w2), []delivery.Claim{w2}, nil)

	// At the window's end exactly, a repeat is a new original; just before it, a duplicate.
	d2 := req("a", 20, window.Milliseconds()-1)
	late := req("a", 21, window.Milliseconds())
	d3 := req("a", 22, window.Milliseconds()+5)
	cs = []delivery.Claim{d2, late, d3}
	want(t, claim(t, s, cs...), cs, &o, nil, &late)
}

// TestClaimInOneCall: several claims of one key in one call are decided in position order, whatever
// the order they are given in, including a window ending between two of them.
func TestClaimInOneCall(t *testing.T) {
	_, pool := testenv.Postgres(t)
	s := delivery.NewStore(pool)
	o := req("k", 1, 0)
	d1 := req("k", 2, 10)
	d2 := req("k", 3, 20)
	l := req("k", 4, window.Milliseconds()+1)
	d3 := req("k", 5, window.Milliseconds()+2)
	l2 := req("k", 6, 2*window.Milliseconds()+1)
	cs := []delivery.Claim{d3, d1, l, o, l2, d2}
	want(t, claim(t, s, cs...), cs, &l, &o, nil, nil, nil, &o)
	if n := rows(t, pool); n != 3 {
		t.Errorf("%d rows; want 3 (o, l, l2)", n)
	}
	// Each claim again, alone, in any order: the same verdicts (the rows after a claim's position do
	// not count for it).
	for _, c := range []delivery.Claim{l2, o, d3, d1, l, d2} {
		var wantOf *delivery.Claim
		switch c.RequestID {
		case d1.RequestID, d2.RequestID:
			wantOf = &o
		case d3.RequestID:
			wantOf = &l
		}
		want(t, claim(t, s, c), []delivery.Claim{c}, wantOf)
	}
}

// TestReplayAfterTakeOver is the case a single row per key, taken over when its window ends, gets
// wrong: the original and a later original of the same key are both decided, then the process dies
// before either is written, and the original is decided again. With the later one's row in place it
// must still be an original, not a duplicate of the request that came after it.
func TestReplayAfterTakeOver(t *testing.T) {
	_, pool := testenv.Postgres(t)
	s := delivery.NewStore(pool)
	o := req("x", 100, 0)
	d := req("x", 101, 60_000)
	l := req("x", 102, window.Milliseconds()+60_000)
	want(t, claim(t, s, o), []delivery.Claim{o}, nil)
	want(t, claim(t, s, d), []delivery.Claim{d}, &o)
	want(t, claim(t, s, l), []delivery.Claim{l}, nil)
	// The replay, in other batches than the first run's.
	cs := []delivery.Claim{o, d}
	want(t, claim(t, s, cs...), cs, nil, &o)
	want(t, claim(t, s, l), []delivery.Claim{l}, nil)
}

// TestClaimConcurrently: two processes deciding the same claims at once (a partition's old owner
// still finishing while its new owner starts) agree on every verdict and store each original once.
func TestClaimConcurrently(t *testing.T) {
	_, pool := testenv.Postgres(t)
	s := delivery.NewStore(pool)
	var cs []delivery.Claim
	for i := range 200 {
		key := string(rune('a' + i%20))
		cs = append(cs, req(key, int64(i), int64(i)))
	}
	var wg sync.WaitGroup
	got := make([][]delivery.Verdict, 4)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[g] = make([]delivery.Verdict, len(cs))
			// Each in chunks of its own, as polls would cut them.
			for from := 0; from < len(cs); {
				to := min(len(cs), from+7*(g+1))
				if err := s.Claim(context.Background(), cs[from:to], got[g][from:to]); err != nil {
					t.Error(err)
					return
				}
				from = to
			}
		}()
	}
	wg.Wait()
	originals := 0
	for i := range cs {
		if !got[0][i].Duplicate() {
			originals++
		}
		for g := 1; g < len(got); g++ {
			if got[g][i] != got[0][i] {
				t.Fatalf("claim %d: process %d says %v, process 0 %v", i, g, got[g][i], got[0][i])
			}
		}
	}
	if originals != 20 {
		t.Errorf("%d originals; want 20 (one per key)", originals)
	}
	if n := rows(t, pool); n != 20 {
		t.Errorf("%d rows; want 20", n)
	}
}

// TestClaimPositionReused: the requests topic recreated, a position names another request: that
// request is the original there, not the old one.
func TestClaimPositionReused(t *testing.T) {
	_, pool := testenv.Postgres(t)
	s := delivery.NewStore(pool)
	old := req("p", 5, 0)
	want(t, claim(t, s, old), []delivery.Claim{old}, nil)
	again := req("q", 5, 1) // another key: unrelated
	want(t, claim(t, s, again), []delivery.Claim{again}, nil)
	reused := old
	reused.RequestID = uuid.Must(uuid.NewV7())
	want(t, claim(t, s, reused), []delivery.Claim{reused}, nil)
	d := req("p", 6, 2)
	want(t, claim(t, s, d), []delivery.Claim{d}, &reused)
}

func TestDeleteExpired(t *testing.T) {
	_, pool := testenv.Postgres(t)
	s := delivery.NewStore(pool)
	var cs []delivery.Claim
	for i := range 25 {
		cs = append(cs, req(string(rune('a'+i)), int64(i), int64(i)*1000))
	}
	claim(t, s, cs...)
	// Windows end at t0 + 10m + i s: before t0 + 10m + 10s are i < 10.
	cut := time.UnixMilli(t0).Add(window + 10*time.Second)
	total := 0
	for {
		n, err := s.DeleteExpired(context.Background(), cut, 4)
		if err != nil {
			t.Fatal(err)
		}
		if n > 4 {
			t.Fatalf("deleted %d rows in one call; want at most 4", n)
		}
		total += n
		if n < 4 {
			break
		}
	}
	if total != 10 || rows(t, pool) != 15 {
		t.Errorf("deleted %d, %d left; want 10 and 15", total, rows(t, pool))
	}
	// A key whose original is gone starts again.
	again := req("a", 100, window.Milliseconds()-1)
	want(t, claim(t, s, again), []delivery.Claim{again}, nil)
}

func TestHasher(t *testing.T) {
	h := delivery.NewHasher()
	sum := func(src delivery.Source, parts ...[]byte) [32]byte {
		h.Begin(src)
		for _, p := range parts {
			if p == nil {
				h.Absent()
			} else {
				h.Part(p)
			}
		}
		return h.Sum()
	}
	a := sum(delivery.SourceHeader, []byte("abc"))
	if a != sum(delivery.SourceHeader, []byte("abc")) {
		t.Error("same key, different hashes")
	}
	distinct := [][32]byte{
		a,
		sum(delivery.SourceBody, []byte("abc")),
		sum(delivery.SourceBodyHash, []byte("abc")),
		sum(delivery.SourceBodyHash, []byte("ab"), []byte("c")),
		sum(delivery.SourceBodyHash, []byte("abc"), []byte{}),
		sum(delivery.SourceBodyHash, []byte("abc"), nil),
	}
	seen := map[[32]byte]int{}
	for i, d := range distinct {
		if j, ok := seen[d]; ok {
			t.Errorf("keys %d and %d hash the same", j, i)
		}
		seen[d] = i
	}
	id := []byte("0b6d5e8a-delivery")
	if n := testing.AllocsPerRun(100, func() {
		h.Begin(delivery.SourceHeader)
		h.Part(id)
		h.Sum()
	}); n != 0 {
		t.Errorf("hashing a key allocates %v times; want 0", n)
	}
}
