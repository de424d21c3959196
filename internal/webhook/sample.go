package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/expr"
	"github.com/inlet-dev/inlet/internal/fieldpath"
)

// sampleCheck checks routes against the webhook's sample payload, so that a mapping that can never
// fill its attribute is refused when saved rather than found in the activity log: a path the sample
// does not have (a missing key, an index out of range, a step into a scalar), a list attribute mapped
// to an array holding objects or arrays, a scalar attribute mapped to an object or an array, a fan-out
// path that is not an array, and an expression (condition or value) that fails on the sample or gives
// a value of the wrong shape. A null in the sample proves nothing and passes. A path that names a kept
// header (headers.<Name>, see the pipeline's header rule) is not the payload's and is not checked;
// expressions see every kept header as "". In a fan-out route, element paths must be in at least one
// element of the sample's array (elements differ: HubSpot's, by subscription type). Problems are
// reported as <prefix>mappings[i].field or .expr, <prefix>when and <prefix>for_each. Paths are
// canonical and the sample valid: validate has checked both.
type sampleCheck struct {
	raw  []byte
	root any // decoded with json.Number, for paths
	tree any // decoded as expressions read it (expr.Decode); nil if that failed
	kept []string
}

func newSampleCheck(sample string, kept []string) *sampleCheck {
	dec := json.NewDecoder(strings.NewReader(sample))
	dec.UseNumber()
	sc := &sampleCheck{raw: []byte(sample), kept: kept}
	if err := dec.Decode(&sc.root); err != nil {
		return nil // validate reports the sample itself
	}
	sc.tree, _ = expr.Decode(sc.raw)
	return sc
}

func (sc *sampleCheck) check(r *Route, ev *Event, prefix string, whenOK, mappingsOK bool, e *domainerr.ValidationError) {
	fanOut := r.ForEach != ""
	var elements, exprElements []any
	if fanOut {
		p, _ := FanOutPath(r.ForEach)
		v, msg := walk(sc.root, p)
		if msg == "" {
			var ok bool
			if elements, ok = v.([]any); !ok && v != nil {
				msg = fmt.Sprintf("%s is %s in the sample, not an array to fan out over", r.ForEach, describe(v))
			}
		}
		if msg != "" {
			e.Add(prefix+"for_each", "%s", msg)
			return
		}
		if tv, m := walk(sc.tree, p); m == "" {
			exprElements, _ = tv.([]any)
		}
	}
	if whenOK && r.When != "" && sc.tree != nil {
		if prog, err := CompileCondition(r.When); err == nil {
			if _, err := expr.CheckSample(prog, sc.raw, sc.kept, nil); err != nil {
				e.Add(prefix+"when", "%v", err)
			}
		}
	}
	sc.checkCreateFrom(r, prefix, elements, e)
	if !mappingsOK {
		return
	}
	for i, m := range r.Mappings {
		typ, ok := attributeType(ev, m.Attribute)
		if !ok {
			continue
		}
		if m.Expr != "" {
			if sc.tree == nil {
				continue
			}
			prog, err := CompileValue(m.Expr, fanOut)
			if err != nil {
				continue
			}
			results, err := expr.CheckSample(prog, sc.raw, sc.kept, exprElements)
			if err != nil {
				e.Add(fmt.Sprintf("%smappings[%d].expr", prefix, i), "%v", err)
				continue
			}
			for _, res := range results {
				dec := json.NewDecoder(bytes.NewReader(res))
				dec.UseNumber()
				var v any
				if dec.Decode(&v) != nil {
					continue
				}
				if msg := valueProblem("the expression's value", v, typ); msg != "" {
					e.Add(fmt.Sprintf("%smappings[%d].expr", prefix, i), "on the sample payload, %s", msg)
					break
				}
			}
			continue
		}
		p, err := fieldpath.Parse(m.Field)
		if err != nil || keptHeaderPath(p, sc.kept) {
			continue
		}
		fromBody, rest := p.FromRoot()
		var msg string
		switch {
		case !fanOut || fromBody:
			msg = sampleProblem(sc.root, rest, typ)
		case len(elements) > 0:
			for j, el := range elements {
				m := sampleProblem(el, rest, typ)
				if m == "" {
					msg = ""
					break
				}
				if j == 0 {
					msg = m + fmt.Sprintf(" (in the first element of %s; no element of the sample has it)", r.ForEach)
				}
			}
		}
		if msg != "" {
			e.Add(fmt.Sprintf("%smappings[%d].field", prefix, i), "%s", msg)
		}
	}
}

