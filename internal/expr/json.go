package expr

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/inlet-dev/inlet/internal/wire"
)

// jsonWriter appends a CEL value as JSON to buf, refusing results deeper than MaxResultDepth or longer
// than MaxResultBytes (counted from start, where this result began) as soon as they get there, so a huge
// result is not written out in full before being refused.
type jsonWriter struct {
	buf   []byte
	start int
}

var (
	errTooDeep  = &EvalError{Message: fmt.Sprintf("result nests lists and maps deeper than %d levels", MaxResultDepth)}
	errTooLarge = &EvalError{Message: fmt.Sprintf("result is larger than %d bytes of JSON", MaxResultBytes)}
)

func (w *jsonWriter) full() bool { return len(w.buf)-w.start > MaxResultBytes }

func (w *jsonWriter) value(v ref.Val, depth int) error {
	switch v := v.(type) {
	case types.Null:
		w.buf = append(w.buf, "null"...)
	case types.Bool:
		w.buf = strconv.AppendBool(w.buf, bool(v))
	case types.Int:
		w.buf = strconv.AppendInt(w.buf, int64(v), 10)
	case types.Uint:
		w.buf = strconv.AppendUint(w.buf, uint64(v), 10)
	case types.Double:
		return w.double(float64(v))
	case types.String:
		if len(v) > MaxResultBytes {
			return errTooLarge
		}
		w.buf = wire.AppendJSONString(w.buf, string(v))
	case types.Bytes:
		if base64.StdEncoding.EncodedLen(len(v)) > MaxResultBytes {
			return errTooLarge
		}
		w.buf = append(w.buf, '"')
		w.buf = base64.StdEncoding.AppendEncode(w.buf, v)
		w.buf = append(w.buf, '"')
	case types.Timestamp:
		w.buf = append(w.buf, '"')
		w.buf = v.UTC().AppendFormat(w.buf, time.RFC3339Nano)
		w.buf = append(w.buf, '"')
	case types.Duration:
		w.buf = append(w.buf, '"')
		w.buf = strconv.AppendFloat(w.buf, v.Seconds(), 'f', -1, 64)
		w.buf = append(w.buf, 's', '"')
	case *types.Optional:
		if !v.HasValue() {
			w.buf = append(w.buf, "null"...)
			return nil
		}
		return w.value(v.GetValue(), depth)
	case traits.Mapper:
		return w.object(v, depth+1)
	case traits.Lister:
		return w.array(v, depth+1)
	case *types.Err:
		return &EvalError{Message: v.Error()}
	default:
		return &EvalError{Message: fmt.Sprintf("a result of type %s cannot be written as JSON", typeName(v))}
	}
	if w.full() {
		return errTooLarge
	}
	return nil
}

func (w *jsonWriter) double(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return &EvalError{Message: fmt.Sprintf("result %v is not a finite number (a division by zero?)", f)}
	}
	abs := math.Abs(f)
	if abs <= 1<<53 && f == math.Trunc(f) {
		w.buf = strconv.AppendInt(w.buf, int64(f), 10)
		return nil
	}
	// The same choice as encoding/json: plain decimals in the range people read, exponents outside it.
	format := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	w.buf = strconv.AppendFloat(w.buf, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7
		n := len(w.buf)
		if n >= 4 && w.buf[n-4] == 'e' && w.buf[n-3] == '-' && w.buf[n-2] == '0' {
			w.buf[n-2] = w.buf[n-1]
			w.buf = w.buf[:n-1]
		}
	}
	return nil
}

func (w *jsonWriter) array(l traits.Lister, depth int) error {
	if depth > MaxResultDepth {
		return errTooDeep
	}
	n, ok := l.Size().(types.Int)
	if !ok {
		return &EvalError{Message: "a list result has no size"}
	}
	w.buf = append(w.buf, '[')
	for i := range int64(n) {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		if err := w.value(l.Get(types.Int(i)), depth); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, ']')
	return nil
}

// mapEntry is one map entry as written: the key as its JSON text, the key as CEL knows it.
type mapEntry struct {
	name string
	key  ref.Val
}

// object writes a map with its keys sorted, so the same value always gives the same bytes (CEL maps built
// from Go maps iterate in random order). Int, uint and bool keys are written as strings, as in proto3
// JSON.
func (w *jsonWriter) object(m traits.Mapper, depth int) error {
	if depth > MaxResultDepth {
		return errTooDeep
	}
	var entries []mapEntry
	if n, ok := m.Size().(types.Int); ok && n > 0 {
		entries = make([]mapEntry, 0, min(int(n), MaxResultBytes/4))
	}
	for it := m.Iterator(); it.HasNext() == types.True; {
		k := it.Next()
		var name string
		switch k := k.(type) {
		case types.String:
			name = string(k)
		case types.Int:
			name = strconv.FormatInt(int64(k), 10)
		case types.Uint:
			name = strconv.FormatUint(uint64(k), 10)
		case types.Bool:
			name = strconv.FormatBool(bool(k))
		default:
			return &EvalError{Message: fmt.Sprintf("a map key of type %s cannot be written as JSON", typeName(k))}
		}
		entries = append(entries, mapEntry{name, k})
		// Every entry takes at least 4 bytes ("":x), so past this many the result cannot fit.
		if len(entries) > MaxResultBytes/4 {
			return errTooLarge
		}
	}
	slices.SortFunc(entries, func(a, b mapEntry) int { return cmp.Compare(a.name, b.name) })
	w.buf = append(w.buf, '{')
	for i, e := range entries {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = wire.AppendJSONString(w.buf, e.name)
		w.buf = append(w.buf, ':')
		if err := w.value(m.Get(e.key), depth); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, '}')
	return nil
}
