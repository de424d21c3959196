package e2e

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// TestConsoleBrowserHistory drives User Explorer's "Load more" in Chromium over 150 events of one user,
// 80 of them in one millisecond that two page boundaries (pages of 50) fall inside, at the start of a
// second: the list must end with every event exactly once, newest first as the API orders them, and no
// Load more after the last page. The console used to ask for the events before the last one's second,
// which skipped the other 59 of that millisecond and hid the button after a short second page. Two
// clicks before an answer must add one page, not two copies of it.
func TestConsoleBrowserHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	e := newEnv(t)
	e.want("PUT", "/api/v1/users/u-many", e.keyA, map[string]any{"email": "many@example.com"}, 201)
	s := uint64(time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli())
	var ms []uint64
	for i := range 30 {
		ms = append(ms, s+1001+uint64(i/2)) // the newest 30, two a millisecond
	}
	for range 80 {
		ms = append(ms, s+1000) // newest-first positions 30..109: the first millisecond of a second
	}
	for i := range 40 {
		ms = append(ms, s+960+uint64(i)) // the oldest 40, in the second before
	}
	rand.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	ids := e.insertEvents(e.projA, chstore.SubjectUser, "u-many", ms...)
	type ev struct {
		ms uint64
		id string
	}
	var want []ev
	for i, id := range ids {
		want = append(want, ev{ms[i], id.String()})
	}
	slices.SortFunc(want, func(a, b ev) int { return cmp.Or(cmp.Compare(b.ms, a.ms), strings.Compare(b.id, a.id)) })

	b := newBrowser(t, e.consoleURL)
	b.signIn(e.keyA)
	b.open("/users?kind=user_id&value=u-many")
	const items = `document.querySelectorAll('#history .history-item').length`
	const more = `document.querySelector('#history-more')`
	b.waitJS("the first page", fmt.Sprintf(`%s && %s === 50 && !%s.hidden`, idle, items, more))
	// Two clicks before the first is answered: the page after the first 50 comes once.
	evalJS[bool](b, more+`.click(); `+more+`.click(); true`)
	b.waitJS("the second page", fmt.Sprintf(`%s && %s >= 100`, idle, items))
	if n := evalJS[int](b, items); n != 100 {
		t.Fatalf("after two clicks on Load more the history has %d events; want 100", n)
	}
	b.run("load more", chromedp.Click(chromedp.CSS("#history-more")))
	b.waitJS("the last page", fmt.Sprintf(`%s && %s >= 150`, idle, items))
	if !evalJS[bool](b, more+`.hidden`) {
		t.Fatalf("Load more shows after the last page")
	}
	got := evalJS[[]string](b, `[...document.querySelectorAll('#history .history-item')].map(li => li.dataset.eventId)`)
	if len(got) != len(want) {
		t.Fatalf("the history lists %d events; want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i] != w.id {
			t.Fatalf("event %d of the history is %s; want %s (%d ms)", i, got[i], w.id, w.ms)
		}
	}
}
