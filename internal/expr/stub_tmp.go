// Package expr: TEMPORARY STUB (not committed), replaced by branch h-expr.
package expr

import "errors"

type Kind uint8

const (
	Condition Kind = iota
	Value
)

type Options struct {
	Kind   Kind
	FanOut bool
}

type Program struct{ src string }

func Compile(src string, o Options) (*Program, error) {
	if src == "bad" {
		return nil, errors.New("syntax error")
	}
	return &Program{src: src}, nil
}
func (p *Program) Source() string { return p.src }

type Input struct {
	Body    any
	Headers map[string]string
	Item    any
	Index   int
}

func Decode(data []byte) (any, error)                             { return nil, nil }
func (p *Program) AppendJSON(dst []byte, in *Input) ([]byte, error) { return append(dst, "null"...), nil }
func (p *Program) Bool(in *Input) (bool, error)                   { return true, nil }
func CheckSample(p *Program, sample any, headers map[string]string, elements []any) ([][]byte, error) {
	return nil, nil
}
