package admin

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// ifMatch reads the expected version from If-Match (`"3"`, `W/"3"` or `3`); 0 when absent.
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, domainerr.Invalid("If-Match", "must be the version from the ETag, e.g. \"3\"")
	}
	return n, nil
}

func etag(w http.ResponseWriter, version int64) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
}

func pathID(r *http.Request) (int64, error) {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || n < 1 {
		return 0, domainerr.ErrNotFound
	}
	return n, nil
}

// Events catalog.

func (a *api) listEvents(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	evs, err := a.webhooks.ListEvents(r.Context(), projectID(r.Context()))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"events": evs}, nil
}

func (a *api) createEvent(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var in webhook.EventInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	ev, err := a.webhooks.CreateEvent(r.Context(), projectID(r.Context()), in)
	if err != nil {
		return 0, nil, err
	}
	etag(w, ev.Version)
	w.Header().Set("Location", "/api/v1/events/"+strconv.FormatInt(ev.ID, 10))
	return http.StatusCreated, ev, nil
}

func (a *api) getEvent(w http.ResponseWriter, r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	ev, err := a.webhooks.GetEvent(r.Context(), projectID(r.Context()), id)
	if err != nil {
		return 0, nil, err
	}
	etag(w, ev.Version)
	return http.StatusOK, ev, nil
}

func (a *api) putEvent(w http.ResponseWriter, r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	version, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	var in webhook.EventInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	ev, err := a.webhooks.UpdateEvent(r.Context(), projectID(r.Context()), id, version, in)
	if err != nil {
		return 0, nil, err
	}
	etag(w, ev.Version)
	return http.StatusOK, ev, nil
}

func (a *api) deleteEvent(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	if err := a.webhooks.DeleteEvent(r.Context(), projectID(r.Context()), id); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// Webhooks.

// webhookRow is a list row: the webhook plus its all-time Received count.
type webhookRow struct {
	webhook.Webhook
	Received uint64 `json:"received"`
}

func (a *api) listWebhooks(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	f := webhook.ListFilter{Search: q.Get("q"), Status: q.Get("status"), Sort: q.Get("sort"), Desc: q.Get("order") != "asc"}
	var invalid domainerr.ValidationError
	if f.Sort == "name" && q.Get("order") == "" {
		f.Desc = false
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"limit", &f.Limit}, {"offset", &f.Offset}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				invalid.Add(p.name, "must be a non-negative integer")
			}
			*p.dst = n
		}
	}
	if o := q.Get("order"); o != "" && o != "asc" && o != "desc" {
		invalid.Add("order", "must be asc or desc")
	}
	if err := invalid.Err(); err != nil {
		return 0, nil, err
	}
	page, err := a.webhooks.List(r.Context(), projectID(r.Context()), f)
	if err != nil {
		return 0, nil, err
	}
	rows := make([]webhookRow, len(page.Webhooks))
	var counts map[string]uint64
	if a.activity != nil && len(page.Webhooks) > 0 {
		counts, err = a.activity.Received(r.Context(), projectID(r.Context()))
		if err != nil {
			a.log.Warn("received counts unavailable", "err", err)
		}
	}
	for i, wh := range page.Webhooks {
		rows[i] = webhookRow{Webhook: wh, Received: counts[wh.ID]}
	}
	return http.StatusOK, map[string]any{"webhooks": rows, "total": page.Total}, nil
}

// createdWebhook is the answer to a create: the webhook and, when Inlet made its secret, how to call
// it, this once in the same answer. A secret the caller gave (a provider's signing secret, a Basic
// password, a URL token) is not echoed back: the credentials endpoint shows it.
type createdWebhook struct {
	*webhook.Webhook
	Credentials *credentials `json:"credentials,omitempty"`
}

func (a *api) createWebhook(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var in webhook.WebhookInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	wh, _, err := a.webhooks.Create(r.Context(), projectID(r.Context()), in)
	if err != nil {
		return 0, nil, err
	}
	etag(w, wh.Version)
	w.Header().Set("Location", "/api/v1/webhooks/"+wh.ID)
	out := createdWebhook{Webhook: wh}
	if in.Secret == "" {
		// The webhook exists: a failure to read its credentials back leaves them to the credentials
		// endpoint rather than failing a create that happened.
		if c, err := a.webhooks.Credentials(r.Context(), projectID(r.Context()), wh.ID); err != nil {
			a.log.Warn("credentials of a new webhook unavailable", "webhook", wh.ID, "err", err)
		} else {
			cr := a.credentialsFor(c, wh.Verification)
			out.Credentials = &cr
		}
	}
	return http.StatusCreated, out, nil
}

func (a *api) getWebhook(w http.ResponseWriter, r *http.Request) (int, any, error) {
	wh, err := a.webhooks.Get(r.Context(), projectID(r.Context()), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	etag(w, wh.Version)
	return http.StatusOK, wh, nil
}

func (a *api) patchWebhook(w http.ResponseWriter, r *http.Request) (int, any, error) {
	version, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	var p webhook.WebhookPatch
	if err := decode(r, &p); err != nil {
		return 0, nil, err
	}
	wh, err := a.webhooks.Update(r.Context(), projectID(r.Context()), r.PathValue("id"), version, p)
	if err != nil {
		return 0, nil, err
	}
	etag(w, wh.Version)
	return http.StatusOK, wh, nil
}

func (a *api) setEnabled(enabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		version, err := ifMatch(r)
		if err != nil {
			return 0, nil, err
		}
		wh, err := a.webhooks.SetEnabled(r.Context(), projectID(r.Context()), r.PathValue("id"), version, enabled)
		if err != nil {
			return 0, nil, err
		}
		etag(w, wh.Version)
		return http.StatusOK, wh, nil
	}
}

func (a *api) deleteWebhook(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.webhooks.Delete(r.Context(), projectID(r.Context()), r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (a *api) getCredentials(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	c, err := a.credentials(r.Context(), projectID(r.Context()), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c, nil
}

func (a *api) rotateSecret(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	var req struct {
		// GraceSeconds keeps the old secret working this long (default 0: it stops at once).
		GraceSeconds int64 `json:"grace_seconds"`
		// Secret is the provider's new signing secret (required in HMAC modes), or a Basic password or
		// URL token of the user's; empty: Inlet makes one where it can.
		Secret string `json:"secret"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
	}
	if req.GraceSeconds < 0 || req.GraceSeconds > int64(webhook.MaxRotationGrace/time.Second) {
		return 0, nil, domainerr.Invalid("grace_seconds", "must be in 0..%d", int64(webhook.MaxRotationGrace/time.Second))
	}
	id := r.PathValue("id")
	if _, err := a.webhooks.RotateSecret(r.Context(), projectID(r.Context()), id, time.Duration(req.GraceSeconds)*time.Second, req.Secret); err != nil {
		return 0, nil, err
	}
	c, err := a.credentials(r.Context(), projectID(r.Context()), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c, nil
}
