package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/bytedance/sonic/ast"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/fieldpath"
	"github.com/inlet-dev/inlet/internal/form"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/jsonvalid"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Hooks looks a webhook's configuration up by public id: webhook.Cache in production. It returns an
// error wrapping domainerr.ErrNotFound for a deleted webhook; any other error is taken as temporary and
// retried.
type Hooks interface {
	Get(ctx context.Context, publicID string) (*webhook.Hook, error)
}

// Subject is who an event is about, as the directory resolves an identifier: the user id (empty for an
// anonymous device), the device when identified by hwid, and all the user's devices (a journey needs a
// device to start). It is the directory's own type, so that its Resolver serves the pipeline without an
// adapter copying every answer.
type Subject = directory.Subject

// Deliveries tells which requests repeat a delivery of their sender (delivery.Store in production): it
// decides claims into verdicts and stores the originals, and deletes the originals whose window has
// long ended. Any error is taken as temporary and retried.
type Deliveries interface {
	Claim(ctx context.Context, claims []delivery.Claim, verdicts []delivery.Verdict) error
	DeleteExpired(ctx context.Context, before time.Time, limit int) (int, error)
}

// Resolver turns a batch of identifiers of one kind into subjects: directory.Resolver in production. Values without a subject are absent from the map; an error means the directory could not be
// asked and is retried, never taken as "user not found".
type Resolver interface {
	Resolve(ctx context.Context, projectID int64, kind identify.Kind, values []string) (map[string]Subject, error)
}

// item is one webhooks.requests record on its way through the pipeline.
type item struct {
	partition int32
	offset    int64
	epoch     int32
	healOnly  bool // already in activity_log; only its events row is missing (see partState.heal)

	requestID     uuid.UUID
	webhookID     string
	projectID     int64
	receivedMs    int64
	configVersion int64
	outcome       wire.Outcome
	edgeStatus    uint16
	bodyBytes     uint32
	truncated     bool
	body          []byte
	// contentType is a form body's Content-Type (wire.HeaderContentType), nil for JSON; view is then
	// the form's JSON view (form.ToJSON), which the mappings read: the body itself is what is stored.
	contentType []byte
	view        []byte
	headerErr   string
	// sender are the sender headers the record carries (aliasing its bytes; the array is the
	// processor's, reused every poll).
	sender []wire.SenderHeader

	hook     *compiledHook
	searcher *ast.Searcher
	// node holds the value being read (identifier, key, attribute): methods of *ast.Node make a local
	// one escape, and the item is on the heap already, so reading a value costs no allocation.
	node       ast.Node
	reason     string
	detail     []string
	identValue string
	subject    Subject
	found      bool

	// key is the hash of the sender's delivery key when hasKey; duplicateOf the first request of the
	// delivery when the claim found this request repeats it.
	key         [32]byte
	hasKey      bool
	duplicateOf uuid.UUID
}

// parseRecord reads the wire headers. A record that breaks the contract is still logged (as failed,
// reason invalid_record) so that nothing the edge acknowledged disappears silently. The sender headers
// are decoded into the free capacity of *senders, which is advanced past them (nil: into memory of
// their own), so that a poll's records share one array.
func parseRecord(r *kgo.Record, it *item, senders *[]wire.SenderHeader) {
	var req wire.Request
	if senders != nil {
		req.Sender = (*senders)[len(*senders):]
	}
	bad := wire.DecodeRequest(r, &req)
	if n := len(req.Sender); senders != nil && n > 0 && n <= cap(*senders)-len(*senders) {
		*senders = (*senders)[:len(*senders)+n] // decoded in place (append had the room)
	}
	*it = item{partition: r.Partition, offset: r.Offset, epoch: r.LeaderEpoch, body: r.Value,
		requestID: req.ID, webhookID: req.WebhookID, projectID: req.ProjectID, receivedMs: req.ReceivedMs,
		configVersion: req.ConfigVersion, outcome: req.Outcome, edgeStatus: uint16(req.EdgeStatus),
		bodyBytes: uint32(req.BodyBytes), truncated: req.Truncated, sender: req.Sender,
		contentType: req.ContentType}
	if req.Detail != nil {
		it.detail = append(it.detail, bytesString(req.Detail))
	}
	if it.receivedMs == 0 {
		// Without the edge's clock the record's own timestamp is the best approximation.
		it.receivedMs = r.Timestamp.UnixMilli()
	}
	if it.requestID == uuid.Nil {
		// A stable id keeps reprocessing idempotent even for a record that broke the contract.
		it.requestID = uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)))
	}
	if it.bodyBytes == 0 {
		it.bodyBytes = uint32(len(r.Value))
	}
	if len(bad) > 0 {
		it.headerErr = "record headers missing or malformed: " + strings.Join(bad, ", ")
	}
}