// walk follows p from root: the value there, or what stops it ("" when found).
func walk(root any, p fieldpath.Path) (any, string) {
	v := root
	var at bytes.Buffer
	for _, st := range p.Steps() {
		where := at.String()
		if where == "" {
			where = "the sample payload"
		}
		if st.IsIndex {
			arr, ok := v.([]any)
			if !ok {
				return nil, fmt.Sprintf("%s is %s in the sample, not an array, so it has no [%d]", where, describe(v), st.Index)
			}
			if st.Index < 0 || st.Index >= len(arr) {
				return nil, fmt.Sprintf("index %d is out of range: %s has %d items in the sample", st.Index, where, len(arr))
			}
			v = arr[st.Index]
			at.WriteString("[" + strconv.Itoa(st.Index) + "]")
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Sprintf("%s is %s in the sample, not an object, so it has no key %q", where, describe(v), st.Key)
		}
		if v, ok = obj[st.Key]; !ok {
			if at.Len() == 0 {
				return nil, fmt.Sprintf("%s is not in the sample payload (it has no key %q)", p, st.Key)
			}
			return nil, fmt.Sprintf("%s is not in the sample payload: %s has no key %q", p, where, st.Key)
		}
		if at.Len() > 0 {
			at.WriteByte('.')
		}
		at.WriteString(st.Key)
	}
	return v, ""
}

// sampleProblem says what is wrong with reading p as a typ attribute from root ("" for nothing).
func sampleProblem(root any, p fieldpath.Path, typ AttrType) string {
	v, msg := walk(root, p)
	if msg != "" {
		return msg
	}
	return valueProblem(p.String(), v, typ)
}

// valueProblem says what is wrong with v (what names it) as the value of a typ attribute.
func valueProblem(what string, v any, typ AttrType) string {
	switch x := v.(type) {
	case map[string]any:
		return fmt.Sprintf("%s is an object in the sample; a %s attribute takes %s", what, typ, takes(typ))
	case []any:
		if typ != TypeList {
			return fmt.Sprintf("%s is an array in the sample; a %s attribute takes a single value", what, typ)
		}
		for j, item := range x {
			switch item.(type) {
			case map[string]any, []any:
				return fmt.Sprintf("%s is an array of %ss in the sample (item %d); a list attribute takes strings, numbers or booleans: map a field of the items instead", what, kindOf(item), j)
			}
		}
	}
	return ""
}

func takes(typ AttrType) string {
	if typ == TypeList {
		return "an array of scalars or a comma-separated string"
	}
	return "a single value"
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a " + kindOf(v)
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

// keptHeaderPath tells the pipeline's header rule: exactly two steps, headers.<Name>, Name one of the
// kept headers ignoring case.
func keptHeaderPath(p fieldpath.Path, kept []string) bool {
	steps := p.Steps()
	if len(steps) != 2 || steps[0].IsIndex || steps[0].Key != "headers" || steps[1].IsIndex {
		return false
	}
	for _, name := range kept {
		if strings.EqualFold(name, steps[1].Key) {
			return true
		}
	}
	return false
}

func attributeType(ev *Event, name string) (AttrType, bool) {
	for _, a := range ev.Attributes {
		if a.Name == name {
			return a.Type, true
		}
	}
	return "", false
}

// checkCreateFrom checks the route's create_email and create_phone against the sample as a mapping's
// field is checked: the field must be there (in some element, in a fan-out), holding a single value.
func (sc *sampleCheck) checkCreateFrom(r *Route, prefix string, elements []any, e *domainerr.ValidationError) {
	for _, f := range []struct{ name, path string }{{"create_email", r.CreateEmail}, {"create_phone", r.CreatePhone}} {
		if f.path == "" || r.UnknownUser != UnknownUserCreate {
			continue
		}
		p, err := fieldpath.Parse(f.path)
		if err != nil || keptHeaderPath(p, sc.kept) {
			continue
		}
		fromBody, rest := p.FromRoot()
		var msg string
		switch {
		case r.ForEach == "" || fromBody:
			msg = scalarProblem(sc.root, rest)
		case len(elements) > 0:
			for j, el := range elements {
				m := scalarProblem(el, rest)
				if m == "" {
					msg = ""
					break
				}
				if j == 0 {
					msg = m + fmt.Sprintf(" (in the first element of %s; no element of the sample has it)", r.ForEach)
				}
			}
		}
		if msg != "" {
			e.Add(prefix+f.name, "%s", msg)
		}
	}
}

// scalarProblem says what is wrong with reading p from root as a single value ("" for nothing).
func scalarProblem(root any, p fieldpath.Path) string {
	v, msg := walk(root, p)
	if msg != "" {
		return msg
	}
	switch v.(type) {
	case map[string]any, []any:
		return fmt.Sprintf("%s is %s in the sample; it must hold a single value", p, describe(v))
	}
	return ""
}
