package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/inlet-dev/inlet/internal/audit"
	"github.com/inlet-dev/inlet/internal/domainerr"
)

// errNoAudit: the server was built without the audit or erasure stores (tests of other parts).
var errNoAudit = &statusError{http.StatusServiceUnavailable, "the audit log and erasures are not served by this admin process"}

// listAudit answers GET /api/v1/audit?target=&target_id=&key_id=&since=&until=&before=&limit=: the
// project's changes, newest first; next_before is the cursor of the next page.
func (a *api) listAudit(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if a.audit == nil {
		return 0, nil, errNoAudit
	}
	q := r.URL.Query()
	aq := audit.Query{ProjectID: projectID(r.Context()), Target: q.Get("target"), TargetID: q.Get("target_id")}
	var v domainerr.ValidationError
	num := func(name string, dst *int64) {
		if s := q.Get(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 1 {
				v.Add(name, "must be a positive integer")
			}
			*dst = n
		}
	}
	var limit int64
	num("key_id", &aq.KeyID)
	num("before", &aq.Before)
	num("limit", &limit)
	aq.Limit = int(limit)
	at := func(name string, dst *time.Time) {
		if s := q.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				v.Add(name, "must be an RFC 3339 time (2006-01-02T15:04:05Z)")
			}
			*dst = t
		}
	}
	at("since", &aq.Since)
	at("until", &aq.Until)
	if err := v.Err(); err != nil {
		return 0, nil, err
	}
	p, err := a.audit.List(r.Context(), aq)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p, nil
}

func (a *api) listErasures(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if a.erasures == nil {
		return 0, nil, errNoAudit
	}
	jobs, err := a.erasures.List(r.Context(), projectID(r.Context()))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"erasures": jobs}, nil
}

func (a *api) getErasure(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if a.erasures == nil {
		return 0, nil, errNoAudit
	}
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	j, err := a.erasures.Get(r.Context(), projectID(r.Context()), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, j, nil
}
