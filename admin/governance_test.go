package admin

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/project"
)

// routePath is r's path with its parameters filled by ids (missing ones: "x").
func routePath(r route, ids map[string]string) string {
	path := r.path
	for k, v := range ids {
		path = strings.ReplaceAll(path, k, v)
	}
	return strings.NewReplacer("{id}", "x", "{user_id}", "x", "{hwid}", "x", "{request_id}", "x").Replace(path)
}

// TestEveryRouteHasAScope: every route of the router names a scope that exists; reads need read, or
// admin for the audit log and key list, or webhooks:write for a webhook's credentials (its secret).
func TestEveryRouteHasAScope(t *testing.T) {
	e := newEnv(t)
	if len(e.srv.routes) < 40 {
		t.Fatalf("%d routes; the router's table is not being read", len(e.srv.routes))
	}
	for _, r := range e.srv.routes {
		if !slices.Contains(project.AllScopes, r.scope) {
			t.Errorf("%s %s has scope %q; want one of %v", r.method, r.path, r.scope, project.AllScopes)
		}
		if r.method == "GET" && r.scope != project.ScopeRead && r.scope != project.ScopeAdmin &&
			r.path != "/api/v1/webhooks/{id}/credentials" {
			t.Errorf("GET %s needs %q; a read needs read (or admin)", r.path, r.scope)
		}
	}
}

// newKey creates a key with scopes through the API, as A's full key, and returns it.
func (e *env) newKey(name string, scopes ...string) string {
	e.t.Helper()
	var k keyJSON
	decodeInto(e.t, e.want("POST", "/api/v1/api-keys", e.keyA, map[string]any{"name": name, "scopes": scopes}, 201), &k)
	return k.Key
}

// TestScopesAcrossTheRouter walks every route with a key of each single scope: a route that needs
// another scope answers 403 with a problem naming the scope it needs; a route that needs the key's
// scope is not refused for it. So a read-only key cannot write anywhere.
func TestScopesAcrossTheRouter(t *testing.T) {
	e := newEnv(t)
	keys := map[string]string{}
	for _, sc := range project.AllScopes {
		keys[sc] = e.newKey("only "+sc, sc)
	}
	writes := 0
	for _, r := range e.srv.routes {
		path := routePath(r, nil)
		for sc, key := range keys {
			var body any
			if r.method != "GET" && r.method != "DELETE" {
				body = `{}`
			}
			code, out := e.do(r.method, path, key, body)
			switch {
			case sc != r.scope && code != http.StatusForbidden:
				t.Errorf("%s %s with a %q key = %d %s; want 403", r.method, path, sc, code, out)
			case sc != r.scope && !strings.Contains(string(out), fmt.Sprintf(`lacks the scope \"%s\"`, r.scope)):
				t.Errorf("%s %s with a %q key: problem %s does not name the scope %q", r.method, path, sc, out, r.scope)
			case sc == r.scope && code == http.StatusForbidden:
				t.Errorf("%s %s with a %q key = 403 %s; want it allowed", r.method, path, sc, out)
			}
		}
		if r.method != "GET" && r.scope != project.ScopeRead {
			writes++
		}
	}
	if writes < 17 {
		t.Fatalf("only %d writes in the router", writes)
	}
	// The read-only key reads.
	e.want("GET", "/api/v1/project", keys[project.ScopeRead], nil, 200)
}

// TestKeyScopes: a key gets the creator's scopes by default and never a scope its creator lacks; an
// unknown scope is a 400; keys made before scopes (no scopes column value) have every one.
func TestKeyScopes(t *testing.T) {
	e := newEnv(t)
	var def keyJSON
	decodeInto(t, e.want("POST", "/api/v1/api-keys", e.keyA, map[string]any{"name": "default"}, 201), &def)
	if !slices.Equal(def.Scopes, project.AllScopes) {
		t.Errorf("a key made without scopes by a full key has %v; want %v", def.Scopes, project.AllScopes)
	}
	admin := e.newKey("keys only", project.ScopeAdmin)
	code, out := e.do("POST", "/api/v1/api-keys", admin, map[string]any{"scopes": []string{"admin", "directory:write"}})
	if code != http.StatusForbidden || !strings.Contains(string(out), "scopes its creator lacks") {
		t.Errorf("an admin-only key creating a directory:write key = %d %s; want 403", code, out)
	}
	var narrow keyJSON
	decodeInto(t, e.want("POST", "/api/v1/api-keys", admin, nil, 201), &narrow)
	if !slices.Equal(narrow.Scopes, []string{project.ScopeAdmin}) {
		t.Errorf("a key made without scopes by an admin-only key has %v; want [admin]", narrow.Scopes)
	}
	code, out = e.do("POST", "/api/v1/api-keys", e.keyA, map[string]any{"scopes": []string{"write"}})
	if code != http.StatusBadRequest || !strings.Contains(string(out), `"field":"scopes"`) {
		t.Errorf("an unknown scope = %d %s; want 400 on scopes", code, out)
	}
	e.want("POST", "/api/v1/api-keys", e.keyA, map[string]any{"scopes": []string{}}, 400)

	// Keys made before the migration: the column's default, every scope.
	var scopes []string
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO api_keys (project_id, prefix, digest) VALUES ($1, 'inl_old', '\x00')
RETURNING scopes`, e.projA).Scan(&scopes); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(scopes, project.AllScopes) {
		t.Errorf("a key inserted without scopes has %v; want every scope %v", scopes, project.AllScopes)
	}
}
