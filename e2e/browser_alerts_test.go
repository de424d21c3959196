package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/inlet-dev/inlet/internal/alert"
)

// TestConsoleBrowserAlerts drives the Alerts page in Chromium: a refused rule shows the API's error at
// its field; a reason-spike rule is added, listed and stored in the signed-in project only; an alert and
// its notification (with its attempt log) are listed; Delete removes the rule.
func TestConsoleBrowserAlerts(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	st := e.stores.Alerts
	if err := st.RecordStreak(t.Context(), alert.Streak{ProjectID: e.projA, WebhookID: "wh_x", ID: [16]byte{7},
		CreatedAt: time.Now(), Message: "5 consecutive requests to webhook wh_x failed verification"}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e.consoleURL)
	b.signIn(e.keyA)
	b.open("/alerts")
	b.waitJS("lists loaded", `document.querySelector('#alerts-body tr[data-state="firing"]') !== null`)
	if got := b.text("#alerts-body"); !strings.Contains(got, "failed verification") {
		t.Fatalf("alerts list %q", got)
	}
	if got := b.text("#deliveries-body"); !strings.Contains(got, "skipped") || !strings.Contains(got, "no notification URL") {
		t.Fatalf("notifications list %q; want the notification skipped for want of a URL", got)
	}

	b.run("open editor", chromedp.Click(chromedp.CSS("#create-rule")))
	b.choose("#rule-kind", "reason_spike")
	b.waitJS("reason shown", `!document.querySelector('#rule-reason-field').hidden`)
	b.run("fill", chromedp.SendKeys(chromedp.CSS("#rule-name"), "Unknown users"),
		chromedp.SendKeys(chromedp.CSS("#rule-threshold"), "0"), chromedp.Click(chromedp.CSS("#save-rule")))
	b.waitJS("threshold error", `document.querySelector('#err-threshold').textContent.includes('count of requests')`)
	b.run("fix", chromedp.SetValue(chromedp.CSS("#rule-threshold"), "20"), chromedp.Click(chromedp.CSS("#save-rule")))
	b.waitJS("rule listed", `[...document.querySelectorAll('#rules-body tr')].some(r => r.textContent.includes('Unknown users'))`)
	if got := b.text("#rules-body"); !strings.Contains(got, "At least 20") || !strings.Contains(got, "User not found") {
		t.Fatalf("rules list %q", got)
	}
	rules, err := st.Rules(t.Context(), e.projA)
	if err != nil || len(rules) != 1 || rules[0].Reason != "user_not_found" || rules[0].Threshold != 20 {
		t.Fatalf("stored rules %+v, %v", rules, err)
	}
	if other, _ := st.Rules(t.Context(), e.projB); len(other) != 0 {
		t.Fatalf("project B has rules %+v", other)
	}
	b.shot("19-alerts")

	b.run("delete", chromedp.Click(chromedp.CSS("#rules-body .delete-rule")))
	b.run("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	b.waitJS("rule gone", `document.querySelector('#rules-body').textContent.includes('No rules yet')`)
}
