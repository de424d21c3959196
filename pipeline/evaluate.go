package pipeline

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/form"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Evaluator answers what the pipeline would make of requests to a webhook — a dry run — without
// firing, writing or logging anything. It goes through the processor's own steps (extractIdentifier,
// resolveItems, mapAttributes, appendEvent), so its answers are the pipeline's by construction. What
// it leaves out: the sender's repeated deliveries (claiming a key is a write), the edge's own detail
// and a stale-config note (a request is evaluated with the config it is given), and retries (the
// directory is asked once; its error is the caller's).
type Evaluator struct {
	lim      Limits
	resolver Resolver
}

// NewEvaluator returns an Evaluator applying lim (Config.Limits, as the pipeline does) and resolving
// identifiers with r.
func NewEvaluator(lim Limits, r Resolver) *Evaluator {
	return &Evaluator{lim: lim, resolver: r}
}

// Request is one request as the edge would have handed it on.
type Request struct {
	// ID is the request's id, which becomes the event's; zero in a dry run of a request never sent.
	ID uuid.UUID
	// ReceivedMs is when the edge received it (the event's time); 0 means now.
	ReceivedMs int64
	Body       []byte
	// ContentType is the request's Content-Type. A form's (application/x-www-form-urlencoded,
	// multipart/form-data) makes the body a form, whose JSON view is what maps; anything else is read
	// as JSON, as the pipeline does (the edge answers 415 to other types before the pipeline sees them).
	ContentType string
	// Headers are the sender's headers. Only those the webhook keeps are seen, as the edge keeps them
	// (in the webhook's order, at most wire.MaxSenderHeaders, each value cut at
	// wire.MaxSenderHeaderBytes); names are matched ignoring case.
	Headers map[string]string
}

// Evaluation is what would become of one request.
type Evaluation struct {
	// Route is the index of the route that took the request: 0, as a webhook has one route today.
	Route int `json:"route"`
	// Status is success or failed, as the activity log would have it, with its reason and detail.
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
	Detail    string `json:"detail,omitempty"`
	EventName string `json:"event_name"`
	// Identification is the identifier read and the directory's answer.
	Identification Identification `json:"identification"`
	// Attributes lists every mapping in order, also when the request fails before mapping (a user not
	// found) or at an earlier attribute: what each would make of this body. Empty when the body cannot
	// be read (invalid_json, invalid_form).
	Attributes []AttributeResult `json:"attributes"`
	// Event is the webhooks.events value as it would be fired (wire.AppendEvent); absent on failure.
	Event json.RawMessage `json:"event,omitempty"`
}

// Identification is how a request's subject was found.
type Identification struct {
	Kind  string `json:"kind"`
	Field string `json:"field"`
	// Value is the identifier as read (and normalised, for an e-mail); empty when it could not be read.
	Value string `json:"value,omitempty"`
	// Found says whether the directory knows Value; the subject follows when it does.
	Found       bool     `json:"found"`
	SubjectKind string   `json:"subject_kind,omitempty"`
	UserID      string   `json:"user_id,omitempty"`
	HWID        string   `json:"hwid,omitempty"`
	HWIDs       []string `json:"hwids,omitempty"`
}

