package directory

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/inlet-dev/inlet/internal/identify"
)

// TestCreateKinds: each kind makes what the unknown-user policy promises, read back as Resolve
// reads it; a second Create (a replay) inserts nothing and answers the same subjects.
func TestCreateKinds(t *testing.T) {
	cfg := Defaults()
	cfg.DefaultRegion = "GB"
	e := newEnv(t, cfg)
	r := newResolver(t, e, cfg, false)
	ctx := context.Background()
	for _, tc := range []struct {
		kind   identify.Kind
		values []string
		want   map[string]Subject
		refuse []string
	}{
		{identify.ByUserID, []string{"u-new"}, map[string]Subject{"u-new": {UserID: "u-new"}}, nil},
		{identify.ByEmail, []string{"Jane@Example.com", "jane@example.com", "not an email"},
			map[string]Subject{"Jane@Example.com": {UserID: "email:jane@example.com"}, "jane@example.com": {UserID: "email:jane@example.com"}},
			[]string{"not an email"}},
		{identify.ByPhone, []string{"020 7946 0958", "+44 20 7946 0958", "12"},
			map[string]Subject{"020 7946 0958": {UserID: "phone:+442079460958"}, "+44 20 7946 0958": {UserID: "phone:+442079460958"}},
			[]string{"12"}},
		{identify.ByHWID, []string{"dev-1"}, map[string]Subject{"dev-1": {HWID: "dev-1", HWIDs: []string{"dev-1"}}}, nil},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			// Looked up first, as the pipeline does: the "not found" is cached and must not survive.
			if got := resolve(t, r, e.p1, tc.kind, tc.values...); len(got) != 0 {
				t.Fatalf("Resolve before Create = %v; want nothing", got)
			}
			plan, err := r.Plan(ctx, e.p1, tc.kind, tc.values, nil)
			if err != nil {
				t.Fatal(err)
			}
			for run := range 2 {
				got, err := r.Create(ctx, e.p1, tc.kind, tc.values, nil)
				if err != nil {
					t.Fatalf("Create #%d: %v", run+1, err)
				}
				for v, w := range tc.want {
					s := got.Subjects[v]
					if s.UserID != w.UserID || s.HWID != w.HWID || fmt.Sprint(s.HWIDs) != fmt.Sprint(w.HWIDs) {
						t.Errorf("Create #%d: subject of %q = %+v; want %+v", run+1, v, s, w)
					}
					if p := plan.Subjects[v]; p.UserID != w.UserID || p.HWID != w.HWID {
						t.Errorf("Plan: subject of %q = %+v; want %+v", v, p, w)
					}
				}
				// One value per subject made is new: the first spelling, on the first run only.
				rows := map[string]bool{}
				for _, w := range tc.want {
					rows[w.UserID+"/"+w.HWID] = true
				}
				if want := map[bool]int{true: len(rows), false: 0}[run == 0]; len(got.New) != want || len(plan.New) != len(rows) {
					t.Errorf("Create #%d: New = %v (plan %v); want %d values", run+1, got.New, plan.New, want)
				}
				for _, v := range tc.refuse {
					if got.Refused[v] == "" {
						t.Errorf("Create #%d: %q not refused (subjects %v)", run+1, v, got.Subjects)
					}
				}
			}
			if got := resolve(t, r, e.p1, tc.kind, tc.values...); len(got) != len(tc.want) {
				t.Errorf("Resolve after Create = %v; want %d subjects", got, len(tc.want))
			}
			if got := resolve(t, r, e.p2, tc.kind, tc.values...); len(got) != 0 {
				t.Errorf("Resolve in the other project = %v; want nothing", got)
			}
		})
	}
	// The e-mail's user has the address as given (NFC), no phone; the phone's the E.164 number.
	u, err := e.store.GetUser(ctx, e.p1, "email:jane@example.com")
	if err != nil || u.Phone != "" || (u.Email != "Jane@Example.com" && u.Email != "jane@example.com") {
		t.Errorf("created user = %+v, %v; want email jane@example.com (as given), no phone", u, err)
	}
	if u, err := e.store.GetUser(ctx, e.p1, "phone:+442079460958"); err != nil || u.Phone != "+442079460958" || u.Email != "" {
		t.Errorf("created user = %+v, %v; want phone +442079460958, no email", u, err)
	}
	if n := counterValue(r.m.created.WithLabelValues("email")); n != 1 {
		t.Errorf("inlet_directory_created_total{kind=email} = %v; want 1", n)
	}
}

