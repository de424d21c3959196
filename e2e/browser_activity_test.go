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

// TestConsoleBrowserDuplicates: the activity log counts duplicates apart, filters them, shows a
// duplicate as "Duplicate of <first request>" linking to the first request — to its entry when it is on
// the page, to its details fetched in place when it is not — and shows the sender headers of an entry.
func TestConsoleBrowserDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, map[string]any{"name": "PushReceived"}, 201)
	var wh struct{ ID string }
	if err := json.Unmarshal(e.want("POST", "/api/v1/webhooks", e.keyA, map[string]any{
		"name": "GitHub pushes", "event": "PushReceived",
		"identify": map[string]string{"kind": "user_id", "field": "sender.login"}, "mappings": []any{},
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}

	// The first delivery, 20 other requests, then two repeats of the first: the newest page (20
	// entries) has the second repeat but not the first request; the next page has both.
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	first := uuid.Must(uuid.NewV7())
	headers := func(delivery string) string {
		return fmt.Sprintf(`{"X-GitHub-Event":"push","X-GitHub-Delivery":%q,"X-GitHub-Hook-ID":"4711"}`, delivery)
	}
	row := func(id uuid.UUID, at time.Time, status, dupOf, hs string, off int64) chstore.ActivityRow {
		r := chstore.ActivityRow{ProjectID: uint64(e.projA), WebhookID: wh.ID, RequestID: id, ReceivedAt: at,
			ReceivedMs: uint64(at.UnixMilli()), ProcessedMs: uint64(at.UnixMilli() + 40), Status: status, EdgeStatus: 202,
			IdentifierKind: "user_id", IdentifierValue: "octocat", UserID: "octocat", EventName: "PushReceived",
			Payload: `{"ref":"refs/heads/main","sender":{"login":"octocat"}}`, PayloadBytes: 52, DuplicateOf: dupOf, Headers: hs,
			Partition: 0, Offset: off}
		if status == chstore.StatusSuccess {
			r.Attributes = `{"__webhook":"` + wh.ID + `"}`
		}
		if dupOf != "" {
			r.Detail = "duplicate of request " + dupOf + ": the same X-GitHub-Delivery header within 24h; no event fired"
		}
		return r
	}
	rows := []chstore.ActivityRow{row(first, t0, chstore.StatusSuccess, "", headers("72d3162e"), 0)}
	dup1 := uuid.Must(uuid.NewV7())
	rows = append(rows, row(dup1, t0.Add(time.Second), chstore.StatusDuplicate, first.String(), headers("72d3162e"), 1))
	for i := range 20 {
		rows = append(rows, row(uuid.Must(uuid.NewV7()), t0.Add(time.Duration(2+i)*time.Second), chstore.StatusSuccess, "",
			headers(fmt.Sprintf("other-%d", i)), int64(2+i)))
	}
	dup2 := uuid.Must(uuid.NewV7())
	rows = append(rows, row(dup2, t0.Add(30*time.Second), chstore.StatusDuplicate, first.String(), headers("72d3162e"), 22))
	if err := chstore.NewWriter(e.ch).InsertActivity(context.Background(), rows); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, e.consoleURL)
	b.signIn(e.keyA)
	b.open("/webhooks/" + wh.ID + "/activity")
	b.waitJS("the summary and the first page", idle+` && document.querySelectorAll('#entries > .entry').length === 20`)
	if got := b.text("#sum-duplicate"); got != "2" {
		t.Errorf("Duplicates = %q; want 2", got)
	}
	if got := b.text("#sum-hits"); got != "23" {
		t.Errorf("Hits = %q; want 23", got)
	}
	dupEntry := fmt.Sprintf(`#entries > li[data-request-id=%q]`, dup2)
	if got := b.text(dupEntry + " .entry-head"); !strings.Contains(got, "Duplicate") || !strings.Contains(got, "Duplicate of "+first.String()) {
		t.Errorf("the duplicate's entry reads %q; want the Duplicate badge and Duplicate of %s", got, first)
	}

	// The first request is not on this page: the link shows it in place.
	b.run("follow the link off the page", chromedp.Click(chromedp.CSS(dupEntry+" .dup-link")))
	b.waitJS("the first request shown in place", fmt.Sprintf(`!!document.querySelector('%s .first-request .entry[data-request-id="%s"]')`, dupEntry, first))
	if got := b.text(dupEntry + " .first-request .badge"); got != "Success" {
		t.Errorf("the first request in place is %q; want Success", got)
	}

	// The next page has it: the older duplicate's link goes to its entry, opened, with its headers.
	b.run("load more", chromedp.Click(chromedp.CSS("#load-more")))
	firstEntry := fmt.Sprintf(`#entries > li[data-request-id=%q]`, first)
	b.waitJS("the next page", idle+fmt.Sprintf(` && !!document.querySelector('%s')`, firstEntry))
	b.run("follow the link on the page", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#entries > li[data-request-id=%q] .dup-link`, dup1))))
	b.waitJS("the first request opened", fmt.Sprintf(`!document.querySelector('%s .entry-details').hidden && !!document.querySelector('%s .sender-headers')`, firstEntry, firstEntry))
	if got := b.text(firstEntry + " .sender-headers"); !strings.Contains(got, "X-GitHub-Event") || !strings.Contains(got, "push") || !strings.Contains(got, "72d3162e") {
		t.Errorf("sender headers read %q; want X-GitHub-Event push and the delivery id", got)
	}

	// The duplicate's own details say so and fire nothing.
	b.run("show the duplicate", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#entries > li[data-request-id=%q] .entry-head button`, dup1))))
	dup1Details := fmt.Sprintf(`#entries > li[data-request-id=%q] .entry-details`, dup1)
	b.waitJS("the duplicate's details", fmt.Sprintf(`!document.querySelector('%s').hidden && !!document.querySelector('%s .detail-duplicate')`, dup1Details, dup1Details))
	if got := b.text(dup1Details); !strings.Contains(got, "Duplicate of") || strings.Contains(got, "Fired event") || !strings.Contains(got, "No event fired") {
		t.Errorf("the duplicate's details read %q; want Duplicate of, no fired event", got)
	}

	// The Duplicate filter lists the two repeats.
	b.run("filter duplicates", chromedp.Click(chromedp.CSS(`label[for="astatus-duplicate"]`)))
	b.waitJS("two duplicates", idle+` && document.querySelectorAll('#entries > .entry').length === 2 && [...document.querySelectorAll('#entries > .entry')].every(li => li.dataset.status === 'duplicate')`)
	b.run("show the newest duplicate", chromedp.Click(chromedp.CSS(dupEntry+" .entry-head button")))
	b.waitJS("its details", fmt.Sprintf(`!document.querySelector('%s .entry-details').hidden && !!document.querySelector('%s .sender-headers')`, dupEntry, dupEntry))
	b.shot("activity-duplicates")
}
