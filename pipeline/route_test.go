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

// fanOutHook fires ItemOrdered for every line item of an order, identified by the order's e-mail, and
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
	ev := NewEvaluator(p.lim, p.resolver)
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
