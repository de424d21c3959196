package pipeline

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// fakeCreator is a directory in memory: Create adds "email:"+value users to the resolver it shares,
// refusing values without "@"; Plan answers the same without adding. calls records each Create's
// values; fail makes the next Create calls fail (a directory that cannot be reached).
type fakeCreator struct {
	mu       sync.Mutex
	dir      mapResolver
	calls    [][]string
	contacts []map[string]Contact // each Create's contacts
	fail     int
}

// made sets each new user's contact as given (a phone without "+" is left out, with a note).
func (c *fakeCreator) made(values []string, contacts map[string]Contact, write bool) Created {
	out := Created{Subjects: map[string]Subject{}, New: map[string]bool{}, Refused: map[string]string{},
		Set: map[string]Contact{}, Notes: map[string][]string{}}
	for _, v := range values {
		if !strings.Contains(v, "@") {
			out.Refused[v] = "not a valid email address"
			continue
		}
		if s, ok := c.dir[v]; ok {
			out.Subjects[v] = s
			continue
		}
		s := Subject{UserID: "email:" + v, HWIDs: []string{}}
		out.Subjects[v], out.New[v] = s, true
		if ct, ok := contacts[v]; ok {
			if ct.Phone != "" && !strings.HasPrefix(ct.Phone, "+") {
				out.Notes[v] = append(out.Notes[v], "phone left out: not E.164")
				ct.Phone = ""
			}
			out.Set[v] = ct
		}
		if write {
			c.dir[v] = s
		}
	}
	return out
}

func (c *fakeCreator) Create(_ context.Context, _ int64, _ identify.Kind, values []string, contacts map[string]Contact) (Created, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, slices.Clone(values))
	c.contacts = append(c.contacts, contacts)
	if c.fail > 0 {
		c.fail--
		return Created{}, errors.New("connection refused")
	}
	return c.made(values, contacts, true), nil
}

func (c *fakeCreator) Plan(_ context.Context, _ int64, _ identify.Kind, values []string, contacts map[string]Contact) (Created, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made(values, contacts, false), nil
}

// createHook identifies by email_address; its route creates unknown users when create is set.
func createHook(create bool) *webhook.Hook {
	h := &webhook.Hook{PublicID: "wh_1", ProjectID: 1, Version: 1, Enabled: true, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: identify.ByEmail, Field: "email_address"},
		Mappings: []webhook.TypedMapping{{Attribute: "total", Type: webhook.TypePrice, Field: "price"}}}
	if create {
		h.UnknownUser = webhook.UnknownUserCreate
	}
	return h
}

