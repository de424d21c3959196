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
// and a stale-config note (a request is evaluated with the config it is given), retries (the
// directory is asked once; its error is the caller's), and creating unknown users: a route whose
// unknown-user policy is create gets the subject Creator.Plan says it would create, and its detail says
// the user "would be created" where the pipeline's says "created".
type Evaluator struct {
	lim      Limits
	resolver Resolver
	creator  Creator
}

// NewEvaluator returns an Evaluator applying lim (Config.Limits, as the pipeline does), resolving
// identifiers with r and, for a route that creates unknown users, asking c what it would create
// (Creator.Plan: nothing is written). A nil c answers such users as not found.
func NewEvaluator(lim Limits, r Resolver, c Creator) *Evaluator {
	return &Evaluator{lim: lim, resolver: r, creator: c}
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
	// Route is the index of the route that took the request, -1 when none did (no route's condition
	// holds, or the request failed before one was tried); RouteName is its name.
	Route     int    `json:"route"`
	RouteName string `json:"route_name,omitempty"`
	// Conditions are the conditions tried, in order, and what each gave.
	Conditions []ConditionResult `json:"conditions,omitempty"`
	// Status is success, failed or skipped, as the activity log would have it, with its reason and
	// detail.
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
	Detail    string `json:"detail,omitempty"`
	EventName string `json:"event_name,omitempty"`
	// EventsFired counts the events the request would fire.
	EventsFired int `json:"events_fired"`
	// Identification, Attributes and Event are the single event's (a route without fan-out); a
	// fan-out's are in Elements.
	Identification Identification `json:"identification"`
	// Attributes lists every mapping in order, also when the request fails before mapping (a user not
	// found) or at an earlier attribute: what each would make of this body. Empty when the body cannot
	// be read (invalid_json, invalid_form) or no route takes it.
	Attributes []AttributeResult `json:"attributes"`
	// Event is the webhooks.events value as it would be fired (wire.AppendEvent); absent on failure.
	Event json.RawMessage `json:"event,omitempty"`
	// Elements are a fan-out's events, one per element of its array.
	Elements []ElementEvaluation `json:"elements,omitempty"`
}

// ConditionResult is what a route's condition gave.
type ConditionResult struct {
	Route   int    `json:"route"`
	Name    string `json:"name,omitempty"`
	When    string `json:"when"`
	Matched bool   `json:"matched"`
	Error   string `json:"error,omitempty"`
}

// ElementEvaluation is what would become of one element of a fan-out.
type ElementEvaluation struct {
	Index          int               `json:"index"`
	EventID        string            `json:"event_id,omitempty"`
	Status         string            `json:"status"`
	Reason         string            `json:"reason,omitempty"`
	Detail         string            `json:"detail,omitempty"`
	Identification Identification    `json:"identification"`
	Attributes     []AttributeResult `json:"attributes"`
	Event          json.RawMessage   `json:"event,omitempty"`
}

// Identification is how a request's subject was found.
type Identification struct {
	Kind  string `json:"kind"`
	Field string `json:"field"`
	// Value is the identifier as read (and normalised, for an e-mail); empty when it could not be read.
	Value string `json:"value,omitempty"`
	// Found says whether the directory knows Value; the subject follows when it does.
	Found bool `json:"found"`
	// WouldCreate: the directory does not know Value and the route's unknown-user policy would create
	// its subject, which follows (Found is false); the event is shown as it would fire with it.
	WouldCreate bool `json:"would_create,omitempty"`
	// Email and Phone are what the created user would get besides its identifier, read from the
	// payload by the route's create_email and create_phone (only with WouldCreate; invalid ones are
	// left out, and the element's detail says why).
	Email       string   `json:"email,omitempty"`
	Phone       string   `json:"phone,omitempty"`
	SubjectKind string   `json:"subject_kind,omitempty"`
	UserID      string   `json:"user_id,omitempty"`
	HWID        string   `json:"hwid,omitempty"`
	HWIDs       []string `json:"hwids,omitempty"`
}

// AttributeResult is what became of one mapping.
type AttributeResult struct {
	Attribute string `json:"attribute"`
	Type      string `json:"type"`
	Field     string `json:"field,omitempty"`
	Expr      string `json:"expr,omitempty"`
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
	out := make([]Evaluation, len(reqs))
	alloc := func(n int) []element { return make([]element, n) }
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
		ev := &out[i]
		it.condTrace = func(route int, matched bool, err error) {
			cr := &c.routes[route]
			res := ConditionResult{Route: route, Name: cr.r.Name, When: cr.r.When, Matched: matched}
			if err != nil {
				res.Error = err.Error()
			}
			ev.Conditions = append(ev.Conditions, res)
		}
		guardEval(it, func() { it.extractIdentifier(&e.lim, alloc) })
	}
	var plan func(ctx context.Context, k resolveKey, values []string, contacts map[string]Contact) (Created, error)
	if e.creator != nil {
		plan = func(ctx context.Context, k resolveKey, values []string, contacts map[string]Contact) (Created, error) {
			return e.creator.Plan(ctx, k.project, k.kind, values, contacts)
		}
	}
	err := resolveItems(ctx, items, func(ctx context.Context, k resolveKey, values []string) (map[string]Subject, error) {
		return e.resolver.Resolve(ctx, k.project, k.kind, values)
	}, plan, "would be created")
	if err != nil {
		return nil, err
	}
	for i := range items {
		// A dry run holds nothing; it says what the pipeline would do.
		items[i].noteNotHeld("the request would wait for its user (unknown_user hold)")
	}
	var attrBuf []byte
	for i := range items {
		attrBuf = e.finish(&items[i], &out[i], attrBuf[:0])
	}
	return out, nil
}

