package expr

import (
	"fmt"
	"strconv"
)

// CheckSample evaluates p on a webhook's sample payload, for the webhook store's check when a mapping is
// saved: an expression that compiles can still fail on every real request (a key the sender never sends,
// a double divided by an int), and the sample is the best evidence of what requests hold.
//
// sample is the payload as JSON text; every name in headerNames is present as "" (the sample has no
// headers, and a condition on one is then simply false). For a program compiled with FanOut, elements are
// the sample's fan-out array, as Decode gives values (decode the array's JSON text with Decode); each is
// evaluated as item with its index. A FanOut program with no elements is checked at compile time only and
// gives no results.
//
// It returns one JSON result per element (or one without FanOut): for a Condition, true or false. An
// error says what failed and, with FanOut, on which element; it wraps the *EvalError.
func CheckSample(p *Program, sample []byte, headerNames []string, elements []any) ([][]byte, error) {
	body, err := Decode(sample)
	if err != nil {
		return nil, fmt.Errorf("sample payload: %w", err)
	}
	in := &Input{Body: body, Headers: make(map[string]string, len(headerNames))}
	for _, name := range headerNames {
		in.Headers[name] = ""
	}
	if !p.opts.FanOut {
		out, err := p.checkOne(in)
		if err != nil {
			return nil, fmt.Errorf("on the sample payload: %w", err)
		}
		return [][]byte{out}, nil
	}
	results := make([][]byte, 0, len(elements))
	for i, e := range elements {
		in.Item, in.Index = e, i
		out, err := p.checkOne(in)
		if err != nil {
			return nil, fmt.Errorf("on element %d of the sample payload: %w", i, err)
		}
		results = append(results, out)
	}
	return results, nil
}

func (p *Program) checkOne(in *Input) ([]byte, error) {
	if p.opts.Kind == Condition {
		b, err := p.Bool(in)
		if err != nil {
			return nil, err
		}
		return strconv.AppendBool(nil, b), nil
	}
	return p.AppendJSON(nil, in)
}
