package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/identify"
)

// shopifyRoutes is a Shopify store's webhook: orders/paid fires CheckoutSuccess, and every line item of
// orders/create fires ItemOrdered.
func shopifyRoutes(f *fixture, t *testing.T) WebhookInput {
	t.Helper()
	if _, err := f.store.CreateEvent(context.Background(), f.p1, EventInput{Name: "ItemOrdered", Attributes: []Attribute{
		{"sku", TypeString}, {"quantity", TypeInteger}, {"order_id", TypeString},
	}}); err != nil {
		t.Fatal(err)
	}
	return WebhookInput{
		Name:   "Shopify store",
		Sender: "shopify",
		Secret: "shpss_test",
		Routes: []Route{
			{Name: "paid", When: `headers["X-Shopify-Topic"] == "orders/paid"`, EventName: "CheckoutSuccess",
				Identify: Identify{Kind: identify.ByEmail, Field: "email"},
				Mappings: []Mapping{{Attribute: "total", Field: "total_price"}, {Attribute: "order_id", Field: "id"}}},
			{Name: "items", When: `headers["X-Shopify-Topic"] == "orders/create"`, ForEach: "line_items", EventName: "ItemOrdered",
				Identify: Identify{Kind: identify.ByEmail, Field: "$.email"},
				Mappings: []Mapping{{Attribute: "sku", Field: "sku"}, {Attribute: "quantity", Field: "quantity"}, {Attribute: "order_id", Field: "$.id"}}},
		},
		SamplePayload: `{"id":820982911946154500,"email":"jon@example.com","total_price":"199.00","line_items":[{"sku":"IPOD2008PINK","quantity":1},{"sku":"X","quantity":2}]}`,
	}
}

func TestRoutesRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w, _, err := f.store.Create(ctx, f.p1, shopifyRoutes(f, t))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Routes) != 2 || w.Routes[1].EventName != "ItemOrdered" || w.Routes[1].ForEach != "line_items" ||
		w.Routes[0].When == "" || w.EventName != "CheckoutSuccess" || w.Routes[1].Identify.Field != "$.email" {
		t.Fatalf("created routes = %+v; want paid (CheckoutSuccess) then items (ItemOrdered over line_items)", w.Routes)
	}
	h, err := f.store.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.RouteList(); len(got) != 2 || got[1].Mappings[1].Type != TypeInteger || got[0].Mappings[0].Type != TypePrice ||
		got[1].EventName != "ItemOrdered" || got[0].Name != "paid" {
		t.Errorf("Hook routes = %+v; want typed mappings of both events", got)
	}

	// A patch of the first route's mapping keeps the second route.
	maps := []Mapping{{Attribute: "order_id", Field: "id"}}
	w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Mappings: &maps})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Routes) != 2 || len(w.Routes[0].Mappings) != 1 || w.Routes[0].Name != "paid" || w.Routes[1].EventName != "ItemOrdered" {
		t.Errorf("after a mappings patch routes = %+v; want the first changed, the second kept", w.Routes)
	}

	// The second route's event can neither be deleted nor lose a mapped attribute.
	items, err := f.store.GetEventByName(ctx, f.p1, "ItemOrdered")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.DeleteEvent(ctx, f.p1, items.ID); !errors.Is(err, ErrInUse) {
		t.Errorf("DeleteEvent(event of route 1) = %v; want ErrInUse", err)
	}
	_, err = f.store.UpdateEvent(ctx, f.p1, items.ID, 0, EventInput{Name: "ItemOrdered", Attributes: []Attribute{{"sku", TypeString}, {"order_id", TypeString}}})
	wantFields(t, err, "attributes")

	// Back to one route: the single-mapping API again.
	one := []Route{{EventName: "CheckoutSuccess", Identify: Identify{Kind: identify.ByUserID, Field: "email"}, Mappings: []Mapping{}}}
	w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Routes: &one})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Routes) != 1 || w.Routes[0].When != "" {
		t.Errorf("routes = %+v; want one", w.Routes)
	}
	if err := f.store.DeleteEvent(ctx, f.p1, items.ID); err != nil {
		t.Errorf("DeleteEvent(event no route uses) = %v", err)
	}
}

func TestRoutesValidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	base := shopifyRoutes(f, t)
	for _, tc := range []struct {
		name   string
		change func(in *WebhookInput)
		fields []string
	}{
		{"routes and event", func(in *WebhookInput) { in.EventName = "CheckoutSuccess" }, []string{"routes"}},
		{"too many", func(in *WebhookInput) {
			for len(in.Routes) <= MaxRoutes {
				in.Routes = append(in.Routes, in.Routes[0])
			}
		}, []string{"routes"}},
		{"unknown event in route 1", func(in *WebhookInput) { in.Routes[1].EventName = "Nope" }, []string{"routes[1].event"}},
		{"route name too long", func(in *WebhookInput) { in.Routes[0].Name = string(make([]byte, MaxRouteNameLen+1)) }, []string{"routes[0].name"}},
		{"bad for_each", func(in *WebhookInput) { in.Routes[1].ForEach = "a..b" }, []string{"routes[1].for_each"}},
		{"for_each not an array", func(in *WebhookInput) { in.Routes[1].ForEach = "email" }, []string{"routes[1].for_each"}},
		{"for_each absent", func(in *WebhookInput) { in.Routes[1].ForEach = "refunds" }, []string{"routes[1].for_each"}},
		{"element path in no element", func(in *WebhookInput) { in.Routes[1].Mappings[0].Field = "title" }, []string{"routes[1].mappings[0].field"}},
		{"body path absent", func(in *WebhookInput) { in.Routes[1].Mappings[2].Field = "$.name" }, []string{"routes[1].mappings[2].field"}},
		{"field and expr", func(in *WebhookInput) { in.Routes[0].Mappings[0].Expr = "1" }, []string{"routes[0].mappings[0].expr"}},
		{"neither", func(in *WebhookInput) { in.Routes[0].Mappings[0].Field = "" }, []string{"routes[0].mappings[0].field"}},
		{"condition too long", func(in *WebhookInput) { in.Routes[0].When = string(make([]byte, MaxConditionLen+1)) }, []string{"routes[0].when"}},
		{"unknown_user", func(in *WebhookInput) { in.Routes[1].UnknownUser = "wait" }, []string{"routes[1].unknown_user"}},
		{"hold_for without hold", func(in *WebhookInput) { in.Routes[1].HoldFor = "1h" }, []string{"routes[1].hold_for"}},
		{"hold_for not a duration", func(in *WebhookInput) { in.Routes[1].UnknownUser, in.Routes[1].HoldFor = "hold", "a day" }, []string{"routes[1].hold_for"}},
		{"hold_for too long", func(in *WebhookInput) { in.Routes[1].UnknownUser, in.Routes[1].HoldFor = "hold", "721h" }, []string{"routes[1].hold_for"}},
		{"hold_for too short", func(in *WebhookInput) { in.Routes[1].UnknownUser, in.Routes[1].HoldFor = "hold", "500ms" }, []string{"routes[1].hold_for"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := cloneRoutes(base)
			in.Name = tc.name
			tc.change(&in)
			_, _, err := f.store.Create(ctx, f.p1, in)
			wantFields(t, err, tc.fields...)
		})
	}
	// A fan-out route's element paths pass when any element has them.
	in := base
	in.Name += " 2"
	in.SamplePayload = `{"id":1,"email":"a@b","total_price":"1","line_items":[{"quantity":1},{"sku":"X","quantity":2}]}`
	if _, _, err := f.store.Create(ctx, f.p1, in); err != nil {
		t.Errorf("Create with sku in the second element only: %v", err)
	}
}

func TestRouteExpressionsValidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	base := shopifyRoutes(f, t)
	for _, tc := range []struct {
		name   string
		change func(in *WebhookInput)
		fields []string
		msg    string
	}{
		{"condition syntax", func(in *WebhookInput) { in.Routes[0].When = `headers["X-Shopify-Topic"] ==` }, []string{"routes[0].when"}, "line 1"},
		{"condition not bool", func(in *WebhookInput) { in.Routes[0].When = `"orders/paid"` }, []string{"routes[0].when"}, "string"},
		{"condition fails on the sample", func(in *WebhookInput) { in.Routes[0].When = `body.financial_status == "paid"` }, []string{"routes[0].when"}, "no such key"},
		{"condition uses item", func(in *WebhookInput) { in.Routes[1].When = `item.sku == "A"` }, []string{"routes[1].when"}, "fan-out"},
		{"value syntax", func(in *WebhookInput) {
			in.Routes[0].Mappings[0] = Mapping{Attribute: "total", Expr: "body.total_price +"}
		}, []string{"routes[0].mappings[0].expr"}, "line 1"},
		{"value fails on the sample", func(in *WebhookInput) {
			in.Routes[0].Mappings[0] = Mapping{Attribute: "total", Expr: "body.subtotal_price"}
		}, []string{"routes[0].mappings[0].expr"}, "no such key"},
		{"value an object", func(in *WebhookInput) {
			in.Routes[0].Mappings[1] = Mapping{Attribute: "order_id", Expr: `{"a": body.id}`}
		}, []string{"routes[0].mappings[1].expr"}, "object"},
		{"list of objects", func(in *WebhookInput) {
			in.Routes[0].Mappings = append(in.Routes[0].Mappings, Mapping{Attribute: "items", Expr: `body.line_items`})
		}, []string{"routes[0].mappings[2].expr"}, "array of objects"},
		{"item outside fan-out", func(in *WebhookInput) { in.Routes[0].Mappings[0] = Mapping{Attribute: "total", Expr: "item.price"} }, []string{"routes[0].mappings[0].expr"}, "fan-out"},
		{"element fails", func(in *WebhookInput) { in.Routes[1].Mappings[0] = Mapping{Attribute: "sku", Expr: "item.title"} }, []string{"routes[1].mappings[0].expr"}, "element 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := cloneRoutes(base)
			in.Name = tc.name
			tc.change(&in)
			_, _, err := f.store.Create(ctx, f.p1, in)
			wantFields(t, err, tc.fields...)
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q; want it to say %q", err, tc.msg)
			}
		})
	}

	// Good expressions save, and come back as written.
	in := base
	in.Name = "with expressions"
	in.Routes = append([]Route(nil), base.Routes...)
	in.Routes[0].Mappings = []Mapping{
		{Attribute: "total", Expr: `double(body.total_price) * 1.0`},
		{Attribute: "order_id", Expr: `string(int(body.id))`},
		{Attribute: "items", Expr: `body.line_items.map(i, i.sku)`},
	}
	in.Routes[1].Mappings = []Mapping{{Attribute: "sku", Expr: `item.sku + "-" + string(index)`}, {Attribute: "quantity", Field: "quantity"}}
	w, _, err := f.store.Create(ctx, f.p1, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Routes[1].Mappings[0].Expr; got != `item.sku + "-" + string(index)` {
		t.Errorf("saved expression %q", got)
	}
}

// cloneRoutes copies in with routes and mappings of its own, for a case to change.
func cloneRoutes(in WebhookInput) WebhookInput {
	routes := make([]Route, len(in.Routes))
	for i, r := range in.Routes {
		r.Mappings = append([]Mapping(nil), r.Mappings...)
		routes[i] = r
	}
	in.Routes = routes
	return in
}

