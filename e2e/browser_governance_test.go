package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleBrowserGovernance drives Chromium through issue 17's pages: a key created with only the
// read scope can read but not write; a user is deleted and erased from the User Explorer, its erasure
// followed to done; the audit log page lists the changes (the deletion by the session's key), filters
// them, and shows the erasure.
func TestConsoleBrowserGovernance(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	b := newBrowser(t, e.consoleURL)
	b.signIn(e.keyA)

	// A read-only key, from the API keys page.
	b.open("/api-keys")
	b.waitJS("key list", `document.querySelectorAll('#keys-body tr[data-status="active"]').length === 1`)
	b.run("create a read-only key", chromedp.Click(chromedp.CSS("#create-key")), chromedp.WaitVisible(chromedp.CSS("#key-name")),
		chromedp.SendKeys(chromedp.CSS("#key-name"), "Reports"),
		chromedp.Click(chromedp.CSS(`input[value="webhooks:write"]`)), chromedp.Click(chromedp.CSS(`input[value="directory:write"]`)),
		chromedp.Click(chromedp.CSS(`input[value="admin"]`)), chromedp.Click(chromedp.CSS("#save-key")),
		chromedp.WaitVisible(chromedp.CSS("#new-key")))
	b.waitJS("new key shown", `document.querySelector('#new-key-value').value.startsWith('inl_')`)
	reports := b.value("#new-key-value")
	b.waitJS("scopes listed", `[...document.querySelectorAll('#keys-body tr')].some(r => r.innerText.includes('Reports') && r.querySelector('.scopes').innerText.trim() === 'read')`)
	if code, _ := e.do("GET", "/api/v1/webhooks", reports, nil); code != http.StatusOK {
		t.Errorf("the read-only key reading = %d; want 200", code)
	}
	if code, out := e.do("PATCH", "/api/v1/project", reports, map[string]string{"phone_region": "GB"}); code != http.StatusForbidden ||
		!strings.Contains(string(out), `\"admin\"`) {
		t.Errorf("the read-only key writing = %d %s; want 403 naming admin", code, out)
	}

	// Delete and erase a user from the User Explorer.
	if code, out := e.do("PUT", "/api/v1/users/u-gone", e.keyA, map[string]string{"email": "gone@example.com"}); code != http.StatusCreated {
		t.Fatalf("PUT user = %d %s", code, out)
	}
	b.open("/users?kind=user_id&value=u-gone")
	b.waitJS("profile", `!document.querySelector('#profile').hidden && !!document.querySelector('#erase-subject')`)
	b.run("delete and erase", chromedp.Click(chromedp.CSS("#erase-subject")), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
		chromedp.Click(chromedp.CSS("#confirm-ok")))
	b.waitJS("erasure done", `!!document.querySelector('#erasure-status [data-status="done"]')`)
	if code, _ := e.do("GET", "/api/v1/users/u-gone", e.keyA, nil); code != http.StatusNotFound {
		t.Errorf("the erased user = %d; want 404", code)
	}
	b.shot("19-erasure")

	// The audit log page.
	b.open("/audit")
	b.waitJS("audit rows", `!!document.querySelector('#audit-body tr[data-target="user"][data-action="delete"]')`)
	if got := b.text(`#audit-body tr[data-target="user"][data-action="delete"]`); !strings.Contains(got, "u-gone") || !strings.Contains(got, "console") {
		t.Errorf("the deletion's entry reads %q; want the user, made through the console", got)
	}
	if strings.Contains(evalJS[string](b, `document.body.innerText`), "gone@example.com") {
		t.Errorf("the audit page shows the erased user's email")
	}
	b.waitJS("erasure listed", `!!document.querySelector('#erasures-body [data-status="done"]')`)
	b.choose("#audit-target", "API keys")
	b.run("filter", chromedp.Click(chromedp.CSS("#audit-apply")))
	b.waitJS("filtered", `[...document.querySelectorAll('#audit-body tr')].length > 0 && [...document.querySelectorAll('#audit-body tr')].every(r => r.dataset.target === 'api_key')`)
	if got := b.text("#audit-body"); !strings.Contains(got, "Reports") {
		t.Errorf("the API key entries %q do not show the key made", got)
	}
	b.shot("20-audit-log")
}