// compiledHook is a Hook with its paths parsed once per config version.
type compiledHook struct {
	hook        *webhook.Hook
	ident       fieldpath.Path
	identKeys   []any
	identErr    error
	identHeader string // the kept header the identifier is read from; "" for the payload
	mappings    []compiledMapping
	attrsTail   []byte // `"__webhook":"<id>"}`
	dedup       compiledDedup
	loc         *time.Location // the webhook's time zone, for dates without an offset
}

type compiledMapping struct {
	name    []byte // the attribute name as a JSON string followed by ':'
	attr    string
	typ     webhook.AttrType
	path    fieldpath.Path
	keys    []any
	pathErr error
	header  string // the kept header the value is read from; "" for the payload
	drop    bool   // a value that does not coerce omits the attribute (on_error drop) instead of failing
}

// compiledDedup is where a webhook's delivery key is, parsed once per config version.
type compiledDedup struct {
	on       bool
	source   delivery.Source
	header   string   // SourceHeader: its name
	path     string   // SourceBody: the field path as configured
	keys     []any    // SourceBody: the path for the searcher
	hashWith []string // SourceBodyHash: the headers hashed with the body
	window   time.Duration
	about    string // the key, for a duplicate's detail: "X-GitHub-Delivery header", "field id", "body"
	// invalid says why a configured key cannot be read (a path that does not parse); requests are then
	// not de-duplicated and their detail says so.
	invalid string
}

// headerPath tells a path that names a sender header: headers.<Name> or headers["<Name>"] where Name
// is, ignoring case, one of the headers the webhook keeps. It returns the kept header's name. Any other
// path, headers.… included, is the payload's, as it was before webhooks kept headers.
func headerPath(p fieldpath.Path, kept []webhook.KeptHeader) (string, bool) {
	steps := p.Steps()
	if len(steps) != 2 || steps[0].IsIndex || steps[0].Key != "headers" || steps[1].IsIndex {
		return "", false
	}
	for _, h := range kept {
		if strings.EqualFold(h.Name, steps[1].Key) {
			return h.Name, true
		}
	}
	return "", false
}

// senderHeader returns the value of the record's sender header name (ignoring case).
func (it *item) senderHeader(name string) ([]byte, bool) {
	for i := range it.sender {
		if strings.EqualFold(it.sender[i].Name(), name) {
			return it.sender[i].Value, true
		}
	}
	return nil, false
}

// searchKeys is a path in the form sonic's searcher takes, built once per config version.
func searchKeys(p fieldpath.Path) []any {
	steps := p.Steps()
	keys := make([]any, len(steps))
	for i, st := range steps {
		if st.IsIndex {
			keys[i] = st.Index
		} else {
			keys[i] = st.Key
		}
	}
	return keys
}

// lookup reads the value at keys, with fieldpath.Path.Get's semantics: a missing key, an index out of
// range or a step into a value of the other kind is ErrNotFound. One searcher serves all of a record's
// paths, without validating: extractIdentifier has checked the whole payload (jsonvalid) first.
func (it *item) lookup(keys []any) (ast.Node, error) {
	if it.searcher == nil {
		it.searcher = ast.NewSearcher(bytesString(it.payload()))
		it.searcher.ValidateJSON = false
	}
	n, err := it.searcher.GetByPath(keys...)
	if err != nil {
		return ast.Node{}, fieldpath.ErrNotFound
	}
	if err := n.Check(); err != nil {
		return ast.Node{}, err
	}
	return n, nil
}

// payload is what the mappings read: the body, or a form's JSON view.
func (it *item) payload() []byte {
	if it.view != nil {
		return it.view
	}
	return it.body
}

