package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// fanOutHooks fires ItemOrdered for every line item of an order, identified by the order's e-mail, and
// HubSpot's top-level array on a second webhook, each element identified on its own.
func fanOutHooks() mapHooks {
	items := &webhook.Hook{PublicID: "wh_items", ProjectID: 1, Version: 1, Enabled: true,
		Routes: []webhook.HookRoute{{Name: "items", ForEach: "line_items", EventName: "ItemOrdered",
			Identify: webhook.Identify{Kind: identify.ByEmail, Field: "$.email"},
			Mappings: []webhook.TypedMapping{
				{Attribute: "sku", Type: webhook.TypeString, Field: "sku"},
				{Attribute: "quantity", Type: webhook.TypeInteger, Field: "quantity"},
				{Attribute: "order_id", Type: webhook.TypeString, Field: "$.id"},
			}}}}
	hubspot := &webhook.Hook{PublicID: "wh_hubspot", ProjectID: 1, Version: 1, Enabled: true,
		Routes: []webhook.HookRoute{{ForEach: "$", EventName: "ContactChanged",
			Identify: webhook.Identify{Kind: identify.ByUserID, Field: "objectId"},
			Mappings: []webhook.TypedMapping{
				{Attribute: "property", Type: webhook.TypeString, Field: "propertyName"},
				{Attribute: "value", Type: webhook.TypeString, Field: "propertyValue"},
			}}}}
	return mapHooks{"wh_items": items, "wh_hubspot": hubspot}
}

var fanOutCases = []struct {
	name, webhook, body string
	status, reason      string
	fired               int
}{
	{"three items, all fire", "wh_items", `{"id":1001,"email":"jane@example.com","line_items":[{"sku":"A","quantity":1},{"sku":"B","quantity":2},{"sku":"C","quantity":"3"}]}`,
		chstore.StatusSuccess, "", 3},
	{"one item of three fails", "wh_items", `{"id":1002,"email":"jane@example.com","line_items":[{"sku":"A","quantity":1},{"sku":"B","quantity":"two"},{"sku":"C","quantity":3}]}`,
		chstore.StatusFailed, wire.ReasonAttributeTypeMismatch, 2},
	{"order's user unknown", "wh_items", `{"id":1003,"email":"nobody@example.com","line_items":[{"sku":"A","quantity":1}]}`,
		chstore.StatusFailed, wire.ReasonUserNotFound, 0},
	{"empty array", "wh_items", `{"id":1004,"email":"jane@example.com","line_items":[]}`, chstore.StatusSkipped, wire.ReasonNoElements, 0},
	{"absent array", "wh_items", `{"id":1005,"email":"jane@example.com"}`, chstore.StatusSkipped, wire.ReasonNoElements, 0},
	{"null array", "wh_items", `{"id":1006,"line_items":null}`, chstore.StatusSkipped, wire.ReasonNoElements, 0},
	{"not an array", "wh_items", `{"id":1007,"email":"jane@example.com","line_items":{"sku":"A"}}`, chstore.StatusFailed, wire.ReasonFanOutInvalid, 0},
	{"too many elements", "wh_items", `{"id":1008,"email":"jane@example.com","line_items":[` + strings.TrimSuffix(strings.Repeat(`{"sku":"A","quantity":1},`, webhook.MaxFanOut+1), ",") + `]}`,
		chstore.StatusFailed, wire.ReasonFanOutTooLarge, 0},
	{"exactly the limit", "wh_items", `{"id":1009,"email":"jane@example.com","line_items":[` + strings.TrimSuffix(strings.Repeat(`{"sku":"A","quantity":1},`, webhook.MaxFanOut), ",") + `]}`,
		chstore.StatusSuccess, "", webhook.MaxFanOut},
	{"hubspot array, per-element users", "wh_hubspot", `[{"objectId":12345,"propertyName":"email","propertyValue":"a@b.c"},{"objectId":777,"propertyName":"phone","propertyValue":"+1"},{"propertyName":"x"}]`,
		chstore.StatusFailed, wire.ReasonUserNotFound, 1},
	{"top-level scalar", "wh_hubspot", `"nope"`, chstore.StatusFailed, wire.ReasonFanOutInvalid, 0},
}