// TestCreateExistingEmailOwner: an address that an existing user already has is that user's; Create
// inserts nothing and answers it.
func TestCreateExistingEmailOwner(t *testing.T) {
	e := newEnv(t, Defaults())
	r := newResolver(t, e, Defaults(), false)
	mustUser(t, e.store, e.p1, User{UserID: "jane", Email: "jane@example.com"})
	got, err := r.Create(context.Background(), e.p1, identify.ByEmail, []string{"JANE@example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Subjects["JANE@example.com"]; s.UserID != "jane" || got.New["JANE@example.com"] {
		t.Errorf("Create of an owned address = %+v (new %v); want user jane, not new", s, got.New)
	}
}

// TestCreateConcurrent: many resolvers (processes) creating the same new users at once make one row
// each, and all of them answer the same subject.
func TestCreateConcurrent(t *testing.T) {
	e := newEnv(t, Defaults())
	const n = 8
	rs := make([]*Resolver, n)
	for i := range rs {
		rs[i] = newResolver(t, e, Defaults(), false)
	}
	values := []string{"new@example.com", "other@example.com"}
	var wg sync.WaitGroup
	results := make([]Created, n)
	errs := make([]error, n)
	for i := range rs {
		wg.Go(func() { results[i], errs[i] = rs[i].Create(context.Background(), e.p1, identify.ByEmail, values, nil) })
	}
	wg.Wait()
	news := map[string]int{}
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("Create #%d: %v", i, errs[i])
		}
		for _, v := range values {
			if s := results[i].Subjects[v]; s.UserID != "email:"+v {
				t.Errorf("Create #%d: subject of %s = %+v; want email:%s", i, v, s, v)
			}
			if results[i].New[v] {
				news[v]++
			}
		}
	}
	for _, v := range values {
		if news[v] != 1 {
			t.Errorf("%s reported new by %d calls; want exactly 1", v, news[v])
		}
		var rows int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM users WHERE project_id = $1 AND lower(email) = $2`, e.p1, v).Scan(&rows); err != nil || rows != 1 {
			t.Errorf("users with %s = %d, %v; want 1", v, rows, err)
		}
	}
}

// userContact reads a user's e-mail and phone as stored.
func userContact(t *testing.T, e *env, project int64, userID string) Contact {
	t.Helper()
	var c Contact
	if err := e.pool.QueryRow(context.Background(), `SELECT email, phone FROM users WHERE project_id = $1 AND user_id = $2`,
		project, userID).Scan(&c.Email, &c.Phone); err != nil {
		t.Fatalf("user %s: %v", userID, err)
	}
	return c
}

// TestCreateWithContact: a created user gets the valid e-mail and phone of its contact; invalid ones,
// and one another user has, are left out with a note, the user created all the same; an identifier's
// own kind is not overridden; an existing user is not changed.
func TestCreateWithContact(t *testing.T) {
	cfg := Defaults()
	cfg.DefaultRegion = "GB"
	e := newEnv(t, cfg)
	r := newResolver(t, e, cfg, false)
	ctx := context.Background()
	mustUser(t, e.store, e.p1, User{UserID: "owner", Email: "taken@example.com", Phone: "+447700900555"})

	contacts := map[string]Contact{
		"u1":    {Email: "Ann@Example.com", Phone: "07700 900123"},
		"u2":    {Email: "not an email", Phone: "12"},
		"u3":    {Email: "taken@example.com"},
		"owner": {Email: "changed@example.com"},
	}
	plan, err := r.Plan(ctx, e.p1, identify.ByUserID, []string{"u1", "u2"}, contacts)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Set["u1"]; got != (Contact{Email: "Ann@Example.com", Phone: "+447700900123"}) || len(plan.Notes["u2"]) != 2 {
		t.Errorf("Plan: set %+v, notes %q; want u1's e-mail and E.164 phone, two notes for u2", plan.Set, plan.Notes)
	}
	got, err := r.Create(ctx, e.p1, identify.ByUserID, []string{"owner", "u1", "u2", "u3"}, contacts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user  string
		want  Contact
		notes int
	}{
		{"u1", Contact{Email: "Ann@Example.com", Phone: "+447700900123"}, 0},
		{"u2", Contact{}, 2},
		{"u3", Contact{}, 1},
	} {
		if !got.New[tc.user] || got.Subjects[tc.user].UserID != tc.user {
			t.Errorf("%s: new %v, subject %+v; want created", tc.user, got.New[tc.user], got.Subjects[tc.user])
		}
		if c := userContact(t, e, e.p1, tc.user); c != tc.want {
			t.Errorf("%s stored with %+v; want %+v", tc.user, c, tc.want)
		}
		if got.Set[tc.user] != tc.want || len(got.Notes[tc.user]) != tc.notes {
			t.Errorf("%s: set %+v, notes %q; want %+v, %d notes", tc.user, got.Set[tc.user], got.Notes[tc.user], tc.want, tc.notes)
		}
	}
	if got.New["owner"] {
		t.Error("owner reported new")
	}
	if c := userContact(t, e, e.p1, "owner"); c != (Contact{Email: "taken@example.com", Phone: "+447700900555"}) {
		t.Errorf("existing user changed to %+v", c)
	}

	// Identified by e-mail: the phone is set, the contact's e-mail ignored.
	got, err = r.Create(ctx, e.p1, identify.ByEmail, []string{"new@example.com"},
		map[string]Contact{"new@example.com": {Email: "other@example.com", Phone: "+447700900999"}})
	if err != nil {
		t.Fatal(err)
	}
	if c := userContact(t, e, e.p1, "email:new@example.com"); c != (Contact{Email: "new@example.com", Phone: "+447700900999"}) || !got.New["new@example.com"] {
		t.Errorf("by e-mail: stored %+v (new %v); want its address and the phone", c, got.New)
	}
	// Identified by phone: the e-mail is set.
	if _, err = r.Create(ctx, e.p1, identify.ByPhone, []string{"+447700900888"},
		map[string]Contact{"+447700900888": {Email: "p@example.com", Phone: "+447700900111"}}); err != nil {
		t.Fatal(err)
	}
	if c := userContact(t, e, e.p1, "phone:+447700900888"); c != (Contact{Email: "p@example.com", Phone: "+447700900888"}) {
		t.Errorf("by phone: stored %+v; want the e-mail and its own number", c)
	}
}

// TestCreateContactConcurrent: requests for one new user with different e-mails, at once, make one
// user with the e-mail of the call that inserted it (the first insert wins); every call answers it.
func TestCreateContactConcurrent(t *testing.T) {
	e := newEnv(t, Defaults())
	const n = 8
	rs := make([]*Resolver, n)
	for i := range rs {
		rs[i] = newResolver(t, e, Defaults(), false)
	}
	var wg sync.WaitGroup
	results := make([]Created, n)
	errs := make([]error, n)
	for i := range rs {
		wg.Go(func() {
			results[i], errs[i] = rs[i].Create(context.Background(), e.p1, identify.ByUserID, []string{"same"},
				map[string]Contact{"same": {Email: fmt.Sprintf("e%d@example.com", i)}})
		})
	}
	wg.Wait()
	winner := -1
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("Create #%d: %v", i, errs[i])
		}
		if s := results[i].Subjects["same"]; s.UserID != "same" {
			t.Errorf("Create #%d: subject %+v; want user same", i, s)
		}
		if results[i].New["same"] {
			if winner >= 0 {
				t.Errorf("Create #%d and #%d both report new", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no Create reported new")
	}
	want := fmt.Sprintf("e%d@example.com", winner)
	if c := userContact(t, e, e.p1, "same"); c.Email != want {
		t.Errorf("stored e-mail %q; want %q (the inserting call's)", c.Email, want)
	}
	if got := results[winner].Set["same"]; got.Email != want {
		t.Errorf("winner's Set = %+v; want e-mail %s", got, want)
	}
}
