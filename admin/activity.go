package admin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
)

// Activity reads are scoped by the caller's project inside ClickHouse (project_id leads every ordering
// key), so another project's webhook id simply has no rows; and a deleted webhook's activity stays
// readable, as the seed expects.

func (a *api) requireActivity() error {
	if a.activity == nil {
		return &statusError{http.StatusServiceUnavailable, "activity store not configured"}
	}
	return nil
}

// ownsWebhook answers 404 unless the webhook exists (or existed) in the caller's project, so that
// summaries of other projects' ids are indistinguishable from unknown ids.
func (a *api) ownsWebhook(r *http.Request, id string) error {
	_, err := a.webhooks.Get(r.Context(), projectID(r.Context()), id)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, domainerr.ErrNotFound):
		return err // PostgreSQL unreachable: a 503, not a 404 that says the webhook does not exist
	}
	n, err := a.activity.Received(r.Context(), projectID(r.Context()))
	if err != nil {
		return err
	}
	if _, ok := n[id]; ok {
		return nil // deleted, but its activity stays queryable
	}
	return domainerr.ErrNotFound
}

func (a *api) summary(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireActivity(); err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	if err := a.ownsWebhook(r, id); err != nil {
		return 0, nil, err
	}
	s, err := a.activity.Summary24h(r.Context(), projectID(r.Context()), id, time.Now())
	if err != nil {
		return 0, nil, err
	}
	notes, err := a.activity.Notifications(r.Context(), projectID(r.Context()), id, 1)
	if err != nil {
		return 0, nil, err
	}
	var latest *chstore.Notification
	if len(notes) > 0 {
		latest = &notes[0]
	}
	return http.StatusOK, map[string]any{"window": "24h", "summary": s, "latest_notification": latest}, nil
}

func (a *api) listActivity(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireActivity(); err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	if err := a.ownsWebhook(r, id); err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	eq := chstore.EntriesQuery{ProjectID: projectID(r.Context()), WebhookID: id, Status: q.Get("status"),
		Identifier: strings.TrimSpace(q.Get("identifier")), Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, nil, domainerr.Invalid("limit", "must be an integer")
		}
		eq.Limit = n
	}
	page, err := a.activity.Entries(r.Context(), eq)
	if err != nil {
		return 0, nil, err
	}
	if page.Entries == nil {
		page.Entries = []chstore.Entry{}
	}
	return http.StatusOK, page, nil
}

func (a *api) getActivity(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireActivity(); err != nil {
		return 0, nil, err
	}
	e, err := a.activity.Entry(r.Context(), projectID(r.Context()), r.PathValue("id"), r.PathValue("request_id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, e, nil
}

func (a *api) listNotifications(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireActivity(); err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	if err := a.ownsWebhook(r, id); err != nil {
		return 0, nil, err
	}
	ns, err := a.activity.Notifications(r.Context(), projectID(r.Context()), id, 0)
	if err != nil {
		return 0, nil, err
	}
	if ns == nil {
		ns = []chstore.Notification{}
	}
	return http.StatusOK, map[string]any{"notifications": ns}, nil
}

func (a *api) history(kind chstore.SubjectKind, param string) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) (int, any, error) {
		if err := a.requireActivity(); err != nil {
			return 0, nil, err
		}
		q := r.URL.Query()
		hq := chstore.HistoryQuery{ProjectID: projectID(r.Context()), Kind: kind, Subject: r.PathValue(param), Cursor: q.Get("cursor")}
		if v := q.Get("before"); v != "" {
			// RFC 3339 with or without a fraction of a second: the bound is exact to the millisecond.
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return 0, nil, domainerr.Invalid("before", "must be an RFC 3339 time")
			}
			hq.Before = t
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return 0, nil, domainerr.Invalid("limit", "must be an integer")
			}
			hq.Limit = n
		}
		// An unknown subject answers 404 like any id of another project; one known to the directory
		// answers its history, empty or not.
		var err error
		if kind == chstore.SubjectUser {
			_, err = a.directory.Lookup(r.Context(), hq.ProjectID, identify.ByUserID, hq.Subject)
		} else {
			_, err = a.directory.GetDevice(r.Context(), hq.ProjectID, hq.Subject)
		}
		if err != nil {
			return 0, nil, err
		}
		page, err := a.activity.History(r.Context(), hq)
		if err != nil {
			return 0, nil, err
		}
		if page.Events == nil {
			page.Events = []chstore.Event{}
		}
		return http.StatusOK, page, nil
	}
}
