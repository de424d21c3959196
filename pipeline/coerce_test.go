package pipeline

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/ast"

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
		{D, `"2024-03-15 10:20:30"`, `"2024-03-15T10:20:30Z"`},
		{D, `"2024-03-15T10:20"`, ``},
		{D, `"Fri, 15 Mar 2024 10:20:30 EST"`, ``},
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
		lim := Defaults().Limits()
		got, err := appendCoerced(nil, tt.typ, &n, &lim, nil)
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

// TestCoerceDateFormats reads every accepted date format in UTC and in two zones with daylight saving
// time, on either side of and inside their transitions.
func TestCoerceDateFormats(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	santiago, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		loc  *time.Location
		in   string
		want string // "" for an error
	}{
		// A date alone: midnight in the zone.
		{nil, `"2026-11-26"`, `"2026-11-26T00:00:00Z"`},
		{berlin, `"2026-11-26"`, `"2026-11-25T23:00:00Z"`},
		{berlin, `"2026-07-01"`, `"2026-06-30T22:00:00Z"`},
		{newYork, `"2026-11-26"`, `"2026-11-26T05:00:00Z"`},
		// Santiago skips midnight on 6 September 2026 (00:00 -04 → 01:00 -03): the day still starts
		// on that day, at 01:00.
		{santiago, `"2026-09-06"`, `"2026-09-06T04:00:00Z"`},
		{santiago, `"2026-09-06 00:30:00"`, `"2026-09-06T04:30:00Z"`},
		// ISO 8601 without an offset, with T or a space, with or without a fraction.
		{nil, `"2026-11-26T10:12:31"`, `"2026-11-26T10:12:31Z"`},
		{berlin, `"2026-11-26T10:12:31"`, `"2026-11-26T09:12:31Z"`},
		{berlin, `"2026-11-26t10:12:31"`, `"2026-11-26T09:12:31Z"`},
		{berlin, `"2026-11-26T10:12:31.250"`, `"2026-11-26T09:12:31.25Z"`},
		{berlin, `"2026-11-26T10:12:31,5"`, `"2026-11-26T09:12:31.5Z"`},
		{berlin, `"2026-11-26T10:12:31.123456789"`, `"2026-11-26T09:12:31.123456789Z"`},
		{berlin, `"2026-11-26 10:12:31"`, `"2026-11-26T09:12:31Z"`},
		{berlin, `"2026-07-26 10:12:31.5"`, `"2026-07-26T08:12:31.5Z"`},
		{newYork, `"2026-07-26 10:12:31"`, `"2026-07-26T14:12:31Z"`},
		// Berlin: the clocks skip 02:00–03:00 on 29 March 2026 and repeat 02:00–03:00 on 25 October.
		{berlin, `"2026-03-29T01:59:59"`, `"2026-03-29T00:59:59Z"`},
		{berlin, `"2026-03-29T02:30:00"`, `"2026-03-29T01:30:00Z"`}, // skipped: 03:30 CEST
		{berlin, `"2026-03-29T03:00:00"`, `"2026-03-29T01:00:00Z"`},
		{berlin, `"2026-10-25T01:59:59"`, `"2026-10-24T23:59:59Z"`},
		{berlin, `"2026-10-25T02:30:00"`, `"2026-10-25T00:30:00Z"`}, // twice: the first, CEST
		{berlin, `"2026-10-25T03:00:00"`, `"2026-10-25T02:00:00Z"`},
		// New York: 02:00–03:00 skipped on 8 March 2026, 01:00–02:00 twice on 1 November.
		{newYork, `"2026-03-08T02:30:00"`, `"2026-03-08T07:30:00Z"`}, // skipped: 03:30 EDT
		{newYork, `"2026-11-01T01:30:00"`, `"2026-11-01T05:30:00Z"`}, // twice: the first, EDT
		// An offset wins over the zone.
		{berlin, `"2026-11-26T10:12:31Z"`, `"2026-11-26T10:12:31Z"`},
		{berlin, `"2026-11-26T10:12:31+02:00"`, `"2026-11-26T08:12:31Z"`},
		{berlin, `"2026-11-26T10:12:31-0530"`, `"2026-11-26T15:42:31Z"`},
		{berlin, `"2026-11-26T10:12:31+01"`, `"2026-11-26T09:12:31Z"`},
		{berlin, `"2026-11-26 10:12:31.5 +0100"`, `"2026-11-26T09:12:31.5Z"`},
		{berlin, `"2026-11-26 10:12:31 UTC"`, `"2026-11-26T10:12:31Z"`},
		{berlin, `"2026-11-26 10:12:31+00:00"`, `"2026-11-26T10:12:31Z"`},
		// RFC 1123 and RFC 1123Z: their zone wins.
		{nil, `"Thu, 26 Nov 2026 10:12:31 GMT"`, `"2026-11-26T10:12:31Z"`},
		{berlin, `"Thu, 26 Nov 2026 10:12:31 GMT"`, `"2026-11-26T10:12:31Z"`},
		{berlin, `"Thu, 6 Nov 2026 10:12:31 UTC"`, `"2026-11-06T10:12:31Z"`},
		{berlin, `"Thu, 26 Nov 2026 10:12:31 +0100"`, `"2026-11-26T09:12:31Z"`},
		{berlin, `"Thu, 26 Nov 2026 10:12:31 -0800"`, `"2026-11-26T18:12:31Z"`},
		// Epochs have no zone.
		{berlin, `1795687951`, `"2026-11-26T10:12:31Z"`},
		{berlin, `"1795687951000"`, `"2026-11-26T10:12:31Z"`},
		// Refused.
		{berlin, `"2026-02-29"`, ``},
		{berlin, `"2026-11-26T24:00:00"`, ``},
		{berlin, `"2026-11-26T10:60:00"`, ``},
		{berlin, `"2026-11-26X10:12:31"`, ``},
		{berlin, `"2026-11-26T10:12:31."`, ``},
		{berlin, `"2026-11-26T10:12:31.1234567890"`, ``},
		{berlin, `"2026-11-26T10:12:31+24:00"`, ``},
		{berlin, `"2026-11-26T10:12:31 CET"`, ``},
		{berlin, `"2026-11-26T10:12:31+1"`, ``},
		{berlin, `"Thu, 26 Nov 2026 10:12:31 CET"`, ``},
		{berlin, `"Thu, 26 Nov 2026 10:12:31"`, ``},
		{berlin, `"Thu, 31 Nov 2026 10:12:31 GMT"`, ``},
		{berlin, `"26/11/2026"`, ``},
	}
	lim := Defaults().Limits()
	for _, tt := range tests {
		n, err := sonic.Get([]byte(`{"v":`+tt.in+`}`), "v")
		if err != nil {
			t.Fatalf("%s: sonic.Get: %v", tt.in, err)
		}
		got, err := appendCoerced(nil, webhook.TypeDate, &n, &lim, tt.loc)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("%s in %v: got %s; want an error", tt.in, tt.loc, got)
		case tt.want != "" && err != nil:
			t.Errorf("%s in %v: error %v; want %s", tt.in, tt.loc, err, tt.want)
		case tt.want != "" && string(got) != tt.want:
			t.Errorf("%s in %v: got %s; want %s", tt.in, tt.loc, got, tt.want)
		}
	}
}