// TestUnknownUserRoundTrip: the policy of the first route (its column) and of a further route (the
// routes JSON) is saved, read back and handed to the data path; "fail" is stored as the default, and
// the single-route API reads and changes the first route's.
func TestUnknownUserRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := shopifyRoutes(f, t)
	in.Routes[0].UnknownUser = UnknownUserCreate
	in.Routes[1].UnknownUser = UnknownUserCreate
	w, _, err := f.store.Create(ctx, f.p1, in)
	if err != nil {
		t.Fatal(err)
	}
	if w.Routes[0].UnknownUser != UnknownUserCreate || w.Routes[1].UnknownUser != UnknownUserCreate || w.UnknownUser != UnknownUserCreate {
		t.Fatalf("created: unknown_user = %q, %q (top-level %q); want create, create", w.Routes[0].UnknownUser, w.Routes[1].UnknownUser, w.UnknownUser)
	}
	h, err := f.store.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.RouteList(); got[0].UnknownUser != UnknownUserCreate || got[1].UnknownUser != UnknownUserCreate {
		t.Errorf("Hook routes' unknown_user = %q, %q; want create, create", got[0].UnknownUser, got[1].UnknownUser)
	}

	// A patch of the first route's policy through the single-route field keeps the second route's.
	fail := UnknownUserFail
	w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{UnknownUser: &fail})
	if err != nil {
		t.Fatal(err)
	}
	if w.Routes[0].UnknownUser != "" || w.Routes[1].UnknownUser != UnknownUserCreate {
		t.Errorf("after patch: unknown_user = %q, %q; want \"\" (fail, the default), create", w.Routes[0].UnknownUser, w.Routes[1].UnknownUser)
	}

	// The single-route API: a webhook made of event, identify, mappings and unknown_user keeps its
	// policy through an edit of its name.
	single := WebhookInput{Name: "single", EventName: "CheckoutSuccess", Identify: Identify{Kind: identify.ByEmail, Field: "email"},
		Mappings: []Mapping{}, UnknownUser: UnknownUserCreate}
	w, _, err = f.store.Create(ctx, f.p1, single)
	if err != nil {
		t.Fatal(err)
	}
	name := "single renamed"
	if w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if w.UnknownUser != UnknownUserCreate || len(w.Routes) != 1 || w.Routes[0].UnknownUser != UnknownUserCreate {
		t.Errorf("single route after rename: unknown_user = %q (route %+v); want create", w.UnknownUser, w.Routes)
	}
	bad := single
	bad.Name, bad.UnknownUser = "bad", "wait"
	_, _, err = f.store.Create(ctx, f.p1, bad)
	wantFields(t, err, "unknown_user")
}

// TestHoldRoundTrip: the hold policy and its time, on the first route (its columns) and a further one
// (the routes JSON), are saved, read back and handed to the data path as a duration; the single-route
// API changes the first route's, and leaving hold drops its time.
func TestHoldRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := shopifyRoutes(f, t)
	in.Routes[0].UnknownUser, in.Routes[0].HoldFor = UnknownUserHold, "90m"
	in.Routes[1].UnknownUser = UnknownUserHold
	w, _, err := f.store.Create(ctx, f.p1, in)
	if err != nil {
		t.Fatal(err)
	}
	if w.Routes[0].HoldFor != "1h30m0s" || w.HoldFor != "1h30m0s" || w.Routes[1].UnknownUser != UnknownUserHold || w.Routes[1].HoldFor != "" {
		t.Fatalf("created: routes %+v, top-level hold_for %q; want hold 1h30m0s, hold default", w.Routes, w.HoldFor)
	}
	h, err := f.store.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.RouteList(); got[0].HoldFor != 90*time.Minute || got[1].HoldFor != 0 || got[1].UnknownUser != UnknownUserHold {
		t.Errorf("Hook routes: hold %s, %s (%q); want 1h30m, 0 (default), hold", got[0].HoldFor, got[1].HoldFor, got[1].UnknownUser)
	}
	day := "24h"
	if w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{HoldFor: &day}); err != nil {
		t.Fatal(err)
	}
	if w.Routes[0].HoldFor != "24h0m0s" || w.Routes[1].UnknownUser != UnknownUserHold {
		t.Errorf("after patch: routes %+v; want hold_for 24h0m0s", w.Routes)
	}
	fail := UnknownUserFail
	if w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{UnknownUser: &fail}); err != nil {
		t.Fatal(err)
	}
	if w.Routes[0].UnknownUser != "" || w.Routes[0].HoldFor != "" {
		t.Errorf("after leaving hold: route %+v; want fail without hold_for", w.Routes[0])
	}
}

