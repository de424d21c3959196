package jsonvalid

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

func TestValidateAccepts(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `0`, `-0`, `1.5e-3`, `-12.0E+7`, `"x"`, `true`, `false`, `null`,
		" \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \n",
		`{"user_id":"12345","email_address":"jane@example.com","price":99.99,"tags":["a","b"]}`,
		`"caf\u00e9 cr\u00E8me \ud83d\ude80 \" \\ \/ \b \f \n \r \t"`,
		`"café crème 🚀 ` + "\x7f" + `"`,
		`"\ufffd ` + "\uFFFD \uFFFE \U0010FFFF" + `"`,               // U+FFFD itself and noncharacters are text
		`{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}`,                 // the same name in different objects
		`{"a":1,"A":2,"a ":3,"\u0061\u0062":4,"a\u0000":5}`,         // names that differ
		`{"é":1,"e\u0301":2}`,                                       // not normalised: different names
		strings.Repeat("[", 64) + strings.Repeat("]", 64),           // at the depth limit
		`{"s":"` + strings.Repeat("abcdefg\u00e9", 100) + `"}`,      // the 8-byte loop and its tail
		manyKeys(1000, "", 0),                                       // hashed, no duplicate
		`[` + manyKeys(40, "", 0) + `,` + manyKeys(40, "", 0) + `]`, // two hashed objects, same names
		`{"o":` + manyKeys(40, "", 0) + `,"k1":1,"k39":2}`,          // a hashed child's names in its parent
	} {
		if err := Validate([]byte(in), 64); err != nil {
			t.Errorf("Validate(%.80q) = %v; want nil", in, err)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	for _, c := range []struct {
		in   string
		kind Kind
		want string
	}{
		{``, Syntax, `empty body`},
		{`  `, Syntax, `unexpected end of JSON input at byte 2`},
		{`{"user_id": 12345,`, Syntax, `unexpected end of JSON input at byte 18`},
		{`{"a":1}x`, Syntax, `unexpected 'x' after the JSON value at byte 7`},
		{`{"a":1} {}`, Syntax, `unexpected '{' after the JSON value at byte 8`},
		{`{"a" 1}`, Syntax, `unexpected '1' at byte 5`},
		{`{"a":1,}`, Syntax, `unexpected '}' at byte 7`},
		{`[1,]`, Syntax, `unexpected ']' at byte 3`},
		{`[1}`, Syntax, `unexpected '}' at byte 2`},
		{`{1:2}`, Syntax, `unexpected '1' at byte 1`},
		{`01`, Syntax, `unexpected '1' after the JSON value at byte 1`},
		{`-`, Syntax, `unexpected end of JSON input at byte 1`},
		{`1.`, Syntax, `unexpected end of JSON input at byte 2`},
		{`1.e3`, Syntax, `unexpected 'e' at byte 2`},
		{`1e+`, Syntax, `unexpected end of JSON input at byte 3`},
		{`+1`, Syntax, `unexpected '+' at byte 0`},
		{`tru`, Syntax, `unexpected end of JSON input at byte 3`},
		{`nul1`, Syntax, `unexpected '1' at byte 3`},
		{`"abc`, Syntax, `unexpected end of JSON input at byte 4`},
		{`"\x"`, Syntax, `invalid escape character 'x' in string at byte 2`},
		{`"\u12g4"`, Syntax, `unexpected 'g' at byte 5`},
		{`"\u12`, Syntax, `unexpected end of JSON input at byte 5`},
		{"\xef\xbb\xbf{}", Syntax, `unexpected byte 0xEF at byte 0`}, // a BOM
		{`'a'`, Syntax, `unexpected ''' at byte 0`},

		{strings.Repeat("[", 65) + strings.Repeat("]", 65), TooDeep, `nested deeper than 64 at byte 64`},
		{`{"a":` + strings.Repeat(`{"a":`, 64) + `1` + strings.Repeat(`}`, 65), TooDeep, `nested deeper than 64 at byte 320`},

		{"{\"note\":\"line one\nline two\"}", ControlChar, `control character U+000A in string at byte 17`},
		{"\"\x00\"", ControlChar, `control character U+0000 in string at byte 1`},
		{"{\"a\tb\":1}", ControlChar, `control character U+0009 in string at byte 3`},
		{"\"0123456789\x1f\"", ControlChar, `control character U+001F in string at byte 11`},

		{"{\"name\":\"Jos\xe9\"}", InvalidUTF8, `invalid UTF-8 at byte 12`},
		{"\"\xc3\"", InvalidUTF8, `invalid UTF-8 at byte 1`},
		{"\"\xed\xa0\x80\"", InvalidUTF8, `invalid UTF-8 at byte 1`},     // a surrogate encoded in UTF-8
		{"\"\xc0\xaf\"", InvalidUTF8, `invalid UTF-8 at byte 1`},         // overlong '/'
		{"\"\xf4\x90\x80\x80\"", InvalidUTF8, `invalid UTF-8 at byte 1`}, // above U+10FFFF
		{"\"abcdefgh\xff\"", InvalidUTF8, `invalid UTF-8 at byte 9`},

		{`{"user_id":"\ud800"}`, LoneSurrogate, `lone surrogate \ud800 at byte 12`},
		{`"\uDBFF"`, LoneSurrogate, `lone surrogate \uDBFF at byte 1`},
		{`"\udc00"`, LoneSurrogate, `lone surrogate \udc00 at byte 1`},
		{`"\ud83d\u0041"`, LoneSurrogate, `lone surrogate \ud83d at byte 1`},
		{`"\ud83d\ud83d\ude80"`, LoneSurrogate, `lone surrogate \ud83d at byte 1`},
		{`"\ude80\ud83d"`, LoneSurrogate, `lone surrogate \ude80 at byte 1`},
		{`"\ud83d\n"`, LoneSurrogate, `lone surrogate \ud83d at byte 1`},
		{`"\ud83d\u00zz"`, Syntax, `unexpected 'z' at byte 11`},

		{`{"user_id":"evil","user_id":"12345"}`, DuplicateKey, `duplicate key "user_id" at byte 18`},
		{`{"a":1,"\u0061":2}`, DuplicateKey, `duplicate key "\u0061" at byte 7`},
		{`{"\/":1,"/":2}`, DuplicateKey, `duplicate key "/" at byte 8`},
		{`{"\ud83d\ude80":1,"🚀":2}`, DuplicateKey, `duplicate key "🚀" at byte 18`},
		{`{"é":1,"\u00E9":2}`, DuplicateKey, `duplicate key "\u00E9" at byte 8`},
		{`{"a":{"b":1,"b":2}}`, DuplicateKey, `duplicate key "b" at byte 12`},
		{`{"a":{"b":1},"a":2}`, DuplicateKey, `duplicate key "a" at byte 13`},
		{`[{"a":1},{"a":1,"a":2}]`, DuplicateKey, `duplicate key "a" at byte 16`},
		{`{"` + strings.Repeat("k", 100) + `":1,"` + strings.Repeat("k", 100) + `":2}`, DuplicateKey,
			`duplicate key "` + strings.Repeat("k", 61) + `…" at byte 106`},
		{`{"` + strings.Repeat("é", 50) + `":1,"` + strings.Repeat("é", 50) + `":2}`, DuplicateKey,
			`duplicate key "` + strings.Repeat("é", 30) + `…" at byte 106`},
		// Past the direct comparisons: the repeated name before, at and after the switch to hashing.
		{manyKeys(40, `"k0":0`, 1), DuplicateKey, `duplicate key "k0" at byte 8`},
		{manyKeys(40, `"k3":0`, 16), DuplicateKey, `duplicate key "k3" at byte 125`},
		{manyKeys(40, `"k39":0`, 40), DuplicateKey, `duplicate key "k39" at byte 341`},
		{manyKeys(40, `"k\u0031\u0037":0`, 40), DuplicateKey, `duplicate key "k\u0031\u0037" at byte 341`},
	} {
		err := Validate([]byte(c.in), 64)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Validate(%.60q) = %v; want %s", c.in, err, c.want)
			continue
		}
		if e.Kind != c.kind || err.Error() != c.want {
			t.Errorf("Validate(%.60q) = kind %d %q; want kind %d %q", c.in, e.Kind, err, c.kind, c.want)
		}
		if !strings.HasSuffix(c.want, fmt.Sprintf(" at byte %d", e.Offset)) && c.in != "" {
			t.Errorf("Validate(%.60q): offset %d is not the one the text gives", c.in, e.Offset)
		}
		if got, _ := e.AppendText([]byte("x: ")); string(got) != "x: "+c.want {
			t.Errorf("AppendText = %q; want %q", got, "x: "+c.want)
		}
	}
}