// TestCoerceDateAllocs: reading a date in a zone costs no allocation.
func TestCoerceDateAllocs(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	lim := Defaults().Limits()
	for _, in := range []string{`"2026-11-26"`, `"2026-11-26 10:12:31.5"`, `"2026-10-25T02:30:00"`, `"2026-11-26T10:12:31+02:00"`, `"Thu, 26 Nov 2026 10:12:31 GMT"`} {
		n, err := sonic.Get([]byte(`{"v":`+in+`}`), "v")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 0, 64)
		if a := testing.AllocsPerRun(100, func() { buf, _ = appendCoerced(buf[:0], webhook.TypeDate, &n, &lim, berlin) }); a != 0 {
			t.Errorf("%s: %v allocations; want 0", in, a)
		}
	}
}

func TestCoercionNullIsAbsent(t *testing.T) {
	for _, typ := range []webhook.AttrType{webhook.TypeInteger, webhook.TypeString, webhook.TypeList, webhook.TypeDate, webhook.TypeBoolean, webhook.TypePrice} {
		n, _ := sonic.Get([]byte(`{"v":null}`), "v")
		lim := Defaults().Limits()
		if _, err := appendCoerced(nil, typ, &n, &lim, nil); !errors.Is(err, errAbsent) {
			t.Errorf("%s null: error %v; want errAbsent", typ, err)
		}
	}
}

