package expr

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
	"github.com/bytedance/sonic"
)

// Input is what one evaluation sees. It is reusable: the pipeline keeps one per goroutine and overwrites
// its fields per request or element; an evaluation does not retain it or anything it points to, except
// inside the result it has already written.
type Input struct {
	// Body is the payload as Decode returned it (nil is JSON null).
	Body any
	// Headers holds every header the webhook keeps, under its configured name, "" when the request lacks
	// it. Lookup ignores ASCII case (see the package doc), so the map needs each name once.
	Headers map[string]string
	// Item is the fan-out element, a value from Decode's tree; ignored unless compiled with FanOut.
	Item any
	// Index is Item's position in its array; ignored unless compiled with FanOut.
	Index int
}

// Decode decodes a JSON payload into the tree expressions read: map[string]any, []any, float64, string,
// bool and nil. Every number is a float64, as in CEL's JSON mapping, so integers beyond ±2^53 lose
// precision (a fieldpath mapping keeps them exact; an expression is for arithmetic), and a number beyond
// a double's range (2e700, valid JSON) is an error. data must already be valid, depth-bounded JSON: the
// ingest path validates every body before it is stored. The tree shares no memory with data (sonic
// decodes from its own copy), so a caller may reuse its buffer.
func Decode(data []byte) (any, error) {
	var v any
	if err := sonic.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("decode payload of %d bytes: %w", len(data), err)
	}
	return v, nil
}

// EvalError is a failure of one evaluation: a missing key, no operator for the operand types, division by
// zero, the cost limit, a result that cannot be JSON or is too large. Message is short and meant for the
// user who wrote the expression ("no such key: payment_state").
type EvalError struct {
	Message string
	cause   error // ErrCostLimit, or nil
}

func (e *EvalError) Error() string { return e.Message }

// Unwrap gives ErrCostLimit for an evaluation stopped at CostLimit.
func (e *EvalError) Unwrap() error { return e.cause }

// ErrCostLimit is wrapped by the EvalError of an evaluation stopped at CostLimit, so a caller can count
// those apart from data-dependent failures: they say the expression is too expensive for the body, not
// that the body lacks something.
var ErrCostLimit = errors.New("cost limit exceeded")

// activation resolves the four names over an Input without building a map per evaluation. It is the
// Input itself under another method set: a pointer, so passing it as an interface does not allocate.
type activation Input

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "body":
		if a.Body == nil {
			return types.NullValue, true
		}
		return a.Body, true
	case "headers":
		return headerMap(a.Headers), true
	case "item":
		if a.Item == nil {
			return types.NullValue, true
		}
		return a.Item, true
	case "index":
		return types.Int(a.Index), true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// eval runs p on in and turns every failure into an EvalError.
func (p *Program) eval(in *Input) (ref.Val, error) {
	out, _, err := p.prg.Eval((*activation)(in))
	if err != nil {
		return nil, evalError(err)
	}
	return out, nil
}

// evalError words a CEL evaluation error for a user.
func evalError(err error) error {
	var cancelled interpreter.EvalCancelledError
	if errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded {
		return &EvalError{Message: fmt.Sprintf("cost limit of %d exceeded", CostLimit), cause: ErrCostLimit}
	}
	m := err.Error()
	// CEL says "no such overload" when an operator or function has no version for the operand types it
	// met at run time. The usual cause: a body number (a double) beside an int literal, body.n / 100.
	const hint = "; numbers from the body are doubles, so write 100.0 rather than 100, or convert with int(), double() or string()"
	if m == "no such overload" {
		m = "no operator for these operand types" + hint
	} else if call, ok := strings.CutPrefix(m, "no such overload: "); ok {
		m = "no function " + call + hint
	}
	return &EvalError{Message: m}
}

// AppendJSON evaluates p on in and appends the result to dst as one JSON value:
//
//	bool, null           true, false, null
//	int, uint            an integer
//	double               an integer when integral within ±2^53 (1999.0 → 1999), else the shortest
//	                     decimal that reads back the same; NaN and ±Inf are an error
//	string               a JSON string (invalid UTF-8 becomes U+FFFD)
//	bytes                a base64 (standard, padded) string
//	timestamp            an RFC 3339 string in UTC, fraction only as long as needed
//	duration             CEL's string form, seconds with an "s": "90s", "1.5s"
//	list, map            an array, an object with keys sorted (int, uint and bool keys as strings)
//	optional             its value, or null when none
//
// A failure is an *EvalError and leaves dst as it was (returned unchanged).
func (p *Program) AppendJSON(dst []byte, in *Input) ([]byte, error) {
	out, err := p.eval(in)
	if err != nil {
		return dst, err
	}
	w := jsonWriter{buf: dst, start: len(dst)}
	if err := w.value(out, 0); err != nil {
		return dst, err
	}
	return w.buf, nil
}

