package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/testenv"
)

type fixture struct {
	store  *Store
	pool   *pgxpool.Pool
	dsn    string
	p1, p2 int64 // two projects
	event  *Event
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	cfg, pool := testenv.Postgres(t)
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: NewStore(pool, sealer), pool: pool, dsn: cfg.DSN}
	ctx := context.Background()
	for _, p := range []*int64{&f.p1, &f.p2} {
		if err := pool.QueryRow(ctx, `INSERT INTO projects (name) VALUES ('test') RETURNING id`).Scan(p); err != nil {
			t.Fatal(err)
		}
	}
	f.event, err = f.store.CreateEvent(ctx, f.p1, EventInput{Name: "CheckoutSuccess", Attributes: []Attribute{
		{"email", TypeString}, {"total", TypePrice}, {"order_id", TypeString}, {"items", TypeList},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func seedInput() WebhookInput {
	return WebhookInput{
		Name:      "Shopify orders",
		EventName: "CheckoutSuccess",
		Identify:  Identify{Kind: identify.ByUserID, Field: "user_id"},
		Mappings: []Mapping{
			{Attribute: "email", Field: "email_address"},
			{Attribute: "total", Field: "price"},
			{Attribute: "order_id", Field: `["order_number"]`},
		},
		SamplePayload: `{"user_id":"12345","email_address":"jane@example.com","price":99.99,"order_number":"ORD-001"}`,
	}
}

func (f *fixture) create(t testing.TB, name string) (*Webhook, string) {
	t.Helper()
	in := seedInput()
	in.Name = name
	w, sec, err := f.store.Create(context.Background(), f.p1, in)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return w, sec
}

// wantFields checks that err is a *domainerr.ValidationError naming exactly fields (in order).
func wantFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	var ve *domainerr.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got error %v; want a *domainerr.ValidationError on %v", err, fields)
	}
	var got []string
	for _, f := range ve.Fields {
		got = append(got, f.Field)
	}
	if strings.Join(got, ",") != strings.Join(fields, ",") {
		t.Fatalf("got invalid fields %v (%v); want %v", got, ve, fields)
	}
}

func TestEventValidation(t *testing.T) {
	tests := []struct {
		name   string
		in     EventInput
		fields []string
	}{
		{"ok", EventInput{Name: "a.B-c_9", Attributes: []Attribute{{"x", TypeDate}}}, nil},
		{"empty name", EventInput{}, []string{"name"}},
		{"name too long", EventInput{Name: strings.Repeat("a", 33)}, []string{"name"}},
		{"name 32", EventInput{Name: strings.Repeat("a", 32)}, nil},
		{"name starts with digit", EventInput{Name: "1a"}, []string{"name"}},
		{"name with space", EventInput{Name: "a b"}, []string{"name"}},
		{"everything wrong", EventInput{Name: "", Description: strings.Repeat("d", 1001), Attributes: []Attribute{
			{"", TypeString}, {"ok", "float"}, {"__webhook", TypeString}, {"dup", TypeString}, {"dup", TypeInteger}, {strings.Repeat("a", 65), TypeString},
		}}, []string{"name", "description", "attributes[0].name", "attributes[1].type", "attributes[2].name", "attributes[4].name", "attributes[5].name"}},
		{"too many attributes", EventInput{Name: "a", Attributes: make([]Attribute, MaxAttributes+1)}, []string{"attributes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.validate().Err()
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("got %v; want valid", err)
				}
				return
			}
			wantFields(t, err, tt.fields...)
		})
	}
}