// TestCoercionNumberBounds: a number with more digits written out than max_number_digits fails with
// errOutOfRange (reason number_out_of_range), before any arithmetic: each case here would otherwise
// cost up to a billion digits (the 13-byte 1e999999999).
func TestCoercionNumberBounds(t *testing.T) {
	lim := Defaults().Limits() // 38 digits
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
		got, err := appendCoerced(nil, tt.typ, &n, &lim, nil)
		if !errors.Is(err, errOutOfRange) {
			t.Errorf("%s %.40s: got %.40s, %v; want errOutOfRange", tt.typ, tt.in, got, err)
		}
	}
	// At the bound: 38 digits either side of the point still read exactly.
	for _, in := range []string{`12345678901234567890123456789012345678`, `0.12345678901234567890123456789012345678`, `1e37`} {
		n, _ := sonic.Get([]byte(`{"v":`+in+`}`), "v")
		if got, err := appendCoerced(nil, webhook.TypePrice, &n, &lim, nil); err != nil {
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
	lim := Defaults().Limits()
	f.Fuzz(func(t *testing.T, v string, typ uint8) {
		n, err := sonic.Get([]byte(`{"v":`+v+`}`), "v")
		if err != nil || n.Check() != nil {
			return
		}
		out, err := appendCoerced(nil, types[int(typ)%len(types)], &n, &lim, nil)
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

// BenchmarkCoerceDate: one date value per form, in UTC and in a zone with daylight saving time.
func BenchmarkCoerceDate(b *testing.B) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	lim := Defaults().Limits()
	for _, tt := range []struct {
		name string
		in   string
	}{
		{"date", `"2026-11-26"`}, {"rfc3339", `"2026-11-26T10:12:31.5+01:00"`}, {"local", `"2026-11-26 10:12:31"`},
		{"rfc1123", `"Thu, 26 Nov 2026 10:12:31 GMT"`}, {"epoch", `1795687951`},
	} {
		for _, z := range []struct {
			name string
			loc  *time.Location
		}{{"UTC", time.UTC}, {"Berlin", berlin}} {
			b.Run(tt.name+"/"+z.name, func(b *testing.B) {
				n, err := sonic.Get([]byte(`{"v":`+tt.in+`}`), "v")
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 0, 64)
				b.ReportAllocs()
				for b.Loop() {
					if buf, err = appendCoerced(buf[:0], webhook.TypeDate, &n, &lim, z.loc); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestPriceFastPath: a plain decimal is written as the decimal library would write it, without it.
func TestPriceFastPath(t *testing.T) {
	lim := Defaults().Limits()
	for _, s := range []string{"99.99", "99.90", "0", "0.50", "-0.50", "-0", "-0.00", "12", "1234567890.123456", "10.0", "-7"} {
		if !plainDecimal(s) {
			t.Errorf("plainDecimal(%q) = false", s)
			continue
		}
		n := ast.NewNumber(s)
		got, err := coercePrice(nil, &n, ast.V_NUMBER, &lim)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := exactDecimal(s, lim.NumberDigits)
		want := d.String()
		if exp := d.Exponent(); exp < 0 {
			want = d.StringFixed(-exp)
		}
		if string(got) != `"`+want+`"` {
			t.Errorf("price %s = %s; want %q as the decimal writes it", s, got, want)
		}
	}
	for _, s := range []string{"", "-", ".5", "5.", "007", "00.5", "1e3", "+1", "1.2.3", "--1", "1 "} {
		if plainDecimal(s) {
			t.Errorf("plainDecimal(%q) = true; want false", s)
		}
	}
}
