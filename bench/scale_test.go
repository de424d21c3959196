package bench

import (
	"bytes"
	"net/url"
	"strings"

	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pierrec/lz4/v4"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestSplitEven(t *testing.T) {
	for _, c := range []struct {
		n, parts int
		want     []int
	}{{1, 1, []int{1}}, {1000, 1, []int{1000}}, {2500, 3, []int{834, 833, 833}}, {100_000, 100, nil}} {
		got := splitEven(c.n, c.parts)
		sum := 0
		for _, v := range got {
			sum += v
			if v < c.n/c.parts || v > c.n/c.parts+1 {
				t.Errorf("splitEven(%d, %d) = %v: uneven", c.n, c.parts, got)
			}
		}
		if sum != c.n || len(got) != c.parts {
			t.Errorf("splitEven(%d, %d) = %v: sum %d", c.n, c.parts, got, sum)
		}
		if c.want != nil && !slices.Equal(got, c.want) {
			t.Errorf("splitEven(%d, %d) = %v, want %v", c.n, c.parts, got, c.want)
		}
	}
	for n, want := range map[int]int{1: 1, 999: 1, 1000: 1, 1001: 2, 10_000: 10, 100_000: 100} {
		if got := projectsFor(n); got != want {
			t.Errorf("projectsFor(%d) = %d, want %d", n, got, want)
		}
	}
}

// A directory request is the seed payload about its user, and a second run revisits the first's users.
func TestUsersSource(t *testing.T) {
	var seedFields map[string]any
	if err := json.Unmarshal([]byte(SeedSample), &seedFields); err != nil {
		t.Fatal(err)
	}
	src := usersSource(Hook{ID: "abc", Authorization: "Bearer x"}, 3)
	for i, want := range []string{"bu0000000", "bu0000001", "bu0000002", "bu0000000"} {
		r := src(int64(i))
		var got map[string]any
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatalf("request %d: %v: %s", i, err, r.Body)
		}
		if got["user_id"] != want || r.Path != "/hooks/abc" || r.Authorization != "Bearer x" {
			t.Errorf("request %d: user %v path %s auth %s", i, got["user_id"], r.Path, r.Authorization)
		}
		got["user_id"] = seedFields["user_id"]
		gb, _ := json.Marshal(got)
		sb, _ := json.Marshal(seedFields)
		if string(gb) != string(sb) {
			t.Errorf("request %d: other fields differ from the seed's: %s", i, r.Body)
		}
	}
}

// The COPY rows: one per user, every unique column distinct.
func TestUserRows(t *testing.T) {
	const n = 2000
	for _, devices := range []bool{false, true} {
		next := userRows(7, n, devices)
		seen := [4]map[any]bool{{}, {}, {}, {}}
		rows := 0
		for {
			r, err := next()
			if err != nil {
				t.Fatal(err)
			}
			if r == nil {
				break
			}
			rows++
			if r[0] != int64(7) {
				t.Fatalf("project %v", r[0])
			}
			for c := 1; c < 4; c++ {
				seen[c][r[c]] = true
			}
		}
		if rows != n || len(seen[1]) != n || len(seen[2]) != n {
			t.Errorf("devices %v: %d rows, %d and %d distinct keys", devices, rows, len(seen[1]), len(seen[2]))
		}
		if !devices && len(seen[3]) != n {
			t.Errorf("%d distinct phones of %d users", len(seen[3]), n)
		}
	}
}

// A copied webhook's secret is stored as webhook.Store.Create stores a Bearer one.
func TestNewHookRows(t *testing.T) {
	sealer, err := secret.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	rows := newHookRows(sealer, []string{"a", "b"})
	if rows[0].id == rows[1].id || rows[0].auth == rows[1].auth {
		t.Fatal("ids or secrets repeat")
	}
	for _, r := range rows {
		if !secret.Match([]byte(r.auth), r.digest) {
			t.Errorf("%s: the digest does not match its Authorization", r.name)
		}
		pt, err := sealer.Open(r.sealed, []byte(r.id))
		if err != nil || secret.Authorization(string(pt)) != r.auth {
			t.Errorf("%s: sealed secret %q, %v", r.name, pt, err)
		}
	}
}

