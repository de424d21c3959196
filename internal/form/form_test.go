package form

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/inlet-dev/inlet/internal/jsonvalid"
)

const twilioSMS = "ToCountry=US&SmsMessageSid=SM0123456789abcdef0123456789abcdef&NumMedia=0&Body=Hello+there%21+%C3%A9t%C3%A9&" +
	"From=%2B14158675309&To=%2B18005551212&MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789abcdef&ApiVersion=2010-04-01"

// part is one multipart part to build: a field, or a file when filename is set.
type part struct {
	name, value, filename string
	header                textproto.MIMEHeader // replaces the Content-Disposition when set
}

// multipartBody builds a multipart/form-data body with mime/multipart's writer and returns its
// Content-Type.
func multipartBody(t testing.TB, parts ...part) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if err := w.SetBoundary("inlet-test-boundary"); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		h := p.header
		if h == nil {
			h = textproto.MIMEHeader{}
			cd := fmt.Sprintf(`form-data; name="%s"`, p.name)
			if p.filename != "" {
				cd += fmt.Sprintf(`; filename="%s"`, p.filename)
			}
			h.Set("Content-Disposition", cd)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write([]byte(p.value)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes()
}

func TestTypeOf(t *testing.T) {
	for ct, want := range map[string]Type{
		"application/x-www-form-urlencoded":                URLEncoded,
		"Application/X-WWW-Form-Urlencoded; charset=UTF-8": URLEncoded,
		" application/x-www-form-urlencoded ;":             URLEncoded,
		"multipart/form-data; boundary=x":                  Multipart,
		"MULTIPART/FORM-DATA":                              Multipart,
		"multipart/mixed; boundary=x":                      NotForm,
		"application/json":                                 NotForm,
		"":                                                 NotForm,
	} {
		if got := TypeOf(ct); got != want {
			t.Errorf("TypeOf(%q) = %d; want %d", ct, got, want)
		}
	}
}

func TestToJSON(t *testing.T) {
	mct, mbody := multipartBody(t, part{name: "b", value: "2"}, part{name: "a", value: "x"}, part{name: "b", value: "3"},
		part{name: "json", value: `{"k":"v"}`}, part{name: "", value: "empty name"})
	cases := []struct {
		name, ct, body, want string
	}{
		{"urlencoded", MediaURLEncoded, "b=2&a=x&b=3", `{"b":["2","3"],"a":"x"}`},
		{"twilio", MediaURLEncoded + "; charset=utf-8", twilioSMS, `{"ToCountry":"US","SmsMessageSid":"SM0123456789abcdef0123456789abcdef","NumMedia":"0","Body":"Hello there! été","From":"+14158675309","To":"+18005551212","MessageSid":"SM0123456789abcdef0123456789abcdef","AccountSid":"AC0123456789abcdef0123456789abcdef","ApiVersion":"2010-04-01"}`},
		{"empty pairs, no '=', empty value", MediaURLEncoded, "&&a&b=&&c=1=2&", `{"a":"","b":"","c":"1=2"}`},
		{"escaped names and values", MediaURLEncoded, "n%61me=%22q%22+%5C%0A%01%2B&%E2%82%AC=1", `{"name":"\"q\" \\\n\u0001+","€":"1"}`},
		{"only what RFC 8259 requires escaped", MediaURLEncoded, "c=%09%0D%1F%7F%3C%3E%26%E2%80%A8%EF%BF%BD", "{\"c\":\"\\t\\r\\u001f\x7f<>&\u2028\ufffd\"}"}, // DEL, U+2028 and HTML's <>& as they are
		{"empty", MediaURLEncoded, "", `{}`},
		{"semicolon is a character", MediaURLEncoded, "a=1;b=2", `{"a":"1;b=2"}`},
		{"multipart", mct, string(mbody), `{"b":["2","3"],"a":"x","json":"{\"k\":\"v\"}","":"empty name"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ToJSON([]byte("prefix:"), c.ct, []byte(c.body))
			if err != nil {
				t.Fatalf("ToJSON: %v", err)
			}
			if string(got) != "prefix:"+c.want {
				t.Errorf("got %s; want %s", got, c.want)
			}
			if err := jsonvalid.Validate(got[len("prefix:"):], jsonvalid.DefaultDepth); err != nil {
				t.Errorf("the view breaks the JSON rule: %v", err)
			}
		})
	}
}

// wantErr is a refusal: its kind and words in its message.
type wantErr struct {
	kind Kind
	text string
}

func checkErr(t *testing.T, what string, err error, w wantErr) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("%s: got %v; want a *form.Error of kind %d", what, err, w.kind)
	}
	if fe.Kind != w.kind || !strings.Contains(fe.Error(), w.text) {
		t.Errorf("%s: got kind %d %q; want kind %d containing %q", what, fe.Kind, fe.Error(), w.kind, w.text)
	}
}

func TestValidateRefuses(t *testing.T) {
	file, fileBody := multipartBody(t, part{name: "a", value: "1"}, part{name: "photo", value: "\x89PNG", filename: "a.png"})
	emptyFile, emptyFileBody := multipartBody(t, part{name: "doc", value: "x", filename: " "})
	extFile, extFileBody := multipartBody(t, part{header: textproto.MIMEHeader{"Content-Disposition": {`form-data; name="f"; filename*=UTF-8''%C3%A9.txt`}}, value: "x"})
	noName, noNameBody := multipartBody(t, part{header: textproto.MIMEHeader{"Content-Disposition": {`form-data`}}, value: "x"})
	notFormData, notFormDataBody := multipartBody(t, part{header: textproto.MIMEHeader{"Content-Disposition": {`attachment; name="a"`}}, value: "x"})
	badUTF8, badUTF8Body := multipartBody(t, part{name: "a", value: "\xff"})
	badName, badNameBody := multipartBody(t, part{name: "\xff", value: "x"})
	_, cut := multipartBody(t, part{name: "a", value: "1"})
	cases := []struct {
		name, ct, body string
		want           wantErr
	}{
		{"not a form", "application/json", "{}", wantErr{Unsupported, `"application/json" is not a form`}},
		{"bad escape", MediaURLEncoded, "a=1&b=%4", wantErr{Malformed, "invalid percent-escape at byte 6"}},
		{"JSON under a form's type", MediaURLEncoded, `{"user_id":"12345"}`, wantErr{Malformed, "looks like JSON"}},
		{"JSON array under a form's type", MediaURLEncoded, `[1]`, wantErr{Malformed, "looks like JSON"}},
		{"bad escape digits", MediaURLEncoded, "a=%zz", wantErr{Malformed, "invalid percent-escape at byte 2"}},
		{"bad escape in a name", MediaURLEncoded, "x=1&%g1=2", wantErr{Malformed, "at byte 4"}},
		{"invalid UTF-8 escaped", MediaURLEncoded, "a=%C3%28", wantErr{InvalidUTF8, "field value at byte 2"}},
		{"invalid UTF-8 raw", MediaURLEncoded, "a\xff=1", wantErr{InvalidUTF8, "field name at byte 0"}},
		{"encoded surrogate", MediaURLEncoded, "a=%ED%A0%80", wantErr{InvalidUTF8, "value"}},
		{"content type too long", MediaURLEncoded + "; x=" + strings.Repeat("y", MaxContentTypeBytes), "a=1", wantErr{Malformed, "Content-Type longer than 256 bytes"}},
		{"multipart file", file, string(fileBody), wantErr{File, `part 2 ("photo") is a file`}},
		{"multipart file with an empty name", emptyFile, string(emptyFileBody), wantErr{File, "is a file"}},
		{"multipart file by filename*", extFile, string(extFileBody), wantErr{File, "is a file"}},
		{"multipart part without a name", noName, string(noNameBody), wantErr{Malformed, "part 1 has no name"}},
		{"multipart part not form-data", notFormData, string(notFormDataBody), wantErr{Malformed, "no Content-Disposition form-data"}},
		{"multipart value not UTF-8", badUTF8, string(badUTF8Body), wantErr{InvalidUTF8, "invalid UTF-8 in its value"}},
		{"multipart name not UTF-8", badName, string(badNameBody), wantErr{InvalidUTF8, "invalid UTF-8 in its name"}},
		{"multipart without boundary", MediaMultipart, "--x--", wantErr{Malformed, "without a boundary"}},
		{"multipart boundary too long", MediaMultipart + "; boundary=" + strings.Repeat("b", 71), "", wantErr{Malformed, "without a boundary"}},
		{"multipart cut in a part's header", noName, string(cut[:len(cut)-30]), wantErr{Malformed, "cut short"}},
		{"multipart cut in a value", noName, string(cut[:len(cut)-10]), wantErr{Malformed, "cannot be read"}},
		{"multipart without its closing boundary", noName, strings.TrimSuffix(string(cut), "--inlet-test-boundary--\r\n"), wantErr{Malformed, "unexpected EOF"}},
		{"multipart ending in a part's header", noName, "--inlet-test-boundary\r\nContent-Disposition: form-data; name=\"a\"", wantErr{Malformed, "cut short"}},
		{"multipart not multipart", MediaMultipart + "; boundary=x", "a=1", wantErr{Malformed, "part 1 cannot be read"}},
		{"multipart content type unreadable", MediaMultipart + "; boundary", "", wantErr{Malformed, "cannot be read"}},
	}
	for _, c := range cases {
		err := Validate(c.ct, []byte(c.body))
		checkErr(t, c.name, err, c.want)
		if _, jerr := ToJSON(nil, c.ct, []byte(c.body)); jerr == nil || jerr.Error() != err.Error() {
			t.Errorf("%s: ToJSON refused with %v; want Validate's %v", c.name, jerr, err)
		}
	}
}

// TestLimits: each limit accepts what is at it and refuses what is one past it.
func TestLimits(t *testing.T) {
	fields := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte('&')
			}
			fmt.Fprintf(&b, "f%d=%d", i, i)
		}
		return b.String()
	}
	parts := func(n int) []part {
		ps := make([]part, n)
		for i := range ps {
			ps[i] = part{name: fmt.Sprintf("p%d", i), value: "v"}
		}
		return ps
	}
	escaped := func(n int) string { return strings.Repeat("%41", n) } // n decoded bytes
	cases := []struct {
		name     string
		ct       string
		at, past []byte
		want     wantErr
	}{
		{"MaxFields", MediaURLEncoded, []byte(fields(MaxFields)), []byte(fields(MaxFields + 1)), wantErr{TooMany, "more than 1000 fields"}},
		{"MaxNameBytes", MediaURLEncoded, []byte(strings.Repeat("n", MaxNameBytes) + "=1"), []byte(strings.Repeat("n", MaxNameBytes+1) + "=1"),
			wantErr{TooLong, "field name longer than 256 bytes at byte 0"}},
		{"MaxNameBytes decoded", MediaURLEncoded, []byte(escaped(MaxNameBytes) + "=1"), []byte(escaped(MaxNameBytes+1) + "=1"),
			wantErr{TooLong, "field name longer"}},
		{"MaxValueBytes", MediaURLEncoded, []byte("v=" + strings.Repeat("x", MaxValueBytes)), []byte("v=" + strings.Repeat("x", MaxValueBytes+1)),
			wantErr{TooLong, "field value longer than 262144 bytes at byte 2"}},
		{"MaxValueBytes decoded", MediaURLEncoded, []byte("v=" + escaped(MaxValueBytes)), []byte("v=" + escaped(MaxValueBytes+1)),
			wantErr{TooLong, "field value longer"}},
	}
	mp := func(ps ...part) (string, []byte) { return multipartBody(t, ps...) }
	ct, at := mp(parts(MaxParts)...)
	_, past := mp(parts(MaxParts + 1)...)
	cases = append(cases, struct {
		name     string
		ct       string
		at, past []byte
		want     wantErr
	}{"MaxParts", ct, at, past, wantErr{TooMany, "more than 100 parts"}})
	ct, at = mp(part{name: strings.Repeat("n", MaxNameBytes), value: "v"})
	_, past = mp(part{name: strings.Repeat("n", MaxNameBytes+1), value: "v"})
	cases = append(cases, struct {
		name     string
		ct       string
		at, past []byte
		want     wantErr
	}{"multipart MaxNameBytes", ct, at, past, wantErr{TooLong, "name longer than 256 bytes"}})
	ct, at = mp(part{name: "v", value: strings.Repeat("x", MaxValueBytes)})
	_, past = mp(part{name: "v", value: strings.Repeat("x", MaxValueBytes+1)})
	cases = append(cases, struct {
		name     string
		ct       string
		at, past []byte
		want     wantErr
	}{"multipart MaxValueBytes", ct, at, past, wantErr{TooLong, "value longer than 262144 bytes"}})
	long := MediaURLEncoded + "; charset=utf-8; x=" + strings.Repeat("y", MaxContentTypeBytes-len(MediaURLEncoded+"; charset=utf-8; x="))
	cases = append(cases, struct {
		name     string
		ct       string
		at, past []byte
		want     wantErr
	}{"MaxContentTypeBytes", long, []byte("a=1"), nil, wantErr{}})
	for _, c := range cases {
		if err := Validate(c.ct, c.at); err != nil {
			t.Errorf("%s: at the limit: %v; want accepted", c.name, err)
		}
		if c.past != nil {
			checkErr(t, c.name+" past the limit", Validate(c.ct, c.past), c.want)
		}
	}
	checkErr(t, "MaxContentTypeBytes past the limit", Validate(long+"y", []byte("a=1")), wantErr{Malformed, "Content-Type longer"})
}

// TestDecodedUTF8AcrossBuffer: a sequence cut by the end of the decoding buffer is checked whole.
func TestDecodedUTF8AcrossBuffer(t *testing.T) {
	for pad := 505; pad <= 512; pad++ {
		for _, c := range []struct {
			seq   string
			valid bool
		}{{"%C3%A9", true}, {"%E2%82%AC", true}, {"%F0%9F%98%80", true}, {"%E2%82%28", false}, {"%F0%9F%98", false}, {"%C3", false}} {
			body := "v=" + strings.Repeat("%61", pad) + c.seq + "x"
			err := Validate(MediaURLEncoded, []byte(body))
			if (err == nil) != c.valid {
				t.Errorf("pad %d, %s: %v; want valid=%v", pad, c.seq, err, c.valid)
			}
		}
	}
}

func TestValidateNoAllocs(t *testing.T) {
	long := []byte("payload=" + url.QueryEscape(strings.Repeat(`{"type":"block_actions","user":{"id":"U1"}}`, 100)) + "&" + twilioSMS)
	for _, body := range [][]byte{[]byte(twilioSMS), long} {
		if n := testing.AllocsPerRun(100, func() {
			if err := Validate(MediaURLEncoded, body); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%d allocs per Validate of a %d-byte urlencoded body; want 0", int(n), len(body))
		}
	}
}

// FuzzURLEncoded holds Validate and ToJSON to net/url's reading of a body: what net/url reads (and
// fits the limits and UTF-8) is accepted, and its JSON view holds exactly net/url's values, in order;
// whatever is accepted has a JSON view that keeps the JSON rule.
func FuzzURLEncoded(f *testing.F) {
	f.Add(twilioSMS)
	f.Add("a=1&a=2&b=%2B&&c")
	f.Add("x=%41%42+%2b&y=%E2%82%AC")
	f.Add("a=%zz&b=\xff")
	f.Add("%22=%5C&%00=%1F")
	f.Fuzz(func(t *testing.T, body string) {
		err := Validate(MediaURLEncoded, []byte(body))
		view, jerr := ToJSON(nil, MediaURLEncoded, []byte(body))
		if (err == nil) != (jerr == nil) {
			t.Fatalf("Validate %v but ToJSON %v", err, jerr)
		}
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *form.Error", err)
			}
		} else {
			if err := jsonvalid.Validate(view, jsonvalid.DefaultDepth); err != nil {
				t.Fatalf("view %s breaks the JSON rule: %v", view, err)
			}
		}
		if strings.Contains(body, ";") || strings.HasPrefix(body, "{") || strings.HasPrefix(body, "[") {
			return // net/url refuses semicolons, which the WHATWG reading (ours) takes as characters; JSON-looking bodies are refused
		}
		vals, perr := url.ParseQuery(body)
		if perr != nil {
			if err == nil {
				t.Fatalf("%q: net/url refuses it (%v); Validate accepts it", body, perr)
			}
			return
		}
		fits := true
		n := 0
		for k, vs := range vals {
			n += len(vs)
			fits = fits && len(k) <= MaxNameBytes && utf8.ValidString(k)
			for _, v := range vs {
				fits = fits && len(v) <= MaxValueBytes && utf8.ValidString(v)
			}
		}
		fits = fits && n <= MaxFields
		if fits != (err == nil) {
			t.Fatalf("%q: Validate %v; net/url reads it as %v (within the limits and UTF-8: %v)", body, err, vals, fits)
		}
		if err != nil {
			return
		}
		var got map[string]any
		if err := json.Unmarshal(view, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{}
		for k, vs := range vals {
			if len(vs) == 1 {
				want[k] = vs[0]
				continue
			}
			arr := make([]any, len(vs))
			for i, v := range vs {
				arr[i] = v
			}
			want[k] = arr
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: view %s; net/url reads %v", body, view, vals)
		}
	})
}

// FuzzMultipart: fields written by mime/multipart's writer come back whole in the JSON view, and any
// bytes under a multipart Content-Type are refused or give a view that keeps the JSON rule.
func FuzzMultipart(f *testing.F) {
	f.Add("a", "1", "b", "two\r\nlines", false)
	f.Add("a", "x", "a", "y", false)
	f.Add("n", "", "f", "data", true)
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string, file bool) {
		if strings.ContainsFunc(n1+n2, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '"' || r == '\\' }) ||
			strings.Contains(v1+v2, "inlet-test-boundary") {
			return // the writer quotes names but escapes nothing, and does not check values for the boundary
		}
		p2 := part{name: n2, value: v2}
		if file {
			p2.filename = "f.bin"
		}
		ct, body := multipartBody(t, part{name: n1, value: v1}, p2)
		view, err := ToJSON(nil, ct, body)
		first := utf8.ValidString(n1) && utf8.ValidString(v1) && len(n1) <= MaxNameBytes
		validUTF8 := first && utf8.ValidString(n2) && utf8.ValidString(v2) && len(n2) <= MaxNameBytes
		switch {
		case file && !first:
			if err == nil {
				t.Fatalf("a file after an invalid field accepted: %s", view)
			}
		case file:
			var fe *Error
			if !errors.As(err, &fe) || fe.Kind != File {
				t.Fatalf("a file part: %v; want a File error", err)
			}
		case !validUTF8:
			if err == nil {
				t.Fatalf("invalid UTF-8 or too long accepted: %s", view)
			}
		case err != nil:
			t.Fatalf("refused %q=%q, %q=%q: %v", n1, v1, n2, v2, err)
		default:
			var got map[string]any
			if err := json.Unmarshal(view, &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{n1: v1, n2: v2}
			if n1 == n2 {
				want = map[string]any{n1: []any{v1, v2}}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("view %s; want %v", view, want)
			}
		}
		// The same bytes mangled: refused or a valid view, never a panic.
		mangled := bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
		if view, err := ToJSON(nil, ct, mangled[:len(mangled)/2+1]); err == nil {
			if err := jsonvalid.Validate(view, jsonvalid.DefaultDepth); err != nil {
				t.Fatalf("view %s breaks the JSON rule: %v", view, err)
			}
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	body := []byte(twilioSMS)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := Validate(MediaURLEncoded, body); err != nil {
			b.Fatal(err)
		}
	}
}