func TestEventsCRUD(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.store

	if _, err := s.CreateEvent(ctx, f.p1, EventInput{Name: "CheckoutSuccess"}); !errors.Is(err, domainerr.ErrConflict) {
		t.Errorf("duplicate event: got %v; want domainerr.ErrConflict", err)
	}
	// The same name in another project is fine.
	other, err := s.CreateEvent(ctx, f.p2, EventInput{Name: "CheckoutSuccess"})
	if err != nil {
		t.Fatalf("same name in project 2: %v", err)
	}
	if _, err := s.GetEvent(ctx, f.p1, other.ID); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("GetEvent of another project's event: got %v; want domainerr.ErrNotFound", err)
	}
	ev, err := s.GetEventByName(ctx, f.p1, "CheckoutSuccess")
	if err != nil || ev.ID != f.event.ID || len(ev.Attributes) != 4 {
		t.Fatalf("GetEventByName = %+v, %v; want event %d with 4 attributes", ev, err, f.event.ID)
	}
	list, err := s.ListEvents(ctx, f.p2)
	if err != nil || len(list) != 1 || list[0].ID != other.ID {
		t.Errorf("ListEvents(p2) = %+v, %v; want only event %d", list, err, other.ID)
	}

	// Update with version checks.
	in := EventInput{Name: "Checkout", Description: "d", Attributes: append(ev.Attributes, Attribute{"coupon", TypeString})}
	if _, err := s.UpdateEvent(ctx, f.p1, ev.ID, ev.Version+1, in); !errors.Is(err, domainerr.ErrVersionMismatch) {
		t.Errorf("UpdateEvent with a wrong version: got %v; want domainerr.ErrVersionMismatch", err)
	}
	if _, err := s.UpdateEvent(ctx, f.p2, ev.ID, 0, in); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("UpdateEvent from another project: got %v; want domainerr.ErrNotFound", err)
	}
	up, err := s.UpdateEvent(ctx, f.p1, ev.ID, ev.Version, in)
	if err != nil || up.Version != ev.Version+1 || up.Name != "Checkout" || len(up.Attributes) != 5 {
		t.Fatalf("UpdateEvent = %+v, %v; want version %d, 5 attributes", up, err, ev.Version+1)
	}
	// Delete: not from another project; an unused event goes.
	if err := s.DeleteEvent(ctx, f.p2, ev.ID); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("DeleteEvent from another project: got %v; want domainerr.ErrNotFound", err)
	}
	if err := s.DeleteEvent(ctx, f.p2, other.ID); err != nil {
		t.Errorf("DeleteEvent: %v", err)
	}
	if _, err := s.GetEvent(ctx, f.p2, other.ID); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("GetEvent after delete: got %v; want domainerr.ErrNotFound", err)
	}
}

