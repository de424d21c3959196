package project_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestCreateAndAuthenticate(t *testing.T) {
	_, pool := testenv.Postgres(t)
	ctx := context.Background()
	s := project.NewStore(pool)
	a, keyA, err := s.Create(ctx, "Shop A")
	if err != nil {
		t.Fatal(err)
	}
	b, keyB, err := s.Create(ctx, "Shop B")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(keyA, project.KeyPrefix) || len(keyA) < 40 {
		t.Fatalf("key %q: want %s + ≥32 random bytes", keyA[:10], project.KeyPrefix)
	}
	for _, tc := range []struct {
		key  string
		want int64
		err  error
	}{
		{keyA, a.ID, nil},
		{keyB, b.ID, nil},
		{keyA + "x", 0, project.ErrUnauthenticated},
		{strings.TrimPrefix(keyA, project.KeyPrefix), 0, project.ErrUnauthenticated},
		{"", 0, project.ErrUnauthenticated},
	} {
		got, err := s.Authenticate(ctx, tc.key)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Authenticate(%.12q…) = %d, %v; want %d, %v", tc.key, got, err, tc.want, tc.err)
		}
	}
	// Only the digest is stored.
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE encode(digest, 'escape') LIKE '%' || $1 || '%'`, keyA[10:30]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("found the key's text in api_keys; want only its digest")
	}
	second, err := s.AddKey(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate(ctx, second); err != nil || got != a.ID {
		t.Fatalf("second key: %d, %v; want %d", got, err, a.ID)
	}
}
