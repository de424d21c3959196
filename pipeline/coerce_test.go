package pipeline

import (
	"errors"
	"testing"

	"github.com/bytedance/sonic"

	"github.com/inlet-dev/inlet/internal/webhook"
)

func TestCoercion(t *testing.T) {
	const (
		I = webhook.TypeInteger
		S = webhook.TypeString
		L = webhook.TypeList
		D = webhook.TypeDate
		B = webhook.TypeBoolean
		P = webhook.TypePrice
	)
	tests := []struct {
		typ  webhook.AttrType
		in   string // the JSON value
		want string // the JSON written, "" when it must fail
	}{
		{I, `42`, `42`},
		{I, `-7`, `-7`},
		{I, `3.0`, `3`},
		{I, `1e3`, `1000`},
		{I, `"42"`, `42`},
		{I, `" 42 "`, `42`},
		{I, `"3.0"`, `3`},
		{I, `9223372036854775807`, `9223372036854775807`},
		{I, `9223372036854775808`, ``},
		{I, `3.5`, ``},
		{I, `"abc"`, ``},
		{I, `""`, ``},
		{I, `true`, ``},
		{I, `[1]`, ``},
		{I, `{"a":1}`, ``},

		{S, `"ORD-001"`, `"ORD-001"`},
		{S, `99.99`, `"99.99"`},
		{S, `12345`, `"12345"`},
		{S, `true`, `"true"`},
		{S, `"line\nbreak \"q\""`, `"line\nbreak \"q\""`},
		{S, `"café"`, `"café"`},
		{S, `[1,2]`, ``},
		{S, `{"a":1}`, ``},

		{L, `["a","b"]`, `["a","b"]`},
		{L, `[1,true,"x"]`, `["1","true","x"]`},
		{L, `[]`, `[]`},
		{L, `"a, b,,c"`, `["a","b","c"]`},
		{L, `""`, `[]`},
		{L, `7`, `["7"]`},
		{L, `[[1]]`, ``},
		{L, `[{"a":1}]`, ``},
		{L, `{"a":1}`, ``},

		{D, `"2024-03-15"`, `"2024-03-15T00:00:00Z"`},
		{D, `"2024-03-15T10:20:30Z"`, `"2024-03-15T10:20:30Z"`},
		{D, `"2024-03-15T12:20:30+02:00"`, `"2024-03-15T10:20:30Z"`},
		{D, `"2024-03-15T10:20:30.250Z"`, `"2024-03-15T10:20:30.25Z"`},
		{D, `1710497430`, `"2024-03-15T10:10:30Z"`},
		{D, `1710497430123`, `"2024-03-15T10:10:30.123Z"`},
		{D, `"1710497430"`, `"2024-03-15T10:10:30Z"`},
		{D, `"1710497430123"`, `"2024-03-15T10:10:30.123Z"`},
		{D, `1710497430.5`, `"2024-03-15T10:10:30.5Z"`},
		{D, `99999999999`, `"5138-11-16T09:46:39Z"`},  // just below the threshold: seconds
		{D, `100000000000`, `"1973-03-03T09:46:40Z"`}, // at the threshold: milliseconds
		{D, `0`, `"1970-01-01T00:00:00Z"`},
		{D, `"2024-13-45"`, ``},
		{D, `"15/03/2024"`, ``},
		{D, `"yesterday"`, ``},
		{D, `"2024-03-15 10:20:30"`, ``},
		{D, `true`, ``},
		{D, `1e30`, ``},

		{B, `true`, `true`},
		{B, `false`, `false`},
		{B, `"true"`, `true`},
		{B, `"FALSE"`, `false`},
		{B, `"yes"`, `true`},
		{B, `"no"`, `false`},
		{B, `"1"`, `true`},
		{B, `"0"`, `false`},
		{B, `1`, `true`},
		{B, `0`, `false`},
		{B, `2`, ``},
		{B, `"maybe"`, ``},
		{B, `[true]`, ``},

		{P, `99.99`, `"99.99"`},
		{P, `99.90`, `"99.90"`},
		{P, `0.1`, `"0.1"`},
		{P, `100`, `"100"`},
		{P, `1e2`, `"100"`},
		{P, `"19.95"`, `"19.95"`},
		{P, `-5.25`, `"-5.25"`},
		{P, `12345678901234567890.123456789`, `"12345678901234567890.123456789"`},
		{P, `"$5"`, ``},
		{P, `true`, ``},
		{P, `[1]`, ``},
	}
	for _, tt := range tests {
		n, err := sonic.Get([]byte(`{"v":`+tt.in+`}`), "v")
		if err != nil {
			t.Fatalf("%s: sonic.Get: %v", tt.in, err)
		}
		got, err := appendCoerced(nil, tt.typ, &n)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("%s %s: got %s; want an error", tt.typ, tt.in, got)
		case tt.want != "" && err != nil:
			t.Errorf("%s %s: error %v; want %s", tt.typ, tt.in, err, tt.want)
		case tt.want != "" && string(got) != tt.want:
			t.Errorf("%s %s: got %s; want %s", tt.typ, tt.in, got, tt.want)
		}
	}
}

func TestCoercionNullIsAbsent(t *testing.T) {
	for _, typ := range []webhook.AttrType{webhook.TypeInteger, webhook.TypeString, webhook.TypeList, webhook.TypeDate, webhook.TypeBoolean, webhook.TypePrice} {
		n, _ := sonic.Get([]byte(`{"v":null}`), "v")
		if _, err := appendCoerced(nil, typ, &n); !errors.Is(err, errAbsent) {
			t.Errorf("%s null: error %v; want errAbsent", typ, err)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      `"plain"`,
		"a\"b\\c":    `"a\"b\\c"`,
		"\x01\t":     `"\u0001\t"`,
		"bad\xffutf": `"bad\ufffdutf"`,
		"日本":         `"日本"`,
	} {
		if got := string(appendJSONString(nil, in)); got != want {
			t.Errorf("appendJSONString(%q) = %s; want %s", in, got, want)
		}
	}
}
