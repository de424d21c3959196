package expr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/inlet-dev/inlet/internal/expr"
)

func mustCompile(t testing.TB, src string, o expr.Options) *expr.Program {
	t.Helper()
	p, err := expr.Compile(src, o)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return p
}

func mustDecode(t testing.TB, body string) any {
	t.Helper()
	v, err := expr.Decode([]byte(body))
	if err != nil {
		t.Fatalf("Decode(%q): %v", body, err)
	}
	return v
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		o       expr.Options
		msgPart string
		line    int
		column  int
	}{
		{"syntax", `body.total +`, expr.Options{Kind: expr.Value}, "line 1, column 13: syntax error: mismatched input the end of the expression expecting a value", 1, 13},
		{"syntax operator", `body.x ==== 1`, expr.Options{Kind: expr.Value}, "line 1, column 10: syntax error: extraneous input '==' expecting a value", 1, 10},
		{"syntax second line", "body.a &&\n  (body.b", expr.Options{Kind: expr.Condition}, "line 2, column", 2, 0},
		{"item outside fan-out", `item.sku`, expr.Options{Kind: expr.Value}, "line 1, column 1: undeclared reference to 'item' (item and index exist only in a fan-out route)", 1, 1},
		{"index outside fan-out", `index + 1`, expr.Options{Kind: expr.Value}, "undeclared reference to 'index'", 1, 1},
		{"unknown variable", `payload.x`, expr.Options{Kind: expr.Value}, "undeclared reference to 'payload'", 1, 1},
		{"condition of string", `"a"`, expr.Options{Kind: expr.Condition}, "a condition must be true or false, but this expression gives string", 1, 1},
		{"condition of body arithmetic", `body.x + 1`, expr.Options{Kind: expr.Condition}, "gives int", 1, 1},
		{"condition of optional", `body.?x`, expr.Options{Kind: expr.Condition}, "gives optional_type(dyn)", 1, 1},
		{"condition of double", `body.x + 1.0`, expr.Options{Kind: expr.Condition}, "gives double", 1, 1},
		{"condition of int", `size(body.items)`, expr.Options{Kind: expr.Condition}, "gives int", 1, 1},
		{"static type mismatch", `headers["X-A"] + 1`, expr.Options{Kind: expr.Value}, "found no matching overload for '_+_' applied to '(string, int)'", 1, 16},
		{"too long", "body.a + " + strings.Repeat("1.0 + ", 700) + "1.0", expr.Options{Kind: expr.Value}, "longer than the limit of 4096", 0, 0},
		{"too deep", strings.Repeat("(", 100) + "1" + strings.Repeat(")", 100), expr.Options{Kind: expr.Value}, "expression nests deeper than 64 levels", 0, 0},
		{"value of type", `type(body)`, expr.Options{Kind: expr.Value}, "a value must be data, but this expression gives type(dyn)", 1, 1},
		{"empty", "  ", expr.Options{Kind: expr.Value}, "expression is empty", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := expr.Compile(tt.src, tt.o)
			if err == nil {
				t.Fatalf("Compile(%q) = %v; want an error containing %q", tt.src, p.Source(), tt.msgPart)
			}
			var ce *expr.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v; want *expr.Error", err, err)
			}
			if !strings.Contains(ce.Message, tt.msgPart) {
				t.Errorf("message %q; want it to contain %q", ce.Message, tt.msgPart)
			}
			if ce.Line != tt.line {
				t.Errorf("line %d; want %d", ce.Line, tt.line)
			}
			if tt.column != 0 && ce.Column != tt.column {
				t.Errorf("column %d; want %d", ce.Column, tt.column)
			}
			if strings.Contains(ce.Message, "container") {
				t.Errorf("message %q mentions CEL containers", ce.Message)
			}
		})
	}
}

func TestFanOutDeclaresItemAndIndex(t *testing.T) {
	for _, src := range []string{`item.sku`, `index`, `item.qty * 2.0 + double(index)`} {
		if _, err := expr.Compile(src, expr.Options{Kind: expr.Value, FanOut: true}); err != nil {
			t.Errorf("Compile(%q, FanOut) = %v; want no error", src, err)
		}
	}
}

// jsonEqual compares JSON texts by their decoded values, so escapes and key order do not matter.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("result %s is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s is not JSON: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got %s; want %s", got, want)
	}
}

