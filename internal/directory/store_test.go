package directory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// env is one test's slice of the real PostgreSQL: a fresh database with two projects.
type env struct {
	cfg    pgdb.Config
	pool   *pgxpool.Pool
	store  *Store
	p1, p2 int64
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	pc, pool := testenv.Postgres(t)
	st, err := NewStore(pool, project.NewStore(pool), cfg, prometheus.NewRegistry(), testenv.Logger())
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	e := &env{cfg: pc, pool: pool, store: st}
	e.p1, e.p2 = e.project(t, "one"), e.project(t, "two")
	return e
}

func (e *env) project(t testing.TB, name string) int64 {
	t.Helper()
	var id int64
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO projects (name) VALUES ($1) RETURNING id`, name).Scan(&id); err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	return id
}

func mustUser(t testing.TB, s *Store, project int64, u User) User {
	t.Helper()
	got, _, err := s.UpsertUser(context.Background(), project, u)
	if err != nil {
		t.Fatalf("UpsertUser(%d, %+v): %v", project, u, err)
	}
	return got
}

func mustDevice(t testing.TB, s *Store, project int64, d Device) Device {
	t.Helper()
	got, _, err := s.UpsertDevice(context.Background(), project, d)
	if err != nil {
		t.Fatalf("UpsertDevice(%d, %+v): %v", project, d, err)
	}
	return got
}

func wantErrIs(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v; want %v", what, err, want)
	}
}

func TestStoreCRUDAndIsolation(t *testing.T) {
	e := newEnv(t, Defaults())
	ctx := context.Background()
	s := e.store

	u, created, err := s.UpsertUser(ctx, e.p1, User{UserID: "42", Email: "Jane@Example.com", Phone: "+1 (555) 123-4567"})
	if err != nil || !created {
		t.Fatalf("UpsertUser: got created %v, %v; want created", created, err)
	}
	if u.Email != "Jane@Example.com" || u.Phone != "+15551234567" {
		t.Fatalf("stored user: got email %q phone %q; want the email as given and the phone in E.164", u.Email, u.Phone)
	}
	u2, created, err := s.UpsertUser(ctx, e.p1, User{UserID: "42", Email: "jane@new.example"})
	if err != nil || created {
		t.Fatalf("second UpsertUser: got created %v, %v; want an update", created, err)
	}
	if u2.Phone != "" || u2.Email != "jane@new.example" || !u2.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("updated user: got %+v; want the new email, no phone, the original created_at", u2)
	}
	d := mustDevice(t, s, e.p1, Device{HWID: "hw-1", UserID: "42", Platform: PlatformIOS})
	mustDevice(t, s, e.p1, Device{HWID: "hw-2", UserID: "42", Platform: PlatformAndroid})
	mustDevice(t, s, e.p1, Device{HWID: "hw-anon", Platform: PlatformWeb})

	// Project 2 sees none of it, and can hold the same ids and email for itself.
	_, err = s.GetUser(ctx, e.p2, "42")
	wantErrIs(t, "GetUser from another project", err, domainerr.ErrNotFound)
	_, err = s.GetDevice(ctx, e.p2, "hw-1")
	wantErrIs(t, "GetDevice from another project", err, domainerr.ErrNotFound)
	if ds, err := s.ListDevices(ctx, e.p2, "42"); err != nil || len(ds) != 0 {
		t.Fatalf("ListDevices from another project: got %v, %v; want none", ds, err)
	}
	for _, k := range []struct {
		kind identify.Kind
		v    string
	}{{identify.ByUserID, "42"}, {identify.ByEmail, "jane@new.example"}, {identify.ByHWID, "hw-1"}} {
		_, err = s.Lookup(ctx, e.p2, k.kind, k.v)
		wantErrIs(t, fmt.Sprintf("Lookup %s from another project", k.kind), err, domainerr.ErrNotFound)
	}
	wantErrIs(t, "DeleteUser in another project", second(s.DeleteUser(ctx, e.p2, "42")), domainerr.ErrNotFound)
	wantErrIs(t, "DeleteDevice in another project", second(s.DeleteDevice(ctx, e.p2, "hw-1")), domainerr.ErrNotFound)
	mustUser(t, s, e.p2, User{UserID: "42", Email: "jane@new.example"})

	got, err := s.GetUser(ctx, e.p1, "42")
	if err != nil || got.Email != "jane@new.example" {
		t.Fatalf("GetUser: got %+v, %v; want project 1's user", got, err)
	}
	gd, err := s.GetDevice(ctx, e.p1, "hw-1")
	if err != nil || gd.UserID != "42" || gd.Platform != PlatformIOS || !gd.CreatedAt.Equal(d.CreatedAt) {
		t.Fatalf("GetDevice: got %+v, %v; want %+v", gd, err, d)
	}
	ds, err := s.ListDevices(ctx, e.p1, "42")
	if err != nil || len(ds) != 2 || ds[0].HWID != "hw-1" || ds[1].HWID != "hw-2" {
		t.Fatalf("ListDevices: got %+v, %v; want hw-1, hw-2", ds, err)
	}

	// Deleting the user detaches its devices; they still resolve by hwid, anonymously.
	if _, err := s.DeleteUser(ctx, e.p1, "42"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err = s.GetUser(ctx, e.p1, "42")
	wantErrIs(t, "GetUser after delete", err, domainerr.ErrNotFound)
	if gd, err := s.GetDevice(ctx, e.p1, "hw-1"); err != nil || gd.UserID != "" {
		t.Fatalf("device after its user was deleted: got %+v, %v; want it kept without a user", gd, err)
	}
	wantErrIs(t, "DeleteUser twice", second(s.DeleteUser(ctx, e.p1, "42")), domainerr.ErrNotFound)
	if _, err := s.GetUser(ctx, e.p2, "42"); err != nil {
		t.Fatalf("project 2's user after project 1's was deleted: %v", err)
	}
	if _, err := s.DeleteDevice(ctx, e.p1, "hw-1"); err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	_, err = s.GetDevice(ctx, e.p1, "hw-1")
	wantErrIs(t, "GetDevice after delete", err, domainerr.ErrNotFound)

	// Bad input and an unknown project.
	_, _, err = s.UpsertUser(ctx, e.p1, User{UserID: "", Email: "x"})
	wantErrIs(t, "UpsertUser with bad fields", err, domainerr.ErrInvalid)
	_, _, err = s.UpsertDevice(ctx, e.p1, Device{HWID: ""})
	wantErrIs(t, "UpsertDevice with bad fields", err, domainerr.ErrInvalid)
	_, _, err = s.UpsertUser(ctx, 999999, User{UserID: "1"})
	wantErrIs(t, "UpsertUser in a missing project", err, domainerr.ErrNotFound)
}

func TestEmailCaseInsensitive(t *testing.T) {
	e := newEnv(t, Defaults())
	ctx := context.Background()
	s := e.store
	mustUser(t, s, e.p1, User{UserID: "jane", Email: "Jane.Doe@Example.com"})

	p, err := s.Lookup(ctx, e.p1, identify.ByEmail, "jane.doe@EXAMPLE.COM")
	if err != nil || p.UserID != "jane" || p.User == nil || p.User.Email != "Jane.Doe@Example.com" {
		t.Fatalf("Lookup by email in another case: got %+v, %v; want jane with the email as stored", p, err)
	}
	_, _, err = s.UpsertUser(ctx, e.p1, User{UserID: "other", Email: "JANE.DOE@example.com"})
	var ce *domainerr.ConflictError
	if !errors.As(err, &ce) || ce.Field != "email" || !errors.Is(err, domainerr.ErrConflict) {
		t.Fatalf("UpsertUser with another user's email in another case: got %v; want a conflict on email", err)
	}
	// The same user may change the case of its own email.
	mustUser(t, s, e.p1, User{UserID: "jane", Email: "JANE.DOE@EXAMPLE.COM"})
	// Another project may use the email.
	mustUser(t, s, e.p2, User{UserID: "other", Email: "jane.doe@example.com"})
}

// TestEmailNFC: an email written decomposed (e + U+0301) and one written composed (é) are one
// address, whichever side is which, and in any case: on write (stored NFC, a conflict between users),
// in Lookup and in the Resolver as the pipeline calls it (through NormalizeEmail).
func TestEmailNFC(t *testing.T) {
	e := newEnv(t, Defaults())
	ctx := context.Background()
	s := e.store
	const (
		composed   = "josé@example.com"
		decomposed = "JOSÉ@Example.com"
	)
	if u := mustUser(t, s, e.p1, User{UserID: "jose", Email: "José@example.com"}); u.Email != "José@example.com" {
		t.Errorf("stored email %q; want it in NFC, %q", u.Email, "José@example.com")
	}
	for _, v := range []string{composed, decomposed, strings.ToUpper(composed)} {
		if p, err := s.Lookup(ctx, e.p1, identify.ByEmail, v); err != nil || p.UserID != "jose" {
			t.Errorf("Lookup(%q) = %+v, %v; want jose", v, p, err)
		}
	}
	_, _, err := s.UpsertUser(ctx, e.p1, User{UserID: "other", Email: composed})
	if ce := (*domainerr.ConflictError)(nil); !errors.As(err, &ce) || ce.Field != "email" {
		t.Errorf("another user with the composed spelling: %v; want a conflict on email", err)
	}

	r := newResolver(t, e, Defaults(), false)
	values := []string{NormalizeEmail(decomposed), NormalizeEmail(composed), NormalizeEmail("JOSÉ@EXAMPLE.COM")}
	got := resolve(t, r, e.p1, identify.ByEmail, values...)
	for _, v := range values {
		if got[v].UserID != "jose" {
			t.Errorf("Resolve(%q) = %+v; want jose", v, got[v])
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = NormalizeEmail(composed) }); n != 0 {
		t.Errorf("NormalizeEmail of an NFC address: %v allocations; want 0", n)
	}
}

func TestPhoneNormalisedOnWriteAndLookup(t *testing.T) {
	cfg := Defaults()
	cfg.DefaultRegion = "US"
	e := newEnv(t, cfg)
	ctx := context.Background()
	s := e.store
	u := mustUser(t, s, e.p1, User{UserID: "bob", Phone: "(555) 123-4567"})
	if u.Phone != "+15551234567" {
		t.Fatalf("stored phone: got %q; want +15551234567", u.Phone)
	}
	for _, spelling := range []string{"+1 555 123 4567", "001-555-123-4567", "555.123.4567", "+15551234567"} {
		p, err := s.Lookup(ctx, e.p1, identify.ByPhone, spelling)
		if err != nil || p.UserID != "bob" {
			t.Errorf("Lookup by phone %q: got %+v, %v; want bob", spelling, p, err)
		}
	}
	_, _, err := s.UpsertUser(ctx, e.p1, User{UserID: "carol", Phone: "+1-555-123-4567"})
	var ce *domainerr.ConflictError
	if !errors.As(err, &ce) || ce.Field != "phone" {
		t.Fatalf("UpsertUser with bob's phone spelled differently: got %v; want a conflict on phone", err)
	}
	_, err = s.Lookup(ctx, e.p1, identify.ByPhone, "not a phone")
	wantErrIs(t, "Lookup by an unparsable phone", err, domainerr.ErrInvalid)
}

func TestLookupKinds(t *testing.T) {
	e := newEnv(t, Defaults())
	ctx := context.Background()
	s := e.store
	mustUser(t, s, e.p1, User{UserID: "u1", Email: "u1@example.com", Phone: "+442079460958"})
	mustDevice(t, s, e.p1, Device{HWID: "a", UserID: "u1"})
	mustDevice(t, s, e.p1, Device{HWID: "b", UserID: "u1"})
	mustDevice(t, s, e.p1, Device{HWID: "anon"})
	mustDevice(t, s, e.p1, Device{HWID: "c", UserID: "devices-only"})

	tests := []struct {
		kind       identify.Kind
		value      string
		wantUser   string
		wantRow    bool // a users row exists
		wantDevice string
		wantHWIDs  []string
	}{
		{identify.ByUserID, "u1", "u1", true, "", []string{"a", "b"}},
		{identify.ByEmail, "U1@example.com", "u1", true, "", []string{"a", "b"}},
		{identify.ByPhone, "0044 20 7946 0958", "u1", true, "", []string{"a", "b"}},
		{identify.ByHWID, "b", "u1", true, "b", []string{"a", "b"}},
		{identify.ByHWID, "anon", "", false, "anon", []string{"anon"}},
		{identify.ByUserID, "devices-only", "devices-only", false, "", []string{"c"}},
		{identify.ByHWID, "c", "devices-only", false, "c", []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s=%s", tt.kind, tt.value), func(t *testing.T) {
			p, err := s.Lookup(ctx, e.p1, tt.kind, tt.value)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			slices.Sort(p.HWIDs)
			dev := ""
			if p.Device != nil {
				dev = p.Device.HWID
			}
			if p.UserID != tt.wantUser || (p.User != nil) != tt.wantRow || dev != tt.wantDevice || !slices.Equal(p.HWIDs, tt.wantHWIDs) {
				t.Fatalf("got user %q (row %v) device %q hwids %v; want user %q (row %v) device %q hwids %v",
					p.UserID, p.User != nil, dev, p.HWIDs, tt.wantUser, tt.wantRow, tt.wantDevice, tt.wantHWIDs)
			}
		})
	}
	for _, k := range []identify.Kind{identify.ByUserID, identify.ByEmail, identify.ByPhone, identify.ByHWID} {
		v := "nobody"
		if k == identify.ByPhone {
			v = "+15550000000"
		}
		_, err := s.Lookup(ctx, e.p1, k, v)
		wantErrIs(t, "Lookup of an unknown "+string(k), err, domainerr.ErrNotFound)
	}
}

func TestImport(t *testing.T) {
	e := newEnv(t, Defaults())
	ctx := context.Background()
	s := e.store
	mustUser(t, s, e.p1, User{UserID: "taken", Email: "taken@example.com"})
	input := strings.Join([]string{
		`{"type":"user","user_id":"1","email":"one@example.com","phone":"+15551230001"}`, // 1 ok
		`{"type":"device","hwid":"h1","user_id":"1","platform":"ios"}`,                   // 2 ok
		`{"type":"user","user_id":"2",`,                                                  // 3 bad JSON
		``,                                                                               // 4 blank
		`{"type":"robot","user_id":"3"}`,                                                 // 5 unknown type
		`{"type":"user","user_id":"4","email":"not-an-email"}`,                           // 6 invalid email
		`{"type":"user","user_id":"5","email":"TAKEN@example.com"}`,                      // 7 conflict
		`{"type":"user","user_id":"6","email":"six@example.com"}`,                        // 8 ok
		`{"type":"device","hwid":"h6","user_id":"6"}`,                                    // 9 ok
		`{"type":"user","user_id":"7","phone":"+15551230001"}`,                           // 10 conflict with line 1
		`{"type":"user","user_id":"1","email":"one@example.com","phone":"+15551230009"}`, // 11 ok, 1 again
		`{"type":"device","hwid":"` + strings.Repeat("x", 70<<10) + `"}`,                 // 12 too long
		`{"type":"device","hwid":"h7","user_id":"7"}`,                                    // 13 ok (no user 7)
	}, "\n") // no newline after the last line
	res, err := s.Import(ctx, e.p1, strings.NewReader(input))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	wantErrLines := []int64{3, 5, 6, 7, 10, 12}
	var gotLines []int64
	for _, le := range res.Errors {
		gotLines = append(gotLines, le.Line)
	}
	if !slices.Equal(gotLines, wantErrLines) {
		t.Fatalf("error lines: got %v (%+v); want %v", gotLines, res.Errors, wantErrLines)
	}
	wantMsg := map[int64]string{3: "invalid JSON", 5: `"robot"`, 6: "email", 7: "email: already used", 10: "phone: already used", 12: "longer than"}
	for _, le := range res.Errors {
		if !strings.Contains(le.Error, wantMsg[le.Line]) {
			t.Errorf("line %d: got error %q; want one containing %q", le.Line, le.Error, wantMsg[le.Line])
		}
	}
	if res.Lines != 13 || res.Users != 3 || res.Devices != 3 || res.Failed != 6 {
		t.Fatalf("counts: got lines %d users %d devices %d failed %d; want 13, 3, 3, 6", res.Lines, res.Users, res.Devices, res.Failed)
	}
	// Good lines are in, bad lines are absent, later lines won.
	if u, err := s.GetUser(ctx, e.p1, "1"); err != nil || u.Phone != "+15551230009" {
		t.Fatalf("user 1: got %+v, %v; want the phone of line 11", u, err)
	}
	for _, id := range []string{"6"} {
		if _, err := s.GetUser(ctx, e.p1, id); err != nil {
			t.Errorf("user %s: %v; want imported", id, err)
		}
	}
	for _, id := range []string{"2", "3", "4", "5", "7"} {
		if _, err := s.GetUser(ctx, e.p1, id); !errors.Is(err, domainerr.ErrNotFound) {
			t.Errorf("user %s: got %v; want absent", id, err)
		}
	}
	for _, h := range []string{"h1", "h6", "h7"} {
		if _, err := s.GetDevice(ctx, e.p1, h); err != nil {
			t.Errorf("device %s: %v; want imported", h, err)
		}
	}
	if u, err := s.GetUser(ctx, e.p1, "taken"); err != nil || u.Email != "taken@example.com" {
		t.Fatalf("existing user: got %+v, %v; want untouched", u, err)
	}
	// Nothing leaked into the other project.
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users WHERE project_id = $1) + (SELECT count(*) FROM devices WHERE project_id = $1)`, e.p2).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows in project 2: got %d, %v; want 0", n, err)
	}

	_, err = s.Import(ctx, 999999, strings.NewReader(`{"type":"user","user_id":"1"}`))
	wantErrIs(t, "Import into a missing project", err, domainerr.ErrNotFound)
}