func TestEventInUse(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.store
	w, _ := f.create(t, "hook")

	if err := s.DeleteEvent(ctx, f.p1, f.event.ID); !errors.Is(err, ErrInUse) {
		t.Fatalf("DeleteEvent of a used event: got %v; want ErrInUse", err)
	}
	// Removing a mapped attribute names it, and retyping one names the type field (at its index in the
	// request) with every webhook that maps it; nothing is written.
	w2, _ := f.create(t, "hook 2")
	_, err := s.UpdateEvent(ctx, f.p1, f.event.ID, 0, EventInput{Name: "CheckoutSuccess", Attributes: []Attribute{
		{"total", TypeInteger}, {"order_id", TypeString}, {"items", TypeList},
	}})
	wantFields(t, err, "attributes", "attributes[0].type")
	if !strings.Contains(err.Error(), `"email"`) || !strings.Contains(err.Error(), `"total" is price`) ||
		!strings.Contains(err.Error(), w.ID) || !strings.Contains(err.Error(), w2.ID) {
		t.Errorf("error %q; want it to name attributes email and total (price) and webhooks %s and %s", err, w.ID, w2.ID)
	}
	if ev, err := s.GetEvent(ctx, f.p1, f.event.ID); err != nil || ev.Version != f.event.Version || ev.Attributes[1].Type != TypePrice {
		t.Fatalf("event after a refused update = %+v, %v; want it unchanged", ev, err)
	}
	// Unmapped attributes can be retyped and removed.
	if _, err := s.UpdateEvent(ctx, f.p1, f.event.ID, 0, EventInput{Name: "CheckoutSuccess", Attributes: []Attribute{
		{"email", TypeString}, {"total", TypePrice}, {"order_id", TypeString}, {"coupon", TypeString},
	}}); err != nil {
		t.Fatalf("UpdateEvent removing an unmapped attribute: %v", err)
	}
	up, err := s.UpdateEvent(ctx, f.p1, f.event.ID, 0, EventInput{Name: "CheckoutSuccess", Attributes: []Attribute{
		{"email", TypeString}, {"total", TypePrice}, {"order_id", TypeString}, {"coupon", TypeInteger},
	}})
	if err != nil || up.Attributes[3].Type != TypeInteger {
		t.Fatalf("UpdateEvent retyping an unmapped attribute = %+v, %v; want coupon integer", up, err)
	}
	// Once no live webhook maps it, a mapped attribute can be retyped too: the webhook keeps converting
	// by the type of the moment.
	unmapped := seedInput().Mappings[:1]
	for _, id := range []string{w.ID, w2.ID} {
		if _, err := s.Update(ctx, f.p1, id, 0, WebhookPatch{Mappings: &unmapped}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UpdateEvent(ctx, f.p1, f.event.ID, 0, EventInput{Name: "CheckoutSuccess", Attributes: []Attribute{
		{"email", TypeString}, {"total", TypeInteger}, {"order_id", TypeString},
	}}); err != nil {
		t.Fatalf("UpdateEvent retyping an attribute no webhook maps any more: %v", err)
	}
	remapped := seedInput().Mappings
	if _, err := s.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Mappings: &remapped}); err != nil {
		t.Fatal(err)
	}
	h, err := s.Hook(ctx, w.ID)
	if err != nil || h.Mappings[1].Type != TypeInteger {
		t.Fatalf("Hook after retype = %+v, %v; want total typed integer", h, err)
	}
	if err := s.Delete(ctx, f.p1, w2.ID); err != nil {
		t.Fatal(err)
	}

	// Once the webhook is deleted the event can go, and the deleted webhook row with it.
	if err := s.Delete(ctx, f.p1, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEvent(ctx, f.p1, f.event.ID); err != nil {
		t.Fatalf("DeleteEvent after its webhook was deleted: %v", err)
	}
}

func TestWebhookCreate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.store
	w, sec := f.create(t, "Shopify orders")

	if w.Enabled {
		t.Error("new webhook is enabled; want disabled")
	}
	if !secret.ValidPublicID(w.ID) || !strings.HasPrefix(sec, "whsec_") {
		t.Errorf("id %q secret prefix %q; want a public id and whsec_", w.ID, sec[:6])
	}
	if w.Version != 1 || w.EventID != f.event.ID || w.EventName != "CheckoutSuccess" {
		t.Errorf("got %+v; want version 1 and event %d", w, f.event.ID)
	}
	if w.Mappings[2].Field != "order_number" {
		t.Errorf("mapping field stored as %q; want the canonical order_number", w.Mappings[2].Field)
	}
	// The secret is stored only as digest and ciphertext.
	var digest, sealed []byte
	if err := f.pool.QueryRow(ctx, `SELECT secret_digest, secret_ciphertext FROM webhooks WHERE public_id = $1`, w.ID).Scan(&digest, &sealed); err != nil {
		t.Fatal(err)
	}
	if d := secret.Digest([]byte("Bearer " + sec)); !bytes.Equal(digest, d[:]) {
		t.Error("stored digest is not SHA-256 of \"Bearer \" + secret")
	}
	if bytes.Contains(sealed, []byte(sec)) {
		t.Error("stored ciphertext contains the secret")
	}
	cred, err := s.Credentials(ctx, f.p1, w.ID)
	if err != nil || cred.Secret != sec || cred.Authorization != "Bearer "+sec || cred.SamplePayload == "" {
		t.Errorf("Credentials = %+v, %v; want the secret back", cred, err)
	}
	// A ciphertext moved to another webhook's row does not open.
	w2, _ := f.create(t, "other")
	if _, err := f.pool.Exec(ctx, `UPDATE webhooks SET secret_ciphertext = $1 WHERE public_id = $2`, sealed, w2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Credentials(ctx, f.p1, w2.ID); !errors.Is(err, secret.ErrOpen) {
		t.Errorf("Credentials with a moved ciphertext: got %v; want ErrOpen", err)
	}

	// Names are unique among live webhooks, ignoring case.
	in := seedInput()
	in.Name = "SHOPIFY ORDERS"
	if _, _, err := s.Create(ctx, f.p1, in); !errors.Is(err, domainerr.ErrConflict) {
		t.Errorf("duplicate name: got %v; want domainerr.ErrConflict", err)
	}
	// By event id works as well as by name.
	in.Name, in.EventName, in.EventID = "by id", "", f.event.ID
	if _, _, err := s.Create(ctx, f.p1, in); err != nil {
		t.Errorf("create by event id: %v", err)
	}
}

func TestWebhookValidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	otherEvent, err := f.store.CreateEvent(ctx, f.p2, EventInput{Name: "Foreign"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mod    func(*WebhookInput)
		fields []string
	}{
		{"no name", func(in *WebhookInput) { in.Name = " " }, []string{"name"}},
		{"long name", func(in *WebhookInput) { in.Name = strings.Repeat("é", MaxWebhookNameLen+1) }, []string{"name"}},
		{"control char", func(in *WebhookInput) { in.Name = "a\nb" }, []string{"name"}},
		{"no event", func(in *WebhookInput) { in.EventName = "" }, []string{"event"}},
		// Without an event, mappings cannot be checked against it; only the event is named.
		{"unknown event", func(in *WebhookInput) { in.EventName = "Nope" }, []string{"event"}},
		{"another project's event", func(in *WebhookInput) { in.EventName, in.EventID = "", otherEvent.ID }, []string{"event_id"}},
		{"id and name disagree", func(in *WebhookInput) { in.EventID = f.event.ID; in.EventName = "Other" }, []string{"event"}},
		{"bad identify", func(in *WebhookInput) { in.Identify = Identify{Kind: "fax", Field: "a..b"} }, []string{"identify.kind", "identify.field"}},
		{"no identify field", func(in *WebhookInput) { in.Identify.Field = "" }, []string{"identify.field"}},
		{"mapping problems", func(in *WebhookInput) {
			in.SamplePayload = "" // no sample: only the mappings themselves are checked
			in.Mappings = []Mapping{
				{Attribute: "email", Field: "a"},
				{Attribute: "nope", Field: "b"},
				{Attribute: "email", Field: "c"},
				{Attribute: "", Field: "d[x]"},
				{Attribute: "total", Field: ""},
			}
		}, []string{"mappings[1].attribute", "mappings[2].attribute", "mappings[3].attribute", "mappings[3].field", "mappings[4].field"}},
		{"too many mappings", func(in *WebhookInput) { in.Mappings = make([]Mapping, MaxMappings+1) }, []string{"mappings"}},
		{"bad on_error", func(in *WebhookInput) { in.Mappings[1].OnError = "ignore" }, []string{"mappings[1].on_error"}},
		{"bad time zone", func(in *WebhookInput) { in.TimeZone = "Mars/Olympus" }, []string{"time_zone"}},
		{"host's time zone", func(in *WebhookInput) { in.TimeZone = "Local" }, []string{"time_zone"}},
		{"path the sample lacks", func(in *WebhookInput) { in.Mappings[0].Field = "customer.email" }, []string{"mappings[0].field"}},
		{"index out of range", func(in *WebhookInput) {
			in.SamplePayload = `{"user_id":"1","items":[{"sku":"a"}],"price":1}`
			in.Mappings = []Mapping{{Attribute: "order_id", Field: "items[1].sku"}, {Attribute: "total", Field: "price"}}
		}, []string{"mappings[0].field"}},
		{"list of objects", func(in *WebhookInput) {
			in.SamplePayload = `{"user_id":"1","items":[{"sku":"a"}]}`
			in.Mappings = []Mapping{{Attribute: "items", Field: "items"}}
		}, []string{"mappings[0].field"}},
		{"scalar from an object and an array", func(in *WebhookInput) {
			in.SamplePayload = `{"user_id":"1","customer":{"email":"a@b.c"},"prices":[1,2]}`
			in.Mappings = []Mapping{{Attribute: "email", Field: "customer"}, {Attribute: "total", Field: "prices"}}
		}, []string{"mappings[0].field", "mappings[1].field"}},
		{"bad sample", func(in *WebhookInput) { in.SamplePayload = `{"a":` }, []string{"sample_payload"}},
		{"sample the edge refuses", func(in *WebhookInput) { in.SamplePayload = `{"user_id":"evil","user_id":"12345"}` }, []string{"sample_payload"}},
		{"big sample", func(in *WebhookInput) { in.SamplePayload = `"` + strings.Repeat("a", MaxSamplePayload) + `"` }, []string{"sample_payload"}},
		{"everything", func(in *WebhookInput) {
			*in = WebhookInput{Mappings: []Mapping{{Attribute: "x", Field: "[0"}}, SamplePayload: "nope"}
		}, []string{"name", "event", "identify.kind", "identify.field", "mappings[0].field", "sample_payload"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := seedInput()
			tt.mod(&in)
			_, _, err := f.store.Create(ctx, f.p1, in)
			wantFields(t, err, tt.fields...)
		})
	}
	page, err := f.store.List(ctx, f.p1, ListFilter{})
	if err != nil || page.Total != 0 {
		t.Errorf("after invalid creates: %d webhooks, %v; want none written", page.Total, err)
	}
}

// TestWebhookSampleFits: mappings that the sample payload does fit are accepted, kept headers and
// nulls included; the messages name what is wrong; an edit that does not touch what the check reads
// passes on a webhook whose mappings no longer fit (saved before mappings were checked).
func TestWebhookSampleFits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := seedInput()
	in.Name = "fits"
	in.SamplePayload = `{"user_id":"1","customer":{"email":null},"items":[{"sku":"a"},{"sku":"b"}],"tags":["x",1,true],"price":"9.99"}`
	in.SenderHeaders = []string{"X-Shop-Topic"}
	in.Mappings = []Mapping{
		{Attribute: "order_id", Field: "items[1].sku"},                       // in range
		{Attribute: "items", Field: "tags"},                                  // a list of scalars
		{Attribute: "total", Field: "price", OnError: OnErrorDrop},           // whether "9.99" is a price is the pipeline's
		{Attribute: "email", Field: "headers.x-shop-topic", OnError: "fail"}, // a kept header, not the payload's
	}
	w, _, err := f.store.Create(ctx, f.p1, in)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if w.Mappings[2].OnError != OnErrorDrop || w.Mappings[3].OnError != "" || w.TimeZone != "UTC" {
		t.Errorf("mappings %+v, time zone %q; want on_error drop, fail stored as the default, and UTC", w.Mappings, w.TimeZone)
	}
	// A header that is not kept is a payload path like any other.
	bad := in
	bad.Name, bad.SenderHeaders = "not kept", nil
	_, _, err = f.store.Create(ctx, f.p1, bad)
	wantFields(t, err, "mappings[3].field")
	// A null proves nothing.
	nullIn := in
	nullIn.Name, nullIn.Mappings = "null", []Mapping{{Attribute: "email", Field: "customer.email"}}
	if _, _, err := f.store.Create(ctx, f.p1, nullIn); err != nil {
		t.Errorf("a mapping to a null: %v; want accepted", err)
	}

	for _, tt := range []struct{ field, want string }{
		{"customer.name", `customer has no key "name"`},
		{"items[2].sku", "index 2 is out of range: items has 2 items in the sample"},
		{"price.amount", `price is a string in the sample, not an object`},
		{"tags.x", `tags is an array in the sample, not an object`},
		{"customer", "customer is an object in the sample; a string attribute takes a single value"},
	} {
		in := in
		in.Mappings = []Mapping{{Attribute: "order_id", Field: tt.field}}
		_, _, err := f.store.Create(ctx, f.p1, in)
		var ve *domainerr.ValidationError
		if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "mappings[0].field" || !strings.Contains(ve.Error(), tt.want) {
			t.Errorf("%s: %v; want mappings[0].field saying %q", tt.field, err, tt.want)
		}
	}

	// Saved before mappings were checked: a rename passes, a new sample is checked.
	if _, err := f.pool.Exec(ctx, `UPDATE webhooks SET mappings = '[{"attribute":"order_id","field":"gone"}]' WHERE public_id = $1`, w.ID); err != nil {
		t.Fatal(err)
	}
	name := "renamed"
	if _, err := f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Name: &name}); err != nil {
		t.Errorf("rename of a webhook whose mappings no longer fit: %v; want accepted", err)
	}
	sample := `{"user_id":"1"}`
	_, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{SamplePayload: &sample})
	wantFields(t, err, "mappings[0].field")
}