func TestUnknownUserCreate(t *testing.T) {
	p, _ := unitProcessor(t)
	known := mapResolver{"known@example.com": {UserID: "k", HWIDs: []string{}}}
	c := &fakeCreator{dir: known, fail: 1} // the first Create fails: retried, not the records' failure
	p.resolver, p.creator = known, c
	p.retry.maxBackoff = 10 * time.Millisecond
	p.hooks = mapHooks{"wh_1": createHook(true)}
	now := time.Now().UnixMilli()
	bodies := []string{
		`{"email_address":"new@example.com","price":1}`,
		`{"email_address":"new@example.com","price":2}`, // the same new user in the same poll: created once
		`{"email_address":"known@example.com","price":3}`,
		`{"email_address":"not-an-email","price":4}`,
	}
	var recs []*kgo.Record
	for i, b := range bodies {
		recs = append(recs, unitRecord(int64(i), wire.OutcomeAccepted, b, now))
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	if len(c.calls) != 2 || !slices.Equal(c.calls[1], []string{"new@example.com", "not-an-email"}) {
		t.Errorf("Create calls = %q; want one failed then one retried with [new@example.com not-an-email]", c.calls)
	}
	for i, want := range []struct{ status, reason, user, detail string }{
		{chstore.StatusSuccess, "", "email:new@example.com", "user created from email new@example.com"},
		{chstore.StatusSuccess, "", "email:new@example.com", ""}, // found what the first created
		{chstore.StatusSuccess, "", "k", ""},
		{chstore.StatusFailed, wire.ReasonIdentifierInvalid, "", "none can be created"},
	} {
		row := p.b.activity[i]
		if row.Status != want.status || row.Reason != want.reason || row.UserID != want.user || !strings.Contains(row.Detail, want.detail) {
			t.Errorf("request %d: %s/%s user %q detail %q; want %s/%s user %q detail containing %q", i,
				row.Status, row.Reason, row.UserID, row.Detail, want.status, want.reason, want.user, want.detail)
		}
	}
	if d := p.b.activity[1].Detail; strings.Contains(d, "created") {
		t.Errorf("request 1's detail %q; want no creation (request 0 created the user)", d)
	}
	if len(p.b.fire) != 3 {
		t.Errorf("fired %d events; want 3", len(p.b.fire))
	}

	// A replay of the same records (after a crash) finds the user: same subject, nothing created.
	p.b.reset()
	calls := len(c.calls)
	if err := p.handle(context.Background(), fetches(recs[:1]...)); err != nil {
		t.Fatal(err)
	}
	if len(c.calls) != calls {
		t.Errorf("replay called Create %d more times; want none", len(c.calls)-calls)
	}
	if row := p.b.activity[0]; row.Status != chstore.StatusSuccess || row.UserID != "email:new@example.com" {
		t.Errorf("replay: %s user %q; want success, email:new@example.com", row.Status, row.UserID)
	}
}

// TestUnknownUserFailIsTheDefault: without the policy nothing is created.
func TestUnknownUserFailIsTheDefault(t *testing.T) {
	p, _ := unitProcessor(t)
	c := &fakeCreator{dir: mapResolver{}}
	p.resolver, p.creator = c.dir, c
	p.hooks = mapHooks{"wh_1": createHook(false)}
	if err := p.handle(context.Background(), fetches(unitRecord(0, wire.OutcomeAccepted, `{"email_address":"new@example.com"}`, time.Now().UnixMilli()))); err != nil {
		t.Fatal(err)
	}
	if row := p.b.activity[0]; row.Reason != wire.ReasonUserNotFound || len(c.calls) != 0 {
		t.Errorf("reason %q, %d Create calls; want user_not_found, none", row.Reason, len(c.calls))
	}
}

// TestEvaluateUnknownUserCreate: the dry run writes nothing and shows the event as it would fire,
// with the subject the user would get; the pipeline then fires that very event.
func TestEvaluateUnknownUserCreate(t *testing.T) {
	p, _ := unitProcessor(t)
	c := &fakeCreator{dir: mapResolver{}}
	p.resolver, p.creator = c.dir, c
	h := createHook(true)
	p.hooks = mapHooks{"wh_1": h}
	body := `{"email_address":"new@example.com","price":1}`
	rec := unitRecord(0, wire.OutcomeAccepted, body, time.Now().UnixMilli())
	var req wire.Request
	wire.DecodeRequest(rec, &req)
	evs, err := NewEvaluator(p.lim, c.dir, c).Evaluate(context.Background(), h, []Request{{ID: req.ID, ReceivedMs: req.ReceivedMs, Body: []byte(body)}})
	if err != nil {
		t.Fatal(err)
	}
	ev := evs[0]
	if len(c.calls) != 0 || len(c.dir) != 0 {
		t.Fatalf("the dry run created users: calls %q", c.calls)
	}
	if ev.Status != chstore.StatusSuccess || ev.Identification.Found || !ev.Identification.WouldCreate ||
		ev.Identification.UserID != "email:new@example.com" || ev.Detail != "user would be created from email new@example.com" {
		t.Errorf("dry run = %s %q, identification %+v; want success, would create email:new@example.com", ev.Status, ev.Detail, ev.Identification)
	}
	if err := p.handle(context.Background(), fetches(rec)); err != nil {
		t.Fatal(err)
	}
	if len(p.b.fire) != 1 || string(p.b.fire[0].rec.Value) != string(ev.Event) {
		t.Errorf("fired %d events; want the dry run's %s", len(p.b.fire), ev.Event)
	}
}

// TestUnknownUserCreateContact: a route with create_phone hands the phone read from the payload to
// Create, the first element of a value giving it; what cannot be read is left out with a note, and
// never fails the request. The dry run shows what it would set.
func TestUnknownUserCreateContact(t *testing.T) {
	p, _ := unitProcessor(t)
	c := &fakeCreator{dir: mapResolver{}}
	p.resolver, p.creator = c.dir, c
	h := createHook(true)
	h.CreatePhone = "contact.phone"
	p.hooks = mapHooks{"wh_1": h}
	now := time.Now().UnixMilli()
	bodies := []string{
		`{"email_address":"a@example.com","contact":{"phone":"+447700900001"},"price":1}`,
		`{"email_address":"a@example.com","contact":{"phone":"+447700900002"},"price":2}`, // same user: the first's phone
		`{"email_address":"b@example.com","contact":{"phone":{"n":1}},"price":3}`,         // not a single value
		`{"email_address":"c@example.com","price":4}`,                                     // absent: nothing, no note
		`{"email_address":"d@example.com","contact":{"phone":"07700"},"price":5}`,         // refused by the directory
	}
	var recs []*kgo.Record
	for i, b := range bodies {
		recs = append(recs, unitRecord(int64(i), wire.OutcomeAccepted, b, now))
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	if len(c.contacts) != 1 {
		t.Fatalf("Create called %d times; want 1", len(c.contacts))
	}
	wantContacts := map[string]Contact{"a@example.com": {Phone: "+447700900001"}, "b@example.com": {}, "c@example.com": {},
		"d@example.com": {Phone: "07700"}}
	for v, w := range wantContacts {
		if got := c.contacts[0][v]; got != w {
			t.Errorf("contact of %s = %+v; want %+v", v, got, w)
		}
	}
	for i, want := range []string{
		"user created from email a@example.com, with the phone read from the payload",
		"",
		"user created from email b@example.com; phone left out: field contact.phone is a object, not a single value",
		"user created from email c@example.com",
		"user created from email d@example.com; phone left out: not E.164",
	} {
		row := p.b.activity[i]
		if row.Status != chstore.StatusSuccess || row.Detail != want {
			t.Errorf("request %d: %s detail %q; want success, detail %q", i, row.Status, row.Detail, want)
		}
	}

	// The dry run shows the phone the user would get.
	var req wire.Request
	wire.DecodeRequest(recs[0], &req)
	c2 := &fakeCreator{dir: mapResolver{}}
	evs, err := NewEvaluator(p.lim, c2.dir, c2).Evaluate(context.Background(), h, []Request{{ID: req.ID, ReceivedMs: req.ReceivedMs, Body: []byte(bodies[0])}})
	if err != nil {
		t.Fatal(err)
	}
	if id := evs[0].Identification; !id.WouldCreate || id.Phone != "+447700900001" || id.Email != "" {
		t.Errorf("dry run identification = %+v; want would_create with phone +447700900001", id)
	}
}
