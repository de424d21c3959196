package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/bytedance/sonic"
	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/jsonvalid"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
	"github.com/inlet-dev/inlet/pipeline"
)

// The dry run and the backtest: what the pipeline would make of a request, or of a webhook's recent
// requests, with the saved config or an unsaved draft. Both evaluate through pipeline.Evaluator, the
// processor's own steps, and fire, write and log nothing.

// Limits of the dry run and the backtest.
const (
	// defaultMaxBodyBytes is the edge's default max_body_bytes, used when Deps.MaxBodyBytes is 0.
	defaultMaxBodyBytes = 1 << 20
	// maxTestHeaders bounds a dry run's headers (the edge keeps at most wire.MaxSenderHeaders).
	maxTestHeaders = 100
	// defaultBacktest and maxBacktest are a backtest's default and largest number of requests.
	defaultBacktest = 1000
	maxBacktest     = chstore.MaxRecorded
	// maxExamples bounds the requests a backtest shows whose outcome would change.
	maxExamples = 10
)

// testRequest is the body of a dry run: the request as the sender would send it, and for the draft
// endpoint the webhook; for a saved webhook an optional patch applied to it in memory.
type testRequest struct {
	Body        string                `json:"body"`
	ContentType string                `json:"content_type,omitempty"`
	Headers     map[string]string     `json:"headers,omitempty"`
	Webhook     *webhook.WebhookInput `json:"webhook,omitempty"`
	Draft       *webhook.WebhookPatch `json:"draft,omitempty"`
}

// maxTestJSON bounds a dry run's JSON body: the sender's body JSON-escaped (at most six bytes for one)
// and a draft.
func (a *api) maxTestJSON() int64 { return 6*int64(a.maxBodyBytes) + maxJSONBody }

// decodeTest reads and checks a dry run's body: the sender's body within the edge's max_body_bytes
// (413 beyond), the headers bounded.
func (a *api) decodeTest(r *http.Request) (*testRequest, error) {
	var req testRequest
	if err := decodeLimit(r, &req, a.maxTestJSON()); err != nil {
		return nil, err
	}
	if len(req.Body) > a.maxBodyBytes {
		return nil, &statusError{http.StatusRequestEntityTooLarge,
			fmt.Sprintf("body is %d bytes, more than the edge's max_body_bytes (%d): the edge answers such a request 413 and the pipeline never sees it", len(req.Body), a.maxBodyBytes)}
	}
	if len(req.Headers) > maxTestHeaders {
		return nil, domainerr.Invalid("headers", "%d headers; at most %d", len(req.Headers), maxTestHeaders)
	}
	return &req, nil
}

func (a *api) requireEvaluator() error {
	if a.evaluator == nil {
		return &statusError{http.StatusServiceUnavailable, "dry runs are not configured on this server"}
	}
	return nil
}

// testWebhook answers POST /api/v1/webhooks/{id}/test: the dry run of one request with the saved
// config, or with the draft patch applied to it.
func (a *api) testWebhook(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireEvaluator(); err != nil {
		return 0, nil, err
	}
	req, err := a.decodeTest(r)
	if err != nil {
		return 0, nil, err
	}
	if req.Webhook != nil {
		return 0, nil, domainerr.Invalid("webhook", "a saved webhook's dry run takes a draft (a patch), not a webhook")
	}
	h, err := a.hookOf(r.Context(), r.PathValue("id"), req.Draft)
	if err != nil {
		return 0, nil, err
	}
	return a.dryRun(r.Context(), h, req)
}

// testDraft answers POST /api/v1/webhooks/test: the dry run of one request with an unsaved webhook,
// validated as a create (400 naming every field, under webhook.) and saved nowhere.
func (a *api) testDraft(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireEvaluator(); err != nil {
		return 0, nil, err
	}
	req, err := a.decodeTest(r)
	if err != nil {
		return 0, nil, err
	}
	if req.Webhook == nil {
		return 0, nil, domainerr.Invalid("webhook", "required: the webhook to try, as for a create")
	}
	if req.Draft != nil {
		return 0, nil, domainerr.Invalid("draft", "a patch applies to a saved webhook: POST /api/v1/webhooks/{id}/test")
	}
	h, err := a.webhooks.Draft(r.Context(), projectID(r.Context()), *req.Webhook)
	if err != nil {
		return 0, nil, prefixFields(err, "webhook.")
	}
	return a.dryRun(r.Context(), h, req)
}

func (a *api) dryRun(ctx context.Context, h *webhook.Hook, req *testRequest) (int, any, error) {
	evs, err := a.evaluator.Evaluate(ctx, h, []pipeline.Request{{Body: []byte(req.Body), ContentType: req.ContentType, Headers: req.Headers}})
	if err != nil {
		return 0, nil, fmt.Errorf("dry run of webhook %s: %w", h.PublicID, err)
	}
	return http.StatusOK, evs[0], nil
}