func compileHook(h *webhook.Hook) *compiledHook {
	c := &compiledHook{hook: h, loc: h.Location}
	if c.loc == nil {
		c.loc = time.UTC
	}
	c.ident, c.identErr = fieldpath.Parse(h.Identify.Field)
	if c.identErr == nil {
		c.identKeys = searchKeys(c.ident)
		c.identHeader, _ = headerPath(c.ident, h.Headers)
	}
	for _, m := range h.Mappings {
		cm := compiledMapping{attr: m.Attribute, typ: m.Type, drop: m.OnError == webhook.OnErrorDrop}
		cm.path, cm.pathErr = fieldpath.Parse(m.Field)
		if cm.pathErr == nil {
			cm.keys = searchKeys(cm.path)
			cm.header, _ = headerPath(cm.path, h.Headers)
		}
		cm.name = append(wire.AppendJSONString(nil, m.Attribute), ':')
		c.mappings = append(c.mappings, cm)
	}
	c.attrsTail = append(wire.AppendJSONString([]byte(`"__webhook":`), h.PublicID), '}')
	c.dedup = compileDedup(h.Dedup)
	return c
}

func compileDedup(d webhook.Dedup) compiledDedup {
	kind, arg := d.Source()
	c := compiledDedup{on: kind != "", window: d.EffectiveWindow()}
	switch kind {
	case "":
	case "header":
		c.source, c.header = delivery.SourceHeader, arg
		c.about = arg + " header"
	case "body":
		c.source, c.path = delivery.SourceBody, arg
		c.about = "field " + arg
		p, err := fieldpath.Parse(arg)
		if err != nil {
			c.invalid = fmt.Sprintf("not de-duplicated: the key's field path %q is invalid: %v", arg, err)
		} else {
			c.keys = searchKeys(p)
		}
	case webhook.DedupBodyHash:
		c.source, c.hashWith = delivery.SourceBodyHash, d.HashHeaders
		c.about = "body"
		for _, h := range d.HashHeaders {
			c.about += " and " + h + " header"
		}
	default:
		c.invalid = fmt.Sprintf("not de-duplicated: the key %q names no header, field or body hash", d.Key)
	}
	return c
}

// extractIdentifier reads the identifier; on failure it sets the reason and returns false. A body that
// breaks package jsonvalid's rule fails first, as invalid_json.
func (it *item) extractIdentifier(lim *Limits) bool {
	c := it.hook
	if it.contentType != nil {
		// A form: the edge checked it against the same rule; its JSON view is what maps. A record the
		// edge did not check (another producer) fails as the edge would have refused it.
		view, err := form.ToJSON(nil, bytesString(it.contentType), it.body)
		if err != nil {
			it.fail(string(wire.OutcomeInvalidForm), "%v", err)
			return false
		}
		it.view = view
	} else if err := jsonvalid.Validate(it.body, jsonvalid.MaxDepth); err != nil {
		// The edge refuses such a body; one it did not check (written before it did, or by another
		// producer) fails the same way rather than be read as sonic reads it.
		it.fail(wire.ReasonInvalidJSON, "%v", err)
		return false
	}
	if c.identErr != nil {
		it.fail(wire.ReasonIdentifierMissing, "identifier path %q is invalid: %v", c.hook.Identify.Field, c.identErr)
		return false
	}
	n := &it.node
	var err error
	if c.identHeader != "" {
		v, ok := it.senderHeader(c.identHeader)
		if !ok {
			it.fail(wire.ReasonIdentifierMissing, "header %s is absent", c.identHeader)
			return false
		}
		*n = ast.NewString(bytesString(v))
	} else {
		*n, err = it.lookup(c.identKeys)
	}
	if err != nil {
		if errors.Is(err, fieldpath.ErrNotFound) {
			it.fail(wire.ReasonIdentifierMissing, "field %s is absent", c.hook.Identify.Field)
		} else {
			it.fail(wire.ReasonIdentifierMissing, "field %s: %v", c.hook.Identify.Field, err)
		}
		return false
	}
	kind := n.TypeSafe()
	var v string
	switch kind {
	case ast.V_NONE, ast.V_NULL:
		it.fail(wire.ReasonIdentifierMissing, "field %s is null", c.hook.Identify.Field)
		return false
	case ast.V_STRING, ast.V_NUMBER:
		v, _ = scalarText(n, kind)
		v = strings.TrimSpace(v)
	default:
		it.fail(wire.ReasonIdentifierMissing, "field %s is a %s, not an identifier", c.hook.Identify.Field, kindName(kind))
		return false
	}
	if v == "" {
		it.fail(wire.ReasonIdentifierMissing, "field %s is empty", c.hook.Identify.Field)
		return false
	}
	if c.hook.Identify.Kind == identify.ByEmail {
		v = directory.NormalizeEmail(v) // as the directory stores it; no allocation when already NFC
	}
	if len(v) > lim.IdentifierBytes {
		it.fail(wire.ReasonIdentifierInvalid, "field %s is %d bytes long, more than %d", c.hook.Identify.Field, len(v), lim.IdentifierBytes)
		return false
	}
	it.identValue = v
	return true
}

