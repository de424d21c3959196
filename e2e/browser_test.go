package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// Browser tests: the console driven in Debian's Chromium (chromedp) against the whole system running in
// this process as internal/compose assembles it (newStack) — the ingestor on a real port, the pipeline
// consuming this test's Kafka topics and writing this test's ClickHouse database, and the admin server —
// so that what the console shows is what really happened to a request sent to the URL and secret read
// from the console's own window.
//
// Chromium is found at $INLET_CHROMIUM or /usr/bin/chromium; when it is missing the test fails (CI
// installs it with deploy/local/install browser). Screenshots go to a temporary directory, or to
// docs/screenshots when INLET_SCREENSHOTS=1.

// patience bounds every wait of the browser tests for a state of the page or of the system. A wait ends
// as soon as its state is there; the bound only says when to give up, and it is generous because under
// `make test` on two cores Chromium, the stack and every other package's tests compete for the CPUs.
const patience = 2 * time.Minute

// idle is true once the page's script has started and every API call it made has been answered (and
// what it shows updated: that happens in the same task as the answer). A refresh clicked only when the
// page is idle always completes, however slow the machine.
const idle = `(document.body.dataset.ready === 'true' && document.body.dataset.inflight === '0')`

// browser is one headless Chromium with a fresh profile.
type browser struct {
	t       *testing.T
	ctx     context.Context
	base    string
	shotDir string
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("INLET_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("Chromium is needed for the console's browser tests and was not found at %s (%v); "+
			"install it with `deploy/local/install browser` (apt-get install chromium) or set INLET_CHROMIUM", p, err)
	}
	return p
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var mu sync.Mutex
	var logs []string
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			line = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				line += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			line = "console." + string(e.Type) + ":"
			for _, a := range e.Args {
				line += " " + string(a.Value) + a.Description
			}
		default:
			return
		}
		mu.Lock()
		logs = append(logs, line)
		mu.Unlock()
	}))
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() && len(logs) > 0 {
			t.Logf("browser console:\n%s", strings.Join(logs, "\n"))
		}
	})
	// No deadline for the whole browser: every step has its own (patience), and the test binary's
	// -timeout bounds the whole; a fixed total failed slow machines in whatever step came last.
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	dir := t.TempDir()
	if os.Getenv("INLET_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &browser{t: t, ctx: ctx, base: base, shotDir: dir}
}

// fail ends the test with what was being done, where, and the start of the page's text.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').innerText.slice(0, 1500) : ''`))
	b.t.Fatalf("%s (at %s): %v\npage text:\n%s", what, loc, err, body)
}

// run runs actions, failing the test with what was being done.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, patience)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("body")))
	b.waitReady()
}

// waitReady waits until the page's script has attached its handlers (it marks body data-ready).
func (b *browser) waitReady() {
	b.t.Helper()
	b.waitJS("page script ready", `document.body.dataset.ready === 'true' || ['login', 'notfound'].includes(document.body.dataset.page)`)
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, patience)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.fail("read "+sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) value(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, patience)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.fail("read value of "+sel, err)
	}
	return s
}

// evalJS runs JavaScript and decodes its result.
func evalJS[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, patience)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	for err != nil && strings.Contains(err.Error(), "Cannot find context with specified id") && ctx.Err() == nil {
		// The script was sent to the page being left and did not run there; run it in the new one.
		time.Sleep(100 * time.Millisecond)
		v, err = chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	}
	if err != nil {
		b.fail("evaluate "+js, err)
	}
	return v
}

// waitJS polls a JavaScript condition until it is true, for at most patience.
func (b *browser) waitJS(what, cond string) {
	b.t.Helper()
	b.poll(what, cond, 100*time.Millisecond)
}

// refreshUntil waits until cond is true on the page, running refresh (JavaScript that makes the page
// ask the API again, e.g. a click on its Refresh button) whenever cond is false and the page is idle,
// so that every refresh is answered before the next one starts: a refresh clicked on a timer replaced
// the previous one before its answer came when the machine was slow, and the page never showed any.
func (b *browser) refreshUntil(what, cond, refresh string) {
	b.t.Helper()
	b.poll(what, fmt.Sprintf(`(%s) || (%s && (%s, false))`, cond, idle, refresh), 250*time.Millisecond)
}

