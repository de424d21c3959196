package expr

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"github.com/bytedance/sonic/ast"
)

// Lazy returns a JSON document as the CEL value expressions read, without decoding it: an object's
// field or an array's element is found by scanning the text when an expression reads it (sonic's
// searcher), and only what is read is converted. `body.price * 100.0` on a 64 KiB order costs one
// scan to "price", where Decode would build the whole tree. The values are those Decode gives —
// objects are maps with string keys, arrays lists, every number a double, strings, bools, null — so an
// expression gives the same result over either (TestLazyIsDecode); iterating, comparing or converting
// a whole object or array decodes that part then.
//
// data must be valid JSON (the edge and the pipeline check every body first) and must not change
// while the value is in use; the value keeps a reference to it.
func Lazy(data []byte) any {
	raw := bytesString(data)
	// An object or an array is known by its first byte; it is not scanned until read (sonic's NewRaw
	// would skip over all of it to find its end, which the caller's check has done already).
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return &jsonObject{raw: raw[i:]}
		case '[':
			return &jsonArray{raw: raw[i:]}
		}
		break
	}
	v, err := nodeVal(ast.NewRaw(raw))
	if err != nil {
		return types.NewErr("body: %v", err)
	}
	return v
}

// nodeVal converts a raw node to its CEL value: objects and arrays stay lazy.
func nodeVal(n ast.Node) (ref.Val, error) {
	switch n.TypeSafe() {
	case ast.V_OBJECT:
		raw, err := n.Raw()
		if err != nil {
			return nil, err
		}
		return &jsonObject{raw: raw}, nil
	case ast.V_ARRAY:
		raw, err := n.Raw()
		if err != nil {
			return nil, err
		}
		return &jsonArray{raw: raw}, nil
	case ast.V_STRING:
		// A string without escapes is its raw text between the quotes; only one with escapes is
		// parsed (which copies it).
		if raw, err := n.Raw(); err == nil && len(raw) >= 2 && strings.IndexByte(raw, '\\') < 0 {
			return types.String(raw[1 : len(raw)-1]), nil
		}
		s, err := n.String()
		if err != nil {
			return nil, err
		}
		return types.String(s), nil
	case ast.V_NUMBER:
		raw, err := n.Raw()
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, fmt.Errorf("a number beyond a double's range: %s", raw)
		}
		if f == 0 {
			f = 0 // -0 reads as 0, as Decode gives it
		}
		return types.Double(f), nil
	case ast.V_TRUE:
		return types.True, nil
	case ast.V_FALSE:
		return types.False, nil
	case ast.V_NULL:
		return types.NullValue, nil
	}
	return nil, fmt.Errorf("not a JSON value")
}

// decoded is raw decoded in full, as CEL's own value: what a lazy value defers to for everything but
// reading a field or an element.
func decoded(raw string) ref.Val {
	v, err := Decode([]byte(raw))
	if err != nil {
		return types.NewErr("%v", err)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// jsonObject is a JSON object read on demand.
type jsonObject struct {
	raw      string
	searcher ast.Searcher // made on first use (search): a value, so the object is one allocation
	search   bool
	node     ast.Node // scratch for the searcher's answers (a field, not a local: see pipeline's searchInto)
	full     ref.Val  // decoded, once something needs all of it
}

var (
	_ traits.Mapper = (*jsonObject)(nil)
	_ traits.Lister = (*jsonArray)(nil)
)

func (o *jsonObject) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(key), false
	}
	if !o.search {
		o.searcher, o.search = *ast.NewSearcher(o.raw), true
		o.searcher.ValidateJSON = false
	}
	var err error
	if o.node, err = o.searcher.GetByPath(string(k)); err != nil {
		return nil, false
	}
	v, err := nodeVal(o.node)
	if err != nil {
		return types.NewErr("%s: %v", string(k), err), true
	}
	return v, true
}

func (o *jsonObject) Get(key ref.Val) ref.Val {
	v, found := o.Find(key)
	if !found {
		return types.ValOrErr(v, "no such key: %v", key)
	}
	return v
}

func (o *jsonObject) Contains(key ref.Val) ref.Val {
	v, found := o.Find(key)
	if !found && v != nil {
		return v
	}
	return types.Bool(found)
}

func (o *jsonObject) all() traits.Mapper {
	if o.full == nil {
		o.full = decoded(o.raw)
	}
	if m, ok := o.full.(traits.Mapper); ok {
		return m
	}
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, nil)
}

