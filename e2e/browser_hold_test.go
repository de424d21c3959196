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
	"github.com/inlet-dev/inlet/internal/wire"
)

// TestConsoleBrowserHold: "Wait for the user" in the webhook form shows its time, is saved as
// unknown_user hold with hold_for and shown again; the activity log shows a held request as "Waiting for
// user" (badge, reason, filter, the summary's card).
func TestConsoleBrowserHold(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, map[string]any{"name": "Order", "attributes": []map[string]string{
		{"name": "total", "type": "string"}}}, 201)
	var wh struct{ ID string }
	if err := json.Unmarshal(e.want("POST", "/api/v1/webhooks", e.keyA, map[string]any{
		"name": "Orders", "event": "Order",
		"identify":       map[string]string{"kind": "email", "field": "email"},
		"mappings":       []map[string]string{{"attribute": "total", "field": "total"}},
		"sample_payload": `{"email": "ann@example.com", "total": "9"}`,
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}
	var saved struct {
		UnknownUser string `json:"unknown_user"`
		HoldFor     string `json:"hold_for"`
	}
	b := newBrowser(t, e.consoleURL)
	b.signIn(e.keyA)
	edit := "/webhooks/" + wh.ID + "/edit"
	b.open(edit)
	b.waitJS("the simple form", idle+` && !document.querySelector('#single-route').hidden`)
	if !evalJS[bool](b, `document.querySelector('#wh-hold-for-field').hidden`) {
		t.Errorf("the hold time is shown while the policy is fail")
	}
	b.choose("#wh-unknown-user", "hold")
	b.waitJS("the hold time shown", `!document.querySelector('#wh-hold-for-field').hidden`)
	b.run("hold for", chromedp.SendKeys(chromedp.CSS("#wh-hold-for"), "2h"))
	b.run("save", chromedp.Click(chromedp.CSS("#save-webhook")))
	b.waitJS("saved", `location.pathname === '/webhooks'`)
	if err := json.Unmarshal(e.want("GET", "/api/v1/webhooks/"+wh.ID, e.keyA, nil, 200), &saved); err != nil {
		t.Fatal(err)
	}
	if saved.UnknownUser != "hold" || saved.HoldFor != "2h0m0s" {
		t.Fatalf("saved %+v; want hold for 2h0m0s", saved)
	}
	b.open(edit)
	b.waitJS("the simple form again", idle+` && !document.querySelector('#single-route').hidden`)
	if got := evalJS[string](b, `document.querySelector('#wh-unknown-user').value + ' ' + document.querySelector('#wh-hold-for').value`); got != "hold 2h0m0s" {
		t.Errorf("reopened: %q; want hold 2h0m0s", got)
	}

	// A held request and a success, as the pipeline writes them.
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	heldID, okID := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	row := func(id uuid.UUID, status, reason, detail string, off int64) chstore.ActivityRow {
		return chstore.ActivityRow{ProjectID: uint64(e.projA), WebhookID: wh.ID, RequestID: id, ReceivedAt: at,
			ReceivedMs: uint64(at.UnixMilli()) + uint64(off), ProcessedMs: uint64(at.UnixMilli() + 40), Status: status, Reason: reason,
			EdgeStatus: 202, IdentifierKind: "email", IdentifierValue: "ann@example.com", EventName: "Order",
			Payload: `{"email":"ann@example.com","total":"9"}`, PayloadBytes: 39, Detail: detail, Partition: 0, Offset: off}
	}
	if err := chstore.NewWriter(e.ch).InsertActivity(context.Background(), []chstore.ActivityRow{
		row(okID, chstore.StatusSuccess, "", "", 0),
		row(heldID, chstore.StatusHeld, wire.ReasonWaitingForUser, `waiting for user email "ann@example.com" until 2030-01-01T00:00:00Z`, 1),
	}); err != nil {
		t.Fatal(err)
	}
	b.open("/webhooks/" + wh.ID + "/activity")
	b.waitJS("the summary and the entries", idle+` && document.querySelectorAll('#entries > .entry').length === 2`)
	if got := b.text("#sum-held"); got != "1" {
		t.Errorf("Waiting for user card = %q; want 1", got)
	}
	entry := fmt.Sprintf(`#entries > li[data-request-id=%q]`, heldID)
	if got := b.text(entry + " .entry-head"); strings.Count(got, "Waiting for user") != 2 {
		t.Errorf("the held entry reads %q; want the Waiting for user badge and reason", got)
	}
	b.run("filter held", chromedp.Click(chromedp.CSS(`label[for="astatus-held"]`)))
	b.waitJS("only the held entry", idle+` && document.querySelectorAll('#entries > .entry').length === 1 && document.querySelector('#entries > .entry').dataset.status === 'held'`)
	b.shot("activity-held")
}
