package pipeline

import (
	"encoding/json"
	"errors"
	"strings"
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
		lim := Defaults().limits()
		got, err := appendCoerced(nil, tt.typ, &n, &lim)
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
		lim := Defaults().limits()
		if _, err := appendCoerced(nil, typ, &n, &lim); !errors.Is(err, errAbsent) {
			t.Errorf("%s null: error %v; want errAbsent", typ, err)
		}
	}
}

// TestCoercionNumberBounds: a number with more digits written out than max_number_digits fails with
// errOutOfRange (reason number_out_of_range), before any arithmetic: each case here would otherwise
// cost up to a billion digits (the 13-byte 1e999999999).
func TestCoercionNumberBounds(t *testing.T) {
	lim := Defaults().limits() // 38 digits
	for _, tt := range []struct {
		typ webhook.AttrType
		in  string
	}{
		{webhook.TypePrice, `1e10000`},
		{webhook.TypePrice, `1e999999999`},
		{webhook.TypePrice, `"1e999999999"`},
		{webhook.TypePrice, `1e-999999999`},
		{webhook.TypePrice, `0.000000000000000000000000000000000000001`}, // 39 fraction digits
		{webhook.TypePrice, `123456789012345678901234567890123456789`},   // 39 integer digits
		{webhook.TypeInteger, `1e999999999`},
		{webhook.TypeInteger, `"1e-999999999"`},
		{webhook.TypeDate, `1e999999999`},
		{webhook.TypeDate, `"1e999999999"`},
		{webhook.TypePrice, `1` + strings.Repeat("0", 100000)},
	} {
		n, err := sonic.Get([]byte(`{"v":`+tt.in+`}`), "v")
		if err != nil {
			t.Fatalf("%.40s: sonic.Get: %v", tt.in, err)
		}
		got, err := appendCoerced(nil, tt.typ, &n, &lim)
		if !errors.Is(err, errOutOfRange) {
			t.Errorf("%s %.40s: got %.40s, %v; want errOutOfRange", tt.typ, tt.in, got, err)
		}
	}
	// At the bound: 38 digits either side of the point still read exactly.
	for _, in := range []string{`12345678901234567890123456789012345678`, `0.12345678901234567890123456789012345678`, `1e37`} {
		n, _ := sonic.Get([]byte(`{"v":`+in+`}`), "v")
		if got, err := appendCoerced(nil, webhook.TypePrice, &n, &lim); err != nil {
			t.Errorf("price %s: got %s, %v; want it read", in, got, err)
		}
	}
}

// FuzzCoerce: any JSON value coerced to any type either fails or writes valid JSON, quickly (the
// fuzzer's per-input time limit catches what the number bound exists for).
func FuzzCoerce(f *testing.F) {
	for _, v := range []string{`42`, `"42"`, `99.99`, `1e10000`, `"2024-03-15"`, `"2024-03-15T10:00:00Z"`, `1710460800`,
		`"a, b,,c"`, `["a",1,true]`, `true`, `"yes"`, `"\u0000"`, `"\ud800"`, `-0.0e-5`, `{"a":1}`} {
		for typ := range 6 {
			f.Add(v, uint8(typ))
		}
	}
	types := []webhook.AttrType{webhook.TypeInteger, webhook.TypeString, webhook.TypeList, webhook.TypeDate, webhook.TypeBoolean, webhook.TypePrice}
	lim := Defaults().limits()
	f.Fuzz(func(t *testing.T, v string, typ uint8) {
		n, err := sonic.Get([]byte(`{"v":`+v+`}`), "v")
		if err != nil || n.Check() != nil {
			return
		}
		out, err := appendCoerced(nil, types[int(typ)%len(types)], &n, &lim)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%s %q wrote invalid JSON %q", types[int(typ)%len(types)], v, out)
		}
		if len(out) > len(v)*6+64 && types[int(typ)%len(types)] != webhook.TypeList {
			t.Fatalf("%s %q wrote %d bytes from %d", types[int(typ)%len(types)], v, len(out), len(v))
		}
	})
}
