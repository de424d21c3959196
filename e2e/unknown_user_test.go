package e2e

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUnknownUserCreate: through the real edge, pipeline and directory, a webhook whose route creates
// unknown users. The dry run says the user would be created and creates nothing; then two requests
// for the same new user sent at once both succeed, one user exists afterwards, and its id is the one
// the dry run announced.
func TestUnknownUserCreate(t *testing.T) {
	s := newStack(t)
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "Signup", "attributes": []map[string]string{
		{"name": "plan", "type": "string"}}}, 201)
	var wh struct {
		ID          string
		Credentials struct{ Secret string }
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, map[string]any{
		"name": "Signups", "event": "Signup", "unknown_user": "create",
		"identify": map[string]string{"kind": "email", "field": "email"},
		"mappings": []map[string]string{{"attribute": "plan", "field": "plan"}},
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+wh.ID+"/enable", s.keyA, nil, 200)
	body := `{"email":"New.User@Example.com","plan":"pro"}`

	var dry struct {
		Status, Detail string
		Identification struct {
			Found       bool
			WouldCreate bool   `json:"would_create"`
			UserID      string `json:"user_id"`
		}
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks/"+wh.ID+"/test", s.keyA, map[string]any{"body": body}, 200), &dry); err != nil {
		t.Fatal(err)
	}
	const userID = "email:new.user@example.com"
	if dry.Status != "success" || dry.Identification.Found || !dry.Identification.WouldCreate || dry.Identification.UserID != userID ||
		!strings.Contains(dry.Detail, "would be created") {
		t.Errorf("dry run %+v; want success, would create %s", dry, userID)
	}
	s.want("GET", "/api/v1/users/"+userID, s.keyA, nil, 404) // the dry run wrote nothing

	url := s.ingestURL + "/hooks/" + wh.ID
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { sendUntil(t, 202, url, wh.Credentials.Secret, body) })
	}
	wg.Wait()
	var page struct {
		Entries []struct {
			Status, Reason, Detail string
			UserID                 string `json:"user_id"`
		}
	}
	deadline := time.Now().Add(patience)
	for {
		if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity", s.keyA, nil, 200), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d activity entries after %s; want 2", len(page.Entries), patience)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
	}
	created := 0
	for _, en := range page.Entries {
		if en.Status != "success" || en.UserID != userID {
			t.Errorf("entry %+v; want success for %s", en, userID)
		}
		if strings.Contains(en.Detail, "user created from email") {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d entries say the user was created; want 1", created)
	}
	var u struct{ Email string }
	if err := json.Unmarshal(s.want("GET", "/api/v1/users/"+userID, s.keyA, nil, 200), &u); err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(u.Email, "new.user@example.com") {
		t.Errorf("created user's email %q; want new.user@example.com", u.Email)
	}
}