func benchConfig(t *testing.T) *config.Config {
	t.Helper()
	pg, _ := testenv.Postgres(t)
	cfg := config.Defaults()
	cfg.Postgres = pg
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// The webhooks family's webhooks: spread over projects, each authenticating with its secret and taking
// its template's route; a second call makes none; one whose secret was lost is made again.
func TestEnsureScaleHooks(t *testing.T) {
	cfg := benchConfig(t)
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "webhooks-scale.json")
	const n = 2500
	hooks, err := ensureScaleHooks(ctx, cfg, n, state, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != n {
		t.Fatalf("%d webhooks, want %d", len(hooks), n)
	}
	stores, err := compose.OpenStores(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Close()
	rows, err := stores.Pool.Query(ctx, `SELECT p.name, count(*), count(DISTINCT w.routes::text), bool_and(w.enabled)
		FROM webhooks w JOIN projects p ON p.id = w.project_id WHERE w.deleted_at IS NULL GROUP BY p.name ORDER BY p.name`)
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	for rows.Next() {
		var name string
		var c, routes int
		var enabled bool
		if err := rows.Scan(&name, &c, &routes, &enabled); err != nil {
			t.Fatal(err)
		}
		if routes != 1 || !enabled {
			t.Errorf("project %s: %d distinct routes, enabled %v", name, routes, enabled)
		}
		counts = append(counts, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(counts, []int{834, 833, 833}) {
		t.Errorf("webhooks per project %v, want [834 833 833]", counts)
	}
	// Every one authenticates: its digest matches, its sealed secret opens to it.
	for _, i := range []int{0, 1, 833, 834, n - 1} {
		h := hooks[i]
		var pid int64
		var digest []byte
		if err := stores.Pool.QueryRow(ctx, `SELECT project_id, secret_digest FROM webhooks WHERE public_id = $1`, h.ID).Scan(&pid, &digest); err != nil {
			t.Fatalf("webhook %d: %v", i, err)
		}
		if !secret.Match([]byte(h.Authorization), [32]byte(digest)) {
			t.Errorf("webhook %d: digest does not match", i)
		}
		c, err := stores.Webhooks.Credentials(ctx, pid, h.ID)
		if err != nil || c.Authorization != h.Authorization {
			t.Errorf("webhook %d: credentials %v, %v", i, c, err)
		}
		w, err := stores.Webhooks.Get(ctx, pid, h.ID)
		if err != nil || len(w.Routes) != 1 || w.Routes[0].EventName != benchEvent {
			t.Errorf("webhook %d: %+v, %v", i, w, err)
		}
	}

	// Again: the same webhooks.
	again, err := ensureScaleHooks(ctx, cfg, n, state, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again, hooks) {
		t.Error("a second call changed the webhooks")
	}
	// A secret lost from the state file: that webhook is made again, the others kept.
	var st scaleState
	b, _ := os.ReadFile(state)
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	lost := hooks[5]
	st.Hooks = slices.DeleteFunc(st.Hooks, func(h Hook) bool { return h.ID == lost.ID })
	if err := writeState(state, st); err != nil {
		t.Fatal(err)
	}
	third, err := ensureScaleHooks(ctx, cfg, n, state, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if len(third) != n || slices.Contains(third, lost) {
		t.Fatalf("%d webhooks, the lost one kept: %v", len(third), slices.Contains(third, lost))
	}
	var live int
	if err := stores.Pool.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE deleted_at IS NULL`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != n {
		t.Errorf("%d live webhooks, want %d", live, n)
	}
}

// A directory project: users users with a device each, resolvable; a second call copies nothing.
func TestEnsureDirectory(t *testing.T) {
	cfg := benchConfig(t)
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "directory.json")
	const users = 5000
	h, err := ensureDirectory(ctx, cfg, users, state, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	stores, err := compose.OpenStores(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Close()
	var pid int64
	var u, d int
	if err := stores.Pool.QueryRow(ctx, `SELECT w.project_id, (SELECT count(*) FROM users WHERE project_id = w.project_id),
		(SELECT count(*) FROM devices WHERE project_id = w.project_id) FROM webhooks w WHERE w.public_id = $1`, h.ID).Scan(&pid, &u, &d); err != nil {
		t.Fatal(err)
	}
	if u != users || d != users {
		t.Fatalf("%d users and %d devices, want %d", u, d, users)
	}
	id, email, _, hwid := dirUser(users - 1)
	p, err := stores.Directory.Lookup(ctx, pid, identify.ByUserID, id)
	if err != nil || p.User == nil || p.User.Email != email || !slices.Contains(p.HWIDs, hwid) {
		t.Errorf("lookup %s: %+v, %v", id, p, err)
	}
	var xmin string
	_ = stores.Pool.QueryRow(ctx, `SELECT xmin::text FROM users WHERE project_id = $1 AND user_id = $2`, pid, id).Scan(&xmin)
	h2, err := ensureDirectory(ctx, cfg, users, state, testenv.Logger())
	if err != nil || h2 != h {
		t.Fatalf("second call: %v, %v (first %v)", h2, err, h)
	}
	var xmin2 string
	_ = stores.Pool.QueryRow(ctx, `SELECT xmin::text FROM users WHERE project_id = $1 AND user_id = $2`, pid, id).Scan(&xmin2)
	if xmin == "" || xmin != xmin2 {
		t.Errorf("the second call rewrote the users (xmin %s → %s)", xmin, xmin2)
	}
}

// Padded bodies compress about as real payloads do (lz4 is the topics' codec), not hundreds of times.
func TestPaddingCompresses(t *testing.T) {
	for _, size := range []int{1024, 65536, 524288} {
		body := Body{Size: size}.Bytes()
		if len(body) != size || !json.Valid(body) {
			t.Fatalf("size %d: %d bytes, valid %v", size, len(body), json.Valid(body))
		}
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		ratio := float64(size) / float64(buf.Len())
		t.Logf("%d bytes: lz4 %.2f×", size, ratio)
		if ratio < 1.2 || ratio > 6 {
			t.Errorf("%d bytes: lz4 compresses it %.2f×, want a payload-like 1.2–6×", size, ratio)
		}
	}
}

// The bench's own database: created once, the DSN's other parts kept; a key=value DSN is refused.
func TestBenchDSN(t *testing.T) {
	ctx := context.Background()
	if _, err := benchDSN(ctx, "host=127.0.0.1 dbname=inlet", "inlet_bench"); err == nil || !strings.Contains(err.Error(), "URL form") {
		t.Errorf("key=value DSN: %v", err)
	}
	base := testenv.PostgresConfig().DSN
	name := testenv.Name("inlet_bench_test")
	t.Cleanup(func() {
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	})
	for range 2 {
		dsn, err := benchDSN(ctx, base, name)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(dsn)
		b, _ := url.Parse(base)
		if u.Path != "/"+name || u.Host != b.Host || u.RawQuery != b.RawQuery || u.User.String() != b.User.String() {
			t.Fatalf("dsn %s from %s", dsn, base)
		}
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect to the bench database: %v", err)
		}
		_ = c.Close(ctx)
	}
}

func TestPhaseBase(t *testing.T) {
	half := []Phase{{Load: 0.5}}
	for _, c := range []struct {
		name        string
		edge, drain float64
		phases      []Phase
		want        float64
		wantBasis   string
	}{
		{"drain not measured", 30000, 0, half, 30000, BasisIngestor},
		{"pipeline faster than the edge", 30000, 80000, half, 30000, BasisIngestor},
		{"pipeline slower: large bodies", 22000, 6600, half, 6600, BasisPipeline},
		{"an overload stays against the edge", 22000, 6600, []Phase{{Load: 0.25}, {Load: 2}}, 22000, BasisIngestor},
	} {
		got, basis := phaseBase(c.edge, c.drain, c.phases)
		if got != c.want || basis != c.wantBasis {
			t.Errorf("%s: phaseBase(%g, %g) = %g, %q; want %g, %q", c.name, c.edge, c.drain, got, basis, c.want, c.wantBasis)
		}
	}
}
