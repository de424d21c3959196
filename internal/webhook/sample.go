package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/fieldpath"
)

// checkSample checks the mappings against the webhook's sample payload, so that a mapping that can
// never fill its attribute is refused when saved rather than found in the activity log: a path the
// sample does not have (a missing key, an index out of range, a step into a scalar), a list attribute
// mapped to an array holding objects or arrays, and a scalar attribute mapped to an object or an
// array. A null in the sample proves nothing and passes. A path that names a kept header
// (headers.<Name>, see the pipeline's header rule) is not the payload's and is not checked. Each
// problem is reported as mappings[i].field. The mappings' paths are canonical and the sample valid:
// validate has checked both.
func checkSample(sample string, mappings []Mapping, ev *Event, kept []string, e *domainerr.ValidationError) {
	dec := json.NewDecoder(strings.NewReader(sample))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return // validate reports the sample itself
	}
	for i, m := range mappings {
		p, err := fieldpath.Parse(m.Field)
		if err != nil || keptHeaderPath(p, kept) {
			continue
		}
		typ, ok := attributeType(ev, m.Attribute)
		if !ok {
			continue
		}
		if msg := sampleProblem(root, p, typ); msg != "" {
			e.Add(fmt.Sprintf("mappings[%d].field", i), "%s", msg)
		}
	}
}

// sampleProblem says what is wrong with reading p as a typ attribute from root ("" for nothing).
func sampleProblem(root any, p fieldpath.Path, typ AttrType) string {
	v := root
	var at bytes.Buffer // the path walked so far, for the message
	for _, st := range p.Steps() {
		where := at.String()
		if where == "" {
			where = "the sample payload"
		}
		if st.IsIndex {
			arr, ok := v.([]any)
			if !ok {
				return fmt.Sprintf("%s is %s in the sample, not an array, so it has no [%d]", where, describe(v), st.Index)
			}
			if st.Index < 0 || st.Index >= len(arr) {
				return fmt.Sprintf("index %d is out of range: %s has %d items in the sample", st.Index, where, len(arr))
			}
			v = arr[st.Index]
			at.WriteString("[" + strconv.Itoa(st.Index) + "]")
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s is %s in the sample, not an object, so it has no key %q", where, describe(v), st.Key)
		}
		if v, ok = obj[st.Key]; !ok {
			if at.Len() == 0 {
				return fmt.Sprintf("%s is not in the sample payload (it has no key %q)", p, st.Key)
			}
			return fmt.Sprintf("%s is not in the sample payload: %s has no key %q", p, where, st.Key)
		}
		if at.Len() > 0 {
			at.WriteByte('.')
		}
		at.WriteString(st.Key)
	}
	switch x := v.(type) {
	case map[string]any:
		return fmt.Sprintf("%s is an object in the sample; a %s attribute takes %s", p, typ, takes(typ))
	case []any:
		if typ != TypeList {
			return fmt.Sprintf("%s is an array in the sample; a %s attribute takes a single value", p, typ)
		}
		for j, item := range x {
			switch item.(type) {
			case map[string]any, []any:
				return fmt.Sprintf("%s is an array of %ss in the sample (item %d); a list attribute takes strings, numbers or booleans: map a field of the items instead", p, kindOf(item), j)
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