// extractKey reads the sender's delivery key and hashes it (h) into it.key. A request whose key cannot
// be read (the header absent, the field absent or neither a string nor a number, the body not JSON) is
// not de-duplicated, and its detail says why.
func (it *item) extractKey(h *delivery.Hasher) {
	d := &it.hook.dedup
	if d.invalid != "" {
		it.detail = append(it.detail, d.invalid)
		return
	}
	switch d.source {
	case delivery.SourceHeader:
		v, ok := it.senderHeader(d.header)
		if !ok || len(v) == 0 {
			it.detail = append(it.detail, "not de-duplicated: header "+d.header+" is absent")
			return
		}
		h.Begin(delivery.SourceHeader)
		h.Part(v)
	case delivery.SourceBody:
		if it.reason == wire.ReasonInvalidJSON {
			it.detail = append(it.detail, "not de-duplicated: the body is not JSON, so field "+d.path+" cannot be read")
			return
		}
		n := &it.node
		var err error
		if *n, err = it.lookup(d.keys); err != nil {
			it.detail = append(it.detail, "not de-duplicated: field "+d.path+" is absent")
			return
		}
		kind := n.TypeSafe()
		if kind != ast.V_STRING && kind != ast.V_NUMBER {
			it.detail = append(it.detail, "not de-duplicated: field "+d.path+" is "+aKind(kind)+", not a delivery id")
			return
		}
		v, err := scalarText(n, kind)
		if err != nil || v == "" {
			it.detail = append(it.detail, "not de-duplicated: field "+d.path+" is empty")
			return
		}
		h.Begin(delivery.SourceBody)
		h.Part(stringBytes(v))
	case delivery.SourceBodyHash:
		h.Begin(delivery.SourceBodyHash)
		h.Part(it.body)
		for _, name := range d.hashWith {
			if v, ok := it.senderHeader(name); ok {
				h.Part(v)
			} else {
				h.Absent()
			}
		}
	}
	it.key, it.hasKey = h.Sum(), true
}

// aKind is kindName with its article: "an object", "a boolean".
func aKind(kind int) string {
	if k := kindName(kind); k[0] == 'a' || k[0] == 'o' || k[0] == 'i' {
		return "an " + k
	}
	return "a " + kindName(kind)
}

// resolvable reports whether the item's identifier is to be resolved: nothing has failed it and it is
// not a duplicate.
func (it *item) resolvable() bool {
	return it.reason == "" && it.hook != nil && it.duplicateOf == uuid.Nil
}

// about names the record for a log line.
func (it *item) about() []any {
	return []any{"webhook_id", it.webhookID, "partition", it.partition, "offset", it.offset, "request_id", it.requestID}
}

func (it *item) fail(reason, format string, args ...any) {
	it.reason = reason
	it.detail = append(it.detail, fmt.Sprintf(format, args...))
}

// attrOutcome is what became of one mapping on one request.
type attrOutcome uint8

const (
	attrMapped  attrOutcome = iota // the attribute is in the event
	attrOmitted                    // its field or header is absent, or null, or its path is invalid
	attrDropped                    // its value does not coerce and the mapping says on_error drop
	attrFailed                     // its value does not coerce (or is over a limit): the request fails
)

// attrTrace, when not nil, is told what became of each mapping: its index, outcome, coerced JSON value
// (mapped), failure reason (failed) and the message the detail has (or would have) for it. The
// pipeline passes nil; a dry run (Evaluator) records every attribute, those after a failing one too.
type attrTrace func(i int, o attrOutcome, value []byte, reason, msg string)

