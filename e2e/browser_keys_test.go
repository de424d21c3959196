package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleBrowserAPIKeys drives the API keys page in Chromium: create a key (shown once, with Copy),
// revoke another key (refused by the API at once), then revoke the key the console is signed in with,
// which signs the browser out; the new key signs in and sees the old one revoked.
func TestConsoleBrowserAPIKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	b := newBrowser(t, e.consoleURL)
	b.signIn(e.keyA)

	b.open("/api-keys")
	b.waitJS("key list", `document.querySelectorAll('#keys-body tr[data-status="active"]').length === 1`)
	if got := b.text("#keys-body tr"); !strings.Contains(got, "This session") || !strings.Contains(got, e.keyA[:12]) || !strings.Contains(got, "Active") {
		t.Fatalf("key row = %q; want the session's key by its prefix, active", got)
	}
	if strings.Contains(evalJS[string](b, `document.body.innerHTML`), e.keyA) {
		t.Fatalf("the page shows the signed-in key in clear")
	}

	create := func(name string) string {
		t.Helper()
		b.run("create "+name, chromedp.Click(chromedp.CSS("#create-key")), chromedp.WaitVisible(chromedp.CSS("#key-name")),
			chromedp.SendKeys(chromedp.CSS("#key-name"), name), chromedp.Click(chromedp.CSS("#save-key")),
			chromedp.WaitVisible(chromedp.CSS("#new-key")))
		b.waitJS("new key shown", `document.querySelector('#new-key-value').value.startsWith('inl_')`)
		key := b.value("#new-key-value")
		b.run("copy and close", chromedp.Click(chromedp.CSS(`[data-copy="new-key-value"]`)), chromedp.Click(chromedp.CSS("#new-key-done")))
		b.waitJS("key listed", fmt.Sprintf(`[...document.querySelectorAll('#keys-body tr')].some(r => r.innerText.includes(%q))`, name))
		if evalJS[string](b, `document.querySelector('#new-key-value').value`) != "" || !evalJS[bool](b, `document.querySelector('#new-key').hidden`) {
			t.Fatalf("the new key stays on the page after Done")
		}
		return key
	}
	laptop := create("Laptop")
	if code, _ := e.do("GET", "/api/v1/project", laptop, nil); code != http.StatusOK {
		t.Fatalf("the key read from the page = %d; want 200", code)
	}
	b.shot("15-api-keys")

	// Revoke another key: the list shows it revoked and the API refuses it at once.
	row := func(name string) string {
		return fmt.Sprintf(`[...document.querySelectorAll('#keys-body tr')].find(r => r.innerText.includes(%q))`, name)
	}
	revoke := func(name string) {
		t.Helper()
		id := evalJS[string](b, row(name)+`.dataset.id`)
		b.run("revoke "+name, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keys-body tr[data-id=%q] .revoke-key`, id))),
			chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
	}
	revoke("Laptop")
	if got := b.text("#confirm-text"); strings.Contains(got, "You are signed in with") {
		t.Fatalf("confirmation for another key = %q; want no sign-out warning", got)
	}
	b.run("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	b.waitJS("revoked", row("Laptop")+`.dataset.status === 'revoked'`)
	if code, _ := e.do("GET", "/api/v1/project", laptop, nil); code != http.StatusUnauthorized {
		t.Fatalf("revoked key = %d; want 401", code)
	}

	// Revoke the session's own key: the confirmation warns, and the browser is signed out.
	phone := create("Phone")
	revoke("This session")
	if got := b.text("#confirm-text"); !strings.Contains(got, "You are signed in with") {
		t.Fatalf("confirmation for the session's key = %q; want the sign-out warning", got)
	}
	b.run("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	b.waitJS("signed out", `location.pathname === '/login' && !!document.querySelector('#api-key')`)
	b.open("/webhooks")
	b.run("still signed out", chromedp.WaitVisible(chromedp.CSS("#api-key")))
	if code, _ := e.do("GET", "/api/v1/project", e.keyA, nil); code != http.StatusUnauthorized {
		t.Fatalf("the revoked session key = %d; want 401", code)
	}

	// The new key signs in; the old one is listed as revoked.
	b.run("sign in with the new key", chromedp.SendKeys(chromedp.CSS("#api-key"), phone), chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS(".mainnav")))
	b.open("/api-keys")
	b.waitJS("list", `document.querySelectorAll('#keys-body tr').length === 3`)
	if !evalJS[bool](b, row("Phone")+`.innerText.includes('This session')`) ||
		evalJS[int](b, `document.querySelectorAll('#keys-body tr[data-status="revoked"]').length`) != 2 {
		t.Fatalf("after signing in with the new key: %q", b.text("#keys-body"))
	}
}
