package expr

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/functions"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

// MaxStringBytes bounds the string (or bytes) that one +, replace, join or format may build. A + is
// linear, but a chain of them over one body string copies it again at every step; the others can grow
// with the square of their input: "x".replace("", s) puts s between every character, and a list of n
// references to one body string joins to n copies of it. CEL charges their cost only after building
// the result (and + on body values, dispatched at run time, not by length at all), so the cost limit
// alone would let one call allocate gigabytes from a megabyte body. The call is refused before it runs
// when its output would pass 1 MiB (for format, an estimate: the length of every string and bytes
// argument, list and map entries included, plus 32 bytes for each other value). Every other operation's
// output is linear in its operands and charged to the cost limit as it goes.
const MaxStringBytes = 1 << 20

// stringGuards redefines the overloads of replace, join and format (same ids and signatures, so the
// checker and the cost model see no difference) to check the size of their result before building it,
// then call the implementation ext.Strings gave them.
func stringGuards(env *cel.Env) ([]cel.EnvOption, error) {
	orig := make(map[string]*functions.Overload)
	for _, name := range []string{"replace", "join", "format"} {
		f, ok := env.Functions()[name]
		if !ok {
			return nil, fmt.Errorf("function %s is not declared", name)
		}
		bindings, err := f.Bindings()
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", name, err)
		}
		for _, b := range bindings {
			orig[b.Operator] = b
		}
	}
	get := func(id string) (*functions.Overload, error) {
		b, ok := orig[id]
		if !ok {
			return nil, fmt.Errorf("overload %s is not bound", id)
		}
		return b, nil
	}
	replace, err := get("string_replace_string_string")
	if err != nil {
		return nil, err
	}
	replaceN, err := get("string_replace_string_string_int")
	if err != nil {
		return nil, err
	}
	join, err := get("list_join")
	if err != nil {
		return nil, err
	}
	joinSep, err := get("list_join_string")
	if err != nil {
		return nil, err
	}
	format, err := get("string_format")
	if err != nil {
		return nil, err
	}
	if replace.Function == nil || replaceN.Function == nil || join.Unary == nil || joinSep.Binary == nil || format.Function == nil {
		return nil, fmt.Errorf("replace, join or format is not bound as expected")
	}
	str, list := cel.StringType, cel.ListType(cel.StringType)
	return []cel.EnvOption{
		cel.Function("replace",
			cel.MemberOverload("string_replace_string_string", []*cel.Type{str, str, str}, str,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					if err := checkReplace(args, -1); err != nil {
						return err
					}
					return replace.Function(args...)
				})),
			cel.MemberOverload("string_replace_string_string_int", []*cel.Type{str, str, str, cel.IntType}, str,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					n := int64(-1)
					if len(args) == 4 {
						if i, ok := args[3].(types.Int); ok {
							n = int64(i)
						}
					}
					if err := checkReplace(args, n); err != nil {
						return err
					}
					return replaceN.Function(args...)
				}))),
		cel.Function("join",
			cel.MemberOverload("list_join", []*cel.Type{list}, str,
				cel.UnaryBinding(func(l ref.Val) ref.Val {
					if err := checkJoin(l, ""); err != nil {
						return err
					}
					return join.Unary(l)
				})),
			cel.MemberOverload("list_join_string", []*cel.Type{list, str}, str,
				cel.BinaryBinding(func(l, sep ref.Val) ref.Val {
					s, _ := sep.(types.String)
					if err := checkJoin(l, string(s)); err != nil {
						return err
					}
					return joinSep.Binary(l, sep)
				}))),
		cel.Function("format",
			cel.MemberOverload("string_format", []*cel.Type{str, cel.ListType(cel.DynType)}, str,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					if len(args) == 2 {
						if s, ok := args[0].(types.String); ok {
							if n := len(s) + estimateSize(args[1], 0); n > MaxStringBytes {
								return tooLong("format", n)
							}
						}
					}
					return format.Function(args...)
				}))),
	}, nil
}

func tooLong(fn string, n int) ref.Val {
	return types.NewErr("%s would build a string of about %d bytes, over the limit of %d", fn, n, MaxStringBytes)
}

// checkReplace refuses a replace whose result would pass MaxStringBytes: the receiver, plus for each of
// the (at most n, if n ≥ 0) matches the difference between the new and the old text. An empty old text
// matches before every character and at the end.
func checkReplace(args []ref.Val, n int64) ref.Val {
	if len(args) < 3 {
		return nil
	}
	s, ok1 := args[0].(types.String)
	old, ok2 := args[1].(types.String)
	repl, ok3 := args[2].(types.String)
	if !ok1 || !ok2 || !ok3 || len(repl) <= len(old) {
		return nil // the guarded original reports wrong types; a shrinking replace needs no check
	}
	var count int64
	if old == "" {
		count = int64(utf8.RuneCountInString(string(s))) + 1
	} else {
		count = int64(strings.Count(string(s), string(old)))
	}
	if n >= 0 {
		count = min(count, n)
	}
	size := int64(len(s)) + count*int64(len(repl)-len(old))
	if size > MaxStringBytes {
		return tooLong("replace", int(min(size, 1<<40)))
	}
	return nil
}

// checkJoin refuses a join whose result would pass MaxStringBytes, stopping its count as soon as it does.
func checkJoin(v ref.Val, sep string) ref.Val {
	l, ok := v.(traits.Lister)
	if !ok {
		return nil
	}
	n, ok := l.Size().(types.Int)
	if !ok {
		return nil
	}
	size := 0
	if n > 0 {
		size = int(min(int64(n)-1, MaxStringBytes)) * len(sep)
	}
	for i := int64(0); i < int64(n) && size <= MaxStringBytes; i++ {
		if s, ok := l.Get(types.Int(i)).(types.String); ok {
			size += len(s)
		}
	}
	if size > MaxStringBytes {
		return tooLong("join", size)
	}
	return nil
}

