package fieldpath

import (
	"errors"
	"strings"
	"testing"

	"github.com/bytedance/sonic/ast"

	"github.com/inlet-dev/inlet/internal/jsonvalid"
)

func TestParse(t *testing.T) {
	key := func(k string) Step { return Step{Key: k} }
	idx := func(i int) Step { return Step{Index: i, IsIndex: true} }
	tests := []struct {
		in        string
		want      []Step
		canonical string
	}{
		{"email_address", []Step{key("email_address")}, "email_address"},
		{"customer.email", []Step{key("customer"), key("email")}, "customer.email"},
		{"line_items[0].sku", []Step{key("line_items"), idx(0), key("sku")}, "line_items[0].sku"},
		{`["order.id"]`, []Step{key("order.id")}, `["order.id"]`},
		{`meta["x.y"][2]`, []Step{key("meta"), key("x.y"), idx(2)}, `meta["x.y"][2]`},
		{`[0].id`, []Step{idx(0), key("id")}, `[0].id`},
		{`["plain"]`, []Step{key("plain")}, `plain`},
		{`a["b"].c`, []Step{key("a"), key("b"), key("c")}, `a.b.c`},
		{`[""]`, []Step{key("")}, `[""]`},
		{`["a b"]["caf\u00e9"]`, []Step{key("a b"), key("café")}, `["a b"]["café"]`},
		{`["q\"\\\n"]`, []Step{key("q\"\\\n")}, `["q\"\\\n"]`},
		{`$.@-_9`, []Step{key("$"), key("@-_9")}, `$.@-_9`},
		{`a[1000000]`, []Step{key("a"), idx(1000000)}, `a[1000000]`},
		{`["<&>"]`, []Step{key("<&>")}, `["<&>"]`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !p.Equal(Path{steps: tt.want}) {
				t.Errorf("Parse(%q) = %#v; want %#v", tt.in, p.Steps(), tt.want)
			}
			if got := p.String(); got != tt.canonical {
				t.Errorf("String() = %q; want %q", got, tt.canonical)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in      string
		pos     int
		msgPart string
	}{
		{"", 0, "empty"},
		{".a", 0, "unexpected"},
		{"a.", 2, "ends after '.'"},
		{"a..b", 2, "after '.'"},
		{"a b", 1, "unexpected ' '"},
		{"a.b c", 3, "unexpected"},
		{"a[", 2, "ends after '['"},
		{"a[1", 3, "not closed"},
		{"a[01]", 2, "leading zero"},
		{"a[-1]", 2, "after '['"},
		{"a[1000001]", 2, "larger than"},
		{"a[99999999999999999999]", 2, "larger than"},
		{`a["b]`, 2, "not terminated"},
		{`a["b"`, 5, "not closed"},
		{`a["\x"]`, 2, "invalid JSON string"},
		{"a[\"\n\"]", 3, "control character"},
		{`a['b']`, 2, "after '['"},
		{"a.é", 2, "'é'"},
		{"a]", 1, "unexpected ']'"},
		{"a[*]", 2, "after '['"},
		{strings.Repeat("a", MaxLen+1), MaxLen, "longer than"},
		{strings.Repeat("[0]", MaxDepth+1), 3 * MaxDepth, "steps"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error = %v; want a *SyntaxError", tt.in, err)
			}
			if se.Pos != tt.pos || !strings.Contains(se.Msg, tt.msgPart) {
				t.Errorf("Parse(%q) error = %v; want position %d and %q", tt.in, err, tt.pos, tt.msgPart)
			}
		})
	}
}

func TestParseDepthLimit(t *testing.T) {
	if _, err := Parse(strings.Repeat("[0]", MaxDepth)); err != nil {
		t.Errorf("Parse of %d steps: %v; want nil", MaxDepth, err)
	}
}

const payload = `{
  "user_id": "12345",
  "email_address": "jane@example.com",
  "price": 99.99,
  "paid": true,
  "coupon": null,
  "customer": {"email": "c@example.com", "tags": ["vip", "new"]},
  "line_items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
  "order.id": "ORD-001",
  "meta": {"x.y": [10, 20, 30]},
  "": "empty key"
}`

