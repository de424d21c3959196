// Package fieldpath is the syntax that names a field inside a webhook's JSON payload, used by a webhook's
// identifier and its attribute mappings, and the few operations on it: parse, print, look the field up in
// a raw payload, and list every field of a sample payload for the console's dropdowns.
//
// # Syntax
//
// A path is a sequence of steps. A step is an object key or an array index:
//
//	email_address          key "email_address" of the top-level object
//	customer.email         key "email" of the object under key "customer"
//	line_items[0].sku      key "sku" of the first element of the array under "line_items"
//	["order.id"]           key "order.id" (a key that contains a dot)
//	meta["x.y"][2]         third element of the array under key "x.y" of the object under "meta"
//	[0].id                 key "id" of the first element of a top-level array
//
// A bare key matches [A-Za-z0-9_$@-]+ and is written after a dot (or at the very start). Any other key
// (empty, or with a dot, space, bracket, quote, non-ASCII letter …) is written in brackets as a JSON
// string with JSON escapes: ["a b"], ["\"quoted\""], ["caf\u00e9"] or ["café"]. [N] is an array index:
// decimal digits without a leading zero (N ≤ MaxIndex). Nothing else is allowed: no spaces around the
// steps, no empty steps ("a..b", "a."), no wildcards.
//
// Every path has one canonical form, given by String: keys bare when they can be, brackets otherwise,
// with the shortest JSON escaping. Parse(p.String()) always gives back p.
//
// Limits: MaxLen bytes of path text and MaxDepth steps.
package fieldpath

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/ast"
)

// Limits of a path.
const (
	// MaxLen bounds the text of a path, in bytes.
	MaxLen = 512
	// MaxDepth bounds the number of steps.
	MaxDepth = 32
	// MaxIndex bounds an array index.
	MaxIndex = 1_000_000
)

// ErrNotFound is returned by Get when the payload has no value at the path (a key is missing, an index
// is out of range, or a step meets a value of the other kind, e.g. an index into an object).
var ErrNotFound = errors.New("field not found")

// Step is one element of a path: a key when IsIndex is false, an array index otherwise.
type Step struct {
	Key     string
	Index   int
	IsIndex bool
}

// Path is a parsed field path. The zero Path is empty and matches nothing; Parse never returns it.
type Path struct {
	steps []Step
	// keys is the same path in the form sonic's searcher takes (string keys, int indexes), built once so
	// that Get allocates nothing for it.
	keys []any
}

// SyntaxError says what is wrong with a path and where (byte offset into the text).
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid field path at byte %d: %s", e.Pos, e.Msg)
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '$' || c == '@' || c == '-'
}

// Parse reads a path in the syntax of the package doc. Errors are *SyntaxError.
func Parse(s string) (Path, error) {
	if s == "" {
		return Path{}, &SyntaxError{0, "empty path"}
	}
	if len(s) > MaxLen {
		return Path{}, &SyntaxError{MaxLen, fmt.Sprintf("path is %d bytes, longer than %d", len(s), MaxLen)}
	}
	var steps []Step
	i := 0
	for i < len(s) {
		if len(steps) == MaxDepth {
			return Path{}, &SyntaxError{i, fmt.Sprintf("more than %d steps", MaxDepth)}
		}
		switch c := s[i]; {
		case c == '[':
			st, n, err := parseBracket(s, i)
			if err != nil {
				return Path{}, err
			}
			steps = append(steps, st)
			i = n
		case c == '.' && i > 0:
			i++
			st, n, err := parseBare(s, i)
			if err != nil {
				return Path{}, err
			}
			steps = append(steps, st)
			i = n
		case i == 0 && isBare(c):
			st, n, _ := parseBare(s, i)
			steps = append(steps, st)
			i = n
		default:
			return Path{}, &SyntaxError{i, fmt.Sprintf("unexpected %s; want '.key' or '[…]'", quoteChar(s, i))}
		}
	}
	return newPath(steps), nil
}

