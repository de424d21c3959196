// Package expr is the expression language of webhook mappings: an attribute value or a route condition
// written in CEL (cel.dev/cel-go) instead of a plain field path, for what a path cannot say — cents to a
// price, two fields joined, a default for a missing key, a condition on a header. An expression is
// compiled and type-checked once per config version (Compile) and evaluated per request, from many
// goroutines, into JSON (AppendJSON) or a bool (Bool).
//
// # What an expression sees
//
//	body     dyn                  the payload decoded from JSON by Decode, following the JSON→CEL mapping
//	                              of google.protobuf.Value: objects are maps with string keys, arrays lists,
//	                              every number a double (write 100.0, not 100, beside a body number),
//	                              strings, bools, null.
//	headers  map(string, string)  the sender headers the webhook keeps; a kept header the request lacks is
//	                              "" (so headers["X-Shopify-Topic"] == "orders/paid" is false when absent).
//	                              Lookup ignores ASCII case, as HTTP does: headers["x-shopify-topic"] and
//	                              headers["X-Shopify-Topic"] are the same header. A header that is not kept
//	                              is "no such key".
//	item     dyn                  fan-out routes only (Options.FanOut): the current array element.
//	index    int                  fan-out routes only: its position, from 0.
//
// Outside a fan-out route item and index are undeclared: using them is a compile error, not a null.
//
// The CEL standard library is there (arithmetic, comparisons, size, matches, timestamp("…"), duration,
// the macros has, all, exists, exists_one, map, filter), with optional values (body.?x.orValue("none"),
// cel.OptionalTypes), the string extension (lowerAscii, upperAscii, split, replace, trim, join, substring,
// indexOf …, ext.Strings) and the math extension (math.greatest, math.least, math.round, math.ceil …,
// ext.Math).
//
// # Limits
//
// Everything an expression can spend is bounded, because a mapping is written by a user and runs on
// every request of the webhook: MaxSourceLen bytes of source, MaxNesting levels of parser recursion,
// MaxNodes AST nodes after macro expansion, CostLimit units of CEL runtime cost per evaluation (CEL has no
// unbounded loops, but a comprehension over a large body array, or one nested in another, is stopped
// here), MaxStringBytes for the string one +, replace, join or format builds and MaxPatternBytes for a
// pattern given to matches (checked before the call, as CEL charges these after it and a chain of them
// can grow with the square of the body), and a result of at most MaxResultDepth nested lists/maps and
// MaxResultBytes of JSON.
package expr