// AttributeResult is what became of one mapping.
type AttributeResult struct {
	Attribute string `json:"attribute"`
	Type      string `json:"type"`
	Field     string `json:"field"`
	// Outcome is mapped (Value is the coerced JSON value fired), omitted (absent, null or an invalid
	// path), dropped (does not coerce, on_error drop) or failed (does not coerce: Reason is the
	// request's failure reason when it is the first to fail).
	Outcome string          `json:"outcome"`
	Value   json.RawMessage `json:"value,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Message string          `json:"message,omitempty"`
}

var attrOutcomeNames = [...]string{attrMapped: "mapped", attrOmitted: "omitted", attrDropped: "dropped", attrFailed: "failed"}

// Evaluate answers what the pipeline would make of each request to webhook h, in order. The
// identifiers of all the requests are resolved in one directory call per identifier kind, so a
// backtest of thousands of requests costs one round trip. An error means the directory could not be
// asked (the caller's 503); a refused lookup is the requests' identifier_invalid, as in the pipeline.
func (e *Evaluator) Evaluate(ctx context.Context, h *webhook.Hook, reqs []Request) ([]Evaluation, error) {
	c := compileHook(h)
	now := time.Now().UnixMilli()
	items := make([]item, len(reqs))
	for i := range reqs {
		r := &reqs[i]
		it := &items[i]
		*it = item{requestID: r.ID, webhookID: h.PublicID, projectID: h.ProjectID, receivedMs: r.ReceivedMs,
			configVersion: h.Version, outcome: wire.OutcomeAccepted, body: r.Body, bodyBytes: uint32(len(r.Body)),
			sender: keptHeaders(h.Headers, r.Headers), hook: c}
		if it.receivedMs == 0 {
			it.receivedMs = now
		}
		if form.TypeOf(r.ContentType) != form.NotForm {
			it.contentType = []byte(r.ContentType)
		}
		guardEval(it, func() { it.extractIdentifier(&e.lim) })
	}
	err := resolveItems(ctx, items, func(ctx context.Context, k resolveKey, values []string) (map[string]Subject, error) {
		return e.resolver.Resolve(ctx, k.project, k.kind, values)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Evaluation, len(reqs))
	var attrBuf []byte
	for i := range items {
		attrBuf = e.finish(&items[i], &out[i], attrBuf[:0])
	}
	return out, nil
}

// finish maps the item as processor.finish does and fills ev; attrBuf is scratch, returned for reuse.
func (e *Evaluator) finish(it *item, ev *Evaluation, attrBuf []byte) []byte {
	c := it.hook
	h := c.hook
	ev.EventName = h.EventName
	ev.Attributes = make([]AttributeResult, 0, len(c.mappings))
	trace := func(i int, o attrOutcome, value []byte, reason, msg string) {
		m := h.Mappings[i]
		a := AttributeResult{Attribute: m.Attribute, Type: string(m.Type), Field: m.Field, Outcome: attrOutcomeNames[o],
			Reason: reason, Message: msg}
		if o == attrMapped {
			a.Value = json.RawMessage(append([]byte(nil), value...))
		}
		ev.Attributes = append(ev.Attributes, a)
	}
	switch it.reason {
	case "":
		guardEval(it, func() {
			var ok bool
			attrBuf, ok = it.mapAttributes(attrBuf, &e.lim, trace)
			if ok {
				var event []byte
				if event, ok = it.appendEvent(nil, attrBuf, &e.lim); ok {
					ev.Event = event
				}
			}
		})
	case wire.ReasonIdentifierMissing, wire.ReasonIdentifierInvalid, wire.ReasonUserNotFound:
		// The pipeline stops before mapping; the attributes are looked at only to be shown, and
		// leave the outcome as it is.
		reason, detail := it.reason, len(it.detail)
		it.reason = ""
		guardEval(it, func() { attrBuf, _ = it.mapAttributes(attrBuf, &e.lim, trace) })
		it.reason, it.detail = reason, it.detail[:detail]
	}
	if it.reason != "" {
		ev.Event = nil
	}
	ev.Status = chstore.StatusFailed
	if it.reason == "" {
		ev.Status = chstore.StatusSuccess
	}
	ev.Reason = it.reason
	ev.Detail = strings.Join(it.detail, "; ")
	id := &ev.Identification
	id.Kind, id.Field, id.Value, id.Found = string(h.Identify.Kind), h.Identify.Field, it.identValue, it.found
	if it.found {
		id.SubjectKind, _ = subjectOf(h.Identify.Kind, it.subject)
		id.UserID, id.HWID, id.HWIDs = it.subject.UserID, it.subject.HWID, it.subject.HWIDs
	}
	return attrBuf
}

// guardEval runs f as processor.guard does: a panic fails the item with processing_error.
func guardEval(it *item, f func()) {
	defer func() {
		if r := recover(); r != nil {
			failPanic(it, r)
		}
	}()
	f()
}

// keptHeaders is what the edge keeps of a request's headers (ingestor's keep): the webhook's kept
// headers present, in its order, each value cut at wire.MaxSenderHeaderBytes.
func keptHeaders(kept []webhook.KeptHeader, headers map[string]string) []wire.SenderHeader {
	if len(kept) == 0 || len(headers) == 0 {
		return nil
	}
	var out []wire.SenderHeader
	for _, k := range kept {
		if len(out) == wire.MaxSenderHeaders {
			break
		}
		for name, v := range headers {
			if v != "" && strings.EqualFold(name, k.Name) {
				out = append(out, wire.SenderHeader{Key: k.RecordKey, Value: []byte(v[:min(len(v), wire.MaxSenderHeaderBytes)])})
				break
			}
		}
	}
	return out
}