// estimateSize estimates how many bytes format writes for v: strings and bytes at their length, other
// scalars at 32, lists and maps as their entries plus a few bytes each. It stops counting past
// MaxStringBytes, so it costs no more than the limit it checks.
func estimateSize(v ref.Val, depth int) int {
	const scalar = 32
	if depth > MaxResultDepth {
		return MaxStringBytes + 1
	}
	switch v := v.(type) {
	case types.String:
		return len(v)
	case types.Bytes:
		return len(v)
	case traits.Mapper:
		size := 2
		for it := v.Iterator(); it.HasNext() == types.True && size <= MaxStringBytes; {
			k := it.Next()
			size += 4 + estimateSize(k, depth+1) + estimateSize(v.Get(k), depth+1)
		}
		return size
	case traits.Lister:
		n, ok := v.Size().(types.Int)
		if !ok {
			return scalar
		}
		size := 2
		for i := int64(0); i < int64(n) && size <= MaxStringBytes; i++ {
			size += 2 + estimateSize(v.Get(types.Int(i)), depth+1)
		}
		return size
	}
	return scalar
}

// guardCalls wraps every + of the program so that string and bytes concatenation is refused before it
// builds a value over MaxStringBytes. Unlike replace and join it cannot be redefined as an overload: on
// body values (dyn) + is dispatched at run time to the operand's Add, outside the cost model, so
// "body.s + body.s + …" was charged 1 per + whatever the lengths. The wrapper does what the planned call
// does — evaluate both sides, add, charge the cost tracker — with the size check in between.
//
// It also guards matches, whose cost CEL charges after the match: a pattern longer than MaxPatternBytes,
// or one whose match would cost more than CostLimit by CEL's own model (a quarter of a unit per pattern
// byte for each tenth of the subject's bytes), is refused before the regular expression is compiled.
func guardCalls(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
	call, ok := i.(interpreter.InterpretableCall)
	if !ok {
		return i, nil
	}
	args := call.Args()
	if len(args) != 2 {
		return i, nil
	}
	switch call.Function() {
	case operators.Add:
		return &guardedAdd{InterpretableCall: call, lhs: args[0], rhs: args[1]}, nil
	case overloads.Matches:
		return &guardedMatch{InterpretableCall: call, lhs: args[0], rhs: args[1]}, nil
	}
	return i, nil
}

// MaxPatternBytes bounds a regular expression given to matches, literal or taken from the body.
const MaxPatternBytes = 1024

type guardedMatch struct {
	interpreter.InterpretableCall
	lhs, rhs interpreter.InterpretableV2
}

func (g *guardedMatch) Eval(act interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(act, g.Exec)
}

func (g *guardedMatch) Exec(frame *interpreter.ExecutionFrame) ref.Val {
	l := g.lhs.Exec(frame)
	if types.IsUnknownOrError(l) {
		return l
	}
	r := g.rhs.Exec(frame)
	if types.IsUnknownOrError(r) {
		return r
	}
	if s, ok := l.(types.String); ok {
		if p, ok := r.(types.String); ok {
			if len(p) > MaxPatternBytes {
				return types.LabelErrNode(g.ID(), types.NewErr("matches: pattern of %d bytes, over the limit of %d", len(p), MaxPatternBytes))
			}
			if cost := (uint64(len(s)) + 1) * uint64(len(p)) / 40; cost > CostLimit {
				return types.LabelErrNode(g.ID(), types.NewErr("matches on %d bytes with a pattern of %d would exceed the cost limit of %d", len(s), len(p), CostLimit))
			}
		}
	}
	var res ref.Val
	if m, ok := l.(traits.Matcher); ok {
		res = m.Match(r)
	} else {
		res = types.MaybeNoSuchOverloadErr(l)
	}
	res = types.LabelErrNode(g.ID(), res)
	if costs := frame.CostTracker(); costs != nil {
		costs.EvalBinary(frame, g.ID(), g.InterpretableCall, l, r, res)
	}
	return res
}

type guardedAdd struct {
	interpreter.InterpretableCall
	lhs, rhs interpreter.InterpretableV2
}

func (g *guardedAdd) Eval(act interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(act, g.Exec)
}

func (g *guardedAdd) Exec(frame *interpreter.ExecutionFrame) ref.Val {
	l := g.lhs.Exec(frame)
	if types.IsUnknownOrError(l) {
		return l
	}
	r := g.rhs.Exec(frame)
	if types.IsUnknownOrError(r) {
		return r
	}
	switch l := l.(type) {
	case types.String:
		if s, ok := r.(types.String); ok && len(l)+len(s) > MaxStringBytes {
			return types.LabelErrNode(g.ID(), tooLong("+", len(l)+len(s)))
		}
	case types.Bytes:
		if b, ok := r.(types.Bytes); ok && len(l)+len(b) > MaxStringBytes {
			return types.LabelErrNode(g.ID(), tooLong("+", len(l)+len(b)))
		}
	}
	var res ref.Val
	if adder, ok := l.(traits.Adder); ok {
		res = adder.Add(r)
	} else {
		res = types.MaybeNoSuchOverloadErr(l)
	}
	res = types.LabelErrNode(g.ID(), res)
	if costs := frame.CostTracker(); costs != nil {
		costs.EvalBinary(frame, g.ID(), g.InterpretableCall, l, r, res)
	}
	return res
}
