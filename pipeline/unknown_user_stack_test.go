package pipeline_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// TestUnknownUserCreateThroughTheDirectory: a route whose unknown-user policy is create, on the real
// directory (PostgreSQL, the Resolver as resolver and creator), Kafka and ClickHouse. Three requests
// for the same new user in one poll — two spellings of the address — create one user and all fire
// with it; a request for an address no user can have fails with identifier_invalid; a later request
// finds the user.
func TestUnknownUserCreateThroughTheDirectory(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	ctx := context.Background()
	projects := project.NewStore(e.pool)
	p, _, err := projects.Create(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != 1 {
		t.Fatalf("project id %d; the test's records carry project 1", p.ID)
	}
	res, err := directory.NewResolver(e.pool, nil, projects, directory.Defaults(), nil, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(res.Close)
	hooks := &fakeHooks{}
	hooks.put(&webhook.Hook{PublicID: "wh_create", ProjectID: 1, Version: 1, Enabled: true, EventName: "Signup",
		Identify:    webhook.Identify{Kind: identify.ByEmail, Field: "email"},
		UnknownUser: webhook.UnknownUserCreate})
	reqs := []req{
		newReq("wh_create", wire.OutcomeAccepted, `{"email":"new@example.com"}`),
		newReq("wh_create", wire.OutcomeAccepted, `{"email":"new@example.com"}`),
		newReq("wh_create", wire.OutcomeAccepted, `{"email":"New@Example.com"}`),
		newReq("wh_create", wire.OutcomeAccepted, `{"email":"nobody"}`),
	}
	e.produce(t, reqs...)
	stop := e.runDeps(t, testConfig(), pipeline.Deps{Hooks: hooks, Resolver: res, Creator: res})
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 60*time.Second)
	stop()

	rows := e.activity(t, "wh_create")
	for i, r := range reqs[:3] {
		if row := rows[r.id.String()]; row.status != chstore.StatusSuccess {
			t.Errorf("request %d: %s/%s %q; want success", i, row.status, row.reason, row.detail)
		}
	}
	if row := rows[reqs[3].id.String()]; row.reason != wire.ReasonIdentifierInvalid {
		t.Errorf("request for an invalid address: %s/%s; want identifier_invalid", row.status, row.reason)
	}
	created := 0
	for _, r := range reqs[:3] {
		if strings.Contains(rows[r.id.String()].detail, "user created from email") {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d requests' details say the user was created; want 1", created)
	}
	var users int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE project_id = 1`).Scan(&users); err != nil || users != 1 {
		t.Errorf("users = %d, %v; want 1", users, err)
	}
	if evs := e.events(t, 3, 30*time.Second); len(evs) != 3 {
		t.Errorf("%d events; want 3", len(evs))
	} else {
		for _, r := range evs {
			ev, err := wire.DecodeEvent(r)
			if err != nil || ev.UserID != "email:new@example.com" {
				t.Errorf("event for %q (%v); want user email:new@example.com", ev.UserID, err)
			}
		}
	}
}

// TestUnknownUserCreateWithContact: a route with create_email and create_phone, on the real directory,
// Kafka and ClickHouse. Two requests for the same new user id with different e-mails, in one poll,
// create one user with the first one's e-mail and phone; a request whose e-mail is invalid creates its
// user without it, says so in its detail, and fires.
func TestUnknownUserCreateWithContact(t *testing.T) {
	e := newEnv(t)
	e.withDeliveries(t)
	ctx := context.Background()
	projects := project.NewStore(e.pool)
	p, _, err := projects.Create(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != 1 {
		t.Fatalf("project id %d; the test's records carry project 1", p.ID)
	}
	res, err := directory.NewResolver(e.pool, nil, projects, directory.Defaults(), nil, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(res.Close)
	hooks := &fakeHooks{}
	h := &webhook.Hook{PublicID: "wh_create", ProjectID: 1, Version: 1, Enabled: true, EventName: "Signup",
		Identify:    webhook.Identify{Kind: identify.ByUserID, Field: "id"},
		UnknownUser: webhook.UnknownUserCreate}
	h.CreateEmail, h.CreatePhone = "customer.email", "customer.phone"
	hooks.put(h)
	reqs := []req{
		newReq("wh_create", wire.OutcomeAccepted, `{"id":"u-new","customer":{"email":"a@example.com","phone":"+447700900123"}}`),
		newReq("wh_create", wire.OutcomeAccepted, `{"id":"u-new","customer":{"email":"b@example.com","phone":"+447700900456"}}`),
		newReq("wh_create", wire.OutcomeAccepted, `{"id":"u-bad","customer":{"email":"not an address"}}`),
	}
	e.produce(t, reqs...)
	stop := e.runDeps(t, testConfig(), pipeline.Deps{Hooks: hooks, Resolver: res, Creator: res})
	e.waitCount(t, "SELECT count() FROM activity_log", uint64(len(reqs)), 60*time.Second)
	stop()

	rows := e.activity(t, "wh_create")
	for i, want := range []string{
		"user created from user_id u-new, with the e-mail and phone read from the payload",
		"",
		"user created from user_id u-bad; e-mail left out: not a valid email address",
	} {
		if row := rows[reqs[i].id.String()]; row.status != chstore.StatusSuccess || row.detail != want {
			t.Errorf("request %d: %s/%s %q; want success, detail %q", i, row.status, row.reason, row.detail, want)
		}
	}
	for _, tc := range []struct{ user, email, phone string }{
		{"u-new", "a@example.com", "+447700900123"},
		{"u-bad", "", ""},
	} {
		var email, phone string
		if err := e.pool.QueryRow(ctx, `SELECT email, phone FROM users WHERE project_id = 1 AND user_id = $1`, tc.user).Scan(&email, &phone); err != nil {
			t.Fatalf("user %s: %v", tc.user, err)
		}
		if email != tc.email || phone != tc.phone {
			t.Errorf("user %s: e-mail %q, phone %q; want %q, %q", tc.user, email, phone, tc.email, tc.phone)
		}
	}
	if evs := e.events(t, 3, 30*time.Second); len(evs) != 3 {
		t.Errorf("%d events; want 3", len(evs))
	}
}
