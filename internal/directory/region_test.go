package directory_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// national is written without a country code, and possible in every region these tests use.
const national = "(555) 123-4567"

// regionEnv is a fresh database with the project store (which sets phone_region and tells it to the
// directory) and the directory store.
type regionEnv struct {
	cfg      pgdb.Config
	pool     *pgxpool.Pool
	projects *project.Store
	dir      *directory.Store
}

func newRegionEnv(t *testing.T, cfg directory.Config) *regionEnv {
	t.Helper()
	pc, pool := testenv.Postgres(t)
	projects := project.NewStore(pool)
	dir, err := directory.NewStore(pool, projects, cfg, prometheus.NewRegistry(), testenv.Logger())
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return &regionEnv{cfg: pc, pool: pool, projects: projects, dir: dir}
}

// project creates a project with the phone region given ("" leaves the default).
func (e *regionEnv) project(t *testing.T, name, region string) int64 {
	t.Helper()
	p, _, err := e.projects.Create(context.Background(), name)
	if err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	if region != "" {
		e.setRegion(t, p.ID, region)
	}
	return p.ID
}

func (e *regionEnv) setRegion(t *testing.T, id int64, region string) {
	t.Helper()
	if _, err := e.projects.Update(context.Background(), id, project.Update{PhoneRegion: &region}); err != nil {
		t.Fatalf("set phone region of project %d to %q: %v", id, region, err)
	}
}

// resolver builds a Resolver as another process would have it (see NewTestResolver).
func (e *regionEnv) resolver(t *testing.T, cfg directory.Config, listen bool) *directory.Resolver {
	t.Helper()
	return directory.NewTestResolver(t, e.cfg, cfg, listen)
}

func resolvePhone(t *testing.T, r *directory.Resolver, projectID int64, value string) string {
	t.Helper()
	got, err := r.Resolve(context.Background(), projectID, identify.ByPhone, []string{value})
	if err != nil {
		t.Fatalf("Resolve(%d, phone, %q): %v", projectID, value, err)
	}
	return got[value].UserID
}

// TestPhoneRegionPerProject: one national-format number is a different E.164 number, and so a
// different user, in a GB project, a US project and a project on the default region (DE here), for
// writes, lookups, imports and the resolver alike.
func TestPhoneRegionPerProject(t *testing.T) {
	cfg := directory.Defaults()
	cfg.DefaultRegion = "DE"
	e := newRegionEnv(t, cfg)
	ctx := context.Background()
	cases := []struct {
		name, region, want string
	}{
		{"uk shop", "GB", "+445551234567"},
		{"us shop", "US", "+15551234567"},
		{"default shop", "", "+495551234567"},
	}
	ids := make([]int64, len(cases))
	for i, tc := range cases {
		ids[i] = e.project(t, tc.name, tc.region)
		u, _, err := e.dir.UpsertUser(ctx, ids[i], directory.User{UserID: tc.name, Phone: national})
		if err != nil || u.Phone != tc.want {
			t.Fatalf("%s: UpsertUser(phone %q) = %+v, %v; want phone %s", tc.name, national, u, err, tc.want)
		}
		p, err := e.dir.Lookup(ctx, ids[i], identify.ByPhone, national)
		if err != nil || p.UserID != tc.name {
			t.Errorf("%s: Lookup(phone %q) = %+v, %v; want user %q", tc.name, national, p, err, tc.name)
		}
		res, err := e.dir.Import(ctx, ids[i], strings.NewReader(`{"type":"user","user_id":"imported","phone":"555 765 4321"}`+"\n"))
		if err != nil || res.Users != 1 {
			t.Fatalf("%s: Import = %+v, %v; want one user", tc.name, res, err)
		}
		imported, err := e.dir.GetUser(ctx, ids[i], "imported")
		if wantImported := strings.TrimSuffix(tc.want, "1234567") + "7654321"; err != nil || imported.Phone != wantImported {
			t.Errorf("%s: imported user = %+v, %v; want phone %s", tc.name, imported, err, wantImported)
		}
	}
	r := e.resolver(t, cfg, false)
	for i, tc := range cases {
		if got := resolvePhone(t, r, ids[i], national); got != tc.name {
			t.Errorf("%s: Resolve(phone %q) = user %q; want %q", tc.name, national, got, tc.name)
		}
		// A number with its country code means the same in every project.
		if got := resolvePhone(t, r, ids[i], tc.want); got != tc.name {
			t.Errorf("%s: Resolve(phone %q) = user %q; want %q", tc.name, tc.want, got, tc.name)
		}
	}
}

// TestPhoneRegionChangeReachesResolver: a region changed through the project store is pushed to a
// running resolver (TTLs of an hour: only the notification can do it) within a second, changing what
// the cached raw value resolves to, and leaving other projects' entries alone.
func TestPhoneRegionChangeReachesResolver(t *testing.T) {
	cfg := directory.Defaults()
	cfg.DefaultRegion = "US"
	cfg.TTL, cfg.NegativeTTL, cfg.MaxStale = time.Hour, time.Hour, time.Hour
	e := newRegionEnv(t, cfg)
	ctx := context.Background()
	p := e.project(t, "shop", "")
	other := e.project(t, "other", "")
	for _, u := range []directory.User{{UserID: "us", Phone: "+15551234567"}, {UserID: "gb", Phone: "+445551234567"}} {
		if _, _, err := e.dir.UpsertUser(ctx, p, u); err != nil {
			t.Fatalf("UpsertUser(%+v): %v", u, err)
		}
	}
	if _, _, err := e.dir.UpsertUser(ctx, other, directory.User{UserID: "other-us", Phone: "+15551234567"}); err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	r := e.resolver(t, cfg, true)
	if got := resolvePhone(t, r, p, national); got != "us" {
		t.Fatalf("before the change: Resolve(phone %q) = user %q; want us (default region US)", national, got)
	}
	if got := resolvePhone(t, r, other, national); got != "other-us" {
		t.Fatalf("other project: Resolve(phone %q) = user %q; want other-us", national, got)
	}

	e.setRegion(t, p, "GB")
	start := time.Now()
	for got := ""; got != "gb"; got = resolvePhone(t, r, p, national) {
		if time.Since(start) > time.Second {
			t.Fatalf("after setting GB: Resolve(phone %q) = user %q for over 1s; want gb", national, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("region change seen after %s", time.Since(start).Round(time.Millisecond))
	if got := resolvePhone(t, r, other, national); got != "other-us" {
		t.Fatalf("other project after the change: Resolve(phone %q) = user %q; want other-us", national, got)
	}

	// Back to the default: the default region applies again.
	e.setRegion(t, p, "")
	start = time.Now()
	for got := ""; got != "us"; got = resolvePhone(t, r, p, national) {
		if time.Since(start) > time.Second {
			t.Fatalf("after clearing the region: Resolve(phone %q) = user %q for over 1s; want us", national, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