func (o *jsonObject) Iterator() traits.Iterator                   { return o.all().Iterator() }
func (o *jsonObject) Size() ref.Val                               { return o.all().Size() }
func (o *jsonObject) IsZeroValue() bool                           { return o.all().Size() == types.IntZero }
func (o *jsonObject) Type() ref.Type                              { return types.MapType }
func (o *jsonObject) Value() any                                  { return o.all().Value() }
func (o *jsonObject) Equal(other ref.Val) ref.Val                 { return o.all().Equal(other) }
func (o *jsonObject) ConvertToNative(t reflect.Type) (any, error) { return o.all().ConvertToNative(t) }
func (o *jsonObject) ConvertToType(t ref.Type) ref.Val {
	if t == types.MapType {
		return o
	}
	return o.all().ConvertToType(t)
}

// jsonArray is a JSON array read on demand: its elements are split once, on first use, and each
// converted when read.
type jsonArray struct {
	raw   string
	elems []ast.Node
	split bool
	err   error
	full  ref.Val
}

func (a *jsonArray) nodes() ([]ast.Node, error) {
	if !a.split {
		a.split = true
		n := ast.NewRaw(a.raw)
		a.elems, a.err = n.ArrayUseNode()
	}
	return a.elems, a.err
}

func (a *jsonArray) Get(index ref.Val) ref.Val {
	var i int64
	switch x := index.(type) {
	case types.Int:
		i = int64(x)
	case types.Uint:
		i = int64(x)
	case types.Double:
		if float64(x) != float64(int64(x)) {
			return types.NewErr("unsupported index value %v in list", x)
		}
		i = int64(x)
	default:
		return types.MaybeNoSuchOverloadErr(index)
	}
	elems, err := a.nodes()
	if err != nil {
		return types.NewErr("%v", err)
	}
	if i < 0 || i >= int64(len(elems)) {
		return types.NewErr("index out of bounds: %d", i)
	}
	v, err := nodeVal(elems[i])
	if err != nil {
		return types.NewErr("element %d: %v", i, err)
	}
	return v
}

func (a *jsonArray) Size() ref.Val {
	elems, err := a.nodes()
	if err != nil {
		return types.NewErr("%v", err)
	}
	return types.Int(len(elems))
}

func (a *jsonArray) Iterator() traits.Iterator { return &arrayIterator{a: a} }

func (a *jsonArray) Contains(v ref.Val) ref.Val {
	n, ok := a.Size().(types.Int)
	if !ok {
		return a.Size()
	}
	for i := range int64(n) {
		if a.Get(types.Int(i)).Equal(v) == types.True {
			return types.True
		}
	}
	return types.False
}

func (a *jsonArray) all() traits.Lister {
	if a.full == nil {
		a.full = decoded(a.raw)
	}
	if l, ok := a.full.(traits.Lister); ok {
		return l
	}
	return types.NewDynamicList(types.DefaultTypeAdapter, []any{})
}

func (a *jsonArray) Add(other ref.Val) ref.Val                   { return a.all().Add(other) }
func (a *jsonArray) IsZeroValue() bool                           { return a.Size() == types.IntZero }
func (a *jsonArray) Type() ref.Type                              { return types.ListType }
func (a *jsonArray) Value() any                                  { return a.all().Value() }
func (a *jsonArray) Equal(other ref.Val) ref.Val                 { return a.all().Equal(other) }
func (a *jsonArray) ConvertToNative(t reflect.Type) (any, error) { return a.all().ConvertToNative(t) }
func (a *jsonArray) ConvertToType(t ref.Type) ref.Val {
	if t == types.ListType {
		return a
	}
	return a.all().ConvertToType(t)
}

// arrayIterator walks a jsonArray's elements.
type arrayIterator struct {
	a *jsonArray
	i int64
}

func (it *arrayIterator) HasNext() ref.Val {
	n, ok := it.a.Size().(types.Int)
	return types.Bool(ok && it.i < int64(n))
}

func (it *arrayIterator) Next() ref.Val {
	v := it.a.Get(types.Int(it.i))
	it.i++
	return v
}

func (it *arrayIterator) Type() ref.Type        { return types.IteratorType }
func (it *arrayIterator) Value() any            { return nil }
func (it *arrayIterator) Equal(ref.Val) ref.Val { return types.False }
func (it *arrayIterator) ConvertToNative(reflect.Type) (any, error) {
	return nil, fmt.Errorf("an iterator has no native value")
}
func (it *arrayIterator) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("an iterator has no type conversion")
}

// bytesString views b as a string without copying: Lazy's data does not change while in use.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