// hookOf is the config to evaluate with: the saved webhook's as the data path loads it, or a draft of
// it with patch applied (validated as an edit, nothing saved). Another project's webhook is 404.
func (a *api) hookOf(ctx context.Context, id string, patch *webhook.WebhookPatch) (*webhook.Hook, error) {
	if patch != nil {
		h, err := a.webhooks.DraftPatch(ctx, projectID(ctx), id, *patch)
		return h, prefixFields(err, "draft.")
	}
	if _, err := a.webhooks.Get(ctx, projectID(ctx), id); err != nil {
		return nil, err
	}
	return a.webhooks.Hook(ctx, id)
}

// prefixFields names the fields of a validation error as they are in the request: under webhook. or
// draft.
func prefixFields(err error, prefix string) error {
	var ve *domainerr.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := &domainerr.ValidationError{Fields: slices.Clone(ve.Fields)}
	for i := range out.Fields {
		out.Fields[i].Field = prefix + out.Fields[i].Field
	}
	return out
}

// backtestRequest is the body of a backtest: an optional draft (a patch of the saved webhook) and how
// many of the newest requests to evaluate.
type backtestRequest struct {
	Draft *webhook.WebhookPatch `json:"draft,omitempty"`
	Limit int                   `json:"limit,omitempty"`
}

// Counts are outcomes by status and, for failures and skips, by reason.
type Counts struct {
	Success         int            `json:"success"`
	Failed          int            `json:"failed"`
	ByReason        map[string]int `json:"failed_by_reason"`
	Skipped         int            `json:"skipped"`
	SkippedByReason map[string]int `json:"skipped_by_reason"`
	// EventsFired counts the events (one per element of a fan-out; requests logged before fan-outs
	// existed count one per success).
	EventsFired int `json:"events_fired"`
}

func newCounts() Counts {
	return Counts{ByReason: map[string]int{}, SkippedByReason: map[string]int{}}
}

func (c *Counts) add(status, reason string, events int) {
	c.EventsFired += events
	switch status {
	case chstore.StatusSuccess:
		c.Success++
	case chstore.StatusSkipped:
		c.Skipped++
		c.SkippedByReason[reason]++
	default:
		c.Failed++
		c.ByReason[reason]++
	}
}

// Outcome is what became, or would become, of one request.
type Outcome struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Route is the route that took (or would take) the request: its label, as the activity log's
	// route ("" for a single unnamed route, "#<position>" for an unnamed one of several).
	Route string `json:"route,omitempty"`
	// EventsFired counts the events it fired (or would fire).
	EventsFired int `json:"events_fired"`
}

// Change is a request whose outcome the draft would change.
type Change struct {
	RequestID  string    `json:"request_id"`
	ReceivedAt time.Time `json:"received_at"`
	Before     Outcome   `json:"before"`
	After      Outcome   `json:"after"`
}

// Backtest is the answer of a backtest.
type Backtest struct {
	WebhookID string `json:"webhook_id"`
	// Draft says whether a draft was evaluated (else the saved config, as it is now).
	Draft bool `json:"draft"`
	Limit int  `json:"limit"`
	// Read is how many recorded requests were read (at most Limit); Evaluated of them were evaluated.
	Read      int `json:"read"`
	Evaluated int `json:"evaluated"`
	// NotEvaluatedTruncated are requests whose stored payload is only a preview (payload_truncated):
	// they cannot be evaluated again and are in neither Actual nor Draft.
	NotEvaluatedTruncated int `json:"not_evaluated_truncated"`
	// NotEvaluatedForm are form bodies logged before the activity log kept the Content-Type (ClickHouse
	// migration 00003): they cannot be read again as the edge read them. Also in neither count.
	NotEvaluatedForm int `json:"not_evaluated_form"`
	// Actual is what happened to the evaluated requests; Result what the draft would make of them.
	Actual Counts `json:"actual"`
	Result Counts `json:"result"`
	// Changed counts the evaluated requests whose status or reason would change; Examples are the
	// newest of them, at most 10.
	Changed  int      `json:"changed"`
	Examples []Change `json:"examples"`
	// Notes say what the numbers leave out.
	Notes  []string `json:"notes"`
	TookMs int64    `json:"took_ms"`
}