// finish maps the item's elements as processor.finish does and fills ev; attrBuf is scratch, returned
// for reuse.
func (e *Evaluator) finish(it *item, ev *Evaluation, attrBuf []byte) []byte {
	ev.Route = -1
	r := it.route
	if r == nil && len(it.hook.routes) == 1 {
		ev.EventName = it.hook.routes[0].r.EventName
	}
	type shown struct {
		attrs []AttributeResult
		event json.RawMessage
	}
	var results []shown
	if r != nil {
		ev.Route, ev.RouteName, ev.EventName = r.index, r.r.Name, r.r.EventName
		results = make([]shown, len(it.elems))
		for i := range it.elems {
			el := &it.elems[i]
			sh := &results[i]
			sh.attrs = make([]AttributeResult, 0, len(r.mappings))
			trace := func(j int, o attrOutcome, value []byte, reason, msg string) {
				m := r.r.Mappings[j]
				a := AttributeResult{Attribute: m.Attribute, Type: string(m.Type), Field: m.Field, Expr: m.Expr,
					Outcome: attrOutcomeNames[o], Reason: reason, Message: msg}
				if o == attrMapped {
					a.Value = json.RawMessage(append([]byte(nil), value...))
				}
				sh.attrs = append(sh.attrs, a)
			}
			switch {
			case it.reason != "":
			case el.reason == "":
				guardElemEval(el, func() {
					var ok bool
					attrBuf, ok = it.mapAttributes(attrBuf[:0], el, &e.lim, trace)
					if ok {
						var event []byte
						if event, ok = it.appendEvent(nil, el, attrBuf, &e.lim); ok {
							sh.event, el.fired = event, true
						}
					}
				})
			case el.reason == wire.ReasonIdentifierMissing || el.reason == wire.ReasonIdentifierInvalid || el.reason == wire.ReasonUserNotFound:
				// The pipeline stops before mapping; the attributes are looked at only to be shown, and
				// leave the outcome as it is.
				reason, detail := el.reason, len(el.detail)
				el.reason = ""
				guardElemEval(el, func() { attrBuf, _ = it.mapAttributes(attrBuf[:0], el, &e.lim, trace) })
				el.reason, el.detail = reason, el.detail[:detail]
			}
			if el.reason != "" {
				sh.event, el.fired = nil, false
			}
		}
	}
	var elemDetails [][]string
	if r != nil && r.fanOut {
		elemDetails = make([][]string, len(it.elems))
		for i := range it.elems {
			elemDetails[i] = it.elems[i].detail
		}
	}
	ev.Status = it.settle()
	ev.Reason = it.reason
	ev.Detail = strings.Join(it.detail, "; ")
	ev.Attributes = []AttributeResult{}
	if r == nil {
		ev.Identification = Identification{}
		if len(it.hook.routes) == 1 {
			id := it.hook.routes[0].r.Identify
			ev.Identification.Kind, ev.Identification.Field = string(id.Kind), id.Field
		}
		return attrBuf
	}
	for i := range it.elems {
		el := &it.elems[i]
		if el.fired {
			ev.EventsFired++
		}
		id := identification(r, el)
		if !r.fanOut {
			ev.Identification, ev.Attributes, ev.Event = id, results[i].attrs, results[i].event
			continue
		}
		ee := ElementEvaluation{Index: el.index, EventID: el.eventID.String(), Status: chstore.StatusSuccess,
			Reason: el.reason, Detail: strings.Join(elemDetails[i], "; "), Identification: id,
			Attributes: results[i].attrs, Event: results[i].event}
		if el.reason != "" || !el.fired {
			ee.Status = chstore.StatusFailed
		}
		ev.Elements = append(ev.Elements, ee)
	}
	if it.reason != "" && !r.fanOut {
		ev.Event = nil
	}
	return attrBuf
}

// identification is how element el was identified by route r.
func identification(r *compiledRoute, el *element) Identification {
	id := Identification{Kind: string(r.r.Identify.Kind), Field: r.r.Identify.Field, Value: el.identValue,
		Found: el.found && !el.created, WouldCreate: el.created, Email: el.createdWith.Email, Phone: el.createdWith.Phone}
	if el.found {
		id.SubjectKind, _ = subjectOf(r.r.Identify.Kind, el.subject)
		id.UserID, id.HWID, id.HWIDs = el.subject.UserID, el.subject.HWID, el.subject.HWIDs
	}
	return id
}

// guardElemEval runs f as processor.guardElem does: a panic fails the element with processing_error.
func guardElemEval(el *element, f func()) {
	defer func() {
		if r := recover(); r != nil {
			el.fail(wire.ReasonProcessingError, "internal error while processing this request: %v", r)
		}
	}()
	f()
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
