package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestErasureThroughTheStack: requests for two users go through the real edge, Kafka and pipeline into
// ClickHouse; deleting one user erases its activity entries and events while the 24 h counts stay and
// the other user's rows stay; a request for that user sent after the erasure is logged and kept.
func TestErasureThroughTheStack(t *testing.T) {
	s := newStack(t)
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "Checkout", "attributes": []map[string]string{
		{"name": "plan", "type": "string"}}}, 201)
	var wh struct {
		ID          string
		Credentials struct{ Secret string }
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, map[string]any{
		"name": "Checkouts", "event": "Checkout",
		"identify": map[string]string{"kind": "email", "field": "email"},
		"mappings": []map[string]string{{"attribute": "plan", "field": "plan"}},
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+wh.ID+"/enable", s.keyA, nil, 200)
	s.want("PUT", "/api/v1/users/jane", s.keyA, map[string]string{"email": "jane@example.com"}, 201)
	s.want("PUT", "/api/v1/users/bob", s.keyA, map[string]string{"email": "bob@example.com"}, 201)
	url := s.ingestURL + "/hooks/" + wh.ID
	for _, b := range []string{`{"email":"jane@example.com","plan":"pro"}`, `{"email":"Jane@Example.com","plan":"team"}`,
		`{"email":"bob@example.com","plan":"pro"}`} {
		sendUntil(t, 202, url, wh.Credentials.Secret, b)
	}

	type entry struct {
		Status, Payload string
		IdentifierValue string `json:"identifier_value"`
		UserID          string `json:"user_id"`
	}
	entries := func(want int) []entry {
		t.Helper()
		var page struct{ Entries []entry }
		deadline := time.Now().Add(patience)
		for {
			if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity", s.keyA, nil, 200), &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Entries) == want {
				return page.Entries
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d activity entries after %s; want %d: %+v", len(page.Entries), patience, want, page.Entries)
			}
			time.Sleep(100 * time.Millisecond) // pacing only
		}
	}
	// events counts the user's events rows in ClickHouse (the API's history of a deleted user is a 404).
	events := func(user string) uint64 {
		t.Helper()
		var n uint64
		if err := s.ch.QueryRow(context.Background(), "SELECT count() FROM events WHERE project_id = ? AND user_id = ?",
			uint64(s.projA), user).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// awaitEvents waits until the events rows have followed the activity rows' flush.
	awaitEvents := func(user string, want uint64) {
		t.Helper()
		deadline := time.Now().Add(patience)
		for events(user) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s has %d events after %s; want %d", user, events(user), patience, want)
			}
			time.Sleep(100 * time.Millisecond) // pacing only
		}
	}
	summary := func() string { return string(s.want("GET", "/api/v1/webhooks/"+wh.ID+"/summary", s.keyA, nil, 200)) }

	entries(3)
	awaitEvents("jane", 2)
	awaitEvents("bob", 1)
	before := summary()
	if !strings.Contains(before, `"hits":3`) || !strings.Contains(before, `"success":3`) {
		t.Fatalf("summary before = %s", before)
	}

	var job struct {
		ID     int64
		Status string
	}
	if err := json.Unmarshal(s.want("DELETE", "/api/v1/users/jane", s.keyA, nil, 202), &job); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(patience)
	for job.Status != "done" {
		if job.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("erasure %d is %s", job.ID, job.Status)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
		if err := json.Unmarshal(s.want("GET", fmt.Sprintf("/api/v1/erasures/%d", job.ID), s.keyA, nil, 200), &job); err != nil {
			t.Fatal(err)
		}
	}
	left := entries(1)
	if left[0].UserID != "bob" {
		t.Errorf("the entry left is %+v; want bob's", left[0])
	}
	if n := events("jane"); n != 0 {
		t.Errorf("%d events of jane after the erasure", n)
	}
	if n := events("bob"); n != 1 {
		t.Errorf("%d events of bob after jane's erasure; want 1", n)
	}
	if after := summary(); after != before {
		t.Errorf("summary after the erasure = %s; want the counts kept, %s", after, before)
	}

	// Jane comes back: a new request is logged, fires, and stays.
	s.want("PUT", "/api/v1/users/jane", s.keyA, map[string]string{"email": "jane@example.com"}, 201)
	sendUntil(t, 202, url, wh.Credentials.Secret, `{"email":"jane@example.com","plan":"pro"}`)
	got := entries(2)
	if got[0].UserID != "jane" || got[0].Status != "success" {
		t.Errorf("the newest entry is %+v; want jane's new request, success", got[0])
	}
	awaitEvents("jane", 1)
}
