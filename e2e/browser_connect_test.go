package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// shopifySample is a Shopify order, trimmed: the id above 2^53 as Shopify sends it.
const shopifySample = `{"id": 820982911946154508, "email": "jane@example.com", "total_price": "99.99", "customer": {"id": 12345}}`

// TestConsoleBrowserConnect drives the webhook form's Connect step in Chromium: a webhook is connected
// as Shopify — refused first without its signing secret and with a credential header to keep, each
// error at its field — then saved with the pasted secret, and the window shows Shopify's steps, the
// URL and a test command signed with that secret; then it is connected as Stripe instead, with a
// tolerance out of range refused at its field. What the console saved is read back through the API.
// With INLET_SCREENSHOTS=1 the screenshots go to docs/img (connect-*.png), which README shows.
func TestConsoleBrowserConnect(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, map[string]any{"name": "OrderPaid", "attributes": []map[string]string{
		{"name": "total", "type": "price"}, {"name": "order_id", "type": "string"}}}, http.StatusCreated)
	b := newBrowser(t, e.consoleURL)
	if os.Getenv("INLET_SCREENSHOTS") == "1" {
		b.shotDir = filepath.Join("..", "docs", "img")
		if err := os.MkdirAll(b.shotDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b.signIn(e.keyA)

	// A new webhook starts with Inlet's Bearer secret, which Inlet makes.
	b.open("/webhooks/new")
	b.waitJS("the senders catalog", `document.querySelectorAll('#wh-sender option').length >= 10 && document.body.dataset.connectSender === 'inlet'`)
	if !evalJS[bool](b, `document.querySelector('#secret-field').hidden && !document.querySelector('#secret-made').hidden`) {
		t.Fatalf("with the Bearer secret the form asks for a secret; want the note that Inlet makes it")
	}
	b.run("name", chromedp.SendKeys(chromedp.CSS("#wh-name"), "Shop orders"))
	b.choose("#wh-event", "OrderPaid")
	b.run("sample", chromedp.SetValue(chromedp.CSS("#wh-sample"), shopifySample), chromedp.Click(chromedp.CSS("#reload-fields")))
	b.waitJS("fields loaded", `document.querySelector('#fields-status').textContent.includes('fields loaded')`)
	b.choose("#wh-identify-kind", "email")
	b.choose("#wh-identify-field", "email")
	b.choose("#mapping-rows .mapping-row:nth-child(1) .map-attr", "total")
	b.choose("#mapping-rows .mapping-row:nth-child(1) .map-field", "total_price")

	// Shopify: its steps, its secret asked for.
	b.choose("#wh-sender", "Shopify")
	b.waitJS("Shopify's steps", `document.querySelector('#steps-title').textContent === 'Connect Shopify' &&
		document.querySelector('#step-url-help').textContent.includes('Notifications') && !document.querySelector('#secret-field').hidden`)
	if got := b.text("#step-secret-help"); !strings.Contains(got, "Your webhooks will be signed with") {
		t.Fatalf("Shopify's secret step = %q; want where Shopify shows the key", got)
	}
	if got := b.text("#connect-url-later"); !strings.Contains(got, "made when you save") {
		t.Fatalf("URL step of a new webhook = %q", got)
	}
	// Shopify's kept headers are offered in the field dropdowns, as they map (headers.<Name>).
	b.waitJS("Shopify's headers in the dropdowns", `!!document.querySelector('#mapping-rows .mapping-row:nth-child(1) .map-field option[value="headers.X-Shopify-Topic"]') &&
		!!document.querySelector('#wh-identify-field option[value="headers.X-Shopify-Shop-Domain"]')`)

	// Without the secret, and keeping Authorization: both refused, each at its field; nothing saved.
	b.run("open the kept headers", chromedp.Click(chromedp.CSS("#connect-advanced summary")))
	b.run("headers", chromedp.SendKeys(chromedp.CSS("#wh-headers"), "X-Request-Id, Authorization"))
	b.run("save without the secret", chromedp.Click(chromedp.CSS("#save-webhook")))
	b.waitJS("field errors", `document.querySelector('#err-secret').textContent.includes('paste the signing secret Shopify shows') &&
		document.querySelector('#err-sender_headers').textContent.includes('Authorization carries credentials')`)
	if !evalJS[bool](b, `document.querySelector('#wh-secret').getAttribute('aria-invalid') === 'true' &&
		document.activeElement.id === 'wh-secret' && document.querySelector('#wh-headers').getAttribute('aria-invalid') === 'true'`) {
		t.Fatalf("the secret field is not focused and marked invalid, or the headers field not marked")
	}
	if out := e.want("GET", "/api/v1/webhooks", e.keyA, nil, http.StatusOK); !strings.Contains(string(out), `"total":0`) {
		t.Fatalf("a refused create saved something: %s", out)
	}
	b.waitJS("no toast", noToast)
	b.shot("connect-errors")

	// Paste the secret, keep a harmless header: saved, and the window connects Shopify.
	const shopSecret = "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"
	b.run("paste the secret", chromedp.SendKeys(chromedp.CSS("#wh-secret"), shopSecret),
		chromedp.SetValue(chromedp.CSS("#wh-headers"), "X-Request-Id"))
	b.run("a header typed in", chromedp.SendKeys(chromedp.CSS("#wh-headers"), " "))
	b.waitJS("the user's header in the dropdowns", `!!document.querySelector('#mapping-rows .mapping-row:nth-child(1) .map-field option[value="headers.X-Request-Id"]')`)
	b.waitJS("errors cleared", `document.querySelector('#err-secret').textContent === ''`)
	b.run("reveal", chromedp.Click(chromedp.CSS("#reveal-secret")))
	if got := evalJS[string](b, `document.querySelector('#wh-secret').type`); got != "text" {
		t.Fatalf("Show left the secret field of type %q", got)
	}
	b.run("hide", chromedp.Click(chromedp.CSS("#reveal-secret")))
	b.waitJS("no toast", noToast)
	b.shot("connect-shopify")
	b.run("save", chromedp.Click(chromedp.CSS("#save-webhook")))
	b.waitJS("the window", `document.querySelector('#url-dialog').open && document.querySelector('#test-value').textContent !== ''`)
	hookURL := b.value("#url-value")
	id := hookURL[strings.LastIndex(hookURL, "/")+1:]
	if !strings.HasPrefix(hookURL, "http://127.0.0.1:8080/hooks/") || len(id) != 22 {
		t.Fatalf("window URL = %q", hookURL)
	}
	if got := b.text("#url-dialog-title"); got != "Connect Shopify" {
		t.Fatalf("window title = %q", got)
	}
	if got := b.text("#url-help"); !strings.Contains(got, "Create webhook") {
		t.Fatalf("window's URL step = %q; want where Shopify takes it", got)
	}
	if label, secret := b.text("#secret-label"), b.value("#secret-value"); label != "Signing secret" || secret != shopSecret {
		t.Fatalf("window shows %q = %q; want the pasted signing secret", label, secret)
	}
	wantCmd := fmt.Sprintf("inlet webhook test -url http://127.0.0.1:8080 -webhook %s -sender shopify -secret %s -body '%s'",
		id, shopSecret, compactJSON(t, shopifySample))
	if got := b.text("#test-value"); got != wantCmd {
		t.Fatalf("test command = %q; want %q", got, wantCmd)
	}
	if !evalJS[bool](b, `document.querySelector('#example-row').hidden`) {
		t.Fatalf("an HMAC webhook's window shows a curl request, which cannot be signed")
	}
	b.shotViewport("connect-window")
	b.run("copy the command", chromedp.Click(chromedp.CSS(`[data-copy="test-value"]`)))
	b.run("done", chromedp.Click(chromedp.CSS("#url-dialog-done")))
	b.waitJS("the list", fmt.Sprintf(`location.pathname === '/webhooks' && !!document.querySelector('#webhooks-body tr[data-id=%q]')`, id))

	saved := webhookView(t, e, id)
	if saved.Sender != "shopify" || saved.Verification.HMAC.Preset != "shopify" || strings.Join(saved.SenderHeaders, ",") != "X-Request-Id" ||
		saved.Dedup.Key != "header:X-Shopify-Webhook-Id" || saved.Identify.Field != "email" {
		t.Fatalf("saved webhook = %+v", saved)
	}
	if c := credentialsOf(t, e, id); c.Secret != shopSecret || c.Mode != "hmac" {
		t.Fatalf("credentials = %+v; want the pasted secret", c)
	}

	// Edit: connected as Shopify, the secret kept unless a new one is pasted; then Stripe.
	b.open("/webhooks/" + id + "/edit")
	b.waitJS("the edit form", `document.querySelector('#wh-sender').value === 'shopify' && document.body.dataset.connectSender === 'shopify'`)
	if got := b.value("#connect-url"); got != hookURL {
		t.Fatalf("the Connect step's URL = %q; want %q", got, hookURL)
	}
	if got := b.text("#wh-secret-hint"); !strings.Contains(got, "Leave it empty to keep the current secret") {
		t.Fatalf("secret hint on edit = %q", got)
	}
	b.choose("#wh-sender", "Stripe")
	b.waitJS("Stripe's steps", `document.querySelector('#steps-title').textContent === 'Connect Stripe' &&
		document.querySelector('#wh-dedup-kind').value === 'body' && document.querySelector('#wh-dedup-arg').value === 'id' &&
		!document.querySelector('#tolerance-field').hidden`)
	if got := b.value("#wh-headers"); got != "X-Request-Id" {
		t.Fatalf("kept headers after switching sender = %q; want the user's kept", got)
	}
	b.run("open the timing", chromedp.Click(chromedp.CSS("#connect-advanced summary")))
	b.run("tolerance out of range", chromedp.SendKeys(chromedp.CSS("#wh-tolerance"), "2h"), chromedp.Click(chromedp.CSS("#save-webhook")))
	b.waitJS("Stripe's field errors", `document.querySelector('#err-secret').textContent.includes('Stripe') &&
		document.getElementById('err-verification.hmac.tolerance').textContent.includes('outside')`)
	if v := webhookView(t, e, id); v.Sender != "shopify" || v.Version != saved.Version {
		t.Fatalf("a refused edit changed the webhook: %+v", v)
	}
	const stripeSecret = "whsec_9c2b7e4f1a6d8c3b5e0f2a4d6c8b1e3f"
	b.run("fix", chromedp.SetValue(chromedp.CSS("#wh-tolerance"), "10m"), chromedp.SendKeys(chromedp.CSS("#wh-secret"), stripeSecret))
	b.waitJS("no toast", noToast)
	b.shot("connect-stripe")
	b.run("save", chromedp.Click(chromedp.CSS("#save-webhook")))
	b.waitJS("the window for Stripe", `document.querySelector('#url-dialog').open && document.querySelector('#url-dialog-title').textContent === 'Connect Stripe'`)
	if got := b.text("#test-value"); !strings.Contains(got, "-webhook "+id+" -sender stripe -secret "+stripeSecret+" -body ") {
		t.Fatalf("Stripe's test command = %q; want -sender and -secret alone (a tolerance needs no flag)", got)
	}
	b.run("done", chromedp.Click(chromedp.CSS("#url-dialog-done")))
	b.waitJS("the list", `location.pathname === '/webhooks'`)
	v := webhookView(t, e, id)
	if v.Sender != "stripe" || v.Verification.HMAC.Preset != "stripe" || v.Verification.HMAC.Tolerance != "10m0s" || v.Dedup.Key != "body:id" ||
		strings.Join(v.SenderHeaders, ",") != "X-Request-Id" || strings.Contains(strings.Join(v.KeptHeaders, ","), "Shopify") {
		t.Fatalf("after connecting as Stripe = %+v", v)
	}
	if c := credentialsOf(t, e, id); c.Secret != stripeSecret || c.Sender != "stripe" {
		t.Fatalf("credentials = %+v; want Stripe's secret", c)
	}

	// An edit that leaves the connection alone saves without a window and keeps the secret.
	b.open("/webhooks/" + id + "/edit")
	b.waitJS("the edit form", `document.body.dataset.connectSender === 'stripe' && document.querySelector('#wh-tolerance').value === '10m'`)
	b.run("rename", chromedp.SetValue(chromedp.CSS("#wh-name"), "Stripe payments"), chromedp.Click(chromedp.CSS("#save-webhook")))
	b.waitJS("the list", `location.pathname === '/webhooks' && document.querySelector('#webhooks-body').innerText.includes('Stripe payments')`)
	if c := credentialsOf(t, e, id); c.Secret != stripeSecret {
		t.Fatalf("a rename changed the secret: %+v", c)
	}

	// The steps of a saved webhook open the window again; at phone width nothing is wider than the screen.
	b.open("/webhooks/" + id + "/edit")
	b.waitJS("the edit form", `document.body.dataset.connectSender === 'stripe'`)
	b.run("show the commands", chromedp.Click(chromedp.CSS("#show-test")))
	b.waitJS("the window", `document.querySelector('#url-dialog').open && document.querySelector('#test-value').textContent.includes('-sender stripe')`)
	b.run("done", chromedp.Click(chromedp.CSS("#url-dialog-done")))
	b.run("phone width", chromedp.EmulateViewport(390, 844))
	b.open("/webhooks/new?sender=github")
	b.waitJS("GitHub preselected", `document.body.dataset.connectSender === 'github' && document.querySelector('#steps-title').textContent === 'Connect GitHub'`)
	if w := evalJS[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Fatalf("the form at phone width is %d px wide; want at most 390", w)
	}
}

// noToast is true when no toast shows (screenshots wait for it to go).
const noToast = `!document.querySelector('#toast').classList.contains('show')`

// connected is the part of a webhook the Connect step writes.
type connected struct {
	Sender       string
	Version      int64
	Identify     struct{ Field string }
	Verification struct {
		Mode string
		HMAC struct{ Preset, Tolerance string }
	}
	SenderHeaders []string `json:"sender_headers"`
	KeptHeaders   []string `json:"kept_headers"`
	Dedup         struct{ Key string }
}

func webhookView(t *testing.T, e *system, id string) connected {
	t.Helper()
	var v connected
	if err := json.Unmarshal(e.want("GET", "/api/v1/webhooks/"+id, e.keyA, nil, http.StatusOK), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func credentialsOf(t *testing.T, e *system, id string) (c struct{ Sender, Mode, Secret string }) {
	t.Helper()
	if err := json.Unmarshal(e.want("GET", "/api/v1/webhooks/"+id+"/credentials", e.keyA, nil, http.StatusOK), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var m json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