func TestAppendJSON(t *testing.T) {
	headers := map[string]string{"X-Shopify-Topic": "orders/paid", "X-Empty": ""}
	tests := []struct {
		name  string
		src   string
		body  string
		fan   bool
		item  string
		index int
		want  string // exact bytes
	}{
		{"cents to price", `body.total_cents / 100.0`, `{"total_cents":1999}`, false, "", 0, `19.99`},
		{"price to cents", `body.total * 100.0`, `{"total":19.5}`, false, "", 0, `1950`},
		{"integral double", `body.n * 2.0`, `{"n":21}`, false, "", 0, `42`},
		{"negative integral", `-body.n`, `{"n":3}`, false, "", 0, `-3`},
		{"beyond 2^53 stays double", `body.n * 1024.0`, `{"n":9007199254740992}`, false, "", 0, `9223372036854776000`},
		{"float error kept", `body.total * 100.0`, `{"total":19.99}`, false, "", 0, `1998.9999999999998`},
		{"rounded cents", `math.round(body.total * 100.0)`, `{"total":19.99}`, false, "", 0, `1999`},
		{"huge double", `body.n * 1e30`, `{"n":1}`, false, "", 0, `1e+30`},
		{"tiny double", `body.n / 1e9`, `{"n":1}`, false, "", 0, `1e-9`},
		{"int sum", `1 + size(body.items)`, `{"items":[1,2]}`, false, "", 0, `3`},
		{"double sum", `body.n + 1.5`, `{"n":1}`, false, "", 0, `2.5`},
		{"list concatenation", `[0.5] + body.items`, `{"items":[1,2]}`, false, "", 0, `[0.5,1,2]`},
		{"timestamp plus duration", `timestamp(body.at) + duration("1h30m")`, `{"at":"2026-11-26T10:12:31Z"}`, false, "", 0, `"2026-11-26T11:42:31Z"`},
		{"bytes concatenation", `b"a" + bytes(body.s)`, `{"s":"b"}`, false, "", 0, `"YWI="`},
		{"int", `size(body.items)`, `{"items":[1,2,3]}`, false, "", 0, `3`},
		{"uint", `uint(7)`, `{}`, false, "", 0, `7`},
		{"concatenation", `body.first + " " + body.last`, `{"first":"Ada","last":"Lovelace"}`, false, "", 0, `"Ada Lovelace"`},
		{"default with has present", `has(body.x) ? body.x : "none"`, `{"x":"here"}`, false, "", 0, `"here"`},
		{"default with has absent", `has(body.x) ? body.x : "none"`, `{}`, false, "", 0, `"none"`},
		{"optional present", `body.?x.orValue("none")`, `{"x":"here"}`, false, "", 0, `"here"`},
		{"optional absent", `body.?x.orValue("none")`, `{}`, false, "", 0, `"none"`},
		{"optional none", `body.?x`, `{}`, false, "", 0, `null`},
		{"optional of", `body.?x`, `{"x":[1]}`, false, "", 0, `[1]`},
		{"skus", `body.line_items.map(i, i.sku)`, `{"line_items":[{"sku":"A"},{"sku":"B"}]}`, false, "", 0, `["A","B"]`},
		{"filter", `body.line_items.filter(i, i.qty > 1.0).map(i, i.sku)`, `{"line_items":[{"sku":"A","qty":1},{"sku":"B","qty":2}]}`, false, "", 0, `["B"]`},
		{"header as configured", `headers["X-Shopify-Topic"]`, `{}`, false, "", 0, `"orders/paid"`},
		{"header lower case", `headers["x-shopify-topic"]`, `{}`, false, "", 0, `"orders/paid"`},
		{"header other case", `headers["X-SHOPIFY-TOPIC"]`, `{}`, false, "", 0, `"orders/paid"`},
		{"header absent is empty", `headers["X-Empty"] == ""`, `{}`, false, "", 0, `true`},
		{"header in", `"x-shopify-topic" in headers`, `{}`, false, "", 0, `true`},
		{"headers size", `size(headers)`, `{}`, false, "", 0, `2`},
		{"headers iterate", `headers.filter(k, headers[k] != "")`, `{}`, false, "", 0, `["X-Shopify-Topic"]`},
		{"headers as a value", `headers`, `{}`, false, "", 0, `{"X-Empty":"","X-Shopify-Topic":"orders/paid"}`},
		{"header not kept not in", `"x-other" in headers`, `{}`, false, "", 0, `false`},
		{"fan-out item", `item.sku`, `{}`, true, `{"sku":"B"}`, 1, `"B"`},
		{"fan-out index", `index`, `{}`, true, `{"sku":"B"}`, 1, `1`},
		{"fan-out body beside item", `body.order + "-" + string(index)`, `{"order":"o1"}`, true, `{}`, 2, `"o1-2"`},
		{"timestamp", `timestamp(body.at)`, `{"at":"2026-11-26T12:12:31.500+02:00"}`, false, "", 0, `"2026-11-26T10:12:31.5Z"`},
		{"timestamp literal", `timestamp("2026-11-26T10:12:31Z")`, `{}`, false, "", 0, `"2026-11-26T10:12:31Z"`},
		{"duration", `duration("90m")`, `{}`, false, "", 0, `"5400s"`},
		{"bytes", `b"hi"`, `{}`, false, "", 0, `"aGk="`},
		{"null", `body.x`, `{"x":null}`, false, "", 0, `null`},
		{"null body", `body`, `null`, false, "", 0, `null`},
		{"bool", `body.paid`, `{"paid":true}`, false, "", 0, `true`},
		{"map sorted", `{"b": body.n, "a": [1, "x", true], "c": {"z": null}}`, `{"n":1.5}`, false, "", 0, `{"a":[1,"x",true],"b":1.5,"c":{"z":null}}`},
		{"body object sorted", `body`, `{"z":1,"a":{"y":2,"b":3}}`, false, "", 0, `{"a":{"b":3,"y":2},"z":1}`},
		{"int keys", `{2: "b", 1: "a"}`, `{}`, false, "", 0, `{"1":"a","2":"b"}`},
		{"matches", `body.sku.matches("^[A-Z]+-[0-9]+$") && matches(body.sku, "-")`, `{"sku":"AB-12"}`, false, "", 0, `true`},
		{"string functions", `body.name.trim().lowerAscii().split(" ").join("-")`, `{"name":"  Big Red Shoe "}`, false, "", 0, `"big-red-shoe"`},
		{"replace n", `body.s.replace("-", "+", 1)`, `{"s":"a-b-c"}`, false, "", 0, `"a+b-c"`},
		{"replace grows within limit", `body.s.replace("", "-")`, `{"s":"abc"}`, false, "", 0, `"-a-b-c-"`},
		{"join separator", `body.items.join(", ")`, `{"items":["a","b"]}`, false, "", 0, `"a, b"`},
		{"format", `"%s costs %.2f".format([body.name, body.total])`, `{"name":"shoe","total":19.5}`, false, "", 0, `"shoe costs 19.50"`},
		{"format list", `"%s".format([body.items])`, `{"items":["a","b"]}`, false, "", 0, `"[a, b]"`},
		{"replace", `body.s.replace("-", "")`, `{"s":"a-b-c"}`, false, "", 0, `"abc"`},
		{"math", `math.greatest(body.a, body.b)`, `{"a":3,"b":7}`, false, "", 0, `7`},
		{"escapes", `body.s`, `{"s":"q\"b\\ \n\t\u0001 <&> \u2028"}`, false, "", 0, "\"q\\\"b\\\\ \\n\\t\\u0001 <&> \u2028\""}, // U+2028 as is: the value is read again, not embedded in a script
		{"unicode", `body.s + "é"`, `{"s":"café 日本 😀"}`, false, "", 0, `"café 日本 😀é"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.src, expr.Options{Kind: expr.Value, FanOut: tt.fan})
			in := &expr.Input{Body: mustDecode(t, tt.body), Headers: headers}
			if tt.fan {
				in.Item, in.Index = mustDecode(t, tt.item), tt.index
			}
			prefix := []byte("prefix:")
			got, err := p.AppendJSON(prefix, in)
			if err != nil {
				t.Fatalf("AppendJSON(%q): %v", tt.src, err)
			}
			if !strings.HasPrefix(string(got), "prefix:") {
				t.Fatalf("got %q; want it to keep dst", got)
			}
			got = got[len("prefix:"):]
			if string(got) != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
			jsonEqual(t, got, tt.want)
			// The same over the body read lazily, as the pipeline reads it.
			lin := &expr.Input{Body: expr.Lazy([]byte(tt.body)), Headers: headers}
			if tt.fan {
				lin.Item, lin.Index = expr.Lazy([]byte(tt.item)), tt.index
			}
			if lgot, err := p.AppendJSON(nil, lin); err != nil || string(lgot) != tt.want {
				t.Errorf("over Lazy: got %s (%v); want %s", lgot, err, tt.want)
			}
		})
	}
}

func TestAppendJSONInvalidUTF8(t *testing.T) {
	p := mustCompile(t, `body`, expr.Options{Kind: expr.Value})
	got, err := p.AppendJSON(nil, &expr.Input{Body: "a\xffb"})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, `"a\ufffdb"`)
}

func TestEvalErrors(t *testing.T) {
	big := make([]any, 2000)
	for i := range big {
		big[i] = map[string]any{"sku": fmt.Sprintf("s%d", i), "n": float64(i)}
	}
	tests := []struct {
		name    string
		src     string
		body    any
		msgPart string
	}{
		{"missing key", `body.payment_state`, map[string]any{"x": 1.0}, "no such key: payment_state"},
		{"header not kept", `headers["X-Unknown"]`, map[string]any{}, "no such key: X-Unknown"},
		{"missing nested key", `body.a.b`, map[string]any{"a": map[string]any{}}, "no such key: b"},
		{"index out of range", `body.items[3]`, map[string]any{"items": []any{1.0}}, "index out of bounds: 3"},
		{"double divided by int", `body.n / 100`, map[string]any{"n": 1999.0}, "no operator for these operand types; numbers from the body are doubles, so write 100.0 rather than 100"},
		{"string plus double", `body.s + body.n`, map[string]any{"s": "a", "n": 1.0}, "no operator for these operand types"},
		{"int overflow", `9223372036854775807 + size(body)`, map[string]any{"a": 1.0}, "integer overflow"},
		{"pattern too long", `body.s.matches(body.p)`, map[string]any{"s": "a", "p": strings.Repeat("a", 2000)}, "matches: pattern of 2000 bytes, over the limit of 1024"},
		{"match too costly", `matches(body.s, body.p)`, map[string]any{"s": strings.Repeat("a", 500_000), "p": strings.Repeat("a?", 500)}, "matches on 500000 bytes with a pattern of 1000 would exceed the cost limit of 100000"},
		{"string function on a double", `body.s.lowerAscii()`, map[string]any{"s": 1.0}, "no function lowerAscii(double); numbers from the body are doubles"},
		{"bad timestamp", `timestamp(body.s)`, map[string]any{"s": "abc"}, `invalid RFC 3339 timestamp "abc"`},
		{"int division by zero", `10 / (size(body.items) - 1)`, map[string]any{"items": []any{1.0}}, "division by zero"},
		{"double division by zero", `body.n / 0.0`, map[string]any{"n": 1.0}, "not a finite number"},
		{"not JSON", `[type(body)]`, map[string]any{}, "a result of type type cannot be written as JSON"},
		{"nested map exceeds cost", `body.items.map(a, body.items.map(b, a.n + b.n))`, map[string]any{"items": big}, "cost limit of 100000 exceeded"},
		{"nested exists exceeds cost", `body.items.exists(a, body.items.exists(b, a.n + b.n < 0.0))`, map[string]any{"items": big}, "cost limit of 100000 exceeded"},
		{"replace squared", `body.s.replace("", body.s)`, map[string]any{"s": strings.Repeat("x", 2000)}, "replace would build a string of about 4004000 bytes, over the limit of 1048576"},
		{"replace many", `body.s.replace("a", body.s)`, map[string]any{"s": strings.Repeat("a", 2000)}, "replace would build a string of about 4000000 bytes"},
		{"replace n", `body.s.replace("", body.s, 1000)`, map[string]any{"s": strings.Repeat("x", 2000)}, "replace would build a string of about 2002000 bytes"},
		{"join references", `body.items.map(i, body.s).join()`, map[string]any{"s": strings.Repeat("x", 20000), "items": big[:100]}, "join would build a string of about"},
		{"join separator", `body.items.map(i, "").join(body.s)`, map[string]any{"s": strings.Repeat("x", 20000), "items": big[:100]}, "join would build a string of about"},
		{"format references", `"%s".format([body.items.map(i, body.s)])`, map[string]any{"s": strings.Repeat("x", 20000), "items": big[:100]}, "format would build a string of about"},
		{"concatenation chain", `body.s + body.s + body.s + body.s + body.s + body.s + body.s + body.s`, map[string]any{"s": strings.Repeat("x", 300_000)}, "+ would build a string of about 1200000 bytes, over the limit of 1048576"},
		{"bytes concatenation", `bytes(body.s) + bytes(body.s)`, map[string]any{"s": strings.Repeat("x", 600_000)}, "+ would build a string of about 1200000 bytes"},
		{"too large", `body.items.map(i, i.sku + i.sku + i.sku + i.sku + i.sku + i.sku + i.sku + i.sku + i.sku + i.sku)`, map[string]any{"items": big}, "larger than 65536 bytes"},
		{"too deep", strings.Repeat("[", 10) + "body" + strings.Repeat("]", 10), deep(60), "deeper than 64 levels"},
		{"too deep from body", `body`, deep(70), "deeper than 64 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.src, expr.Options{Kind: expr.Value})
			raw, err := json.Marshal(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			// The same failure over the body read lazily, as the pipeline reads it.
			if _, err := p.AppendJSON(nil, &expr.Input{Body: expr.Lazy(raw)}); err == nil || !strings.Contains(err.Error(), tt.msgPart) {
				t.Errorf("over Lazy: error %v; want one containing %q", err, tt.msgPart)
			}
			dst := []byte("keep")
			got, err := p.AppendJSON(dst, &expr.Input{Body: tt.body})
			if err == nil {
				t.Fatalf("AppendJSON(%q) = %s; want an error containing %q", tt.src, got, tt.msgPart)
			}
			var ee *expr.EvalError
			if !errors.As(err, &ee) {
				t.Fatalf("error %T %v; want *expr.EvalError", err, err)
			}
			if !strings.Contains(ee.Message, tt.msgPart) {
				t.Errorf("message %q; want it to contain %q", ee.Message, tt.msgPart)
			}
			if string(got) != "keep" {
				t.Errorf("dst after failure %q; want %q", got, "keep")
			}
		})
	}
}

// deep is a body of n nested one-element lists.
func deep(n int) any {
	var v any = "x"
	for range n {
		v = []any{v}
	}
	return v
}

func TestCostLimitIsErrCostLimit(t *testing.T) {
	big := make([]any, 1000)
	for i := range big {
		big[i] = float64(i)
	}
	p := mustCompile(t, `body.map(a, body.map(b, a * b)).map(l, l.exists(x, x < 0.0))`, expr.Options{Kind: expr.Value})
	_, err := p.AppendJSON(nil, &expr.Input{Body: big})
	if !errors.Is(err, expr.ErrCostLimit) {
		t.Fatalf("got %v; want ErrCostLimit", err)
	}
}

// TestCostLimitAllows pins what the documented limit permits: mapping a few thousand elements.
func TestCostLimitAllows(t *testing.T) {
	items := make([]any, 5000)
	for i := range items {
		items[i] = map[string]any{"sku": "s"}
	}
	p := mustCompile(t, `body.items.map(i, i.sku).size()`, expr.Options{Kind: expr.Value})
	got, err := p.AppendJSON(nil, &expr.Input{Body: map[string]any{"items": items}})
	if err != nil {
		t.Fatalf("map over %d elements: %v", len(items), err)
	}
	if string(got) != "5000" {
		t.Errorf("got %s; want 5000", got)
	}
}

func TestBool(t *testing.T) {
	headers := map[string]string{"X-Topic": "orders/paid", "X-Other": ""}
	tests := []struct {
		src  string
		body string
		want bool
	}{
		{`body.paid && headers["X-Topic"] == "orders/paid"`, `{"paid":true}`, true},
		{`body.paid && headers["x-topic"] == "orders/paid"`, `{"paid":false}`, false},
		{`headers["X-Other"] == "orders/paid"`, `{}`, false},
		{`body.paid`, `{"paid":true}`, true},
		{`has(body.refund)`, `{"paid":true}`, false},
		{`body.total > 10.0`, `{"total":19.99}`, true},
		{`body.items.exists(i, i == "b")`, `{"items":["a","b"]}`, true},
		{`timestamp(body.at) > timestamp("2026-01-01T00:00:00Z")`, `{"at":"2026-11-26T10:12:31Z"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p := mustCompile(t, tt.src, expr.Options{Kind: expr.Condition})
			got, err := p.Bool(&expr.Input{Body: mustDecode(t, tt.body), Headers: headers})
			if err != nil {
				t.Fatalf("Bool: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestBoolNotBool(t *testing.T) {
	p := mustCompile(t, `body.paid`, expr.Options{Kind: expr.Condition})
	_, err := p.Bool(&expr.Input{Body: mustDecode(t, `{"paid":"yes"}`)})
	var ee *expr.EvalError
	if !errors.As(err, &ee) {
		t.Fatalf("error %T %v; want *expr.EvalError", err, err)
	}
	if want := "a condition must be true or false, but this one gave string"; ee.Message != want {
		t.Errorf("got %q; want %q", ee.Message, want)
	}
	_, err = p.Bool(&expr.Input{Body: mustDecode(t, `{"paid":null}`)})
	if err == nil || !strings.Contains(err.Error(), "gave null") {
		t.Errorf("got %v; want an error saying it gave null", err)
	}
}

func TestCheckSample(t *testing.T) {
	sample := []byte(`{"order":"o1","total_cents":1999,"items":[{"sku":"A"},{"sku":"B"}]}`)
	kept := []string{"X-Shopify-Topic"}

	p := mustCompile(t, `body.total_cents / 100.0`, expr.Options{Kind: expr.Value})
	got, err := expr.CheckSample(p, sample, kept, nil)
	if err != nil || len(got) != 1 || string(got[0]) != "19.99" {
		t.Errorf("price: got %q, %v; want [19.99]", got, err)
	}

	p = mustCompile(t, `headers["x-shopify-topic"] == "orders/paid"`, expr.Options{Kind: expr.Condition})
	got, err = expr.CheckSample(p, sample, kept, nil)
	if err != nil || len(got) != 1 || string(got[0]) != "false" {
		t.Errorf("condition: got %q, %v; want [false]", got, err)
	}

	p = mustCompile(t, `body.payment_state`, expr.Options{Kind: expr.Value})
	_, err = expr.CheckSample(p, sample, kept, nil)
	var ee *expr.EvalError
	if !errors.As(err, &ee) || err.Error() != "on the sample payload: no such key: payment_state" {
		t.Errorf("missing key: got %v; want an EvalError %q", err, "on the sample payload: no such key: payment_state")
	}

	elements := mustDecode(t, `[{"sku":"A"},{"sku":"B"},{"id":3}]`).([]any)
	p = mustCompile(t, `body.order + ":" + item.sku + ":" + string(index)`, expr.Options{Kind: expr.Value, FanOut: true})
	got, err = expr.CheckSample(p, sample, kept, elements[:2])
	if err != nil || len(got) != 2 || string(got[0]) != `"o1:A:0"` || string(got[1]) != `"o1:B:1"` {
		t.Errorf("fan-out: got %q, %v; want [\"o1:A:0\" \"o1:B:1\"]", got, err)
	}
	_, err = expr.CheckSample(p, sample, kept, elements)
	if err == nil || err.Error() != "on element 2 of the sample payload: no such key: sku" {
		t.Errorf("fan-out missing key: got %v; want the element named", err)
	}
	got, err = expr.CheckSample(p, sample, kept, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("fan-out without elements: got %q, %v; want nothing", got, err)
	}
}

// TestConcurrentEval runs one Program from several goroutines, each with its own Input; run with -race.
func TestConcurrentEval(t *testing.T) {
	p := mustCompile(t, `{"sku": item.sku, "i": index, "total": body.total * 100.0, "topic": headers["x-topic"]}`,
		expr.Options{Kind: expr.Value, FanOut: true})
	body := mustDecode(t, `{"total":19.5}`)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := &expr.Input{Body: body, Headers: map[string]string{"X-Topic": fmt.Sprint("t", g)}}
			var buf []byte
			for i := range 200 {
				in.Item, in.Index = map[string]any{"sku": fmt.Sprint(g, "-", i)}, i
				var err error
				buf, err = p.AppendJSON(buf[:0], in)
				if err != nil {
					t.Errorf("goroutine %d, eval %d: %v", g, i, err)
					return
				}
				want := fmt.Sprintf(`{"i":%d,"sku":"%d-%d","topic":"t%d","total":1950}`, i, g, i, g)
				if string(buf) != want {
					t.Errorf("goroutine %d: got %s; want %s", g, buf, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDecodeOutOfRange(t *testing.T) {
	if v, err := expr.Decode([]byte(`{"n":2e700}`)); err == nil {
		t.Errorf("Decode of 2e700 = %v; want an error", v)
	}
	v, err := expr.Decode([]byte(`{"n":1e308,"i":12345678901234567890}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"n": 1e308, "i": 12345678901234567890.0}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("got %#v; want %#v", v, want)
	}
}

// TestDecodeCopies: the tree must not change when the caller reuses the buffer it was decoded from.
func TestDecodeCopies(t *testing.T) {
	data := []byte(`{"s":"hello","l":["world"]}`)
	v, err := expr.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'x'
	}
	want := map[string]any{"s": "hello", "l": []any{"world"}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("after the buffer changed got %#v; want %#v", v, want)
	}
}

// TestStaticCost: an expression CEL bounds statically within the limit runs untracked; one over data
// of unknown size keeps the run-time limit.
func TestStaticCost(t *testing.T) {
	for _, tc := range []struct {
		src     string
		bounded bool
	}{
		{`body.price * 100.0`, true},
		{`headers["X-Shopify-Topic"] == "orders/paid" && body.paid == true`, true},
		{`body.?note.orValue("none")`, true},
		{`body.items.map(i, i.sku)`, false},
		{`body.items.exists(i, i == 1.0)`, false},
		{`body.a + body.b`, false},
		{`size(body.name) > 3`, true},
	} {
		p, err := expr.Compile(tc.src, expr.Options{Kind: expr.Value})
		if err != nil {
			t.Fatalf("Compile(%s): %v", tc.src, err)
		}
		if max, bounded := p.StaticCost(); bounded != tc.bounded {
			t.Errorf("StaticCost(%s) = %d, %v; want bounded %v", tc.src, max, bounded, tc.bounded)
		}
	}
}

// TestEvalIsAppendJSON: Eval gives what AppendJSON writes, a scalar as it is.
func TestEvalIsAppendJSON(t *testing.T) {
	body := []byte(`{"s":"a\"b","n":19.5,"i":3,"b":true,"z":null,"l":[1,"x"],"o":{"k":1}}`)
	for _, src := range []string{`body.s`, `body.n`, `body.i`, `int(body.i)`, `uint(body.i)`, `body.b`, `body.z`, `body.l`, `body.o`,
		`body.?missing`, `body.?s`, `timestamp("2026-11-26T10:12:31Z")`, `b"x"`, `1.0 / 3.0`} {
		p := mustCompile(t, src, expr.Options{Kind: expr.Value})
		in := &expr.Input{Body: expr.Lazy(body)}
		want, err := p.AppendJSON(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		var r expr.Result
		if err := p.Eval(in, &r); err != nil {
			t.Fatal(err)
		}
		var got string
		switch r.Kind {
		case expr.ResultNull:
			got = "null"
		case expr.ResultString:
			b, _ := json.Marshal(r.Str)
			got = string(b)
		case expr.ResultNumber:
			got = string(r.Number)
		case expr.ResultBool:
			got = fmt.Sprint(r.Bool)
		case expr.ResultJSON:
			got = string(r.JSON)
		}
		if got != string(want) {
			t.Errorf("Eval(%s) = %s (kind %d); AppendJSON writes %s", src, got, r.Kind, want)
		}
	}
}

// TestLazyNegativeZero: -0 reads as 0 lazily, as Decode gives it.
func TestLazyNegativeZero(t *testing.T) {
	p := mustCompile(t, `string(body.n) + string(1.0 / body.n)`, expr.Options{Kind: expr.Value})
	for _, body := range []any{mustDecode(t, `{"n":-0}`), expr.Lazy([]byte(`{"n":-0}`))} {
		got, err := p.AppendJSON(nil, &expr.Input{Body: body})
		if err != nil || string(got) != `"0+Inf"` {
			t.Errorf("over %T: %s (%v); want \"0+Inf\"", body, got, err)
		}
	}
}