// manyKeys is an object with the names k0…k(n-1), and extra inserted before the nth member when
// at ≥ 0 (after all of them when at == n).
func manyKeys(n int, extra string, at int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i <= n; i++ {
		if i == at && extra != "" {
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			b.WriteString(extra)
		}
		if i == n {
			break
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	b.WriteByte('}')
	return b.String()
}

func TestValidateDepthBounds(t *testing.T) {
	deep := []byte(strings.Repeat("[", 3) + strings.Repeat("]", 3))
	if err := Validate(deep, 0); err == nil || err.Error() != "nested deeper than 1 at byte 1" {
		t.Errorf("maxDepth 0 = %v; want it read as 1", err)
	}
	deepest := []byte(strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1))
	if err := Validate(deepest, 1<<30); err == nil || err.Error() != fmt.Sprintf("nested deeper than %d at byte %d", MaxDepth, MaxDepth) {
		t.Errorf("maxDepth 1<<30 = %v; want it lowered to MaxDepth", err)
	}
	if err := Validate(deepest[1:len(deepest)-1], MaxDepth); err != nil {
		t.Errorf("MaxDepth deep = %v; want nil", err)
	}
}

// TestValidateNoAllocs: a valid body costs no allocation, objects of many keys included, once the pool
// is warm.
func TestValidateNoAllocs(t *testing.T) {
	for _, in := range []string{
		`{"user_id":"12345","email_address":"jane@example.com","price":99.99,"tags":["a","b"]}`,
		readFile(t, "testdata/order.json"),
		manyKeys(500, "", 0),
		`{"a\n":1,"a\u000b":2,"c\"":3,"x":` + manyKeys(100, `"k\u0031x":1`, 100) + `}`,
	} {
		b := []byte(in)
		if err := Validate(b, 64); err != nil {
			t.Fatalf("Validate(%.60q) = %v", in, err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = Validate(b, 64) }); n != 0 {
			t.Errorf("Validate(%.60q): %.1f allocs; want 0", in, n)
		}
	}
}

// TestValidateLinear: one object of 100k names in 1 MiB, the worst the edge's default body limit lets
// in, takes about as long per byte as a typical body: no comparison of every name with every other.
func TestValidateLinear(t *testing.T) {
	big := []byte(manyKeys(100_000, `"k99999":0`, 100_000))
	small := []byte(manyKeys(10_000, "", 0))
	Validate(small, 64)
	perByte := func(b []byte) time.Duration {
		best := time.Hour
		for range 3 {
			start := time.Now()
			_ = Validate(b, 64)
			best = min(best, time.Since(start))
		}
		return best / time.Duration(len(b))
	}
	if err := Validate(big, 64); err == nil || !strings.HasPrefix(err.Error(), `duplicate key "k99999"`) {
		t.Fatalf("Validate(100k names and a repeat) = %v", err)
	}
	s, l := perByte(small), perByte(big)
	if l > 10*s+time.Nanosecond {
		t.Errorf("%v a byte for 100k names, %v for 10k; want about the same", l, s)
	}
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzValidate checks Validate against two readers: jsontext (encoding/json/v2's tokenizer, which by
// default holds a value to RFC 7493 — UTF-8, no lone surrogate, unique names) must agree with it both
// ways, and whatever Validate accepts encoding/json reads as valid, with no repeated name.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"12345","tags":["a","b"],"n":-1.5e3,"ok":true,"x":null}`,
		`{"user_id":"evil","user_id":"12345"}`, `{"a":1,"\u0061":2}`, `"\ud83d\ude80"`, `"\ud800"`,
		"\"a\x01\"", "\"\xff\"", `[[[]]]`, manyKeys(20, `"k5":0`, 20),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := Validate(b, MaxDepth)
		ours := err == nil
		if theirs := jsontext.Value(b).IsValid(); ours != theirs {
			t.Fatalf("Validate(%q) = %v; jsontext valid = %v", b, err, theirs)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(b) {
				t.Fatalf("Validate(%q) = %#v", b, err)
			}
			if len(b) > 0 && !strings.HasSuffix(err.Error(), fmt.Sprintf(" at byte %d", e.Offset)) {
				t.Fatalf("Validate(%q) = %q: no offset", b, err)
			}
			if e.Kind < Syntax || e.Kind > DuplicateKey {
				t.Fatalf("Validate(%q) = %v: kind %d", b, err, e.Kind)
			}
			return
		}
		if !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("Validate(%q) = nil; encoding/json valid = %v, UTF-8 = %v", b, json.Valid(b), utf8.Valid(b))
		}
		if dup, ok := repeatedName(b); ok {
			t.Fatalf("Validate(%q) = nil; encoding/json reads the name %q twice in one object", b, dup)
		}
	})
}