import (
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// Limits of an expression. Each is checked at compile time or on every evaluation; none can be raised by
// the expression's author.
const (
	// MaxSourceLen bounds the source text, in bytes. 4 KiB is many times the longest mapping we have seen
	// (a few hundred bytes); it keeps parsing and error snippets cheap.
	MaxSourceLen = 4096
	// MaxNesting bounds the parser's recursion depth: how deeply calls, operators and parentheses nest.
	// cel-go's own default (250) is far beyond what a mapping needs and costs stack on every check.
	MaxNesting = 64
	// MaxNodes bounds the AST nodes of an expression, counted after macro expansion (each map/filter/
	// exists adds a few). It bounds the checker's and planner's work per compile.
	MaxNodes = 2000
	// CostLimit bounds one evaluation, in CEL runtime cost units (about one per operation or field
	// access, a few per element a comprehension steps over, more for string operations in proportion to
	// their length). 100,000 lets an expression search, map or filter a body array of several thousand
	// elements (body.items.exists(i, i.n < 0.0) costs about 7 per element, body.items.map(i, i.sku)
	// about 14: some 7,000 elements) and stops a comprehension nested in another over the same array
	// long before its square (a 1,000-element array against itself is a million steps) within a few
	// milliseconds. Price arithmetic on a field costs 3.
	CostLimit = 100_000
	// MaxResultDepth bounds how deeply lists and maps nest in a result. It is the edge's default
	// max_json_depth (jsonvalid.DefaultDepth), so a part of a body accepted with the defaults fits.
	MaxResultDepth = 64
	// MaxResultBytes bounds the JSON of one result: the pipeline's default max_attribute_bytes. A value
	// larger than that is a mistake (a whole body copied into one attribute) and is refused while being
	// written, before the whole of it is.
	MaxResultBytes = 64 << 10
)

// Kind is what an expression is for.
type Kind uint8

const (
	// Condition is a route condition: its type must be bool (or dyn, in which case a non-bool result is
	// an evaluation error).
	Condition Kind = iota
	// Value is an attribute value: any JSON-representable result.
	Value
)

func (k Kind) String() string {
	switch k {
	case Condition:
		return "condition"
	case Value:
		return "value"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Options of one compile.
type Options struct {
	Kind Kind
	// FanOut declares item and index, for a route that makes one event per element of a body array.
	FanOut bool
}

// Error is a compile error: the source does not parse, names something undeclared, has the wrong type
// for its Kind, or exceeds a limit. Message is meant for the user who wrote the expression: what is wrong
// and where ("line 1, column 7: undeclared reference to 'item'").
type Error struct {
	Message string
	// Line and Column locate the first problem, both from 1, the column in characters; 0 when it has no
	// position (source too long, too deep).
	Line, Column int
}

func (e *Error) Error() string { return e.Message }

// Program is a compiled expression, safe for concurrent use. Build it once per config version: a compile
// costs tens of microseconds, an evaluation well under one.
type Program struct {
	src     string
	opts    Options
	prg     cel.Program
	bounded bool
	maxCost uint64
}

// Source returns the expression as written.
func (p *Program) Source() string { return p.src }

// Kind returns what the expression is for.
func (p *Program) Kind() Kind { return p.opts.Kind }

// FanOut reports whether the expression was compiled for a fan-out route (item and index declared).
func (p *Program) FanOut() bool { return p.opts.FanOut }

// envs are the two CEL environments, built once: building one registers the whole standard library and
// the extensions, which takes milliseconds.
var envs = sync.OnceValues(func() ([2]*cel.Env, error) {
	common := []cel.EnvOption{
		cel.Variable("body", cel.DynType),
		cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Math(),
		cel.ParserRecursionLimit(MaxNesting),
		cel.ParserExpressionSizeLimit(MaxSourceLen),
		cel.ExpressionNodeLimit(MaxNodes),
		cel.DefaultUTCTimeZone(true),
	}
	base, err := cel.NewEnv(common...)
	if err != nil {
		return [2]*cel.Env{}, fmt.Errorf("cel environment: %w", err)
	}
	guards, err := stringGuards(base)
	if err != nil {
		return [2]*cel.Env{}, fmt.Errorf("cel string guards: %w", err)
	}
	plain, err := base.Extend(guards...)
	if err != nil {
		return [2]*cel.Env{}, fmt.Errorf("cel environment with string guards: %w", err)
	}
	fan, err := plain.Extend(cel.Variable("item", cel.DynType), cel.Variable("index", cel.IntType))
	if err != nil {
		return [2]*cel.Env{}, fmt.Errorf("cel fan-out environment: %w", err)
	}
	return [2]*cel.Env{plain, fan}, nil
})

// maxListedErrors bounds the problems one compile Error lists: the first one or two are what the user
// needs; the rest are usually consequences of the first.
const maxListedErrors = 3

// Compile parses and type-checks src. Its errors are *Error.
func Compile(src string, o Options) (*Program, error) {
	if len(src) > MaxSourceLen {
		return nil, &Error{Message: fmt.Sprintf("expression is %d bytes, longer than the limit of %d", len(src), MaxSourceLen)}
	}
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Message: "expression is empty"}
	}
	if o.Kind > Value {
		return nil, &Error{Message: fmt.Sprintf("unknown expression kind %d", o.Kind)}
	}
	e, err := envs()
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("expressions are unavailable: %v", err)}
	}
	env := e[0]
	if o.FanOut {
		env = e[1]
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, compileError(iss.Errors())
	}
	out := ast.OutputType()
	if o.Kind == Condition && !out.IsExactType(cel.BoolType) && !out.IsExactType(cel.DynType) {
		return nil, &Error{Message: fmt.Sprintf("a condition must be true or false, but this expression gives %s", cel.FormatCELType(out)), Line: 1, Column: 1}
	}
	if o.Kind == Value && out.Kind() == types.TypeKind {
		return nil, &Error{Message: fmt.Sprintf("a value must be data, but this expression gives %s", cel.FormatCELType(out)), Line: 1, Column: 1}
	}
	// An expression whose worst case CEL's static estimate bounds within CostLimit (no comprehension
	// or string operation over data of unknown size: body.price * 100.0, a topic compared) cannot
	// exceed it, and runs without tracking its cost, which is most of the price of a small
	// evaluation. Any other keeps the limit checked at run time.
	popts := []cel.ProgramOption{cel.CustomDecoratorV2(guardCalls)}
	est, err := env.EstimateCost(ast, noEstimates{})
	bounded := err == nil && est.Max <= CostLimit
	if !bounded {
		popts = append(popts, cel.CostLimit(CostLimit))
	}
	prg, err := env.Program(ast, popts...)
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("expression cannot be planned: %v", err)}
	}
	return &Program{src: src, opts: o, prg: prg, bounded: bounded, maxCost: est.Max}, nil
}

