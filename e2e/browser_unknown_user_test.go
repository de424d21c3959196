package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleBrowserUnknownUser: "If the user is unknown" in the simple form is saved as the
// webhook's unknown_user and shown again; the Test panel says an unknown user would be created (and
// nothing is created); when the form turns into routes, the first card keeps the choice, and a card's
// choice is saved as its route's.
func TestConsoleBrowserUnknownUser(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, map[string]any{"name": "Signup", "attributes": []map[string]string{
		{"name": "plan", "type": "string"}}}, 201)
	var wh struct{ ID string }
	if err := json.Unmarshal(e.want("POST", "/api/v1/webhooks", e.keyA, map[string]any{
		"name": "Signups", "event": "Signup",
		"identify":       map[string]string{"kind": "email", "field": "email"},
		"mappings":       []map[string]string{{"attribute": "plan", "field": "plan"}},
		"sample_payload": `{"email": "new@example.com", "plan": "pro", "phone": "+447700900123"}`,
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}
	type saved struct {
		UnknownUser string `json:"unknown_user"`
		CreatePhone string `json:"create_phone"`
		Routes      []struct {
			UnknownUser string `json:"unknown_user"`
		}
	}
	get := func() saved {
		var s saved
		if err := json.Unmarshal(e.want("GET", "/api/v1/webhooks/"+wh.ID, e.keyA, nil, 200), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	b := newBrowser(t, e.consoleURL)
	b.signIn(e.keyA)
	edit := "/webhooks/" + wh.ID + "/edit"
	b.open(edit)
	b.waitJS("the simple form", idle+` && !document.querySelector('#single-route').hidden`)
	if got := evalJS[string](b, `document.querySelector('#wh-unknown-user').value`); got != "fail" {
		t.Errorf("If the user is unknown = %q; want fail (the default)", got)
	}
	if !evalJS[bool](b, `document.querySelector('#wh-create-from-field').hidden`) {
		t.Error("the create policy's fields are shown before create is chosen")
	}
	b.choose("#wh-unknown-user", "create")
	if evalJS[bool](b, `document.querySelector('#wh-create-from-field').hidden`) {
		t.Error("the create policy's fields are hidden with create chosen")
	}
	b.run("create phone", chromedp.SendKeys(chromedp.CSS("#wh-create-phone"), "phone"))

	// The Test panel: the sample's user is unknown, and would be created, with the sample's phone.
	b.run("test", chromedp.Click(chromedp.CSS("#test-sample")))
	b.waitJS("the test result", idle+` && !document.querySelector('#test-result').hidden`)
	if got := b.text("#test-result"); !strings.Contains(got, "would be created") || !strings.Contains(got, "+447700900123") {
		t.Errorf("test result %q; want it to say the user would be created, with phone +447700900123", got)
	}
	if body := string(e.want("GET", "/api/v1/users/email:new@example.com", e.keyA, nil, 404)); body == "" {
		t.Errorf("the dry run created the user")
	}

	b.run("save", chromedp.Click(chromedp.CSS("#save-webhook")))
	b.waitJS("saved", `location.pathname === '/webhooks'`)
	if s := get(); s.UnknownUser != "create" || len(s.Routes) != 1 || s.Routes[0].UnknownUser != "create" || s.CreatePhone != "phone" {
		t.Fatalf("saved %+v; want unknown_user create, create_phone phone", s)
	}

	b.open(edit)
	b.waitJS("the simple form again", idle+` && !document.querySelector('#single-route').hidden`)
	if got := evalJS[string](b, `document.querySelector('#wh-unknown-user').value`); got != "create" {
		t.Errorf("reopened: If the user is unknown = %q; want create", got)
	}
	if got := evalJS[string](b, `document.querySelector('#wh-create-phone').value`); got != "phone" {
		t.Errorf("reopened: new user's phone field = %q; want phone", got)
	}
	// Into routes: card 1 keeps create; card 2 (new) fails by default, set to create too.
	b.run("add route", chromedp.Click(chromedp.CSS("#add-route")))
	b.waitJS("two cards", `document.querySelectorAll('#routes .route-card').length === 2`)
	if got := evalJS[string](b, `[...document.querySelectorAll('#routes .r-unknown')].map(s => s.value).join(' ')`); got != "create fail" {
		t.Errorf("the cards' If the user is unknown = %q; want create fail", got)
	}
	card := "#routes .route-card:nth-child(2)"
	b.run("name", chromedp.SendKeys(chromedp.CSS(card+" .r-name"), "pro"), chromedp.SetValue(chromedp.CSS(card+" .r-when"), `body.plan == "pro"`))
	b.choose(card+" .r-event", "Signup")
	b.choose(card+" .r-kind", "email")
	b.choose(card+" .r-ident", "email")
	b.choose(card+" .r-unknown", "create")
	b.choose(card+" .mapping-row:nth-child(1) .map-attr", "plan")
	b.choose(card+" .mapping-row:nth-child(1) .map-field", "plan")
	b.run("save routes", chromedp.Click(chromedp.CSS("#save-webhook")))
	b.waitJS("saved routes", `location.pathname === '/webhooks'`)
	if s := get(); len(s.Routes) != 2 || s.Routes[0].UnknownUser != "create" || s.Routes[1].UnknownUser != "create" {
		t.Errorf("saved routes %+v; want both create", s.Routes)
	}
}