// repeatedName walks b with encoding/json's tokenizer and returns a name an object holds twice.
func repeatedName(b []byte) (string, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	type obj struct {
		names map[string]bool
		isObj bool
		key   bool // the next string token is a name
	}
	var stack []*obj
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return "", false
		}
		if err != nil {
			return "", false
		}
		var top *obj
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.isObj && top.key {
			if top.names[s] {
				return s, true
			}
			top.names[s] = true
			top.key = false
			continue
		}
		if top != nil && top.isObj {
			top.key = true // a value ended (or a container opened: its end makes this true again)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &obj{names: map[string]bool{}, isObj: true, key: true})
		case json.Delim('['):
			stack = append(stack, &obj{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].isObj {
				stack[len(stack)-1].key = true
			}
		}
	}
}

// FuzzValidateNames builds one object from the input's lines as member names (written as they are,
// escapes included), so that objects past the direct comparisons and names spelled differently but
// equal once unescaped come up far more often than in random bodies; jsontext must agree.
func FuzzValidateNames(f *testing.F) {
	f.Add([]byte("a\nb\n\\u0061"), uint8(0))
	f.Add([]byte(strings.Repeat("k\n", 30)+"\\u006b"), uint8(3))
	f.Add([]byte("\\ud83d\\ude80\n🚀\n\\/\n/"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, copies uint8) {
		names := bytes.Split(in, []byte("\n"))
		var b []byte
		b = append(b, '{')
		for c := 0; c <= int(copies%4); c++ {
			for i, n := range names {
				if len(b) > 1 {
					b = append(b, ',')
				}
				// After the first copy, suffix each name so that copies are different names.
				b = fmt.Appendf(b, `"%s%s":%d`, n, strings.Repeat("~", c), i)
			}
		}
		b = append(b, '}')
		err := Validate(b, MaxDepth)
		if theirs := jsontext.Value(b).IsValid(); (err == nil) != theirs {
			t.Fatalf("Validate(%q) = %v; jsontext valid = %v", b, err, theirs)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	for _, c := range []struct{ name, body string }{
		{"order-3k", readFile(b, "testdata/order.json")},
		{"string-64k", `{"note":"` + strings.Repeat("x", 64<<10) + `"}`},
		{"keys-1k", manyKeys(1000, "", 0)},
		{"keys-100k", manyKeys(100_000, "", 0)},
	} {
		b.Run(c.name, func(b *testing.B) {
			body := []byte(c.body)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := Validate(body, DefaultDepth); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestValidateLongStrings puts each kind of byte a string may or may not hold at every position of
// strings long enough for the long-run path (and short enough not to be), and checks against jsontext.
func TestValidateLongStrings(t *testing.T) {
	for _, ins := range []string{"\"", "\\n", "\\u00e9", "\\ud83d\\ude80", "\\ud800", "\n", "\x1f", "\x7f", "é", "🚀", "\xff", "\xe9", "\\q"} {
		for n := 24; n <= 80; n++ {
			for at := 0; at <= n; at++ {
				str := strings.Repeat("a", at) + ins + strings.Repeat("b", n-at)
				b := []byte(`{"k":"` + str + `"}`)
				err := Validate(b, 64)
				if theirs := jsontext.Value(b).IsValid(); (err == nil) != theirs {
					t.Fatalf("Validate(%q) = %v; jsontext valid = %v", b, err, theirs)
				}
			}
		}
	}
}