func fanOutProcessor(t *testing.T) *processor {
	t.Helper()
	p, _ := unitProcessor(t)
	p.hooks = fanOutHooks()
	p.resolver = mapResolver{"12345": {UserID: "12345"}, "jane@example.com": {UserID: "jane"}}
	return p
}

func fanOutRecord(off int64, id uuid.UUID, webhookID, body string, receivedMs int64) *kgo.Record {
	return &kgo.Record{Topic: "requests", Partition: 0, Offset: off, Key: []byte(webhookID), Value: []byte(body),
		Headers: new(wire.RequestHeaders).Encode(&wire.Request{ID: id, WebhookID: webhookID, ProjectID: 1,
			ReceivedMs: receivedMs, ConfigVersion: 1, Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(body)})}
}

// TestFanOut: one activity row per request with its per-element outcomes, one events row and one
// fired event per element that maps, each with the id derived from the request id and its index.
func TestFanOut(t *testing.T) {
	p := fanOutProcessor(t)
	now := time.Now().UnixMilli()
	var recs []*kgo.Record
	ids := make([]uuid.UUID, len(fanOutCases))
	for i, c := range fanOutCases {
		ids[i] = uuid.Must(uuid.NewV7())
		recs = append(recs, fanOutRecord(int64(i), ids[i], c.webhook, c.body, now))
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	if len(p.b.activity) != len(fanOutCases) {
		t.Fatalf("%d activity rows; want one per request, %d", len(p.b.activity), len(fanOutCases))
	}
	eventsOf := map[int64][]chstore.EventRow{}
	for _, e := range p.b.events {
		eventsOf[e.Offset] = append(eventsOf[e.Offset], e)
	}
	firedOf := map[int]int{}
	for _, f := range p.b.fire {
		firedOf[f.activity]++
		ev := p.b.events[f.event]
		if got := string(f.rec.Headers[0].Value); got != ev.EventID.String() {
			t.Errorf("fired event id header %s; events row %s", got, ev.EventID)
		}
	}
	for i, c := range fanOutCases {
		row := p.b.activity[i]
		if row.Status != c.status || row.Reason != c.reason || int(row.EventsFired) != c.fired ||
			len(eventsOf[int64(i)]) != c.fired || firedOf[i] != c.fired {
			t.Errorf("%s: %s/%s, events_fired %d, %d events rows, %d fired; want %s/%s and %d of each (detail %q)",
				c.name, row.Status, row.Reason, row.EventsFired, len(eventsOf[int64(i)]), firedOf[i], c.status, c.reason, c.fired, row.Detail)
		}
		for _, e := range eventsOf[int64(i)] {
			if e.Element < 0 || e.EventID != wire.ElementEventID(ids[i], int(e.Element)) {
				t.Errorf("%s: events row of element %d has id %s; want ElementEventID(request, %d)", c.name, e.Element, e.EventID, e.Element)
			}
		}
		if c.status != chstore.StatusSkipped && c.reason != wire.ReasonFanOutInvalid && c.reason != wire.ReasonFanOutTooLarge {
			var outs []map[string]any
			if err := json.Unmarshal([]byte(row.Outcomes), &outs); err != nil {
				t.Errorf("%s: outcomes %q: %v", c.name, row.Outcomes, err)
			}
		} else if row.Outcomes != "" {
			t.Errorf("%s: outcomes %q; want none (no elements)", c.name, row.Outcomes)
		}
	}

	// The order's line items share its e-mail: the row shows it; the HubSpot elements differ.
	if r := p.b.activity[0]; r.IdentifierValue != "jane@example.com" || r.UserID != "jane" || r.Route != "items" || r.EventName != "ItemOrdered" {
		t.Errorf("fan-out row identifier %q user %q route %q event %q; want the shared jane@example.com, jane, items, ItemOrdered", r.IdentifierValue, r.UserID, r.Route, r.EventName)
	}
	if r := p.b.activity[9]; r.IdentifierValue != "" || r.UserID != "" {
		t.Errorf("hubspot row identifier %q user %q; want none (the elements differ)", r.IdentifierValue, r.UserID)
	}
	var outs []struct {
		Index      int             `json:"index"`
		EventID    string          `json:"event_id"`
		Status     string          `json:"status"`
		Reason     string          `json:"reason"`
		Detail     string          `json:"detail"`
		UserID     string          `json:"user_id"`
		Attributes json.RawMessage `json:"attributes"`
	}
	if err := json.Unmarshal([]byte(p.b.activity[1].Outcomes), &outs); err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 || outs[1].Status != "failed" || outs[1].Reason != wire.ReasonAttributeTypeMismatch || outs[0].Status != "success" ||
		outs[2].EventID != wire.ElementEventID(ids[1], 2).String() || !strings.Contains(string(outs[2].Attributes), `"order_id":"1002"`) {
		t.Errorf("outcomes %s; want element 1 failed (attribute_type_mismatch), 0 and 2 fired with the order's id", p.b.activity[1].Outcomes)
	}
	if d := p.b.activity[1].Detail; !strings.Contains(d, "1 of 3 elements failed, 2 fired; element 1: attribute_type_mismatch") {
		t.Errorf("detail %q; want the failed element summed up", d)
	}
}

// TestFanOutEvaluateIsThePipeline: the dry run of each fan-out case gives the pipeline's status,
// reason, detail and, element by element, the events it fires.
func TestFanOutEvaluateIsThePipeline(t *testing.T) {
	p := fanOutProcessor(t)
	now := time.Now().UnixMilli()
	var recs []*kgo.Record
	hooks := fanOutHooks()
	for i, c := range fanOutCases {
		id := uuid.Must(uuid.NewV7())
		recs = append(recs, fanOutRecord(int64(i), id, c.webhook, c.body, now))
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	fired := map[uuid.UUID][]byte{}
	for _, f := range p.b.fire {
		fired[p.b.events[f.event].EventID] = f.rec.Value
	}
	ev := NewEvaluator(p.lim, p.resolver, nil)
	for i, c := range fanOutCases {
		row := p.b.activity[i]
		evs, err := ev.Evaluate(context.Background(), hooks[c.webhook], []Request{{ID: row.RequestID, ReceivedMs: now, Body: []byte(c.body)}})
		if err != nil {
			t.Fatal(err)
		}
		e := evs[0]
		if e.Status != row.Status || e.Reason != row.Reason || e.Detail != row.Detail || e.EventsFired != int(row.EventsFired) {
			t.Errorf("%s: dry run %s/%s %q (%d fired); want the pipeline's %s/%s %q (%d)", c.name, e.Status, e.Reason, e.Detail, e.EventsFired,
				row.Status, row.Reason, row.Detail, row.EventsFired)
		}
		for _, el := range e.Elements {
			want := fired[uuid.MustParse(el.EventID)]
			if !bytes.Equal(el.Event, want) {
				t.Errorf("%s: element %d dry-run event %s; want the fired %s", c.name, el.Index, el.Event, want)
			}
		}
	}
}

// TestFanOutRefusedElement: Kafka refusing one element's event fails the request, keeps the others'
// events and counts one event less.
func TestFanOutRefusedElement(t *testing.T) {
	p := fanOutProcessor(t)
	body := `{"id":1,"email":"jane@example.com","line_items":[{"sku":"A","quantity":1},{"sku":"B","quantity":2}]}`
	if err := p.handle(context.Background(), fetches(fanOutRecord(0, uuid.Must(uuid.NewV7()), "wh_items", body, time.Now().UnixMilli()))); err != nil {
		t.Fatal(err)
	}
	w := &writer{log: p.log}
	f := &p.b.fire[1]
	w.refuseEvent(p.b, f, wire.ReasonEventTooLarge, fmt.Errorf("MESSAGE_TOO_LARGE"))
	w.refuseEvent(p.b, f, wire.ReasonEventTooLarge, fmt.Errorf("MESSAGE_TOO_LARGE")) // a second report changes nothing
	p.b.dropEvents(map[int]bool{f.event: true})
	row := p.b.activity[0]
	if row.Status != chstore.StatusFailed || row.Reason != wire.ReasonEventTooLarge || row.EventsFired != 1 || len(p.b.events) != 1 ||
		!strings.Contains(row.Detail, "element 1") {
		t.Errorf("row %s/%s fired %d, %d events rows, detail %q; want failed event_too_large, 1 fired, 1 row, element 1 named",
			row.Status, row.Reason, row.EventsFired, len(p.b.events), row.Detail)
	}
}

// routedHooks: a Shopify store whose topics go to routes, and webhooks with failing expressions.
func routedHooks() mapHooks {
	kept := []webhook.KeptHeader{webhook.NewKeptHeader("X-Shopify-Topic")}
	shop := &webhook.Hook{PublicID: "wh_shop", ProjectID: 1, Version: 1, Enabled: true, Headers: kept,
		Routes: []webhook.HookRoute{
			{Name: "paid", When: `headers["x-shopify-topic"] == "orders/paid"`, EventName: "OrderPaid",
				Identify: webhook.Identify{Kind: identify.ByEmail, Field: "email"},
				Mappings: []webhook.TypedMapping{
					{Attribute: "total", Type: webhook.TypePrice, Expr: `double(body.total_price)`},
					{Attribute: "discount", Type: webhook.TypePrice, Expr: `body.discount_cents / 100.0`, OnError: webhook.OnErrorDrop},
					{Attribute: "skus", Type: webhook.TypeList, Expr: `body.line_items.map(i, i.sku)`},
					{Attribute: "note", Type: webhook.TypeString, Expr: `body.?note.orValue("none")`},
				}},
			{Name: "created", When: `headers["X-Shopify-Topic"] == "orders/create"`, ForEach: "line_items", EventName: "ItemOrdered",
				Identify: webhook.Identify{Kind: identify.ByEmail, Field: "$.email"},
				Mappings: []webhook.TypedMapping{
					{Attribute: "sku", Type: webhook.TypeString, Expr: `item.sku + "#" + string(index)`},
					{Attribute: "price", Type: webhook.TypePrice, Expr: `item.price_cents / 100.0`},
					{Attribute: "order", Type: webhook.TypeString, Field: "$.name"},
				}},
		}}
	cond := &webhook.Hook{PublicID: "wh_cond", ProjectID: 1, Version: 1, Enabled: true,
		Routes: []webhook.HookRoute{{When: `body.x > 1.0`, EventName: "E",
			Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"}}}}
	cost := &webhook.Hook{PublicID: "wh_cost", ProjectID: 1, Version: 1, Enabled: true,
		Routes: []webhook.HookRoute{{EventName: "E", Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
			Mappings: []webhook.TypedMapping{{Attribute: "n", Type: webhook.TypeInteger, Expr: `size(body.items.filter(a, body.items.exists(b, b == a + 1.0)))`}}}}}
	return mapHooks{"wh_shop": shop, "wh_cond": cond, "wh_cost": cost}
}

var bigItems = func() string {
	var b strings.Builder
	b.WriteString(`{"user_id":"12345","items":[`)
	for i := range 2000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, i)
	}
	b.WriteString(`]}`)
	return b.String()
}()

var routedCases = []struct {
	name, webhook, topic, body string
	status, reason, route      string
	fired                      int
	attrs                      string // the first event's attributes, when it fires
}{
	{"paid", "wh_shop", "orders/paid", `{"email":"jane@example.com","total_price":"199.00","line_items":[{"sku":"A"},{"sku":"B"}]}`,
		chstore.StatusSuccess, "", "paid", 1, `{"total":"199","skus":["A","B"],"note":"none","__webhook":"wh_shop"}`},
	{"paid with discount and note", "wh_shop", "orders/paid", `{"email":"jane@example.com","total_price":"10.5","discount_cents":250,"note":"gift","line_items":[]}`,
		chstore.StatusSuccess, "", "paid", 1, `{"total":"10.5","discount":"2.5","skus":[],"note":"gift","__webhook":"wh_shop"}`},
	{"paid without total", "wh_shop", "orders/paid", `{"email":"jane@example.com","line_items":[]}`,
		chstore.StatusFailed, wire.ReasonExpressionError, "paid", 0, ""},
	{"created fans out", "wh_shop", "orders/create", `{"email":"jane@example.com","name":"#1001","line_items":[{"sku":"A","price_cents":1999},{"sku":"B","price_cents":500}]}`,
		chstore.StatusSuccess, "", "created", 2, `{"sku":"A#0","price":"19.99","order":"#1001","__webhook":"wh_shop"}`},
	{"created, one element's expression fails", "wh_shop", "orders/create", `{"email":"jane@example.com","name":"#1002","line_items":[{"sku":"A","price_cents":1999},{"sku":"B"}]}`,
		chstore.StatusFailed, wire.ReasonExpressionError, "created", 1, `{"sku":"A#0","price":"19.99","order":"#1002","__webhook":"wh_shop"}`},
	{"another topic", "wh_shop", "customers/create", `{"email":"jane@example.com"}`, chstore.StatusSkipped, wire.ReasonNoRoute, "", 0, ""},
	{"no topic", "wh_shop", "", `{"email":"jane@example.com"}`, chstore.StatusSkipped, wire.ReasonNoRoute, "", 0, ""},
	{"condition fails", "wh_cond", "", `{"user_id":"12345","x":"text"}`, chstore.StatusFailed, wire.ReasonExpressionError, "", 0, ""},
	{"condition false", "wh_cond", "", `{"user_id":"12345","x":0.5}`, chstore.StatusSkipped, wire.ReasonNoRoute, "", 0, ""},
	{"condition true", "wh_cond", "", `{"user_id":"12345","x":2}`, chstore.StatusSuccess, "", "#1", 1, `{"__webhook":"wh_cond"}`},
	{"over the cost limit", "wh_cost", "", bigItems, chstore.StatusFailed, wire.ReasonExpressionError, "", 0, ""},
	{"within the cost limit", "wh_cost", "", `{"user_id":"12345","items":[1,2,3]}`, chstore.StatusSuccess, "", "", 1, `{"n":2,"__webhook":"wh_cost"}`},
}

// TestRoutesAndExpressions: conditions pick the route, expressions fill attributes, and an expression
// that fails (a missing key, a type error, the cost limit) fails its record alone with
// expression_error, the records around it going on; the dry run gives the same outcomes and events.
func TestRoutesAndExpressions(t *testing.T) {
	p, _ := unitProcessor(t)
	p.hooks = routedHooks()
	p.resolver = mapResolver{"12345": {UserID: "12345"}, "jane@example.com": {UserID: "jane"}}
	now := time.Now().UnixMilli()
	var recs []*kgo.Record
	for i, c := range routedCases {
		r := &wire.Request{ID: uuid.Must(uuid.NewV7()), WebhookID: c.webhook, ProjectID: 1, ReceivedMs: now, ConfigVersion: 1,
			Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(c.body)}
		if c.topic != "" {
			r.Sender = keptHeaders(p.hooks.(mapHooks)[c.webhook].Headers, map[string]string{"X-Shopify-Topic": c.topic})
		}
		recs = append(recs, &kgo.Record{Topic: "requests", Partition: 0, Offset: int64(i), Key: []byte(c.webhook),
			Value: []byte(c.body), Headers: new(wire.RequestHeaders).Encode(r)})
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	firstEvent := map[int]string{}
	fired := map[uuid.UUID][]byte{}
	for _, f := range p.b.fire {
		ev := p.b.events[f.event]
		fired[ev.EventID] = f.rec.Value
		if _, ok := firstEvent[f.activity]; !ok {
			firstEvent[f.activity] = ev.Attributes
		}
	}
	hooks := routedHooks()
	eval := NewEvaluator(p.lim, p.resolver, nil)
	for i, c := range routedCases {
		row := p.b.activity[i]
		if row.Status != c.status || row.Reason != c.reason || row.Route != c.route || int(row.EventsFired) != c.fired || firstEvent[i] != c.attrs {
			t.Errorf("%s: %s/%s route %q, %d fired, attributes %s; want %s/%s route %q, %d, %s (detail %q)", c.name, row.Status, row.Reason,
				row.Route, row.EventsFired, firstEvent[i], c.status, c.reason, c.route, c.fired, c.attrs, row.Detail)
		}
		if c.reason == wire.ReasonExpressionError && !strings.Contains(row.Detail, "expression") && !strings.Contains(row.Detail, "condition") {
			t.Errorf("%s: detail %q; want it to name the expression", c.name, row.Detail)
		}
		var headers map[string]string
		if c.topic != "" {
			headers = map[string]string{"X-Shopify-Topic": c.topic}
		}
		evs, err := eval.Evaluate(context.Background(), hooks[c.webhook], []Request{{ID: row.RequestID, ReceivedMs: now, Body: []byte(c.body), Headers: headers}})
		if err != nil {
			t.Fatal(err)
		}
		ev := evs[0]
		if ev.Status != row.Status || ev.Reason != row.Reason || ev.Detail != row.Detail || ev.EventsFired != int(row.EventsFired) {
			t.Errorf("%s: dry run %s/%s %q; want the pipeline's %s/%s %q", c.name, ev.Status, ev.Reason, ev.Detail, row.Status, row.Reason, row.Detail)
		}
		if ev.Event != nil && !bytes.Equal(ev.Event, fired[row.RequestID]) {
			t.Errorf("%s: dry run event %s; want %s", c.name, ev.Event, fired[row.RequestID])
		}
		for _, el := range ev.Elements {
			if want := fired[uuid.MustParse(el.EventID)]; !bytes.Equal(el.Event, want) {
				t.Errorf("%s: element %d dry-run event %s; want %s", c.name, el.Index, el.Event, want)
			}
		}
		if c.webhook == "wh_shop" && (len(ev.Conditions) == 0 || ev.Conditions[0].When == "") {
			t.Errorf("%s: dry run conditions %+v; want those tried", c.name, ev.Conditions)
		}
	}
}

// TestFanOutHealRebuildsWhatFired: after a crash between the inserts, a fan-out's events rows are
// rebuilt for exactly the elements its activity row says fired — not one that failed (a quantity that
// does not map), nor one whose event was over max_event_bytes, nor one Kafka refused.
func TestFanOutHealRebuildsWhatFired(t *testing.T) {
	p := fanOutProcessor(t)
	st := p.parts[0]
	st.hwm = [chstore.NumTables]int64{0, -1, -1}
	// Element 1 failed when it ran; element 2 fired then but Kafka refused it: the row says 0 only.
	st.heal = map[int64]chstore.Fired{0: {FanOut: true, Elements: []int32{0}}}
	body := `{"id":1,"email":"jane@example.com","line_items":[{"sku":"A","quantity":1},{"sku":"B","quantity":"two"},{"sku":"C","quantity":3}]}`
	id := uuid.Must(uuid.NewV7())
	if err := p.handle(context.Background(), fetches(fanOutRecord(0, id, "wh_items", body, time.Now().UnixMilli()))); err != nil {
		t.Fatal(err)
	}
	if len(p.b.activity) != 0 || len(p.b.fire) != 0 {
		t.Errorf("heal wrote %d activity rows and fired %d events; want neither", len(p.b.activity), len(p.b.fire))
	}
	if len(p.b.events) != 1 || p.b.events[0].Element != 0 || p.b.events[0].EventID != wire.ElementEventID(id, 0) {
		t.Fatalf("heal rebuilt %+v; want element 0's events row only", p.b.events)
	}

	// An element over max_event_bytes is not rebuilt even if a row (wrongly) listed it.
	p = fanOutProcessor(t)
	p.lim.EventBytes = 700
	st = p.parts[0]
	st.hwm = [chstore.NumTables]int64{0, -1, -1}
	st.heal = map[int64]chstore.Fired{0: {FanOut: true, Elements: []int32{0, 1}}}
	big := `{"id":1,"email":"jane@example.com","line_items":[{"sku":"A","quantity":1},{"sku":"` + strings.Repeat("B", 800) + `","quantity":2}]}`
	if err := p.handle(context.Background(), fetches(fanOutRecord(0, id, "wh_items", big, time.Now().UnixMilli()))); err != nil {
		t.Fatal(err)
	}
	if len(p.b.events) != 1 || p.b.events[0].Element != 0 {
		t.Errorf("heal with an oversized element rebuilt %d rows; want element 0's only", len(p.b.events))
	}
}

// TestRefusedElementOutcome: Kafka refusing one element's event marks that element failed in the
// row's outcomes (what a heal reads), its attributes gone.
func TestRefusedElementOutcome(t *testing.T) {
	p := fanOutProcessor(t)
	body := `{"id":1,"email":"jane@example.com","line_items":[{"sku":"A","quantity":1},{"sku":"B","quantity":2}]}`
	if err := p.handle(context.Background(), fetches(fanOutRecord(0, uuid.Must(uuid.NewV7()), "wh_items", body, time.Now().UnixMilli()))); err != nil {
		t.Fatal(err)
	}
	w := &writer{log: p.log}
	w.refuseEvent(p.b, &p.b.fire[1], wire.ReasonEventTooLarge, fmt.Errorf("MESSAGE_TOO_LARGE"))
	var outs []struct {
		Index      int             `json:"index"`
		Status     string          `json:"status"`
		Reason     string          `json:"reason"`
		Attributes json.RawMessage `json:"attributes"`
	}
	if err := json.Unmarshal([]byte(p.b.activity[0].Outcomes), &outs); err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 || outs[0].Status != "success" || outs[1].Status != "failed" || outs[1].Reason != wire.ReasonEventTooLarge || outs[1].Attributes != nil {
		t.Errorf("outcomes %s; want element 1 failed with event_too_large and no attributes", p.b.activity[0].Outcomes)
	}
}

// TestFanOutOutcomesOnlyWhenTheyRan: a request that fails as a whole has no per-element outcomes.
func TestFanOutOutcomesOnlyWhenTheyRan(t *testing.T) {
	p2 := fanOutProcessor(t)
	r := fanOutRecord(0, uuid.Must(uuid.NewV7()), "wh_items", `{"id":1,"email":"jane@example.com","line_items":[{"sku":"A","quantity":1}]}`, time.Now().UnixMilli())
	// A record the edge refused: no elements run.
	h := new(wire.RequestHeaders)
	r.Headers = h.Encode(&wire.Request{ID: uuid.Must(uuid.NewV7()), WebhookID: "wh_items", ProjectID: 1, ReceivedMs: time.Now().UnixMilli(),
		ConfigVersion: 1, Outcome: wire.OutcomeAuthRejected, EdgeStatus: 401, BodyBytes: len(r.Value)})
	if err := p2.handle(context.Background(), fetches(r)); err != nil {
		t.Fatal(err)
	}
	if row := p2.b.activity[0]; row.Outcomes != "" || row.EventsFired != 0 {
		t.Errorf("refused request: outcomes %q, %d fired; want none", row.Outcomes, row.EventsFired)
	}
}
