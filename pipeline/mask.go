package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/textproto"
	"strings"

	"github.com/bytedance/sonic/ast"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/fieldpath"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Masking (webhook.Sensitive): the stored copies of a request — the activity log's payload, headers,
// identifier, attributes and outcomes, and the event history's attributes — carry a keyed hash in
// place of each sensitive value, while the fired event carries the value. Only webhooks that mark
// something pay for it: the processor asks compiledHook.mask, nil for the others, so the hot path of
// an unmasked webhook is unchanged (TestProcessAllocs).

// maskPrefix starts every masked value.
const maskPrefix = "hmac-sha256:"

// compiledMask is a webhook's masking, compiled once per config version.
type compiledMask struct {
	key     []byte
	fields  [][]any  // sonic search keys of each sensitive field
	headers []string // canonical names
	// last are the last object keys of the sensitive fields: an expression mapping that mentions one
	// may compute its value from a sensitive field, and its attribute is masked too.
	last []string
	// paths are the sensitive fields as saved, for the mappings' prefix checks.
	paths []string
}

func compileMask(m *webhook.Mask) *compiledMask {
	if !m.Active() {
		return nil
	}
	c := &compiledMask{key: m.Key}
	for _, h := range m.Headers {
		c.headers = append(c.headers, textproto.CanonicalMIMEHeaderKey(h))
	}
	for _, p := range m.Fields {
		c.fields = append(c.fields, p.Keys())
		c.paths = append(c.paths, p.String())
		steps := p.Steps()
		for i := len(steps) - 1; i >= 0; i-- {
			if !steps[i].IsIndex {
				c.last = append(c.last, steps[i].Key)
				break
			}
		}
	}
	return c
}

// related reports whether a field path reads a sensitive field: the field itself, one inside it, or
// an object or array that holds it.
func (c *compiledMask) related(path string) bool {
	p, _ := strings.CutPrefix(path, fieldpath.Root+".")
	for _, s := range c.paths {
		if p == s || under(p, s) || under(s, p) {
			return true
		}
	}
	return false
}

// under reports whether path p is inside path s.
func under(p, s string) bool {
	return strings.HasPrefix(p, s) && len(p) > len(s) && (p[len(s)] == '.' || p[len(s)] == '[')
}

// exprRelated reports whether an expression may read a sensitive field: it mentions one's last key.
func (c *compiledMask) exprRelated(src string) bool {
	for _, k := range c.last {
		if strings.Contains(src, k) {
			return true
		}
	}
	return false
}

// hash is the masked form of a JSON value's text, as a JSON string.
func (c *compiledMask) hash(raw []byte) string {
	m := hmac.New(sha256.New, c.key)
	m.Write(raw)
	return `"` + maskPrefix + hex.EncodeToString(m.Sum(nil)[:16]) + `"`
}

// errUnmaskable: the body cannot be read to mask it, so it is not stored.
var errUnmaskable = errors.New("the payload is not stored: it could not be read to mask its sensitive fields")

// masking is one request's masking: the values it has hashed, so that the texts that quote them
// (details, outcomes) can be scrubbed of them too.
type masking struct {
	m      *compiledMask
	values []maskedValue
}

type maskedValue struct{ plain, hashed string }

// minScrubbed: shorter values are not scrubbed from texts (a "1" would hash every digit).
const minScrubbed = 3

// scrub replaces every hashed value in s by its hash.
func (k *masking) scrub(s string) string {
	for _, v := range k.values {
		if len(v.plain) >= minScrubbed && strings.Contains(s, v.plain) {
			s = strings.ReplaceAll(s, v.plain, v.hashed)
		}
	}
	return s
}

// value hashes a plain string value (the identifier), as the payload's copy of it is hashed.
func (k *masking) value(v string) string {
	h := k.m.hash(wire.AppendJSONString(nil, v))
	hashed := h[1 : len(h)-1]
	k.values = append(k.values, maskedValue{v, hashed})
	return hashed
}

// payload returns body with every sensitive field present replaced by its hash. A body that is not a
// JSON document (a truncated one, a form) is an error: it cannot be masked, so it must not be stored.
func (k *masking) payload(body []byte) (string, error) {
	root := ast.NewRaw(string(body))
	if err := root.Check(); err != nil {
		return "", errUnmaskable
	}
	changed := false
	for _, keys := range k.m.fields {
		if k.maskAt(&root, keys) {
			changed = true
		}
	}
	if !changed {
		return string(body), nil
	}
	out, err := root.MarshalJSON()
	if err != nil {
		return "", errUnmaskable
	}
	return string(out), nil
}

