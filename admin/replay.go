package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/replay"
)

// Replays are jobs in PostgreSQL (replay.Store) that the admin processes' runners (replay.Runner) run;
// the API creates, lists, reads and cancels them, counting what a filter matches and what the job's
// attempts became from ClickHouse.

// Replays is what the replay endpoints need of ClickHouse (chstore.Reader).
type Replays interface {
	CountReplayable(ctx context.Context, q chstore.ReplayQuery) (uint64, error)
	JobOutcomes(ctx context.Context, projectID int64, webhookID, jobID string, sinceMs, untilMs int64) (map[string]uint64, error)
}

func (a *api) requireReplays() error {
	if a.replays == nil || a.replayCH == nil {
		return &statusError{http.StatusServiceUnavailable, "replays not configured"}
	}
	return nil
}

// replayFilter is the body of POST /replays.
type replayFilter struct {
	WebhookID string    `json:"webhook_id"`
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	Reason    string    `json:"reason"`
}

func (f *replayFilter) query(projectID int64) chstore.ReplayQuery {
	return chstore.ReplayQuery{ProjectID: projectID, WebhookID: f.WebhookID, SinceMs: f.Since.UnixMilli(), UntilMs: f.Until.UnixMilli(), Reason: f.Reason}
}

// createReplay starts a job replaying a webhook's failed requests of a time range (and reason); with
// ?dry_run=1 it only counts them.
func (a *api) createReplay(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireReplays(); err != nil {
		return 0, nil, err
	}
	var f replayFilter
	if err := decode(r, &f); err != nil {
		return 0, nil, err
	}
	filter := replay.Filter{WebhookID: f.WebhookID, Since: f.Since, Until: f.Until, Reason: f.Reason}
	if err := filter.Validate(); err != nil {
		return 0, nil, err
	}
	if err := a.ownsWebhook(r, f.WebhookID); err != nil {
		return 0, nil, err
	}
	pid := projectID(r.Context())
	n, err := a.replayCH.CountReplayable(r.Context(), f.query(pid))
	if err != nil {
		return 0, nil, err
	}
	if dry, _ := strconv.ParseBool(r.URL.Query().Get("dry_run")); dry {
		return http.StatusOK, map[string]any{"dry_run": true, "count": n}, nil
	}
	job, err := a.replays.Create(r.Context(), pid, filter, int64(n))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, job, nil
}

// replayRequest starts a job replaying one failed request.
func (a *api) replayRequest(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireReplays(); err != nil {
		return 0, nil, err
	}
	if err := a.requireActivity(); err != nil {
		return 0, nil, err
	}
	pid := projectID(r.Context())
	wh, rid := r.PathValue("id"), r.PathValue("request_id")
	e, err := a.activity.Entry(r.Context(), pid, wh, rid)
	if err != nil {
		return 0, nil, err
	}
	id, err := uuid.Parse(e.RequestID)
	if err != nil {
		return 0, nil, err
	}
	ms := e.ReceivedAt.UnixMilli()
	filter := replay.Filter{WebhookID: wh, Since: time.UnixMilli(ms).UTC(), Until: time.UnixMilli(ms + 1).UTC(), RequestID: &id}
	n, err := a.replayCH.CountReplayable(r.Context(), chstore.ReplayQuery{ProjectID: pid, WebhookID: wh, SinceMs: ms, UntilMs: ms + 1, RequestID: id})
	if err != nil {
		return 0, nil, err
	}
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: request %s cannot be replayed: its latest outcome is %s (only requests that failed in the pipeline are)", domainerr.ErrConflict, id, describe(e))
	}
	job, err := a.replays.Create(r.Context(), pid, filter, int64(n))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, job, nil
}

func describe(e chstore.Entry) string {
	if e.Reason != "" {
		return e.Status + " (" + e.Reason + ")"
	}
	return e.Status
}

func (a *api) listReplays(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireReplays(); err != nil {
		return 0, nil, err
	}
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return 0, nil, domainerr.Invalid("limit", "must be an integer in 1..100")
		}
		limit = n
	}
	jobs, err := a.replays.List(r.Context(), projectID(r.Context()), limit)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"replays": jobs}, nil
}

func (a *api) getReplay(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireReplays(); err != nil {
		return 0, nil, err
	}
	job, err := a.replays.Get(r.Context(), projectID(r.Context()), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return a.withOutcomes(r, job)
}

func (a *api) cancelReplay(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireReplays(); err != nil {
		return 0, nil, err
	}
	job, err := a.replays.Cancel(r.Context(), projectID(r.Context()), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return a.withOutcomes(r, job)
}

// withOutcomes answers a job with what its attempts became, as ClickHouse has them now.
func (a *api) withOutcomes(r *http.Request, job replay.Job) (int, any, error) {
	out, err := a.replayCH.JobOutcomes(r.Context(), job.ProjectID, job.WebhookID, job.ID, job.Since.UnixMilli(), job.Until.UnixMilli())
	if err != nil && !errors.Is(err, domainerr.ErrNotFound) {
		return 0, nil, err
	}
	job.Succeeded = int64(out[chstore.StatusSuccess])
	job.FailedAgain = int64(out[chstore.StatusFailed])
	return http.StatusOK, job, nil
}
