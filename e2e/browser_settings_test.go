package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/inlet-dev/inlet/internal/project"
)

// TestConsoleBrowserSettings drives the Settings page in Chromium with the keyboard: an unknown phone
// region is refused by the API and the error shows at its field with nothing written; "gb" and a
// notification URL save, survive a reload, and are in the store of the signed-in project only.
func TestConsoleBrowserSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	// Project B's settings must not show on A's page.
	e.want("PATCH", "/api/v1/project", e.keyB, map[string]any{"notification_url": "https://b.example/alerts", "phone_region": "US"}, 200)
	b := newBrowser(t, e.consoleURL)
	b.signIn(e.keyA)

	b.open("/settings")
	b.waitJS("form enabled", `!document.querySelector('#save-settings').disabled`)
	if got := b.text("#project-name"); got != "A" {
		t.Fatalf("project name = %q; want %q", got, "A")
	}
	if url, region := b.value("#notification-url"), b.value("#phone-region"); url != "" || region != "" {
		t.Fatalf("A's settings = %q, %q; want both empty (B's are B's)", url, region)
	}
	if got := evalJS[string](b, `document.querySelector('.mainnav a[aria-current="page"]').textContent`); got != "Settings" {
		t.Fatalf("highlighted nav entry = %q; want Settings", got)
	}

	// An unknown region: the API's error shows at the phone region field, which gets the focus.
	b.run("unknown region", chromedp.SendKeys(chromedp.CSS("#notification-url"), "https://hooks.example/inlet"),
		chromedp.SendKeys(chromedp.CSS("#phone-region"), "XX"+kb.Enter))
	b.waitJS("region error", `document.querySelector('#err-phone_region').textContent.includes('not a known')`)
	if !evalJS[bool](b, `document.activeElement.id === 'phone-region' && document.querySelector('#phone-region').getAttribute('aria-invalid') === 'true'`) {
		t.Fatalf("after the refused save: the phone region field is not focused and marked invalid")
	}
	if got := evalJS[string](b, `document.querySelector('#err-notification_url').textContent`); got != "" {
		t.Fatalf("notification URL error = %q; want none", got)
	}
	if !evalJS[bool](b, `document.querySelector('#settings-saved').hidden`) {
		t.Fatalf("the success message shows after a refused save")
	}
	if p := projectOf(t, e, e.projA); p.NotificationURL != "" || p.PhoneRegion != "" {
		t.Fatalf("after the refused save the store has %q, %q; want nothing written", p.NotificationURL, p.PhoneRegion)
	}

	// Typing clears the error; "gb" is saved as GB.
	b.run("fix region", chromedp.Focus(chromedp.CSS("#phone-region")), chromedp.KeyEvent(kb.Backspace+kb.Backspace+"gb"))
	b.waitJS("error cleared", `document.querySelector('#err-phone_region').textContent === ''`)
	b.run("save", chromedp.Focus(chromedp.CSS("#save-settings")), chromedp.KeyEvent(kb.Enter))
	b.waitJS("saved", `!document.querySelector('#settings-saved').hidden`)
	if got := b.text("#settings-saved"); got != "Settings saved." {
		t.Fatalf("success message = %q", got)
	}
	b.shot("16-settings")

	b.open("/settings")
	b.waitJS("form enabled", `!document.querySelector('#save-settings').disabled`)
	if url, region := b.value("#notification-url"), b.value("#phone-region"); url != "https://hooks.example/inlet" || region != "GB" {
		t.Fatalf("after reload = %q, %q; want https://hooks.example/inlet, GB", url, region)
	}
	if p := projectOf(t, e, e.projA); p.NotificationURL != "https://hooks.example/inlet" || p.PhoneRegion != "GB" {
		t.Fatalf("store has %q, %q; want https://hooks.example/inlet, GB", p.NotificationURL, p.PhoneRegion)
	}
	if out := e.want("GET", "/api/v1/project", e.keyB, nil, http.StatusOK); !strings.Contains(string(out), `"phone_region":"US"`) ||
		!strings.Contains(string(out), "b.example") {
		t.Fatalf("project B after A saved = %s; want its own settings", out)
	}

	// A bad URL: the error shows at its field; clearing both fields saves "none" and the default region.
	b.run("bad url", chromedp.SetValue(chromedp.CSS("#notification-url"), "ftp://x"), chromedp.Click(chromedp.CSS("#save-settings")))
	b.waitJS("url error", `document.querySelector('#err-notification_url').textContent.includes('http(s)')`)
	// (chromedp's SetValue refuses "", so the fields are emptied by script.)
	evalJS[bool](b, `['#notification-url', '#phone-region'].every(s => { document.querySelector(s).value = ''; return true; })`)
	b.run("clear both", chromedp.Click(chromedp.CSS("#save-settings")))
	b.waitJS("saved", `!document.querySelector('#settings-saved').hidden`)
	if p := projectOf(t, e, e.projA); p.NotificationURL != "" || p.PhoneRegion != "" {
		t.Fatalf("after clearing, the store has %q, %q; want both empty", p.NotificationURL, p.PhoneRegion)
	}

	// Phone width: nothing wider than the screen.
	b.run("phone width", chromedp.EmulateViewport(390, 844))
	b.open("/settings")
	if w := evalJS[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Fatalf("page width at phone width = %d; want at most 390", w)
	}
}

// projectOf reads a project from the store, not through the API.
func projectOf(t *testing.T, e *system, id int64) project.Project {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := e.stores.Projects.Get(ctx, id)
	if err != nil {
		t.Fatalf("project %d: %v", id, err)
	}
	return p
}