func TestImportErrorCapAndSmallBatches(t *testing.T) {
	cfg := Defaults()
	cfg.ImportBatch = 3 // several batches, one of which falls back line by line
	cfg.MaxLineErrors = 2
	e := newEnv(t, cfg)
	var b strings.Builder
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&b, `{"type":"user","user_id":"u%d","email":"same@example.com"}`+"\n", i)
	}
	res, err := e.store.Import(context.Background(), e.p1, strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if res.Users != 1 || res.Failed != 9 || len(res.Errors) != 2 || res.Errors[0].Line != 2 || res.Errors[1].Line != 3 {
		t.Fatalf("got users %d failed %d errors %+v; want 1 user, 9 failed, errors for lines 2 and 3 only", res.Users, res.Failed, res.Errors)
	}
}

// lineGenerator streams n NDJSON lines without holding them: half users, half devices of those users.
type lineGenerator struct {
	n, i int
	buf  []byte
}

func (g *lineGenerator) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i < g.n {
		k := g.i / 2
		if g.i%2 == 0 {
			g.buf = fmt.Appendf(g.buf, `{"type":"user","user_id":"user-%d","email":"User%d@Example.com","phone":"+1555%07d"}`+"\n", k, k, k)
		} else {
			g.buf = fmt.Appendf(g.buf, `{"type":"device","hwid":"hwid-%d","user_id":"user-%d","platform":"ios"}`+"\n", k, k)
		}
		g.i++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	if len(g.buf) == 0 {
		g.buf = g.buf[:0:0]
	}
	return n, nil
}

func TestImportLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 100k lines")
	}
	e := newEnv(t, Defaults())
	ctx := context.Background()
	const lines = 100_000
	start := time.Now()
	res, err := e.store.Import(ctx, e.p1, &lineGenerator{n: lines})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if res.Users != lines/2 || res.Devices != lines/2 || res.Failed != 0 {
		t.Fatalf("got users %d devices %d failed %d (%+v); want %d, %d, 0", res.Users, res.Devices, res.Failed, res.Errors, lines/2, lines/2)
	}
	t.Logf("imported %d lines in %s (%.0f lines/s)", lines, took.Round(time.Millisecond), lines/took.Seconds())
	// Re-importing the same file changes nothing.
	start = time.Now()
	res, err = e.store.Import(ctx, e.p1, &lineGenerator{n: lines})
	if err != nil || res.Failed != 0 {
		t.Fatalf("second Import: got %+v, %v", res.Failed, err)
	}
	t.Logf("re-imported %d unchanged lines in %s", lines, time.Since(start).Round(time.Millisecond))
	p, err := e.store.Lookup(ctx, e.p1, identify.ByEmail, "user777@example.com")
	if err != nil || p.UserID != "user-777" || !slices.Equal(p.HWIDs, []string{"hwid-777"}) {
		t.Fatalf("Lookup after import: got %+v, %v; want user-777 with hwid-777", p, err)
	}
}

// second is the error of a two-value call.
func second[T any](_ T, err error) error { return err }
