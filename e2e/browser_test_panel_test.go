package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleBrowserTestPanel: the webhook form's Test panel answers what the pipeline would make of
// the sample payload with the form as it is, unsaved edits included: success with the typed values,
// then, with the identifier field changed in the form (not saved), the failure reason.
func TestConsoleBrowserTestPanel(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, map[string]any{"name": "CheckoutSuccess", "attributes": []map[string]string{
		{"name": "total", "type": "price"}, {"name": "order_id", "type": "string"}}}, 201)
	sample := `{"user_id":"12345","customer_id":"c-9","order_number":"ORD-001","price":99.99}`
	var wh struct{ ID string }
	if err := json.Unmarshal(e.want("POST", "/api/v1/webhooks", e.keyA, map[string]any{
		"name": "Shop checkout", "event": "CheckoutSuccess",
		"identify":       map[string]string{"kind": "user_id", "field": "user_id"},
		"mappings":       []map[string]string{{"attribute": "total", "field": "price"}, {"attribute": "order_id", "field": "order_number"}},
		"sample_payload": sample,
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}
	e.want("PUT", "/api/v1/users/12345", e.keyA, map[string]any{"email": "jane@example.com"}, 201)

	b := newBrowser(t, e.consoleURL)
	b.signIn(e.keyA)
	b.open("/webhooks/" + wh.ID + "/edit")
	b.waitJS("the form", idle+` && document.querySelectorAll('#wh-identify-field option').length > 1`)
	b.run("test", chromedp.Click(chromedp.CSS("#test-sample")))
	b.waitJS("the test result", idle+` && !document.querySelector('#test-result').hidden`)
	got := b.text("#test-result")
	if strings.Contains(got, "null") {
		t.Errorf("test result %q shows a null", got)
	}
	for _, want := range []string{"Success", "fires CheckoutSuccess", "12345 (user_id from user_id): found", `"99.99"`, `"ORD-001"`} {
		if !strings.Contains(got, want) {
			t.Errorf("test result %q lacks %q", got, want)
		}
	}
	b.shot("webhook-test-panel")

	b.run("identify by customer_id", chromedp.SetValue(chromedp.CSS("#wh-identify-field"), "customer_id"),
		chromedp.Click(chromedp.CSS("#test-sample")))
	b.waitJS("the second result", idle+` && document.querySelector('#test-result').textContent.includes('Failed')`)
	if got := b.text("#test-result"); !strings.Contains(got, "User not found") && !strings.Contains(got, "not found") {
		t.Errorf("test result with the unsaved identifier %q; want the user not found", got)
	}
	var saved struct{ Identify struct{ Field string } }
	if err := json.Unmarshal(e.want("GET", "/api/v1/webhooks/"+wh.ID, e.keyA, nil, 200), &saved); err != nil {
		t.Fatal(err)
	}
	if saved.Identify.Field != "user_id" {
		t.Errorf("identify field %q after a test; want user_id, unsaved", saved.Identify.Field)
	}
}