// TestCreateFromRoundTrip: create_email and create_phone of the first route (its columns) and of a
// further route (the routes JSON) are saved, read back and handed to the data path; the single-route
// API changes the first route's, and leaving create drops them.
func TestCreateFromRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := shopifyRoutes(f, t)
	in.SamplePayload = `{"id":1,"email":"jon@example.com","total_price":"199.00","phone":"+447700900123","line_items":[{"sku":"X","quantity":1,"tel":"07700900123"}]}`
	in.Routes[0].Identify = Identify{Kind: identify.ByUserID, Field: "id"}
	in.Routes[0].UnknownUser, in.Routes[0].CreateEmail, in.Routes[0].CreatePhone = UnknownUserCreate, "email", "phone"
	in.Routes[1].UnknownUser, in.Routes[1].CreatePhone = UnknownUserCreate, "tel"
	w, _, err := f.store.Create(ctx, f.p1, in)
	if err != nil {
		t.Fatal(err)
	}
	want0 := CreateFrom{CreateEmail: "email", CreatePhone: "phone"}
	if w.Routes[0].CreateFrom != want0 || w.CreateFrom != want0 || w.Routes[1].CreateFrom != (CreateFrom{CreatePhone: "tel"}) {
		t.Fatalf("created: routes %+v, top-level %+v; want %+v and phone tel", w.Routes, w.CreateFrom, want0)
	}
	h, err := f.store.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.RouteList(); got[0].CreateFrom != want0 || got[1].CreatePhone != "tel" {
		t.Errorf("Hook routes: %+v, %+v; want %+v, phone tel", got[0].CreateFrom, got[1].CreateFrom, want0)
	}
	empty := ""
	if w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{CreateEmail: &empty}); err != nil {
		t.Fatal(err)
	}
	if w.Routes[0].CreateFrom != (CreateFrom{CreatePhone: "phone"}) || w.Routes[1].CreatePhone != "tel" {
		t.Errorf("after patch: routes %+v; want create_phone only, the second route's kept", w.Routes)
	}
	fail := UnknownUserFail
	if w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{UnknownUser: &fail}); err != nil {
		t.Fatal(err)
	}
	if w.Routes[0].CreateFrom != (CreateFrom{}) {
		t.Errorf("after leaving create: route %+v; want no create_email, create_phone", w.Routes[0])
	}
}

// TestCreateFromValidation: a path that does not parse, is not in the sample or holds an object, one
// given without create, and one for a device are each refused, named as the route's field.
func TestCreateFromValidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	single := func(name string, kind identify.Kind, policy string, from CreateFrom) WebhookInput {
		return WebhookInput{Name: name, EventName: "CheckoutSuccess", Identify: Identify{Kind: kind, Field: "email"},
			Mappings: []Mapping{}, UnknownUser: policy, CreateFrom: from,
			SamplePayload: `{"email":"jon@example.com","customer":{"phone":"+447700900123","tags":["a"]}}`}
	}
	for _, tc := range []struct {
		name string
		in   WebhookInput
		want []string
	}{
		{"bad path", single("a", identify.ByEmail, UnknownUserCreate, CreateFrom{CreatePhone: "customer..phone"}), []string{"create_phone"}},
		{"not in sample", single("b", identify.ByEmail, UnknownUserCreate, CreateFrom{CreatePhone: "customer.mobile"}), []string{"create_phone"}},
		{"not a single value", single("c", identify.ByUserID, UnknownUserCreate, CreateFrom{CreateEmail: "customer.tags"}), []string{"create_email"}},
		{"without create", single("d", identify.ByEmail, UnknownUserHold, CreateFrom{CreatePhone: "customer.phone"}), []string{"create_phone"}},
		{"a device", single("e", identify.ByHWID, UnknownUserCreate, CreateFrom{CreateEmail: "email", CreatePhone: "customer.phone"}), []string{"create_email", "create_phone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.store.Create(ctx, f.p1, tc.in)
			wantFields(t, err, tc.want...)
		})
	}
	// In routes, the problem is the route's.
	in := shopifyRoutes(f, t)
	in.Routes[1].UnknownUser, in.Routes[1].CreatePhone = UnknownUserCreate, "tel"
	_, _, err := f.store.Create(ctx, f.p1, in)
	wantFields(t, err, "routes[1].create_phone")
	// Valid: saved.
	if _, _, err := f.store.Create(ctx, f.p1, single("ok", identify.ByEmail, UnknownUserCreate, CreateFrom{CreatePhone: "customer.phone"})); err != nil {
		t.Errorf("valid create_phone: %v", err)
	}
}
