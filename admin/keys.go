package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/inlet-dev/inlet/internal/project"
)

// API keys of the caller's project. A key is shown once, in the answer that creates it; afterwards only
// its prefix, name and dates are. Revoking applies at the next request made with the key, on every admin
// process (the key is checked in PostgreSQL on each request, nothing is cached), and ends the console
// sessions signed in with it the same way.
//
// A caller may revoke the key it is using (rotating a leaked key from the key itself is legitimate; the
// answer is the last one that key gets), but not the project's last active key: the project would then be
// out of reach of the API and the console (409; create another key first).

// keyView is a key as the API shows it; Current marks the key the request is authenticated with (the
// console's session key, or the Bearer key).
type keyView struct {
	project.Key
	Current bool `json:"current"`
}

func view(r *http.Request, k project.Key) keyView {
	return keyView{Key: k, Current: k.ID == caller(r.Context()).KeyID}
}

func (a *api) listKeys(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	keys, err := a.projects.ListKeys(r.Context(), projectID(r.Context()))
	if err != nil {
		return 0, nil, err
	}
	out := make([]keyView, len(keys))
	for i, k := range keys {
		out[i] = view(r, k)
	}
	return http.StatusOK, map[string]any{"api_keys": out}, nil
}

func (a *api) getKey(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	k, err := a.projects.GetKey(r.Context(), projectID(r.Context()), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view(r, k), nil
}

// createKey issues a key; the answer carries it in clear, the only time it is available. The body
// ({"name": "…", "scopes": […]}) may be left out; without scopes the key gets the caller's. A key is
// never given a scope its creator lacks (403).
func (a *api) createKey(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var req struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
	}
	c := caller(r.Context())
	if req.Scopes == nil {
		req.Scopes = c.Scopes
	}
	scopes, err := project.NormalizeScopes(req.Scopes)
	if err != nil {
		return 0, nil, err
	}
	if !c.Covers(scopes) {
		return 0, nil, &statusError{http.StatusForbidden, fmt.Sprintf("a key cannot be given scopes its creator lacks: asked for %s, the creating key has %s",
			strings.Join(scopes, ", "), strings.Join(c.Scopes, ", "))}
	}
	k, key, err := a.projects.CreateKey(r.Context(), c.ProjectID, req.Name, scopes)
	if err != nil {
		return 0, nil, err
	}
	w.Header().Set("Location", "/api/v1/api-keys/"+strconv.FormatInt(k.ID, 10))
	w.Header().Set("Cache-Control", "no-store")
	return http.StatusCreated, struct {
		keyView
		Key string `json:"key"`
	}{view(r, k), key}, nil
}

func (a *api) revokeKey(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	k, err := a.projects.RevokeKey(r.Context(), projectID(r.Context()), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view(r, k), nil
}