// MustParse is Parse for paths known to be valid (tests, constants); it panics on an error.
func MustParse(s string) Path {
	p, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

func parseBare(s string, i int) (Step, int, error) {
	j := i
	for j < len(s) && isBare(s[j]) {
		j++
	}
	if j == i {
		if i == len(s) {
			return Step{}, 0, &SyntaxError{i, "path ends after '.'; want a key"}
		}
		return Step{}, 0, &SyntaxError{i, fmt.Sprintf("unexpected %s after '.'; want a key of [A-Za-z0-9_$@-] or use [\"…\"]", quoteChar(s, i))}
	}
	return Step{Key: s[i:j]}, j, nil
}

func parseBracket(s string, i int) (Step, int, error) {
	open := i
	i++ // '['
	if i >= len(s) {
		return Step{}, 0, &SyntaxError{i, "path ends after '['"}
	}
	var st Step
	switch c := s[i]; {
	case c == '"':
		end, err := scanString(s, i)
		if err != nil {
			return Step{}, 0, err
		}
		var key string
		if err := json.Unmarshal([]byte(s[i:end]), &key); err != nil {
			return Step{}, 0, &SyntaxError{i, "invalid JSON string: " + err.Error()}
		}
		st = Step{Key: key}
		i = end
	case c >= '0' && c <= '9':
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if s[i] == '0' && j-i > 1 {
			return Step{}, 0, &SyntaxError{i, "array index with a leading zero"}
		}
		if j-i > 7 {
			return Step{}, 0, &SyntaxError{i, fmt.Sprintf("array index larger than %d", MaxIndex)}
		}
		n, _ := strconv.Atoi(s[i:j])
		if n > MaxIndex {
			return Step{}, 0, &SyntaxError{i, fmt.Sprintf("array index larger than %d", MaxIndex)}
		}
		st = Step{Index: n, IsIndex: true}
		i = j
	default:
		return Step{}, 0, &SyntaxError{i, fmt.Sprintf("unexpected %s after '['; want an index or a JSON string", quoteChar(s, i))}
	}
	if i >= len(s) || s[i] != ']' {
		return Step{}, 0, &SyntaxError{i, fmt.Sprintf("'[' at byte %d is not closed by ']'", open)}
	}
	return st, i + 1, nil
}

// scanString finds the end (exclusive) of the JSON string starting at s[i] == '"'. It only delimits;
// json.Unmarshal then checks the escapes and the UTF-8.
func scanString(s string, i int) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '\\':
			j++
		case c == '"':
			return j + 1, nil
		case c < 0x20:
			return 0, &SyntaxError{j, "control character in a quoted key; escape it"}
		}
	}
	return 0, &SyntaxError{i, "quoted key is not terminated"}
}

func quoteChar(s string, i int) string {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return strconv.QuoteRune(r)
}

func newPath(steps []Step) Path {
	keys := make([]any, len(steps))
	for i, st := range steps {
		if st.IsIndex {
			keys[i] = st.Index
		} else {
			keys[i] = st.Key
		}
	}
	return Path{steps: steps, keys: keys}
}

// Keys returns p in the form sonic's searcher takes: a string per key, an int per index. The slice must
// not be modified.
func (p Path) Keys() []any { return p.keys }

// Steps returns the steps of p. The slice must not be modified.
func (p Path) Steps() []Step { return p.steps }

// IsZero reports whether p is the empty Path.
func (p Path) IsZero() bool { return len(p.steps) == 0 }

// Equal reports whether p and q name the same field.
func (p Path) Equal(q Path) bool {
	if len(p.steps) != len(q.steps) {
		return false
	}
	for i := range p.steps {
		if p.steps[i] != q.steps[i] {
			return false
		}
	}
	return true
}

// String is the canonical form of p.
func (p Path) String() string {
	var b strings.Builder
	for i, st := range p.steps {
		appendStep(&b, st, i == 0)
	}
	return b.String()
}

func appendStep(b *strings.Builder, st Step, first bool) {
	switch {
	case st.IsIndex:
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(st.Index))
		b.WriteByte(']')
	case bareKey(st.Key):
		if !first {
			b.WriteByte('.')
		}
		b.WriteString(st.Key)
	default:
		b.WriteByte('[')
		writeJSONString(b, st.Key)
		b.WriteByte(']')
	}
}

func bareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isBare(k[i]) {
			return false
		}
	}
	return true
}

// writeJSONString writes k as a JSON string with the minimal escaping (unlike encoding/json, which
// escapes <, > and & for HTML). Invalid UTF-8 is written as U+FFFD, as Unmarshal would read it.
func writeJSONString(b *strings.Builder, k string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for _, r := range k {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// Get finds the value at p in the raw JSON document src without decoding the rest of it. The returned
// node is a copy and does not reference src. A missing field answers ErrNotFound; a JSON null is found,
// with type ast.V_NULL.
//
// src must be well-formed JSON (the edge checks every body before it is accepted): Get does not
// validate what it skips, and sonic reports a step that meets the wrong kind of value (an index into an
// object, a key into a string) as a syntax error, which Get therefore reads as ErrNotFound.
func (p Path) Get(src []byte) (ast.Node, error) {
	if len(p.keys) == 0 {
		return ast.Node{}, ErrNotFound
	}
	n, err := sonic.Get(src, p.keys...)
	if err != nil {
		return ast.Node{}, ErrNotFound
	}
	if err := n.Check(); err != nil {
		return ast.Node{}, fmt.Errorf("field %s: %w", p, err)
	}
	return n, nil
}

// Root is the first step of a path that starts at the request body rather than at the array element a
// fan-out route reads: "$.customer.email". Outside a fan-out it changes nothing ("$.email" is "email");
// "$" alone is the body itself (a fan-out over a top-level array). A payload key spelled "$" at the top
// level is reached as ["$"] only in a bracket after another step; at the start it is always the root.
const Root = "$"

// FromRoot splits off a leading Root step: it reports whether p starts with one and returns the rest
// (the zero Path for "$" alone).
func (p Path) FromRoot() (bool, Path) {
	if len(p.steps) == 0 || p.steps[0].IsIndex || p.steps[0].Key != Root {
		return false, p
	}
	if len(p.steps) == 1 {
		return true, Path{}
	}
	return true, Path{steps: p.steps[1:], keys: p.keys[1:]}
}