// mapAttributes appends the event's attributes object to dst. On a value that does not coerce it sets
// attribute_type_mismatch naming the attribute; on a value over a limit, the limit's own reason. A
// mapping with on_error drop omits its attribute instead, and the detail says why.
func (it *item) mapAttributes(dst []byte, lim *Limits, trace attrTrace) ([]byte, bool) {
	c := it.hook
	dst = append(dst, '{')
	for i := range c.mappings {
		at := len(dst)
		var o attrOutcome
		var reason, msg string
		dst, o, reason, msg = it.mapOne(dst, i, lim)
		if trace != nil {
			var v []byte
			if o == attrMapped {
				v = dst[at+len(c.mappings[i].name) : len(dst)-1]
			}
			trace(i, o, v, reason, msg)
		}
		switch o {
		case attrOmitted, attrDropped:
			it.detail = append(it.detail, msg)
		case attrFailed:
			it.reason = reason
			it.detail = append(it.detail, msg)
			if trace != nil {
				// The request has failed; the rest are looked at only to be shown.
				for j := i + 1; j < len(c.mappings); j++ {
					at := len(dst)
					var v []byte
					dst, o, reason, msg = it.mapOne(dst, j, lim)
					if o == attrMapped {
						v = dst[at+len(c.mappings[j].name) : len(dst)-1]
					}
					trace(j, o, v, reason, msg)
				}
			}
			return dst, false
		}
	}
	return append(dst, c.attrsTail...), true
}

// mapOne reads and coerces mapping i. When it maps, `"name":value,` is appended to dst; otherwise dst
// is returned as it was, with the outcome, the failure reason (attrFailed) and the message for the
// detail. Messages are built only off the success path.
func (it *item) mapOne(dst []byte, i int, lim *Limits) ([]byte, attrOutcome, string, string) {
	c := it.hook
	m := &c.mappings[i]
	field := c.hook.Mappings[i].Field
	if m.pathErr != nil {
		return dst, attrOmitted, "", fmt.Sprintf("attribute %s omitted: path %q is invalid", m.attr, field)
	}
	n := &it.node
	var err error
	if m.header != "" {
		v, ok := it.senderHeader(m.header)
		if !ok {
			return dst, attrOmitted, "", "attribute " + m.attr + " omitted: header " + m.header + " is absent"
		}
		*n = ast.NewString(bytesString(v)) // a header's value maps as a payload string would
	} else {
		*n, err = it.lookup(m.keys)
	}
	if err != nil {
		if errors.Is(err, fieldpath.ErrNotFound) {
			return dst, attrOmitted, "", "attribute " + m.attr + " omitted: field " + field + " is absent"
		}
		if m.drop {
			return dst, attrDropped, "", fmt.Sprintf("attribute %s (%s) dropped: field %s: %v", m.attr, m.typ, field, err)
		}
		return dst, attrFailed, wire.ReasonAttributeTypeMismatch, fmt.Sprintf("attribute %s (%s): field %s: %v", m.attr, m.typ, field, err)
	}
	mark := len(dst)
	dst = append(dst, m.name...)
	valueAt := len(dst)
	dst, err = appendCoerced(dst, m.typ, n, lim, c.loc)
	if err == nil && len(dst)-valueAt > lim.AttributeBytes {
		err = &tooLargeError{size: len(dst) - valueAt, max: lim.AttributeBytes}
	}
	switch {
	case err == nil:
		return append(dst, ','), attrMapped, "", ""
	case errors.Is(err, errAbsent):
		return dst[:mark], attrOmitted, "", "attribute " + m.attr + " omitted: field " + field + " is null"
	case m.drop:
		return dst[:mark], attrDropped, "", fmt.Sprintf("attribute %s (%s) dropped: field %s: %v", m.attr, m.typ, field, err)
	}
	reason := wire.ReasonAttributeTypeMismatch
	switch {
	case errors.Is(err, errOutOfRange):
		reason = wire.ReasonNumberOutOfRange
	case errors.As(err, new(*tooLargeError)):
		reason = wire.ReasonAttributeTooLarge
	}
	return dst[:mark], attrFailed, reason, fmt.Sprintf("attribute %s (%s): field %s: %v", m.attr, m.typ, field, err)
}

// tooLargeError: a coerced value longer than Limits.AttributeBytes (attribute_too_large).
type tooLargeError struct{ size, max int }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the value is %d bytes, more than %d", e.size, e.max)
}

func subjectOf(kind identify.Kind, s Subject) (subjectKind, subject string) {
	if kind == identify.ByHWID {
		return "device", s.HWID
	}
	return "user", s.UserID
}

// Event is the layout of a webhooks.events value: see package wire.
type Event = wire.Event

// bytesString views b as a string without copying. Record keys, values and headers are never modified
// after the fetch, so the string stays valid (and keeps the buffer alive) as long as a row holds it.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
