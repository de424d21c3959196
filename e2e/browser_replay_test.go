package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestConsoleBrowserReplay: on the whole system, a request for a user the directory does not know
// fails (user_not_found); once the user exists, its entry's Replay button runs it again: a second
// entry, attempt 2, succeeds, and the summary counts the request once, as a success. Then "Replay
// failed…" counts the failures of a second batch, replays them with a progress bar and shows the
// result.
func TestConsoleBrowserReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack and Chromium")
	}
	s := newStack(t)
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "Order"}, 201)
	var wh struct {
		ID          string
		Credentials struct{ Secret string }
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, map[string]any{
		"name": "Orders", "event": "Order", "identify": map[string]string{"kind": "user_id", "field": "user_id"}, "mappings": []any{},
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+wh.ID+"/enable", s.keyA, nil, 200)
	// The replay runner of an admin process (the console's admin serves its handler only).
	prod, err := replay.NewProducer(s.kafka, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	runner := replay.NewRunner(replay.RunnerConfig{Poll: 100 * time.Millisecond}, replay.NewStore(s.stores.Pool), chstore.NewReader(s.ch), prod, testenv.Logger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	url := s.ingestURL + "/hooks/" + wh.ID
	sendUntil(t, 202, url, wh.Credentials.Secret, `{"user_id":"late-1"}`)
	b := newBrowser(t, s.consoleURL)
	b.signIn(s.keyA)
	b.open("/webhooks/" + wh.ID + "/activity")
	b.waitJS("the failed entry", idle+` && document.querySelectorAll('#entries > .entry[data-status="failed"] .replay-one').length === 1`)

	s.want("PUT", "/api/v1/users/late-1", s.keyA, map[string]any{}, 201)
	b.run("replay it", chromedp.Click(chromedp.CSS(`#entries > .entry[data-status="failed"] .replay-one`)))
	b.waitJS("attempt 2 listed, a success", `[...document.querySelectorAll('#entries > .entry')].some(li => li.dataset.status === 'success' && li.querySelector('.entry-attempt') && li.querySelector('.entry-attempt').textContent.startsWith('Attempt 2'))`)
	b.waitJS("the summary by latest outcome", `document.querySelector('#sum-hits').textContent === '1' && document.querySelector('#sum-success').textContent === '1' && document.querySelector('#sum-failed').textContent === '0'`)
	if n := evalJS[float64](b, `document.querySelectorAll('#entries > .entry').length`); n != 2 {
		t.Errorf("%v entries; want 2 (the first attempt and the replay)", n)
	}
	if evalJS[bool](b, `!!document.querySelector('#entries .replay-one')`) {
		t.Errorf("the first attempt still offers Replay; its request has succeeded since")
	}

	// A second batch: three requests for users that do not exist yet.
	for _, u := range []string{"late-2", "late-3", "late-4"} {
		sendUntil(t, 202, url, wh.Credentials.Secret, `{"user_id":"`+u+`"}`)
	}
	deadline := time.Now().Add(patience)
	for {
		var sum struct{ Summary chstore.Summary }
		if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks/"+wh.ID+"/summary", s.keyA, nil, 200), &sum); err != nil {
			t.Fatal(err)
		}
		if sum.Summary.Failed == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("summary %+v after %s; want 3 failures", sum.Summary, patience)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
	}
	b.run("refresh", chromedp.Click(chromedp.CSS("#refresh-activity")))
	b.waitJS("three failures", idle+` && document.querySelector('#sum-failed').textContent === '3'`)
	for _, u := range []string{"late-2", "late-3"} {
		s.want("PUT", "/api/v1/users/"+u, s.keyA, map[string]any{}, 201)
	}
	b.run("open the replay window", chromedp.Click(chromedp.CSS("#replay-open")))
	b.waitJS("the count", `document.querySelector('#replay-count').textContent.startsWith('3 failed requests')`)
	b.choose("#replay-reason", "user_not_found")
	b.waitJS("the count by reason", `document.querySelector('#replay-count').textContent.startsWith('3 failed requests') && !document.querySelector('#replay-start').disabled`)
	b.run("start", chromedp.Click(chromedp.CSS("#replay-start")))
	b.waitJS("the result", `document.querySelector('#replay-status').textContent.startsWith('Done: 2 succeeded, 1 failed again')`)
	if v := evalJS[float64](b, `document.querySelector('#replay-bar').value`); v != 3 {
		t.Errorf("progress bar at %v; want 3 of 3", v)
	}
	b.shot("activity-replay")
	b.run("close", chromedp.Click(chromedp.CSS("#replay-close")))
	b.waitJS("the summary", `document.querySelector('#sum-success').textContent === '3' && document.querySelector('#sum-failed').textContent === '1'`)
}