// TestWebhookTimeZone: the time zone is stored, defaulted, patched and loaded into the Hook.
func TestWebhookTimeZone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := seedInput()
	in.TimeZone = "Europe/Berlin"
	w, _, err := f.store.Create(ctx, f.p1, in)
	if err != nil {
		t.Fatal(err)
	}
	h, err := f.store.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if w.TimeZone != "Europe/Berlin" || h.Location == nil || h.Location.String() != "Europe/Berlin" {
		t.Errorf("time zone %q, Hook location %v; want Europe/Berlin", w.TimeZone, h.Location)
	}
	empty := ""
	if w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{TimeZone: &empty}); err != nil || w.TimeZone != "UTC" {
		t.Errorf("time zone reset: %v, %v; want UTC", w, err)
	}
	if h, err = f.store.Hook(ctx, w.ID); err != nil || h.Location != time.UTC {
		t.Errorf("Hook location %v, %v; want UTC", h.Location, err)
	}
	bad := "Europe/Nowhere"
	_, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{TimeZone: &bad})
	wantFields(t, err, "time_zone")
}

func TestWebhookUpdateAndVersions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.store
	w, _ := f.create(t, "hook")

	name := "renamed"
	maps := []Mapping{{Attribute: "email", Field: `customer["e.mail"]`}}
	sample := `{"user_id":"1","customer":{"e.mail":"jane@example.com"}}`
	up, err := s.Update(ctx, f.p1, w.ID, w.Version, WebhookPatch{Name: &name, Mappings: &maps, SamplePayload: &sample})
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != 2 || up.Name != "renamed" || len(up.Mappings) != 1 || up.Identify != w.Identify {
		t.Errorf("Update = %+v; want version 2, renamed, one mapping, identify unchanged", up)
	}
	if _, err := s.Update(ctx, f.p1, w.ID, 1, WebhookPatch{Name: &name}); !errors.Is(err, domainerr.ErrVersionMismatch) {
		t.Errorf("Update with a stale version: got %v; want domainerr.ErrVersionMismatch", err)
	}
	if _, err := s.Update(ctx, f.p2, w.ID, 0, WebhookPatch{Name: &name}); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("Update from another project: got %v; want domainerr.ErrNotFound", err)
	}
	// A bad patch writes nothing.
	bad := []Mapping{{Attribute: "nope", Field: "x"}}
	_, err = s.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Mappings: &bad})
	wantFields(t, err, "mappings[0].attribute")
	// Moving to an event that lacks a mapped attribute is refused with the mapping named.
	plain, err := s.CreateEvent(ctx, f.p1, EventInput{Name: "Plain", Attributes: []Attribute{{"total", TypePrice}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(ctx, f.p1, w.ID, 0, WebhookPatch{EventID: &plain.ID})
	wantFields(t, err, "mappings[0].attribute")

	en, err := s.SetEnabled(ctx, f.p1, w.ID, 2, true)
	if err != nil || !en.Enabled || en.Version != 3 {
		t.Fatalf("SetEnabled = %+v, %v; want enabled at version 3", en, err)
	}
	if _, err := s.SetEnabled(ctx, f.p1, w.ID, 2, false); !errors.Is(err, domainerr.ErrVersionMismatch) {
		t.Errorf("SetEnabled with a stale version: got %v; want domainerr.ErrVersionMismatch", err)
	}
	if _, err := s.SetEnabled(ctx, f.p2, w.ID, 0, false); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("SetEnabled from another project: got %v; want domainerr.ErrNotFound", err)
	}
	got, err := s.Get(ctx, f.p1, w.ID)
	if err != nil || got.Version != 3 || !got.Enabled || got.Name != "renamed" {
		t.Errorf("Get = %+v, %v; want the enabled renamed webhook at version 3", got, err)
	}
}

// Concurrent edits with the same expected version: exactly one wins, none is lost silently.
func TestWebhookConcurrentEdits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w, _ := f.create(t, "hook")
	const n = 8
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("edit %d", i)
			_, results[i] = f.store.Update(ctx, f.p1, w.ID, w.Version, WebhookPatch{Name: &name})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, domainerr.ErrVersionMismatch):
			t.Errorf("concurrent edit: %v; want nil or domainerr.ErrVersionMismatch", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d edits succeeded; want exactly 1", ok)
	}
}

func TestWebhookRotateAndDelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.store
	w, first := f.create(t, "hook")

	second, err := s.RotateSecret(ctx, f.p1, w.ID, time.Hour, "")
	if err != nil || second == first {
		t.Fatalf("RotateSecret = %v; want a new secret", err)
	}
	h, err := s.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if h.Version != 2 || !secretOK(h, "Bearer "+second, now) || !secretOK(h, "Bearer "+first, now) {
		t.Errorf("after rotation with grace: version %d; want 2 and both secrets accepted", h.Version)
	}
	if secretOK(h, "Bearer "+first, now.Add(61*time.Minute)) {
		t.Error("old secret accepted after the grace period")
	}
	if !h.SecretRotatedAt.After(w.SecretRotatedAt) {
		t.Errorf("secret_rotated_at %v not after %v", h.SecretRotatedAt, w.SecretRotatedAt)
	}
	third, err := s.RotateSecret(ctx, f.p1, w.ID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	h, _ = s.Hook(ctx, w.ID)
	if !secretOK(h, "Bearer "+third, now) || secretOK(h, "Bearer "+second, now) || secretOK(h, "Bearer "+first, now) {
		t.Error("after rotation without grace: want only the newest secret accepted")
	}
	if c, _ := s.Credentials(ctx, f.p1, w.ID); c == nil || c.Secret != third {
		t.Error("Credentials does not return the newest secret")
	}
	if _, err := s.RotateSecret(ctx, f.p2, w.ID, 0, ""); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("RotateSecret from another project: got %v; want domainerr.ErrNotFound", err)
	}
	if _, err := s.RotateSecret(ctx, f.p1, w.ID, -time.Second, ""); err == nil {
		t.Error("negative grace accepted")
	}

	if err := s.Delete(ctx, f.p2, w.ID); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("Delete from another project: got %v; want domainerr.ErrNotFound", err)
	}
	if err := s.Delete(ctx, f.p1, w.ID); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Get":          func() error { _, err := s.Get(ctx, f.p1, w.ID); return err }(),
		"Hook":         func() error { _, err := s.Hook(ctx, w.ID); return err }(),
		"Credentials":  func() error { _, err := s.Credentials(ctx, f.p1, w.ID); return err }(),
		"Delete again": s.Delete(ctx, f.p1, w.ID),
		"RotateSecret": func() error { _, err := s.RotateSecret(ctx, f.p1, w.ID, 0, ""); return err }(),
	} {
		if !errors.Is(err, domainerr.ErrNotFound) {
			t.Errorf("%s after delete: got %v; want domainerr.ErrNotFound", name, err)
		}
	}
	// The name is free again.
	f.create(t, "hook")
}