// Bool evaluates a condition. A result that is not a bool is an *EvalError (possible only when the
// expression's static type is dyn, e.g. body.paid).
func (p *Program) Bool(in *Input) (bool, error) {
	out, err := p.eval(in)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, &EvalError{Message: fmt.Sprintf("a condition must be true or false, but this one gave %s", typeName(out))}
	}
	return bool(b), nil
}

// typeName names a value's CEL type for a message.
func typeName(v ref.Val) string {
	if v == nil {
		return "nothing"
	}
	if v == types.NullValue {
		return "null"
	}
	return v.Type().TypeName()
}

// headerMap is the headers variable: a CEL map over the kept headers whose lookups ignore ASCII case, as
// HTTP header names do. An exact match is tried first (the configured name, one map lookup); a differently
// cased name costs a scan of the kept headers, a handful. It is a map under another name, so it converts
// to an interface without allocating. Operations other than lookup (iteration, equality, conversion)
// delegate to CEL's own string map.
type headerMap map[string]string

var _ traits.Mapper = headerMap(nil)

func (h headerMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(key), false
	}
	if v, ok := h[string(k)]; ok {
		return types.String(v), true
	}
	for name, v := range h {
		if strings.EqualFold(name, string(k)) {
			return types.String(v), true
		}
	}
	return nil, false
}

func (h headerMap) Get(key ref.Val) ref.Val {
	v, found := h.Find(key)
	if !found {
		return types.ValOrErr(v, "no such key: %v", key)
	}
	return v
}

func (h headerMap) Contains(key ref.Val) ref.Val {
	v, found := h.Find(key)
	if !found && v != nil {
		return v
	}
	return types.Bool(found)
}

func (h headerMap) std() traits.Mapper {
	return types.NewStringStringMap(types.DefaultTypeAdapter, map[string]string(h))
}

func (h headerMap) Iterator() traits.Iterator { return h.std().Iterator() }
func (h headerMap) Size() ref.Val             { return types.Int(len(h)) }
func (h headerMap) IsZeroValue() bool         { return len(h) == 0 }
func (h headerMap) Type() ref.Type            { return types.MapType }
func (h headerMap) Value() any                { return map[string]string(h) }
func (h headerMap) Equal(other ref.Val) ref.Val {
	return h.std().Equal(other)
}
func (h headerMap) ConvertToNative(t reflect.Type) (any, error) { return h.std().ConvertToNative(t) }
func (h headerMap) ConvertToType(t ref.Type) ref.Val {
	if t == types.MapType {
		return h
	}
	return h.std().ConvertToType(t)
}

// ResultKind is what a Result holds.
type ResultKind uint8

// The kinds of Result.
const (
	ResultNull   ResultKind = iota
	ResultString            // Str
	ResultNumber            // Number: the number's JSON text, as AppendJSON writes it
	ResultBool              // Bool
	ResultJSON              // JSON: a list, a map, a timestamp, bytes … as AppendJSON writes it
)

// Result is an expression's value as Eval gives it: a scalar as it is, anything else as JSON. Its
// buffers are reused from one Eval to the next.
type Result struct {
	Kind   ResultKind
	Str    string
	Bool   bool
	Number []byte
	JSON   []byte
}

// Eval evaluates p on in into r: what AppendJSON would write, but a string, a number or a bool given
// as it is, so that a caller reading scalars does not parse the JSON text back. A failure is an
// *EvalError, as AppendJSON's.
func (p *Program) Eval(in *Input, r *Result) error {
	out, err := p.eval(in)
	if err != nil {
		return err
	}
	if o, ok := out.(*types.Optional); ok {
		if !o.HasValue() {
			r.Kind = ResultNull
			return nil
		}
		out = o.GetValue()
	}
	switch v := out.(type) {
	case types.Null:
		r.Kind = ResultNull
	case types.String:
		if len(v) > MaxResultBytes {
			return errTooLarge
		}
		r.Kind, r.Str = ResultString, string(v)
	case types.Bool:
		r.Kind, r.Bool = ResultBool, bool(v)
	case types.Int, types.Uint, types.Double:
		w := jsonWriter{buf: r.Number[:0]}
		if err := w.value(v, 0); err != nil {
			return err
		}
		r.Kind, r.Number = ResultNumber, w.buf
	default:
		w := jsonWriter{buf: r.JSON[:0]}
		if err := w.value(out, 0); err != nil {
			return err
		}
		r.Kind, r.JSON = ResultJSON, w.buf
	}
	return nil
}
