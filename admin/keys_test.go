package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

type keyJSON struct {
	ID         int64
	Name       string
	Prefix     string
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
	RevokedAt  *string `json:"revoked_at"`
	Current    bool
	Key        string
	Scopes     []string
}

func (e *env) keys(key string) []keyJSON {
	e.t.Helper()
	var out struct {
		APIKeys []keyJSON `json:"api_keys"`
	}
	decodeInto(e.t, e.want("GET", "/api/v1/api-keys", key, nil, 200), &out)
	return out.APIKeys
}

// TestAPIKeys: list, create (shown once), get, revoke through the API; a revoked key is refused with a
// 401 problem at its next request, including when it revoked itself; the last active key stays.
func TestAPIKeys(t *testing.T) {
	e := newEnv(t)
	keys := e.keys(e.keyA)
	if len(keys) != 1 || !keys[0].Current || keys[0].Prefix != e.keyA[:12] || keys[0].RevokedAt != nil || keys[0].LastUsedAt == nil {
		t.Fatalf("A's keys = %+v; want its one key, current, with its prefix and a last use", keys)
	}
	first := keys[0]

	// Create: the key is in this answer only.
	code, body := e.do("POST", "/api/v1/api-keys", e.keyA, map[string]string{"name": "CI deploys"})
	if code != http.StatusCreated {
		t.Fatalf("create = %d %s", code, body)
	}
	var ci keyJSON
	decodeInto(t, body, &ci)
	if ci.Name != "CI deploys" || !strings.HasPrefix(ci.Key, "inl_") || ci.Prefix != ci.Key[:12] || ci.Current {
		t.Fatalf("created = %s", body)
	}
	// Without a body: an unnamed key.
	var unnamed keyJSON
	decodeInto(t, e.want("POST", "/api/v1/api-keys", ci.Key, nil, 201), &unnamed)
	if unnamed.Name != "" || unnamed.Key == "" {
		t.Fatalf("unnamed key = %+v", unnamed)
	}
	for _, path := range []string{"/api/v1/api-keys", fmt.Sprintf("/api/v1/api-keys/%d", ci.ID)} {
		out := e.want("GET", path, e.keyA, nil, 200)
		if strings.Contains(string(out), ci.Key) || strings.Contains(string(out), `"key"`) {
			t.Fatalf("GET %s shows a key: %s", path, out)
		}
	}
	var got keyJSON
	decodeInto(t, e.want("GET", fmt.Sprintf("/api/v1/api-keys/%d", ci.ID), ci.Key, nil, 200), &got)
	if !got.Current || got.Name != "CI deploys" || got.LastUsedAt == nil {
		t.Errorf("GET own key with itself = %+v; want current, with a last use", got)
	}

	// Field errors and unknown ids.
	out := e.want("POST", "/api/v1/api-keys", e.keyA, map[string]string{"name": strings.Repeat("x", 101)}, 400)
	if !strings.Contains(string(out), `"field":"name"`) {
		t.Errorf("long name: %s; want a field error on name", out)
	}
	e.want("POST", "/api/v1/api-keys", e.keyA, `{"label":"x"}`, 400)
	e.want("GET", "/api/v1/api-keys/999999999", e.keyA, nil, 404)
	e.want("GET", "/api/v1/api-keys/abc", e.keyA, nil, 404)
	e.want("POST", "/api/v1/api-keys/999999999/revoke", e.keyA, nil, 404)

	// A key may revoke itself; that answer is the last one it gets.
	var rev keyJSON
	decodeInto(t, e.want("POST", fmt.Sprintf("/api/v1/api-keys/%d/revoke", ci.ID), ci.Key, nil, 200), &rev)
	if rev.RevokedAt == nil || !rev.Current {
		t.Fatalf("self-revoke = %+v", rev)
	}
	req, _ := http.NewRequest("GET", e.url+"/api/v1/project", nil)
	req.Header.Set("Authorization", "Bearer "+ci.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("revoked key = %d %s; want 401 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Revoking again changes nothing.
	var again keyJSON
	decodeInto(t, e.want("POST", fmt.Sprintf("/api/v1/api-keys/%d/revoke", ci.ID), e.keyA, nil, 200), &again)
	if again.RevokedAt == nil || *again.RevokedAt != *rev.RevokedAt {
		t.Errorf("second revoke = %+v; want the first revocation kept", again)
	}

	// The last active key cannot be revoked.
	e.want("POST", fmt.Sprintf("/api/v1/api-keys/%d/revoke", unnamed.ID), e.keyA, nil, 200)
	out = e.want("POST", fmt.Sprintf("/api/v1/api-keys/%d/revoke", first.ID), e.keyA, nil, 409)
	if !strings.Contains(string(out), "last active") {
		t.Errorf("409 = %s; want it to say why", out)
	}
	e.want("GET", "/api/v1/project", e.keyA, nil, 200)
	keys = e.keys(e.keyA)
	if len(keys) != 3 || keys[0].ID != first.ID || keys[0].RevokedAt != nil || keys[1].RevokedAt == nil || keys[2].RevokedAt == nil {
		t.Errorf("after the revocations: %+v; want the active key first, then the two revoked", keys)
	}
}

// TestRevokedKeyEndsSessions: console sessions signed in with a key end at their next request once the
// key is revoked — through the API of this process, through the store as another admin process or the
// CLI would (which also deletes the sessions), or by a bare UPDATE that leaves the session rows in place
// (the lookup checks the key) — while sessions of other keys carry on.
func TestRevokedKeyEndsSessions(t *testing.T) {
	e := newEnv(t)
	for _, via := range []string{"api", "store", "sql"} {
		t.Run(via, func(t *testing.T) {
			var k keyJSON
			decodeInto(t, e.want("POST", "/api/v1/api-keys", e.keyA, map[string]string{"name": "laptop " + via}, 201), &k)
			doomed, other := newConsoleClient(t, e.url), newConsoleClient(t, e.url)
			csrf := doomed.signIn(k.Key)
			other.signIn(e.keyA)
			if resp, body := doomed.do("GET", "/api/v1/api-keys", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `"current":true`) {
				t.Fatalf("session's key list = %d %s; want its own key marked current", resp.StatusCode, body)
			}

			if via == "api" {
				e.want("POST", fmt.Sprintf("/api/v1/api-keys/%d/revoke", k.ID), e.keyA, nil, 200)
			} else if via == "store" {
				if _, err := e.srv.api.projects.RevokeKey(context.Background(), e.projA, k.ID); err != nil {
					t.Fatal(err)
				}
			} else if _, err := e.pool.Exec(context.Background(), `UPDATE api_keys SET revoked_at = now() WHERE id = $1`, k.ID); err != nil {
				t.Fatal(err)
			}

			if resp, body := doomed.do("GET", "/api/v1/project", nil, nil); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("session API after revoke = %d %s; want 401", resp.StatusCode, body)
			}
			resp, _ := doomed.do("GET", "/webhooks", nil, nil)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Fatalf("page after revoke = %d to %q; want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
			}
			// The sign-in page shows its form rather than sending the dead session back (a loop).
			if resp, body := doomed.do("GET", "/login", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `id="api-key"`) {
				t.Fatalf("sign-in page after revoke = %d", resp.StatusCode)
			}
			ev := `{"name":"Ev` + via + `"}`
			if resp, _ := doomed.do("POST", "/api/v1/events", strings.NewReader(ev), map[string]string{"Content-Type": "application/json", csrfHeader: csrf}); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("session write after revoke = %d; want 401", resp.StatusCode)
			}
			// A sign-in with the revoked key is refused.
			_, page := doomed.do("GET", "/login", nil, nil)
			form := url.Values{"api_key": {k.Key}, "csrf": {loginCSRFRe.FindStringSubmatch(page)[1]}}
			if resp, body := doomed.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
				t.Fatalf("sign-in with the revoked key = %d", resp.StatusCode)
			}
			if resp, _ := other.do("GET", "/api/v1/project", nil, nil); resp.StatusCode != 200 {
				t.Fatalf("another key's session after revoke = %d; want 200", resp.StatusCode)
			}
		})
	}
}
