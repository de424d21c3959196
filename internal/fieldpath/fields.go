package fieldpath

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/inlet-dev/inlet/internal/jsonvalid"
)

// MaxExample bounds Field.Example, in bytes; longer values are cut at a character boundary and end with
// "…".
const MaxExample = 80

// ErrTooManyFields is returned by Fields, together with the first max fields, when the sample has more.
var ErrTooManyFields = errors.New("sample payload has too many fields")

// JSON types reported by Fields.
const (
	TypeString  = "string"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeNull    = "null"
	TypeObject  = "object"
	TypeArray   = "array"
)

// Field is one field of a sample payload.
type Field struct {
	// Path in canonical form; Parse accepts it.
	Path string `json:"path"`
	// Type is one of the JSON types: string, number, boolean, null, object, array.
	Type string `json:"type"`
	// Example is the sample's value as text: a string's content (not quoted), a number or boolean
	// literal, "null"; empty for objects and arrays. At most MaxExample bytes.
	Example string `json:"example"`
}

// Fields lists every field of the JSON document sample in document order: each object and array
// (before what it holds) and each scalar, at most max of them. The top-level value itself is not a
// field. Containers deeper than MaxDepth are listed but not entered, since no path could name what is
// inside. A sample the edge would refuse as a webhook body — one that breaks package jsonvalid's rule
// (invalid JSON or UTF-8, a control character or lone surrogate in a string, a key repeated in an
// object), or nests deeper than jsonvalid.DefaultDepth — is refused with its *jsonvalid.Error, worded
// as the activity log words the edge's refusal.
func Fields(sample []byte, max int) ([]Field, error) {
	if err := jsonvalid.Validate(sample, jsonvalid.DefaultDepth); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(sample))
	dec.UseNumber()
	w := walker{dec: dec, max: max}
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxErr(err, dec)
	}
	if err := w.value(tok, nil); err != nil {
		if errors.Is(err, ErrTooManyFields) {
			return w.out, err
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("sample payload: more than one JSON value (byte %d)", dec.InputOffset())
	}
	return w.out, nil
}

type walker struct {
	dec *json.Decoder
	max int
	out []Field
}

func syntaxErr(err error, dec *json.Decoder) error {
	if err == io.EOF {
		return errors.New("sample payload: empty")
	}
	return fmt.Errorf("sample payload: invalid JSON near byte %d: %w", dec.InputOffset(), err)
}

// value handles the value that starts with tok, found at steps (nil for the top level).
func (w *walker) value(tok json.Token, steps []Step) error {
	var typ, ex string
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			typ = TypeObject
		} else {
			typ = TypeArray
		}
	case string:
		typ, ex = TypeString, truncate(v)
	case json.Number:
		typ, ex = TypeNumber, truncate(string(v))
	case bool:
		typ, ex = TypeBoolean, strconv.FormatBool(v)
	case nil:
		typ, ex = TypeNull, "null"
	}
	if len(steps) > 0 {
		if err := w.emit(steps, typ, ex); err != nil {
			return err
		}
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	enter := len(steps) < MaxDepth
	if d == '{' {
		for w.dec.More() {
			kt, err := w.dec.Token()
			if err != nil {
				return syntaxErr(err, w.dec)
			}
			if err := w.child(steps, Step{Key: kt.(string)}, enter); err != nil {
				return err
			}
		}
	} else {
		for i := 0; w.dec.More(); i++ {
			if err := w.child(steps, Step{Index: i, IsIndex: true}, enter && i <= MaxIndex); err != nil {
				return err
			}
		}
	}
	if _, err := w.dec.Token(); err != nil { // the closing delimiter
		return syntaxErr(err, w.dec)
	}
	return nil
}

func (w *walker) child(steps []Step, st Step, enter bool) error {
	tok, err := w.dec.Token()
	if err != nil {
		return syntaxErr(err, w.dec)
	}
	if !enter {
		return w.skip(tok)
	}
	// A fresh slice per level: steps is shared by siblings.
	next := make([]Step, len(steps)+1)
	copy(next, steps)
	next[len(steps)] = st
	return w.value(tok, next)
}

// skip consumes the rest of a value whose first token is tok.
func (w *walker) skip(tok json.Token) error {
	if _, ok := tok.(json.Delim); !ok {
		return nil
	}
	for depth := 1; depth > 0; {
		t, err := w.dec.Token()
		if err != nil {
			return syntaxErr(err, w.dec)
		}
		if d, ok := t.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

func (w *walker) emit(steps []Step, typ, ex string) error {
	// Paths are unique without checking: jsonvalid refused repeated keys.
	p := Path{steps: steps}.String()
	if len(w.out) >= w.max {
		return fmt.Errorf("%w: more than %d", ErrTooManyFields, w.max)
	}
	w.out = append(w.out, Field{Path: p, Type: typ, Example: ex})
	return nil
}

func truncate(s string) string {
	if len(s) <= MaxExample {
		return s
	}
	cut := MaxExample - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