// backtest answers POST /api/v1/webhooks/{id}/backtest: the webhook's newest accepted requests (up to
// limit) evaluated again with the draft, beside what actually happened to them. Read-only.
func (a *api) backtest(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireEvaluator(); err != nil {
		return 0, nil, err
	}
	if err := a.requireActivity(); err != nil {
		return 0, nil, err
	}
	start := time.Now()
	var req backtestRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
	}
	if req.Limit == 0 {
		req.Limit = defaultBacktest
	}
	if req.Limit < 1 || req.Limit > maxBacktest {
		return 0, nil, domainerr.Invalid("limit", "must be in 1..%d", maxBacktest)
	}
	ctx := r.Context()
	id := r.PathValue("id")
	h, err := a.hookOf(ctx, id, req.Draft)
	if err != nil {
		return 0, nil, err
	}
	recs, err := a.activity.Recorded(ctx, projectID(ctx), id, req.Limit)
	if err != nil {
		return 0, nil, err
	}
	out := &Backtest{WebhookID: id, Draft: req.Draft != nil, Limit: req.Limit, Read: len(recs),
		Actual: newCounts(), Result: newCounts(), Examples: []Change{}}
	reqs := make([]pipeline.Request, 0, len(recs))
	kept := make([]int, 0, len(recs))
	for i := range recs {
		rec := &recs[i]
		if rec.Truncated {
			out.NotEvaluatedTruncated++
			continue
		}
		pr := pipeline.Request{ReceivedMs: int64(rec.ReceivedMs), Body: []byte(rec.Payload), ContentType: rec.ContentType}
		if rid, err := uuid.Parse(rec.RequestID); err == nil {
			pr.ID = rid
		}
		if rec.Headers != "" {
			if err := sonic.UnmarshalString(rec.Headers, &pr.Headers); err != nil {
				return 0, nil, fmt.Errorf("headers of request %s: %w", rec.RequestID, err)
			}
		}
		reqs = append(reqs, pr)
		kept = append(kept, i)
	}
	evs, err := a.evaluator.Evaluate(ctx, h, reqs)
	if err != nil {
		return 0, nil, fmt.Errorf("backtest of webhook %s: %w", id, err)
	}
	for j, ev := range evs {
		rec := &recs[kept[j]]
		if ev.Reason == wire.ReasonInvalidJSON && rec.Reason != wire.ReasonInvalidJSON && rec.ContentType == "" &&
			jsonvalid.Validate(reqs[j].Body, jsonvalid.MaxDepth) != nil {
			// Not JSON, yet the pipeline read it: a form logged before its Content-Type was kept.
			out.NotEvaluatedForm++
			continue
		}
		out.Evaluated++
		actual := rec.Events()
		out.Actual.add(rec.Status, rec.Reason, actual)
		out.Result.add(ev.Status, ev.Reason, ev.EventsFired)
		if ev.Status == rec.Status && ev.Reason == rec.Reason && ev.EventsFired == actual {
			continue
		}
		out.Changed++
		if len(out.Examples) < maxExamples {
			out.Examples = append(out.Examples, Change{RequestID: rec.RequestID,
				ReceivedAt: time.UnixMilli(int64(rec.ReceivedMs)).UTC(),
				Before:     Outcome{Status: rec.Status, Reason: rec.Reason, Detail: rec.Detail, Route: rec.Route, EventsFired: actual},
				After: Outcome{Status: ev.Status, Reason: ev.Reason, Detail: ev.Detail, Route: routeLabel(h, ev.Route),
					EventsFired: ev.EventsFired}})
		}
	}
	out.Notes = backtestNotes(out)
	out.TookMs = time.Since(start).Milliseconds()
	return http.StatusOK, out, nil
}

// routeLabel is route i of h as the activity log names it (the pipeline's compiledRoute.label).
func routeLabel(h *webhook.Hook, i int) string {
	routes := h.RouteList()
	if i < 0 || i >= len(routes) {
		return ""
	}
	r := routes[i]
	switch {
	case r.Name != "":
		return r.Name
	case len(routes) > 1 || r.When != "" || r.ForEach != "":
		return "#" + strconv.Itoa(i+1)
	}
	return ""
}

func backtestNotes(b *Backtest) []string {
	notes := []string{
		"requests the edge refused and duplicates of a delivery are not read: a config change cannot change what becomes of them",
		"the directory is asked as it is now: a user created or deleted since a request changes its outcome too",
	}
	if b.NotEvaluatedTruncated > 0 {
		notes = append(notes, fmt.Sprintf("%d requests were not evaluated: the activity log keeps only the first bytes of their body (payload_truncated)", b.NotEvaluatedTruncated))
	}
	if b.NotEvaluatedForm > 0 {
		notes = append(notes, fmt.Sprintf("%d form bodies were not evaluated: they were logged before the activity log kept a request's Content-Type", b.NotEvaluatedForm))
	}
	return notes
}