func TestGet(t *testing.T) {
	tests := []struct {
		path    string
		typ     int
		raw     string
		missing bool
	}{
		{path: "user_id", typ: ast.V_STRING, raw: `"12345"`},
		{path: "price", typ: ast.V_NUMBER, raw: `99.99`},
		{path: "paid", typ: ast.V_TRUE, raw: `true`},
		{path: "coupon", typ: ast.V_NULL, raw: `null`},
		{path: "customer.email", typ: ast.V_STRING, raw: `"c@example.com"`},
		{path: "customer.tags[1]", typ: ast.V_STRING, raw: `"new"`},
		{path: "line_items[1].sku", typ: ast.V_STRING, raw: `"B-2"`},
		{path: "line_items[0]", typ: ast.V_OBJECT, raw: `{"sku": "A-1", "qty": 2}`},
		{path: `["order.id"]`, typ: ast.V_STRING, raw: `"ORD-001"`},
		{path: `meta["x.y"][2]`, typ: ast.V_NUMBER, raw: `30`},
		{path: `[""]`, typ: ast.V_STRING, raw: `"empty key"`},
		{path: "order.id", missing: true},
		{path: "nope", missing: true},
		{path: "line_items[5].sku", missing: true},
		{path: "customer[0]", missing: true},
		{path: "line_items.sku", missing: true},
		{path: "user_id.x", missing: true},
		{path: "[0]", missing: true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			n, err := MustParse(tt.path).Get([]byte(payload))
			if tt.missing {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get(%s) error = %v; want ErrNotFound", tt.path, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(%s): %v", tt.path, err)
			}
			raw, _ := n.Raw()
			if n.TypeSafe() != tt.typ || raw != tt.raw {
				t.Errorf("Get(%s) = type %d %s; want type %d %s", tt.path, n.TypeSafe(), raw, tt.typ, tt.raw)
			}
		})
	}
	if _, err := (Path{}).Get([]byte(payload)); !errors.Is(err, ErrNotFound) {
		t.Errorf("zero Path Get error = %v; want ErrNotFound", err)
	}
}

func TestGetTopLevelArray(t *testing.T) {
	n, err := MustParse("[1].id").Get([]byte(`[{"id":1},{"id":2}]`))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := n.Int64(); v != 2 {
		t.Errorf("got %d; want 2", v)
	}
}

