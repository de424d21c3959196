package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/bytedance/sonic/ast"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/fieldpath"
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
	headerErr     string

	hook       *compiledHook
	searcher   *ast.Searcher
	reason     string
	detail     []string
	identValue string
	subject    Subject
	found      bool
}

// parseRecord reads the wire headers. A record that breaks the contract is still logged (as failed,
// reason invalid_record) so that nothing the edge acknowledged disappears silently.
func parseRecord(r *kgo.Record, it *item) {
	var req wire.Request
	bad := wire.DecodeRequest(r, &req)
	*it = item{partition: r.Partition, offset: r.Offset, epoch: r.LeaderEpoch, body: r.Value,
		requestID: req.ID, webhookID: req.WebhookID, projectID: req.ProjectID, receivedMs: req.ReceivedMs,
		configVersion: req.ConfigVersion, outcome: req.Outcome, edgeStatus: uint16(req.EdgeStatus),
		bodyBytes: uint32(req.BodyBytes), truncated: req.Truncated}
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
	hook      *webhook.Hook
	ident     fieldpath.Path
	identKeys []any
	identErr  error
	mappings  []compiledMapping
	attrsTail []byte // `"__webhook":"<id>"}`
}

type compiledMapping struct {
	name    []byte // the attribute name as a JSON string followed by ':'
	attr    string
	typ     webhook.AttrType
	path    fieldpath.Path
	keys    []any
	pathErr error
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
		it.searcher = ast.NewSearcher(bytesString(it.body))
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

func compileHook(h *webhook.Hook) *compiledHook {
	c := &compiledHook{hook: h}
	c.ident, c.identErr = fieldpath.Parse(h.Identify.Field)
	if c.identErr == nil {
		c.identKeys = searchKeys(c.ident)
	}
	for _, m := range h.Mappings {
		cm := compiledMapping{attr: m.Attribute, typ: m.Type}
		cm.path, cm.pathErr = fieldpath.Parse(m.Field)
		if cm.pathErr == nil {
			cm.keys = searchKeys(cm.path)
		}
		cm.name = append(wire.AppendJSONString(nil, m.Attribute), ':')
		c.mappings = append(c.mappings, cm)
	}
	c.attrsTail = append(wire.AppendJSONString([]byte(`"__webhook":`), h.PublicID), '}')
	return c
}

// extractIdentifier reads the identifier; on failure it sets the reason and returns false. A body that
// breaks package jsonvalid's rule fails first, as invalid_json.
func (it *item) extractIdentifier(lim *Limits) bool {
	c := it.hook
	if err := jsonvalid.Validate(it.body, jsonvalid.MaxDepth); err != nil {
		// The edge refuses such a body; one it did not check (written before it did, or by another
		// producer) fails the same way rather than be read as sonic reads it.
		it.fail(wire.ReasonInvalidJSON, "%v", err)
		return false
	}
	if c.identErr != nil {
		it.fail(wire.ReasonIdentifierMissing, "identifier path %q is invalid: %v", c.hook.Identify.Field, c.identErr)
		return false
	}
	n, err := it.lookup(c.identKeys)
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
		v, _ = scalarText(&n, kind)
		v = strings.TrimSpace(v)
	default:
		it.fail(wire.ReasonIdentifierMissing, "field %s is a %s, not an identifier", c.hook.Identify.Field, kindName(kind))
		return false
	}
	if v == "" {
		it.fail(wire.ReasonIdentifierMissing, "field %s is empty", c.hook.Identify.Field)
		return false
	}
	if len(v) > lim.IdentifierBytes {
		it.fail(wire.ReasonIdentifierInvalid, "field %s is %d bytes long, more than %d", c.hook.Identify.Field, len(v), lim.IdentifierBytes)
		return false
	}
	it.identValue = v
	return true
}

// about names the record for a log line.
func (it *item) about() []any {
	return []any{"webhook_id", it.webhookID, "partition", it.partition, "offset", it.offset, "request_id", it.requestID}
}

func (it *item) fail(reason, format string, args ...any) {
	it.reason = reason
	it.detail = append(it.detail, fmt.Sprintf(format, args...))
}

// mapAttributes appends the event's attributes object to dst. On a value that does not coerce it sets
// attribute_type_mismatch naming the attribute; on a value over a limit, the limit's own reason.
func (it *item) mapAttributes(dst []byte, lim *Limits) ([]byte, bool) {
	c := it.hook
	dst = append(dst, '{')
	for i := range c.mappings {
		m := &c.mappings[i]
		if m.pathErr != nil {
			it.detail = append(it.detail, fmt.Sprintf("attribute %s omitted: path %q is invalid", m.attr, c.hook.Mappings[i].Field))
			continue
		}
		n, err := it.lookup(m.keys)
		if err != nil {
			if errors.Is(err, fieldpath.ErrNotFound) {
				it.detail = append(it.detail, "attribute "+m.attr+" omitted: field "+c.hook.Mappings[i].Field+" is absent")
				continue
			}
			it.fail(wire.ReasonAttributeTypeMismatch, "attribute %s (%s): field %s: %v", m.attr, m.typ, c.hook.Mappings[i].Field, err)
			return dst, false
		}
		mark := len(dst)
		dst = append(dst, m.name...)
		valueAt := len(dst)
		dst, err = appendCoerced(dst, m.typ, &n, lim)
		switch {
		case errors.Is(err, errAbsent):
			dst = dst[:mark]
			it.detail = append(it.detail, "attribute "+m.attr+" omitted: field "+c.hook.Mappings[i].Field+" is null")
			continue
		case errors.Is(err, errOutOfRange):
			it.fail(wire.ReasonNumberOutOfRange, "attribute %s (%s): field %s: %v", m.attr, m.typ, c.hook.Mappings[i].Field, err)
			return dst, false
		case err != nil:
			it.fail(wire.ReasonAttributeTypeMismatch, "attribute %s (%s): field %s: %v", m.attr, m.typ, c.hook.Mappings[i].Field, err)
			return dst, false
		case len(dst)-valueAt > lim.AttributeBytes:
			it.fail(wire.ReasonAttributeTooLarge, "attribute %s (%s): field %s: the value is %d bytes, more than %d",
				m.attr, m.typ, c.hook.Mappings[i].Field, len(dst)-valueAt, lim.AttributeBytes)
			return dst, false
		}
		dst = append(dst, ',')
	}
	return append(dst, c.attrsTail...), true
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