// noEstimates leaves every size and call cost to CEL's defaults: sizes of body data are unknown, so
// anything that depends on them estimates unbounded.
type noEstimates struct{}

func (noEstimates) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }
func (noEstimates) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// StaticCost is the most the expression can cost, by CEL's static estimate, and whether that is
// within CostLimit (the limit is then not tracked at run time: it cannot be reached).
func (p *Program) StaticCost() (uint64, bool) { return p.maxCost, p.bounded }

// compileError words CEL's issues for a user: position first, 1-based, CEL's message without the parts
// that only mean something to CEL's authors.
func compileError(errs []*cel.Error) *Error {
	if len(errs) == 0 {
		return &Error{Message: "expression does not compile"}
	}
	var b strings.Builder
	out := &Error{}
	for i, e := range errs {
		if i == maxListedErrors {
			fmt.Fprintf(&b, "; and %d more", len(errs)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		line, col := e.Location.Line(), e.Location.Column()+1
		if i == 0 {
			out.Line, out.Column = max(line, 0), max(col, 0)
		}
		if line > 0 {
			fmt.Fprintf(&b, "line %d, column %d: ", line, col)
		}
		b.WriteString(userMessage(e.Message))
	}
	out.Message = b.String()
	return out
}

// userMessage trims CEL's wording: the container note on every undeclared reference, the capital of
// ANTLR's "Syntax error".
func userMessage(m string) string {
	m = strings.TrimSuffix(m, " (in container '')")
	if strings.HasPrefix(m, "expression recursion limit exceeded") {
		return fmt.Sprintf("expression nests deeper than %d levels", MaxNesting)
	}
	if m == "undeclared reference to 'item'" || m == "undeclared reference to 'index'" {
		return m + " (item and index exist only in a fan-out route)"
	}
	if rest, ok := strings.CutPrefix(m, "Syntax error: "); ok {
		// ANTLR lists every token it could have taken; where that is any operand, say so.
		if i := strings.Index(rest, " expecting {"); i >= 0 && strings.Contains(rest[i:], "IDENTIFIER") {
			rest = rest[:i] + " expecting a value"
		}
		m = "syntax error: " + strings.ReplaceAll(rest, "'<EOF>'", "the end of the expression")
	}
	return m
}
