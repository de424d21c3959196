package project_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// twoProjects creates "Shop A" and "Shop B" in a fresh database and returns them with their keys.
func twoProjects(t *testing.T) (pool *pgxpool.Pool, s *project.Store, a project.Project, keyA string, b project.Project, keyB string) {
	t.Helper()
	_, pool = testenv.Postgres(t)
	s = project.NewStore(pool)
	var err error
	if a, keyA, err = s.Create(context.Background(), "Shop A"); err != nil {
		t.Fatal(err)
	}
	if b, keyB, err = s.Create(context.Background(), "Shop B"); err != nil {
		t.Fatal(err)
	}
	return pool, s, a, keyA, b, keyB
}

func TestCreateAndAuthenticate(t *testing.T) {
	ctx := context.Background()
	pool, s, a, keyA, b, keyB := twoProjects(t)
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
		if !errors.Is(err, tc.err) || got.ProjectID != tc.want || (err == nil && got.KeyID == 0) {
			t.Errorf("Authenticate(%.12q…) = %+v, %v; want project %d, %v", tc.key, got, err, tc.want, tc.err)
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
	k, second, err := s.CreateKey(ctx, a.ID, "CI", project.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate(ctx, second); err != nil || got.ProjectID != a.ID || got.KeyID != k.ID || got.KeyName != "CI" || !slices.Equal(got.Scopes, project.AllScopes) {
		t.Fatalf("second key: %+v, %v; want project %d key %d", got, err, a.ID, k.ID)
	}
	if k.Name != "CI" || k.Prefix != second[:12] || k.RevokedAt != nil || k.LastUsedAt != nil {
		t.Fatalf("created key = %+v; want name CI, prefix %q, never used, not revoked", k, second[:12])
	}
}

// TestKeyLifecycle: keys are listed without their secret, another project's key is not found, a revoked
// key is refused at once by Authenticate and Verify, and the last active key cannot be revoked.
func TestKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	_, s, a, keyA, b, _ := twoProjects(t)
	first, err := s.Authenticate(ctx, keyA)
	if err != nil {
		t.Fatal(err)
	}
	ci, ciKey, err := s.CreateKey(ctx, a.ID, "  CI deploys  ", project.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Name != "CI deploys" {
		t.Errorf("name = %q; want it trimmed", ci.Name)
	}

	keys, err := s.ListKeys(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != ci.ID || keys[1].ID != first.KeyID {
		t.Fatalf("list = %+v; want the CI key then the first key", keys)
	}
	// Authenticate recorded the first key's use; the CI key was never used.
	if keys[1].LastUsedAt == nil || keys[0].LastUsedAt != nil {
		t.Errorf("last used = %v, %v; want the first key's set and the CI key's nil", keys[1].LastUsedAt, keys[0].LastUsedAt)
	}
	if keys[1].Prefix != keyA[:12] {
		t.Errorf("prefix = %q; want %q", keys[1].Prefix, keyA[:12])
	}
	if bKeys, err := s.ListKeys(ctx, b.ID); err != nil || len(bKeys) != 1 {
		t.Fatalf("B's keys = %+v, %v; want its one key only", bKeys, err)
	}

	// Another project's key id is not found, by get or revoke.
	if _, err := s.GetKey(ctx, b.ID, ci.ID); !errors.Is(err, project.ErrKeyNotFound) {
		t.Errorf("GetKey of A's key in B = %v; want ErrKeyNotFound", err)
	}
	if _, err := s.RevokeKey(ctx, b.ID, ci.ID); !errors.Is(err, project.ErrKeyNotFound) {
		t.Errorf("RevokeKey of A's key in B = %v; want ErrKeyNotFound", err)
	}
	if _, err := s.Authenticate(ctx, ciKey); err != nil {
		t.Fatalf("B's revoke attempt touched A's key: %v", err)
	}

	// Revoking the first key: refused at once, both in clear and for sessions; revoking again is a no-op.
	revoked, err := s.RevokeKey(ctx, a.ID, first.KeyID)
	if err != nil || revoked.RevokedAt == nil {
		t.Fatalf("revoke = %+v, %v", revoked, err)
	}
	if _, err := s.Authenticate(ctx, keyA); !errors.Is(err, project.ErrUnauthenticated) {
		t.Errorf("Authenticate after revoke = %v; want ErrUnauthenticated", err)
	}
	if err := s.Verify(ctx, first); !errors.Is(err, project.ErrUnauthenticated) {
		t.Errorf("Verify after revoke = %v; want ErrUnauthenticated", err)
	}
	again, err := s.RevokeKey(ctx, a.ID, first.KeyID)
	if err != nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Errorf("second revoke = %+v, %v; want the same revocation time", again, err)
	}
	ciCaller := project.Caller{ProjectID: a.ID, KeyID: ci.ID}
	if err := s.Verify(ctx, ciCaller); err != nil {
		t.Errorf("Verify of the CI key = %v", err)
	}
	if err := s.Verify(ctx, project.Caller{ProjectID: b.ID, KeyID: ci.ID}); !errors.Is(err, project.ErrUnauthenticated) {
		t.Errorf("Verify with the wrong project = %v; want ErrUnauthenticated", err)
	}

	// The CI key is now the last active one.
	if _, err := s.RevokeKey(ctx, a.ID, ci.ID); !errors.Is(err, project.ErrLastKey) {
		t.Errorf("revoking the last key = %v; want ErrLastKey", err)
	}
	if _, err := s.Authenticate(ctx, ciKey); err != nil {
		t.Errorf("the last key stopped working: %v", err)
	}
	keys, _ = s.ListKeys(ctx, a.ID)
	if len(keys) != 2 || keys[0].ID != ci.ID || keys[1].RevokedAt == nil {
		t.Errorf("list after revoke = %+v; want the active key first, then the revoked one", keys)
	}

	// Names are bounded.
	for _, name := range []string{strings.Repeat("é", project.MaxKeyName+1), "tab\there"} {
		if _, _, err := s.CreateKey(ctx, a.ID, name, project.AllScopes); !invalidField(err, "name") {
			t.Errorf("CreateKey(%.20q…) = %v; want a validation error on name", name, err)
		}
	}
	if _, _, err := s.CreateKey(ctx, a.ID, strings.Repeat("é", project.MaxKeyName), project.AllScopes); err != nil {
		t.Errorf("a %d-character name is refused: %v", project.MaxKeyName, err)
	}
	if _, _, err := s.CreateKey(ctx, 1<<40, "", project.AllScopes); !errors.Is(err, project.ErrNotFound) {
		t.Errorf("CreateKey in no project = %v; want ErrNotFound", err)
	}
}

// TestRevokeRaceKeepsOneKey: two concurrent revocations of a project's last two keys cannot both pass the
// last-key check.
func TestRevokeRaceKeepsOneKey(t *testing.T) {
	_, pool := testenv.Postgres(t)
	ctx := context.Background()
	s := project.NewStore(pool)
	for round := range 10 {
		p, key, err := s.Create(ctx, fmt.Sprintf("P%d", round))
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Authenticate(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		k2, _, err := s.CreateKey(ctx, p.ID, "", project.AllScopes)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []int64{c.KeyID, k2.ID} {
			wg.Go(func() { _, errs[i] = s.RevokeKey(ctx, p.ID, id) })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: revocations = %v, %v; want exactly one to succeed", round, errs[0], errs[1])
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, project.ErrLastKey) {
				t.Fatalf("round %d: %v; want ErrLastKey", round, err)
			}
		}
	}
}

// TestMaxActiveKeys: a project holds at most MaxActiveKeys active keys; revoking one makes room.
func TestMaxActiveKeys(t *testing.T) {
	_, pool := testenv.Postgres(t)
	ctx := context.Background()
	s := project.NewStore(pool)
	p, _, err := s.Create(ctx, "Many")
	if err != nil {
		t.Fatal(err)
	}
	var last project.Key
	for range project.MaxActiveKeys - 1 {
		if last, _, err = s.CreateKey(ctx, p.ID, "", project.AllScopes); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.CreateKey(ctx, p.ID, "", project.AllScopes); !errors.Is(err, project.ErrTooManyKeys) {
		t.Fatalf("key %d = %v; want ErrTooManyKeys", project.MaxActiveKeys+1, err)
	}
	if _, err := s.RevokeKey(ctx, p.ID, last.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateKey(ctx, p.ID, "", project.AllScopes); err != nil {
		t.Fatalf("after a revoke: %v", err)
	}
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	pool, s, a, _, b, _ := twoProjects(t)
	url, gb := "https://hooks.example/a", "GB"
	got, err := s.Update(ctx, a.ID, project.Update{NotificationURL: &url, PhoneRegion: &gb})
	if err != nil || got.NotificationURL != url || got.PhoneRegion != "GB" {
		t.Fatalf("Update(a, url, GB) = %+v, %v; want both set", got, err)
	}
	if got, err := s.Get(ctx, b.ID); err != nil || got.PhoneRegion != "" || got.NotificationURL != "" {
		t.Fatalf("project b after a's update = %+v, %v; want unchanged", got, err)
	}
	// A nil field is left as it is.
	us := "US"
	if got, err := s.Update(ctx, a.ID, project.Update{PhoneRegion: &us}); err != nil || got.PhoneRegion != "US" || got.NotificationURL != url {
		t.Fatalf("Update(a, US) = %+v, %v; want region US and the url kept", got, err)
	}
	// An unknown region is refused before anything is written.
	other := "https://hooks.example/other"
	for _, region := range []string{"XX", "gb", "GBR", "001", "ZZ"} {
		_, err := s.Update(ctx, a.ID, project.Update{NotificationURL: &other, PhoneRegion: &region})
		if !invalidField(err, "phone_region") {
			t.Errorf("Update(a, %q) = %v; want a validation error on phone_region", region, err)
		}
	}
	if got, err := s.Get(ctx, a.ID); err != nil || got.PhoneRegion != "US" || got.NotificationURL != url {
		t.Fatalf("project a after refused updates = %+v, %v; want region US and the first url", got, err)
	}
	// The column refuses what is not two upper-case letters even when written around the store.
	if _, err := pool.Exec(ctx, `UPDATE projects SET phone_region = 'gb' WHERE id = $1`, a.ID); err == nil {
		t.Fatalf("UPDATE phone_region = 'gb': no error; want the CHECK to refuse it")
	}
	empty := ""
	if got, err := s.Update(ctx, a.ID, project.Update{PhoneRegion: &empty}); err != nil || got.PhoneRegion != "" {
		t.Fatalf("Update(a, \"\") = %+v, %v; want the region cleared", got, err)
	}
	if _, err := s.Update(ctx, 1<<40, project.Update{PhoneRegion: &gb}); !errors.Is(err, project.ErrNotFound) {
		t.Fatalf("Update(unknown project) = %v; want ErrNotFound", err)
	}
}

// invalidField reports whether err is a *domainerr.ValidationError on field alone.
func invalidField(err error, field string) bool {
	ve, ok := errors.AsType[*domainerr.ValidationError](err)
	return ok && len(ve.Fields) == 1 && ve.Fields[0].Field == field
}