func TestFields(t *testing.T) {
	got, err := Fields([]byte(payload), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{
		{"user_id", "string", "12345"},
		{"email_address", "string", "jane@example.com"},
		{"price", "number", "99.99"},
		{"paid", "boolean", "true"},
		{"coupon", "null", "null"},
		{"customer", "object", ""},
		{"customer.email", "string", "c@example.com"},
		{"customer.tags", "array", ""},
		{"customer.tags[0]", "string", "vip"},
		{"customer.tags[1]", "string", "new"},
		{"line_items", "array", ""},
		{"line_items[0]", "object", ""},
		{"line_items[0].sku", "string", "A-1"},
		{"line_items[0].qty", "number", "2"},
		{"line_items[1]", "object", ""},
		{"line_items[1].sku", "string", "B-2"},
		{"line_items[1].qty", "number", "1"},
		{`["order.id"]`, "string", "ORD-001"},
		{"meta", "object", ""},
		{`meta["x.y"]`, "array", ""},
		{`meta["x.y"][0]`, "number", "10"},
		{`meta["x.y"][1]`, "number", "20"},
		{`meta["x.y"][2]`, "number", "30"},
		{`[""]`, "string", "empty key"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d fields %v; want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d = %+v; want %+v", i, got[i], want[i])
		}
		// Every listed path must parse and find its field.
		if _, err := MustParse(got[i].Path).Get([]byte(payload)); err != nil {
			t.Errorf("Get(%s): %v", got[i].Path, err)
		}
	}
}

func TestFieldsLimitsAndErrors(t *testing.T) {
	t.Run("max", func(t *testing.T) {
		got, err := Fields([]byte(`{"a":1,"b":2,"c":3}`), 2)
		if !errors.Is(err, ErrTooManyFields) || len(got) != 2 {
			t.Errorf("got %d fields, error %v; want 2 and ErrTooManyFields", len(got), err)
		}
	})
	t.Run("truncated example", func(t *testing.T) {
		long := strings.Repeat("é", 100)
		got, err := Fields([]byte(`{"a":"`+long+`"}`), 10)
		if err != nil {
			t.Fatal(err)
		}
		ex := got[0].Example
		if len(ex) > MaxExample || !strings.HasSuffix(ex, "…") || !strings.HasPrefix(long, strings.TrimSuffix(ex, "…")) {
			t.Errorf("example = %q (%d bytes); want a prefix of at most %d bytes ending in …", ex, len(ex), MaxExample)
		}
	})
	// What the edge refuses as a webhook body (package jsonvalid), refused with the same words.
	for _, c := range []struct{ name, in, want string }{
		{"duplicate key", `{"user_id":"evil","user_id":"12345"}`, `duplicate key "user_id" at byte 18`},
		{"control character", "{\"note\":\"a\nb\"}", "control character U+000A in string at byte 10"},
		{"invalid UTF-8", "{\"name\":\"Jos\xe9\"}", "invalid UTF-8 at byte 12"},
		{"lone surrogate", `{"user_id":"\ud800"}`, `lone surrogate \ud800 at byte 12`},
		{"nested deeper than the edge allows", strings.Repeat("[", 65) + strings.Repeat("]", 65), "nested deeper than 64 at byte 64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Fields([]byte(c.in), 10)
			var e *jsonvalid.Error
			if !errors.As(err, &e) || err.Error() != c.want || got != nil {
				t.Errorf("Fields(%q) = %v, %v; want %s", c.in, got, err, c.want)
			}
		})
	}
	t.Run("deep", func(t *testing.T) {
		doc := strings.Repeat(`{"a":`, MaxDepth+5) + "1" + strings.Repeat("}", MaxDepth+5)
		got, err := Fields([]byte(doc), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != MaxDepth {
			t.Errorf("got %d fields; want %d (nothing below MaxDepth)", len(got), MaxDepth)
		}
	})
	t.Run("scalar top level", func(t *testing.T) {
		got, err := Fields([]byte(`"x"`), 10)
		if err != nil || len(got) != 0 {
			t.Errorf("got %v, %v; want no fields", got, err)
		}
	})
	for _, bad := range []string{``, `{`, `{"a":}`, `{"a":1}{}`, `[1,]`, `nul`} {
		t.Run("invalid "+bad, func(t *testing.T) {
			if _, err := Fields([]byte(bad), 10); err == nil || errors.Is(err, ErrTooManyFields) {
				t.Errorf("Fields(%q) error = %v; want a syntax error", bad, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a", "a.b", "a[0].b", `["x.y"]`, `m["a\"b"][3]`, `[""]`, `["\u0000"]`, "a..", "[01]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		c := p.String()
		q, err := Parse(c)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, c, err)
		}
		if !q.Equal(p) {
			t.Fatalf("Parse(%q) = %v, re-parsed from %q = %v", s, p.Steps(), c, q.Steps())
		}
		if q.String() != c {
			t.Fatalf("canonical form not stable: %q then %q", c, q.String())
		}
	})
}

func BenchmarkGet(b *testing.B) {
	src := []byte(payload)
	for _, path := range []string{"user_id", "line_items[1].sku", `meta["x.y"][2]`} {
		p := MustParse(path)
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, err := p.Get(src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(`line_items[0]["sku.code"]`); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFromRoot(t *testing.T) {
	for _, tc := range []struct {
		in   string
		root bool
		rest string
	}{
		{"$", true, ""},
		{"$.customer.email", true, "customer.email"},
		{"$[0].id", true, "[0].id"},
		{"email", false, "email"},
		{"a.$", false, "a.$"},
		{`["$x"]`, false, "$x"},
	} {
		root, rest := MustParse(tc.in).FromRoot()
		if root != tc.root || rest.String() != tc.rest {
			t.Errorf("FromRoot(%s) = %v, %q; want %v, %q", tc.in, root, rest, tc.root, tc.rest)
		}
	}
	_, rest := MustParse("$.a[1]").FromRoot()
	n, err := rest.Get([]byte(`{"a":[1,2]}`))
	if raw, _ := n.Raw(); err != nil || raw != "2" {
		t.Errorf("Get after FromRoot = %q, %v; want 2", raw, err)
	}
}