// reopenUntil opens path until cond is true on it: for what the server renders into the page itself.
func (b *browser) reopenUntil(what, path, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		b.open(path)
		if evalJS[bool](b, cond) {
			return
		}
		if time.Now().After(deadline) {
			b.fail("waiting for "+what, fmt.Errorf("not so after reopening %s for %s", path, patience))
		}
		time.Sleep(250 * time.Millisecond) // pacing only: the next open waits for its page
	}
}

func (b *browser) poll(what, cond string, every time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		left := time.Until(deadline)
		ctx, cancel := context.WithTimeout(b.ctx, left+5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(every), chromedp.WithPollingTimeout(left)))
		cancel()
		if err == nil {
			return
		}
		// A page that navigates (a form redirect, a reload) ends the poll, or the poll starts in the
		// execution context of the page being left; poll the new page.
		if time.Now().Before(deadline) && navigated(err) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		b.fail("waiting for "+what, err)
	}
}

// navigated reports whether err is Chrome's answer to a script run in a page that has navigated away:
// the poll was cut short ("navigated", "context was destroyed") or started in the execution context of
// the page being left ("Cannot find context with specified id").
func navigated(err error) bool {
	msg := err.Error()
	for _, s := range []string{"navigated", "context was destroyed", "Cannot find context with specified id"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// choose selects the option of a <select> whose value or label (up to " (" or " —") is label and fires
// change, as a user's pick does.
func (b *browser) choose(sel, label string) {
	b.t.Helper()
	b.waitJS("option "+label+" in "+sel, fmt.Sprintf(`(() => { const s = document.querySelector(%q); if (!s) return false;
		const o = [...s.options].find(o => o.value === %q || o.textContent.trim() === %q || o.textContent.startsWith(%q + ' '));
		if (!o) return false; s.value = o.value; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, sel, label, label, label))
}

// shot saves a screenshot of the whole page once the page is still: its API calls answered, its fonts
// loaded and no transition running (a toast fading in, a caret turning).
func (b *browser) shot(name string) {
	b.t.Helper()
	b.capture(name, chromedp.FullScreenshot(100))
}

// shotViewport is shot of what the window shows: for a modal window, which a whole-page screenshot
// shows at the bottom of a page its backdrop half covers.
func (b *browser) shotViewport(name string) {
	b.t.Helper()
	b.capture(name, chromedp.CaptureScreenshot())
}

func (b *browser) capture(name string, screenshot chromedp.Action[[]byte]) {
	b.t.Helper()
	b.waitJS("page still for "+name, `(document.body.dataset.ready !== 'true' || document.body.dataset.inflight === '0') &&
		document.fonts.status === 'loaded' && document.getAnimations().every(a => a.playState !== 'running')`)
	ctx, cancel := context.WithTimeout(b.ctx, patience)
	defer cancel()
	buf, err := chromedp.Run(ctx, screenshot)
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shotDir, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) signIn(key string) {
	b.t.Helper()
	b.open("/webhooks")
	b.run("sign in",
		chromedp.WaitVisible(chromedp.CSS("#api-key")),
		chromedp.SendKeys(chromedp.CSS("#api-key"), key),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS(".mainnav")))
}

const consoleSample = `{
  "user_id": "12345",
  "email_address": "jane@example.com",
  "mobile": "+15551234567",
  "purchase_date": "2024-03-15",
  "order_number": "ORD-001",
  "order_id": 820982911946154508,
  "price": 99.99,
  "payment_state": "success",
  "customer": {"tags": ["vip"], "address": {"city": "Berlin"}}
}`

// sendUntil sends body until the edge answers want, for at most patience: for answers that follow a
// configuration change (disable, delete), which reaches the edge's cache through PostgreSQL's
// LISTEN/NOTIFY a little after the console shows it. Requests answered otherwise meanwhile are real
// requests (accepted and logged).
func sendUntil(t *testing.T, want int, url, authorization, body string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		got := send(t, url, authorization, body)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST %s still answered %d after %s; want %d", url, got, patience, want)
		}
		time.Sleep(50 * time.Millisecond) // pacing only
	}
}

// send POSTs body to the webhook URL with the Authorization value, as the sender would.
func send(t *testing.T, url, authorization, body string) int {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestConsoleBrowser walks the seed's whole flow in the console: sign in, create the event, create the
// webhook from the sample payload, enable it, copy URL and secret from the window, send the example
// request to the real ingestor, see Success in the activity log and the event in User Explorer; a wrong
// secret shows Failed with reason Auth rejected, five of them raise the banner; another project's
// webhook is the 404 page. It saves a screenshot of every page.
func TestConsoleBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	st := newStack(t)
	ctx := context.Background()
	if _, _, err := st.stores.Directory.UpsertUser(ctx, st.projA, directory.User{UserID: "12345", Email: "jane@example.com", Phone: "+15551234567"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.stores.Directory.UpsertDevice(ctx, st.projA, directory.Device{HWID: "ios-5f2c", UserID: "12345", Platform: "ios"}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, st.consoleURL)

	// Sign in: a wrong key is refused, the project's key opens the (empty) webhooks list.
	b.open("/login")
	b.shot("01-sign-in")
	b.run("wrong key", chromedp.SendKeys(chromedp.CSS("#api-key"), "inlet_wrong"), chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	b.signIn(st.keyA)
	b.waitJS("empty state", `!document.querySelector('#webhooks-empty').hidden`)
	b.shot("02-webhooks-empty")

	// Events catalog: create the seed's event with typed attributes.
	b.open("/events")
	b.waitJS("events empty state", `!document.querySelector('#events-empty').hidden`)
	b.run("open event editor", chromedp.Click(chromedp.CSS("#create-event")), chromedp.WaitVisible(chromedp.CSS("#ev-name")))
	b.run("event name", chromedp.SendKeys(chromedp.CSS("#ev-name"), "CheckoutSuccess"),
		chromedp.SendKeys(chromedp.CSS("#ev-description"), "A checkout completed in the web shop"))
	attrs := [][2]string{{"email", "string"}, {"total", "price"}, {"order_id", "string"}, {"purchase_date", "date"}, {"shop_order", "integer"}, {"vip", "boolean"}}
	for i, a := range attrs {
		if i > 0 {
			b.run("add attribute", chromedp.Click(chromedp.CSS("#add-attr")))
		}
		row := fmt.Sprintf("#attr-rows .attr-row:nth-child(%d)", i+1)
		b.run("attribute "+a[0], chromedp.SendKeys(chromedp.CSS(row+" .attr-name"), a[0]))
		b.choose(row+" .attr-type", a[1])
	}
	b.shot("03-event-editor")
	b.run("save event", chromedp.Click(chromedp.CSS("#save-event")))
	b.waitJS("event in catalog", `!!document.querySelector('#events-body tr[data-name="CheckoutSuccess"]')`)
	if got := b.text(`#events-body tr[data-name="CheckoutSuccess"]`); !strings.Contains(got, "total") || !strings.Contains(got, "price") {
		t.Fatalf("catalog row = %q; want the typed attributes", got)
	}
	b.shot("04-events")

	// Create the webhook. First an empty form: the API's field errors show at their fields.
	b.open("/webhooks")
	b.run("create webhook", chromedp.WaitVisible(chromedp.CSS("#webhooks-empty a")), chromedp.Click(chromedp.CSS("#webhooks-empty a")),
		chromedp.WaitVisible(chromedp.CSS("#wh-name")))
	b.waitReady()
	b.run("enable empty form", chromedp.Click(chromedp.CSS("#enable-webhook")))
	b.waitJS("field errors", `document.querySelector('#err-name').textContent !== '' && document.getElementById('err-identify.field').textContent !== ''`)
	b.run("name", chromedp.SendKeys(chromedp.CSS("#wh-name"), "Shop checkout"))
	b.choose("#wh-event", "CheckoutSuccess")
	b.run("sample", chromedp.SetValue(chromedp.CSS("#wh-sample"), consoleSample), chromedp.Click(chromedp.CSS("#reload-fields")))
	b.waitJS("fields loaded", `document.querySelector('#fields-status').textContent.includes('fields loaded')`)
	nested := evalJS[bool](b, `[...document.querySelectorAll('#wh-identify-field option')].some(o => o.value === 'customer.tags[0]') &&
		[...document.querySelectorAll('#wh-identify-field option')].some(o => o.value === 'customer.address.city')`)
	if !nested {
		t.Fatalf("payload field options lack the nested and array paths")
	}
	b.choose("#wh-identify-kind", "user_id")
	b.choose("#wh-identify-field", "user_id")
	maps := [][2]string{{"email", "email_address"}, {"total", "price"}, {"order_id", "order_number"}, {"purchase_date", "purchase_date"},
		{"shop_order", "order_id"}, {"vip", "payment_state"}}
	for i, m := range maps {
		if i > 0 {
			b.run("add mapping", chromedp.Click(chromedp.CSS("#add-mapping")))
		}
		row := fmt.Sprintf("#mapping-rows .mapping-row:nth-child(%d)", i+1)
		b.choose(row+" .map-attr", m[0])
		b.choose(row+" .map-field", m[1])
	}
	// The last row maps a string to a boolean attribute on purpose... then is removed with ×.
	b.run("remove row", chromedp.Click(chromedp.CSS("#mapping-rows .mapping-row:nth-child(6) .map-remove")))
	rows := evalJS[int](b, `document.querySelectorAll('#mapping-rows .mapping-row').length`)
	if rows != 5 {
		t.Fatalf("mapping rows after × = %d; want 5", rows)
	}
	b.run("show tooltip", chromedp.Focus(chromedp.CSS(".tip")))
	b.shot("05-webhook-form")
	b.run("enable", chromedp.Click(chromedp.CSS("#enable-webhook")), chromedp.WaitVisible(chromedp.CSS("#url-dialog")))
	b.waitJS("credentials", `document.querySelector('#url-value').value !== ''`)
	hookURL, secret, example := b.value("#url-value"), b.value("#secret-value"), b.text("#example-value")
	if !strings.HasPrefix(hookURL, st.ingestURL+"/hooks/") || !strings.HasPrefix(secret, "Bearer whsec_") {
		t.Fatalf("window shows URL %q and secret %q", hookURL, secret)
	}
	if !strings.Contains(example, hookURL) || !strings.Contains(example, secret) || !strings.Contains(example, `"order_number":"ORD-001"`) ||
		!strings.Contains(example, `"order_id":820982911946154508`) {
		t.Fatalf("example request = %q; want a curl with the URL, the secret and the sample", example)
	}
	b.run("copy secret", chromedp.Click(chromedp.CSS(`[data-copy="secret-value"]`)))
	b.shot("06-webhook-url-window")
	hookID := hookURL[strings.LastIndex(hookURL, "/")+1:]

	// Send the example request (its body) with the copied values, and one with a wrong secret.
	body := example[strings.Index(example, "--data-raw '")+len("--data-raw '") : len(example)-1]
	if got := send(t, hookURL, secret, body); got != http.StatusAccepted {
		t.Fatalf("example request answered %d; want 202", got)
	}
	if got := send(t, hookURL, "Bearer whsec_wrong", body); got != http.StatusUnauthorized {
		t.Fatalf("wrong secret answered %d; want 401", got)
	}

	// The list shows it enabled; the activity log shows Success and Failed (Auth rejected).
	b.run("done", chromedp.Click(chromedp.CSS("#url-dialog-done")))
	b.waitJS("list row", fmt.Sprintf(`!!document.querySelector('#webhooks-body tr[data-id=%q]')`, hookID))
	if got := b.text(fmt.Sprintf(`#webhooks-body tr[data-id=%q]`, hookID)); !strings.Contains(got, "Enabled") || !strings.Contains(got, "CheckoutSuccess") {
		t.Fatalf("list row = %q", got)
	}
	b.open("/webhooks/" + hookID + "/activity")
	const refreshActivity = `document.querySelector('#refresh-activity').click()`
	b.refreshUntil("two entries and their summary", `document.querySelectorAll('#entries .entry').length >= 2 &&
		document.querySelector('#sum-hits').textContent === '2'`, refreshActivity)
	okEntry := `#entries .entry[data-status="success"]`
	// Integers above 2^53 are shown as sent (JSON.parse would show 820982911946154500).
	if got := b.text(okEntry); !strings.Contains(got, "User ID: 12345") || !strings.Contains(got, "Success") || !strings.Contains(got, "ORD-001") ||
		!strings.Contains(got, `"order_id":820982911946154508`) {
		t.Fatalf("success entry = %q; want the preview with order_id 820982911946154508", got)
	}
	if got := b.text(`#entries .entry[data-status="failed"]`); !strings.Contains(got, "Failed") || !strings.Contains(got, "Auth rejected") {
		t.Fatalf("failed entry = %q", got)
	}
	if got := b.text("#sum-reasons"); !strings.Contains(got, "Auth rejected") {
		t.Fatalf("failure reasons = %q", got)
	}
	b.run("show", chromedp.Click(chromedp.CSS(okEntry+" .entry-head button")), chromedp.WaitVisible(chromedp.CSS(okEntry+" .fired-attributes")))
	if got := b.text(okEntry + " .fired-attributes"); !strings.Contains(got, `"total"`) || !strings.Contains(got, "__webhook") ||
		!strings.Contains(got, `"shop_order": 820982911946154508`) {
		t.Fatalf("fired attributes = %q; want total, __webhook and shop_order 820982911946154508", got)
	}
	if got := b.text(okEntry + " .full-payload"); !strings.Contains(got, "\n  \"user_id\": \"12345\"") ||
		!strings.Contains(got, "\n  \"order_id\": 820982911946154508,\n") {
		t.Fatalf("full payload is not pretty-printed with order_id 820982911946154508: %q", got)
	}
	b.shot("07-activity-log")
	// The wrong secret's entry says which check failed, as recorded and in words.
	failedEntry := `#entries .entry[data-status="failed"]`
	b.run("show failed", chromedp.Click(chromedp.CSS(failedEntry+" .entry-head button")), chromedp.WaitVisible(chromedp.CSS(failedEntry+" .detail-text")))
	if got := b.text(failedEntry + " .detail-text"); !strings.Contains(got, "credentials_mismatch") || !strings.Contains(got, "The credentials do not match the secret") {
		t.Fatalf("failed entry's detail = %q; want credentials_mismatch and its words", got)
	}
	b.run("filter failed", chromedp.Click(chromedp.CSS(`label[for="astatus-failed"]`)))
	b.waitJS("only failed", `document.querySelectorAll('#entries .entry').length === 1 && !!document.querySelector('#entries .entry[data-status="failed"]')`)
	b.run("filter all", chromedp.Click(chromedp.CSS(`label[for="astatus-all"]`)), chromedp.SendKeys(chromedp.CSS("#identifier-search"), "12345"))
	b.waitJS("identifier search", `document.querySelectorAll('#entries .entry').length === 1 && !!document.querySelector('#entries .entry[data-status="success"]')`)

	// User Explorer: the user, its device, and the event with __webhook.
	b.open("/users")
	b.choose("#lookup-kind", "email")
	b.run("look up", chromedp.SendKeys(chromedp.CSS("#lookup-value"), "JANE@example.com"), chromedp.Click(chromedp.CSS("#lookup-submit")))
	// The pipeline writes the events row after the activity row that showed Success: look up again
	// until the history has it.
	b.refreshUntil("history", `!!document.querySelector('#history .history-item')`, `document.querySelector('#lookup-submit').click()`)
	if got := b.text("#devices-body"); !strings.Contains(got, "ios-5f2c") {
		t.Fatalf("devices = %q", got)
	}
	b.run("expand event", chromedp.Click(chromedp.CSS("#history .history-item button")), chromedp.WaitVisible(chromedp.CSS("#history .attributes")))
	if got := b.text("#history .history-item"); !strings.Contains(got, "CheckoutSuccess") || !strings.Contains(got, `"__webhook": "`+hookID+`"`) || !strings.Contains(got, "ORD-001") ||
		!strings.Contains(got, `"shop_order": 820982911946154508`) {
		t.Fatalf("history item = %q; want CheckoutSuccess with __webhook, ORD-001 and shop_order 820982911946154508", got)
	}
	b.shot("08-user-explorer")

	// Five wrong secrets in a row raise the notification: the activity log shows the banner.
	for range 5 {
		if got := send(t, hookURL, "", body); got != http.StatusUnauthorized {
			t.Fatalf("missing secret answered %d; want 401", got)
		}
	}
	b.reopenUntil("the auth-failure banner after five rejected requests", "/webhooks/"+hookID+"/activity", `!!document.querySelector('#auth-alert')`)
	b.refreshUntil("seven entries", `document.querySelectorAll('#entries .entry').length >= 7`, refreshActivity)
	b.shot("09-activity-auth-banner")
	// A correct secret resumes at once, and the banner goes.
	if got := send(t, hookURL, secret, body); got != http.StatusAccepted {
		t.Fatalf("correct secret answered %d; want 202", got)
	}
	b.reopenUntil("the banner to go after a successful request", "/webhooks/"+hookID+"/activity", `!document.querySelector('#auth-alert')`)

	// The list: row menu open, then Disable and Enable again.
	b.open("/webhooks")
	row := fmt.Sprintf(`#webhooks-body tr[data-id=%q]`, hookID)
	b.waitJS("row", fmt.Sprintf(`!!document.querySelector('%s')`, row))
	b.run("open menu", chromedp.Click(chromedp.CSS(row+" [data-menu-trigger]")), chromedp.WaitVisible(chromedp.CSS(row+" .menu")))
	b.shot("10-webhooks-list-menu")
	b.run("close menu", chromedp.KeyEvent("\x1b"))
	b.run("disable", chromedp.Click(chromedp.CSS(row+" [data-toggle]")))
	b.waitJS("disabled", fmt.Sprintf(`document.querySelector('%s') && document.querySelector('%s').innerText.includes('Disabled')`, row, row))
	sendUntil(t, http.StatusForbidden, hookURL, secret, body)
	b.run("filter disabled", chromedp.Click(chromedp.CSS(`label[for="status-disabled"]`)))
	b.waitJS("filtered", fmt.Sprintf(`document.querySelector('#webhooks-body').dataset.status === 'disabled' && !!document.querySelector('%s')`, row))
	b.run("filter enabled", chromedp.Click(chromedp.CSS(`label[for="status-enabled"]`)))
	b.waitJS("no match", `document.querySelector('#webhooks-body').dataset.status === 'enabled' && !document.querySelector('#webhooks-nomatch').hidden`)
	b.run("filter all", chromedp.Click(chromedp.CSS(`label[for="status-all"]`)), chromedp.SendKeys(chromedp.CSS("#search"), "checkout"))
	b.waitJS("search", fmt.Sprintf(`document.querySelector('#webhooks-body').dataset.q === 'checkout' && document.querySelector('#webhooks-body').dataset.status === '' &&
		!!document.querySelector('%s') && document.querySelector('%s').innerText.includes('Disabled')`, row, row))
	b.run("enable", chromedp.Click(chromedp.CSS(row+" [data-toggle]")))
	b.waitJS("enabled", fmt.Sprintf(`document.querySelector('%s') && document.querySelector('%s').innerText.includes('Enabled')`, row, row))

	// Edit settings shows the saved configuration.
	b.open("/webhooks/" + hookID + "/edit")
	b.waitJS("edit form", `document.querySelector('#wh-name').value === 'Shop checkout' && document.querySelectorAll('#mapping-rows .mapping-row').length === 5 &&
		document.querySelector('#wh-identify-field').value === 'user_id'`)
	if got := b.value("#wh-sample"); !strings.Contains(got, `"order_id": 820982911946154508,`) {
		t.Fatalf("sample payload in the edit form = %q; want order_id 820982911946154508", got)
	}
	b.shot("11-webhook-edit")
	b.run("rename", chromedp.SetValue(chromedp.CSS("#wh-name"), "Shop checkout v2"), chromedp.Click(chromedp.CSS("#save-webhook")))
	b.waitJS("renamed in the list", fmt.Sprintf(`location.pathname === '/webhooks' && !!document.querySelector('%s') &&
		document.querySelector('%s').innerText.includes('Shop checkout v2')`, row, row))

	// Another project's webhook: unreachable by URL manipulation.
	other, _, err := st.stores.Webhooks.Create(ctx, st.projB, webhook.WebhookInput{Name: "B's hook", EventName: mustEvent(t, st.stores.Webhooks, st.projB),
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/webhooks/" + other.ID + "/edit", "/webhooks/" + other.ID + "/activity"} {
		b.open(path)
		if got := b.text("main h1"); got != "Not found" {
			t.Fatalf("%s shows %q; want the 404 page", path, got)
		}
	}
	apiStatus := evalJS[int](b, fmt.Sprintf(`fetch('/api/v1/webhooks/%s/credentials').then(r => r.status)`, other.ID))
	if apiStatus != http.StatusNotFound {
		t.Fatalf("another project's credentials via the session = %d; want 404", apiStatus)
	}
	b.shot("12-not-found")

	// Phone width.
	b.run("phone width", chromedp.EmulateViewport(390, 844))
	b.open("/webhooks/" + hookID + "/activity")
	b.waitJS("entries", `document.querySelectorAll('#entries .entry').length > 0`)
	b.shot("13-phone-activity-log")
	b.open("/webhooks")
	b.waitJS("row", fmt.Sprintf(`!!document.querySelector('%s')`, row))
	b.shot("14-phone-webhooks")
	b.run("desktop width", chromedp.EmulateViewport(1280, 900))

	// Delete, with confirmation: Cancel keeps it, Delete removes it.
	b.open("/webhooks")
	b.waitJS("row", fmt.Sprintf(`!!document.querySelector('%s')`, row))
	b.run("menu", chromedp.Click(chromedp.CSS(row+" [data-menu-trigger]")), chromedp.Click(chromedp.CSS(row+" .menu .danger")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")), chromedp.Click(chromedp.CSS("#confirm-cancel")))
	b.waitJS("still there", fmt.Sprintf(`!document.querySelector('#confirm-dialog').open && !!document.querySelector('%s')`, row))
	// Cancel, and ask again before the window's close event is dispatched (Chromium sends it in a later
	// task; a quick user or a loaded machine gets there first): that late event must not answer the
	// second question, whose Delete then deletes. With a close listener per opening it answered Cancel
	// to both, Delete did nothing, and this test failed with "waiting for deleted … timeout".
	b.run("menu", chromedp.Click(chromedp.CSS(row+" [data-menu-trigger]")), chromedp.Click(chromedp.CSS(row+" .menu .danger")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
	asked := evalJS[bool](b, fmt.Sprintf(`(() => {
		const d = document.querySelector('#confirm-dialog');
		document.querySelector('#confirm-cancel').click();
		const closed = !d.open;
		d.addEventListener('close', () => { document.body.dataset.lateClose = String(d.open); }, { once: true });
		document.querySelector('%s [data-menu-trigger]').click();
		document.querySelector('%s .menu .danger').click();
		return closed && d.open; })()`, row, row))
	if !asked {
		t.Fatalf("Cancel did not close the confirmation, or Delete did not open it again")
	}
	b.waitJS("the late close event, the window open again", `document.body.dataset.lateClose === 'true'`)
	b.run("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	b.waitJS("deleted", `!document.querySelector('#webhooks-empty').hidden`)
	sendUntil(t, http.StatusNotFound, hookURL, secret, body)

	// Sign out ends the session.
	b.run("sign out", chromedp.Click(chromedp.CSS(`.account button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#api-key")))
	b.open("/webhooks")
	b.run("signed out", chromedp.WaitVisible(chromedp.CSS("#api-key")))
}

// mustEvent creates an event in project pid and returns its name.
func mustEvent(t *testing.T, s *webhook.Store, pid int64) string {
	t.Helper()
	ev, err := s.CreateEvent(context.Background(), pid, webhook.EventInput{Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	return ev.Name
}
