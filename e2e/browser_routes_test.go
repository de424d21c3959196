package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// routesSample is a shop order with line items: one OrderPaid per order, one LineItem per item.
const routesSample = `{
  "id": "ORD-7",
  "email": "jane@example.com",
  "total": "42.50",
  "customer": {"id": "12345"},
  "line_items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}]
}`

// TestConsoleBrowserRoutes: a webhook with one route opens in the simple form; "Add route" turns it
// into route cards, the new one named, conditioned and fanning out over line_items with an element
// field and a $. identify field, moved first; saved, the webhook has the routes and the form shows them
// again. The Test panel shows the route, its condition and each element; a backtest of a webhook that
// has received nothing says so. A 400 on routes[1].for_each lands on that route's control.
//
// The condition holds on the sample however CEL reads it (has(body.line_items)), so the assertions
// hold with the real expression package as with its stub.
func TestConsoleBrowserRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, map[string]any{"name": "OrderPaid", "attributes": []map[string]string{
		{"name": "total", "type": "price"}, {"name": "order_id", "type": "string"}}}, 201)
	e.want("POST", "/api/v1/events", e.keyA, map[string]any{"name": "LineItem", "attributes": []map[string]string{
		{"name": "sku", "type": "string"}, {"name": "qty", "type": "integer"}}}, 201)
	var wh struct{ ID string }
	if err := json.Unmarshal(e.want("POST", "/api/v1/webhooks", e.keyA, map[string]any{
		"name": "Shop orders", "event": "OrderPaid",
		"identify":       map[string]string{"kind": "user_id", "field": "customer.id"},
		"mappings":       []map[string]string{{"attribute": "total", "field": "total"}, {"attribute": "order_id", "field": "id"}},
		"sample_payload": routesSample,
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}
	e.want("PUT", "/api/v1/users/12345", e.keyA, map[string]any{"email": "jane@example.com"}, 201)

	b := newBrowser(t, e.consoleURL)
	b.signIn(e.keyA)
	edit := "/webhooks/" + wh.ID + "/edit"
	b.open(edit)
	b.waitJS("the simple form", idle+` && document.querySelectorAll('#mapping-rows .mapping-row').length === 2 &&
		document.querySelector('#routes').hidden && !document.querySelector('#single-route').hidden`)

	// Add a route: the simple form's route becomes card 1, the new one card 2 with its name focused.
	b.run("add route", chromedp.Click(chromedp.CSS("#add-route")))
	b.waitJS("two cards", `document.querySelectorAll('#routes .route-card').length === 2 && document.querySelector('#single-route').hidden &&
		document.activeElement === document.querySelector('#routes .route-card:nth-child(2) .r-name')`)
	if got := evalJS[string](b, `document.querySelector('#routes .route-card:nth-child(1) .r-ident').value + ' ' +
		document.querySelectorAll('#routes .route-card:nth-child(1) .mapping-row').length`); got != "customer.id 2" {
		t.Fatalf("card 1 from the simple form has identify field and mappings %q; want customer.id 2", got)
	}
	card := "#routes .route-card:nth-child(2)"
	b.run("name and condition", chromedp.SendKeys(chromedp.CSS(card+" .r-name"), "line items"),
		chromedp.SetValue(chromedp.CSS(card+" .r-when"), "has(body.line_items)"))
	b.choose(card+" .r-foreach", "line_items")
	b.choose(card+" .r-event", "LineItem")
	b.choose(card+" .r-kind", "email")
	// The pickers of a fan-out route list the element's fields, and the body's as $.path.
	opts := evalJS[string](b, `[...document.querySelectorAll('`+card+` .r-ident option')].map(o => o.value).join(' ')`)
	for _, want := range []string{"sku", "qty", "$.email", "$.customer.id"} {
		if !strings.Contains(" "+opts+" ", " "+want+" ") {
			t.Errorf("the fan-out route's field options %q lack %q", opts, want)
		}
	}
	b.choose(card+" .r-ident", "$.email")
	b.choose(card+" .mapping-row:nth-child(1) .map-attr", "sku")
	b.choose(card+" .mapping-row:nth-child(1) .map-field", "sku")
	b.run("add attribute", chromedp.Click(chromedp.CSS(card+" .r-add-mapping")))
	row2 := card + " .mapping-row:nth-child(2)"
	b.choose(row2+" .map-attr", "qty")
	// An expression is a choice of the row: its input replaces the field picker.
	b.choose(row2+" .map-kind", "expr")
	if !evalJS[bool](b, `!document.querySelector('`+row2+` .map-expr').hidden && document.querySelector('`+row2+` .map-field').hidden`) {
		t.Errorf("choosing Expression does not show the expression input in place of the field picker")
	}
	b.run("expression", chromedp.SendKeys(chromedp.CSS(row2+" .map-expr"), "item.qty * 10.0"))
	// Move it first: the fan-out route is tried before the catch-all.
	b.run("move up", chromedp.Click(chromedp.CSS(card+" .route-up")))
	b.waitJS("moved", `document.querySelector('#routes .route-card:nth-child(1) .route-title').textContent === 'Route 1 · line items' &&
		document.querySelector('#routes .route-card:nth-child(1) .route-up').disabled`)
	b.shot("17-webhook-routes")

	b.run("save", chromedp.Click(chromedp.CSS("#save-webhook")))
	b.waitJS("saved", `location.pathname === '/webhooks'`)
	var saved struct {
		Routes []struct {
			Name, When, Event string
			ForEach           string `json:"for_each"`
			Identify          struct{ Kind, Field string }
			Mappings          []struct{ Attribute, Field, Expr string }
		}
	}
	if err := json.Unmarshal(e.want("GET", "/api/v1/webhooks/"+wh.ID, e.keyA, nil, 200), &saved); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%+v", saved.Routes); len(saved.Routes) != 2 || saved.Routes[0].Name != "line items" || saved.Routes[0].When != "has(body.line_items)" ||
		saved.Routes[0].ForEach != "line_items" || saved.Routes[0].Event != "LineItem" || saved.Routes[0].Identify.Kind != "email" ||
		saved.Routes[0].Identify.Field != "$.email" || len(saved.Routes[0].Mappings) != 2 || saved.Routes[0].Mappings[1].Expr != "item.qty * 10.0" || saved.Routes[0].Mappings[1].Field != "" ||
		saved.Routes[1].Event != "OrderPaid" || len(saved.Routes[1].Mappings) != 2 {
		t.Fatalf("saved routes %s; want the line items fan-out first, then OrderPaid", got)
	}

	// Reopened, the form shows the routes as saved.
	b.open(edit)
	b.waitJS("the cards", idle+` && document.querySelectorAll('#routes .route-card').length === 2`)
	first := "#routes .route-card:nth-child(1)"
	got := evalJS[string](b, `['.r-name', '.r-when', '.r-foreach', '.r-kind', '.r-ident', '.mapping-row:nth-child(1) .map-field', '.mapping-row:nth-child(2) .map-expr']
		.map(s => document.querySelector('`+first+` ' + s).value).join('|')`)
	if want := "line items|has(body.line_items)|line_items|email|$.email|sku|item.qty * 10.0"; got != want {
		t.Errorf("the first card reads %q; want %q", got, want)
	}
	if got := b.text("#routes .route-card:nth-child(2) .route-title"); got != "Route 2" {
		t.Errorf("the second card's title %q; want Route 2", got)
	}

	// The Test panel: route 1 takes the sample, its condition holds, one LineItem per element.
	b.run("test", chromedp.Click(chromedp.CSS("#test-sample")))
	b.waitJS("the test result", idle+` && !document.querySelector('#test-result').hidden`)
	got = b.text("#test-result")
	// qty is the element's qty × 10, by the saved expression: 20 and 10.
	for _, want := range []string{"Success", "fires LineItem × 2", "Route: Route 1 · line items", "has(body.line_items) → holds", "A-1", "B-2", "jane@example.com", "20", "10"} {
		if !strings.Contains(got, want) {
			t.Errorf("test result %q lacks %q", got, want)
		}
	}
	if n := evalJS[int](b, `document.querySelectorAll('#test-result .test-elements tbody tr').length`); n != 2 {
		t.Errorf("test result shows %d elements; want 2", n)
	}
	b.shot("18-test-panel-fan-out")

	// A backtest of a webhook that has received nothing says so.
	b.run("backtest", chromedp.Click(chromedp.CSS("#backtest")))
	b.waitJS("the backtest result", idle+` && !document.querySelector('#backtest-result').hidden`)
	if got := b.text("#backtest-result"); !strings.Contains(got, "No recorded requests to backtest yet") {
		t.Errorf("backtest of no requests reads %q", got)
	}

	// The fan-out route back second, then a sample without line_items: the 400 on routes[1].for_each
	// is shown at that route's control.
	b.run("move down", chromedp.Click(chromedp.CSS(first+" .route-down")))
	b.waitJS("moved down", `document.querySelector('#routes .route-card:nth-child(2) .route-title').textContent === 'Route 2 · line items'`)
	b.run("sample without line items", chromedp.SetValue(chromedp.CSS("#wh-sample"),
		`{"id": "ORD-8", "email": "jane@example.com", "total": "9.90", "customer": {"id": "12345"}}`),
		chromedp.Click(chromedp.CSS("#save-webhook")))
	second := "#routes .route-card:nth-child(2)"
	b.waitJS("the for_each error", idle+` && document.querySelector('`+second+` .r-foreach').getAttribute('aria-invalid') === 'true'`)
	if got := b.text(second + " .r-foreach ~ .field-error"); !strings.Contains(got, "line_items") {
		t.Errorf("the for_each error reads %q; want it about line_items", got)
	}
	if got := b.text("#form-error"); got != "Please fix the highlighted fields." {
		t.Errorf("the summary reads %q; want every error placed", got)
	}

	// The activity log: a skipped request (no route) and a fan-out whose second element failed.
	t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	skippedID, fanID := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	rows := []chstore.ActivityRow{
		{ProjectID: uint64(e.projA), WebhookID: wh.ID, RequestID: skippedID, ReceivedAt: t0, ReceivedMs: uint64(t0.UnixMilli()),
			ProcessedMs: uint64(t0.UnixMilli() + 20), Status: chstore.StatusSkipped, Reason: "no_route", EdgeStatus: 202,
			Payload: `{"id":"ORD-9"}`, PayloadBytes: 14, Offset: 0},
		{ProjectID: uint64(e.projA), WebhookID: wh.ID, RequestID: fanID, ReceivedAt: t0.Add(time.Second), ReceivedMs: uint64(t0.UnixMilli() + 1000),
			ProcessedMs: uint64(t0.UnixMilli() + 1030), Status: chstore.StatusFailed, Reason: "user_not_found", EdgeStatus: 202,
			EventName: "LineItem", Route: "line items", EventsFired: 1, Payload: `{"id":"ORD-7"}`, PayloadBytes: 14, Offset: 1,
			Outcomes: `[{"index":0,"event_id":"` + uuid.NewString() + `","status":"success","identifier":"jane@example.com","user_id":"12345","attributes":{"sku":"A-1"}},` +
				`{"index":1,"event_id":"` + uuid.NewString() + `","status":"failed","reason":"user_not_found","identifier":"joe@example.com"}]`},
	}
	if err := chstore.NewWriter(e.ch).InsertActivity(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	b.open("/webhooks/" + wh.ID + "/activity")
	b.waitJS("two entries", idle+` && document.querySelectorAll('#entries > .entry').length === 2`)
	if got := b.text("#sum-skipped"); got != "1" {
		t.Errorf("Skipped = %q; want 1", got)
	}
	if got := b.text("#sum-failed"); got != "1" {
		t.Errorf("Failed = %q; want 1 (the skipped request is no failure)", got)
	}
	skipped := fmt.Sprintf(`#entries > li[data-request-id=%q]`, skippedID)
	if got := b.text(skipped + " .entry-head"); !strings.Contains(got, "Skipped") || !strings.Contains(got, "No route") {
		t.Errorf("the skipped entry reads %q; want Skipped, No route", got)
	}
	if evalJS[bool](b, `!!document.querySelector('`+skipped+` .badge-failed')`) {
		t.Errorf("the skipped entry is badged as a failure")
	}
	fan := fmt.Sprintf(`#entries > li[data-request-id=%q]`, fanID)
	if got := b.text(fan + " .entry-head"); !strings.Contains(got, "line items") || !strings.Contains(got, "1 event fired") {
		t.Errorf("the fan-out entry reads %q; want its route and 1 event fired", got)
	}
	b.run("show the fan-out", chromedp.Click(chromedp.CSS(fan+" .entry-head button")))
	b.waitJS("its elements", fmt.Sprintf(`!!document.querySelector('%s .outcomes')`, fan))
	if got := b.text(fan + " .outcomes"); !strings.Contains(got, "A-1") || !strings.Contains(got, "joe@example.com") || !strings.Contains(got, "User not found") {
		t.Errorf("the fan-out's elements read %q; want A-1, and joe@example.com not found", got)
	}
	b.shot("activity-routes")
	b.run("filter skipped", chromedp.Click(chromedp.CSS(`label[for="astatus-skipped"]`)))
	b.waitJS("only the skipped", idle+` && document.querySelectorAll('#entries > .entry').length === 1 && !!document.querySelector('`+skipped+`')`)
}