// maskAt replaces the value at keys in root by its hash; false when there is none.
func (k *masking) maskAt(root *ast.Node, keys []any) bool {
	parent := root
	if len(keys) > 1 {
		parent = root.GetByPath(keys[:len(keys)-1]...)
	}
	if parent == nil || !parent.Exists() {
		return false
	}
	var v *ast.Node
	switch k := keys[len(keys)-1].(type) {
	case string:
		if parent.TypeSafe() != ast.V_OBJECT {
			return false
		}
		v = parent.Get(k)
	case int:
		if parent.TypeSafe() != ast.V_ARRAY {
			return false
		}
		v = parent.Index(k)
	}
	if v == nil || !v.Exists() || v.Check() != nil {
		return false
	}
	raw, err := v.Raw()
	if err != nil {
		return false
	}
	h := k.m.hash([]byte(raw))
	plain := raw
	if v.TypeSafe() == ast.V_STRING {
		plain, _ = v.StrictString()
	}
	k.values = append(k.values, maskedValue{plain, h[1 : len(h)-1]})
	*v = ast.NewRaw(h)
	return true
}

// attrs returns the attributes object attrs with the named attributes' values hashed.
func (k *masking) attrs(attrs string, names map[string]bool) string {
	if len(names) == 0 || attrs == "" {
		return attrs
	}
	root := ast.NewRaw(attrs)
	changed := false
	for name := range names {
		if k.maskAt(&root, []any{name}) {
			changed = true
		}
	}
	if !changed {
		return attrs
	}
	out, err := root.MarshalJSON()
	if err != nil {
		return `{}`
	}
	return string(out)
}

// header reports whether the sender header name is sensitive.
func (c *compiledMask) header(name string) bool {
	for _, h := range c.headers {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// outcomes masks a fan-out's outcomes array: each element's masked attributes and, when the route's
// identifier is sensitive, its identifier; the texts are scrubbed afterwards (see maskRow).
func (k *masking) outcomes(outcomes string, names map[string]bool, ident bool, n int) string {
	if outcomes == "" || (len(names) == 0 && !ident) {
		return outcomes
	}
	root := ast.NewRaw(outcomes)
	for i := range n {
		for name := range names {
			k.maskAt(&root, []any{i, "attributes", name})
		}
		if ident {
			k.maskAt(&root, []any{i, "identifier"})
		}
	}
	out, err := root.MarshalJSON()
	if err != nil {
		return "[]"
	}
	return string(out)
}

// maskRow masks what an activity row stores of it (its headers are masked as they are written, see
// headersJSON).
func (p *processor) maskRow(it *item, row *chstore.ActivityRow, m *compiledMask) {
	k := masking{m: m}
	if row.Payload != "" {
		out, err := k.payload(it.body)
		if err != nil {
			out = ""
			row.Detail = strings.TrimPrefix(row.Detail+"; "+err.Error(), "; ")
		}
		row.Payload = out
	}
	var names map[string]bool
	ident := false
	if r := it.route; r != nil {
		rm := it.hook.routeMask(r.index)
		names, ident = rm.attrs, rm.ident
	}
	if ident && row.IdentifierValue != "" {
		row.IdentifierValue = k.value(row.IdentifierValue)
	}
	if ident {
		for i := range it.elems {
			if v := it.elems[i].identValue; v != "" {
				k.value(v)
			}
		}
	}
	row.Attributes = k.attrs(row.Attributes, names)
	row.Outcomes = k.outcomes(row.Outcomes, names, ident, len(it.elems))
	row.Detail = k.scrub(row.Detail)
	row.Outcomes = k.scrub(row.Outcomes)
}

// reads reports whether a mapping's or identifier's source reads something sensitive: a sensitive
// field (see related) or a sensitive header ("headers.<Name>").
func (c *compiledMask) reads(source string) bool {
	if source == "" {
		return false
	}
	if name, ok := strings.CutPrefix(source, "headers."); ok {
		return c.header(name)
	}
	return c.related(source)
}

// hookMask is the item's webhook's masking, nil for none.
func (it *item) hookMask() *compiledMask {
	if it.hook == nil {
		return nil
	}
	return it.hook.mask
}

// storedAttrs is what the event history stores of an element's attributes: masked where they come
// from sensitive fields.
func (p *processor) storedAttrs(it *item, e *element) string {
	m := it.hookMask()
	if m == nil || it.route == nil {
		return e.attrs
	}
	names := it.hook.routeMask(it.route.index).attrs
	if len(names) == 0 {
		return e.attrs
	}
	k := masking{m: m}
	return k.attrs(e.attrs, names)
}