func secretOK(h *Hook, auth string, now time.Time) bool {
	return secret.Match([]byte(auth), h.SecretDigest) ||
		h.AcceptsPrevious(now) && secret.Match([]byte(auth), h.PrevSecretDigest)
}

func TestTenantIsolation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.store
	w, _ := f.create(t, "hook")
	if _, err := s.Get(ctx, f.p2, w.ID); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("Get from another project: got %v; want domainerr.ErrNotFound", err)
	}
	if _, err := s.Credentials(ctx, f.p2, w.ID); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("Credentials from another project: got %v; want domainerr.ErrNotFound", err)
	}
	if p, err := s.List(ctx, f.p2, ListFilter{}); err != nil || p.Total != 0 || len(p.Webhooks) != 0 {
		t.Errorf("List of another project = %+v, %v; want empty", p, err)
	}
	// Creating a webhook in project 2 on project 1's event is a validation error, not a leak.
	in := seedInput()
	in.EventName, in.EventID = "", f.event.ID
	_, _, err := s.Create(ctx, f.p2, in)
	wantFields(t, err, "event_id")
}

func TestWebhookList(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.store
	names := []string{"Alpha shop", "beta CRM", "Gamma shop", "delta_100%", "Epsilon"}
	ids := map[string]string{}
	for _, n := range names {
		w, _ := f.create(t, n)
		ids[n] = w.ID
	}
	if _, err := s.SetEnabled(ctx, f.p1, ids["beta CRM"], 0, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetEnabled(ctx, f.p1, ids["Epsilon"], 0, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, f.p1, ids["Gamma shop"]); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		f     ListFilter
		want  []string
		total int
	}{
		{"by name", ListFilter{Sort: "name"}, []string{"Alpha shop", "beta CRM", "delta_100%", "Epsilon"}, 4},
		{"by name desc", ListFilter{Sort: "name", Desc: true}, []string{"Epsilon", "delta_100%", "beta CRM", "Alpha shop"}, 4},
		{"updated desc", ListFilter{Desc: true}, []string{"Epsilon", "beta CRM", "delta_100%", "Alpha shop"}, 4},
		{"created asc", ListFilter{Sort: "created_at"}, []string{"Alpha shop", "beta CRM", "delta_100%", "Epsilon"}, 4},
		{"search ignores case", ListFilter{Search: "SHOP", Sort: "name"}, []string{"Alpha shop"}, 1},
		{"search escapes wildcards", ListFilter{Search: "0%"}, []string{"delta_100%"}, 1},
		{"search underscore literal", ListFilter{Search: "a_1"}, []string{"delta_100%"}, 1},
		{"percent alone is literal", ListFilter{Search: "%", Sort: "name"}, []string{"delta_100%"}, 1},
		{"enabled", ListFilter{Status: "enabled", Sort: "name"}, []string{"beta CRM", "Epsilon"}, 2},
		{"disabled", ListFilter{Status: "disabled", Sort: "name"}, []string{"Alpha shop", "delta_100%"}, 2},
		{"page 2", ListFilter{Sort: "name", Limit: 2, Offset: 2}, []string{"delta_100%", "Epsilon"}, 4},
		{"past the end", ListFilter{Sort: "name", Limit: 2, Offset: 10}, nil, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.List(ctx, f.p1, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range p.Webhooks {
				got = append(got, w.Name)
				if w.SamplePayload != "" || w.EventName != "CheckoutSuccess" {
					t.Errorf("row %q: sample %d bytes, event %q; want none and CheckoutSuccess", w.Name, len(w.SamplePayload), w.EventName)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || p.Total != tt.total {
				t.Errorf("got %v total %d; want %v total %d", got, p.Total, tt.want, tt.total)
			}
		})
	}
	_, err := s.List(ctx, f.p1, ListFilter{Status: "on", Sort: "id", Limit: 201, Offset: -1})
	wantFields(t, err, "status", "sort", "limit", "offset")
}

func TestHook(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w, sec := f.create(t, "hook")
	h, err := f.store.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []TypedMapping{{"email", TypeString, "email_address", "", ""}, {"total", TypePrice, "price", "", ""}, {"order_id", TypeString, "order_number", "", ""}}
	if fmt.Sprint(h.Mappings) != fmt.Sprint(want) || h.EventName != "CheckoutSuccess" || h.ProjectID != f.p1 ||
		h.Enabled || h.Identify != (Identify{identify.ByUserID, "user_id"}) || h.AcceptsPrevious(time.Now()) {
		t.Errorf("Hook = %+v; want mappings %v of CheckoutSuccess, disabled, no previous secret", h, want)
	}
	if !secret.Match([]byte("Bearer "+sec), h.SecretDigest) {
		t.Error("Hook's digest does not match the secret")
	}
	if _, err := f.store.Hook(ctx, "nope"); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("Hook(unknown) = %v; want domainerr.ErrNotFound", err)
	}
}
