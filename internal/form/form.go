// Package form decides which form bodies Inlet takes, as package jsonvalid does for JSON:
// application/x-www-form-urlencoded, and multipart/form-data with fields only (a file part is
// refused). The edge refuses what Validate refuses, and the pipeline maps over ToJSON's view of an
// accepted form: one rule, so that nothing the edge accepts is read differently later.
//
// The rule:
//
//   - urlencoded bodies are read as the WHATWG URL standard reads them: pairs split on '&' (empty
//     ones skipped), the name from the value on the first '=', '+' a space, %hh a byte; a '%' not
//     followed by two hex digits is refused (browsers would keep it, most server parsers refuse it);
//     a body that starts with '{' or '[' is refused: it is JSON sent under a form's type (curl -d
//     does that), which no form serializer writes (they escape both) and which, read as a form,
//     would be one field named after the whole document;
//   - multipart bodies are RFC 7578 parts, each with Content-Disposition form-data and a name; a part
//     with a filename is a file and is refused (ErrFile's kind, File); the value is the part's raw
//     bytes (no Content-Transfer-Encoding is applied, RFC 7578 §4.7 deprecates it);
//   - names and values, decoded, are UTF-8 (the JSON view holds them as strings);
//   - at most MaxFields pairs (MaxParts parts), names of at most MaxNameBytes and values of at most
//     MaxValueBytes, decoded.
//
// The JSON view is one object: a name given once maps to its value as a string, a name repeated maps
// to an array of its values in order; names in the order they first appear. Validate of a urlencoded
// body costs no allocation (it decodes nothing it need not: UTF-8 is checked on the decoded bytes in a
// fixed buffer); multipart parsing allocates per part and is bounded by MaxParts.
package form

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/inlet-dev/inlet/internal/wire"
)

// The form media types.
const (
	MediaURLEncoded = "application/x-www-form-urlencoded"
	MediaMultipart  = "multipart/form-data"
)

// Limits of a form.
const (
	// MaxFields bounds the pairs of a urlencoded body: Twilio and Slack post a few dozen.
	MaxFields = 1000
	// MaxParts bounds the parts of a multipart body, each of which costs a few allocations.
	MaxParts = 100
	// MaxNameBytes bounds a field's name, decoded.
	MaxNameBytes = 256
	// MaxValueBytes bounds a field's value, decoded: Slack's interactive "payload" field, a JSON
	// document, is the largest seen.
	MaxValueBytes = 256 << 10
	// MaxContentTypeBytes bounds the Content-Type a form's record carries (a multipart boundary is at
	// most 70 bytes, RFC 2046 §5.1.1).
	MaxContentTypeBytes = 256
)

// Type is which kind of form a Content-Type names.
type Type uint8

// The types.
const (
	NotForm Type = iota
	URLEncoded
	Multipart
)

// TypeOf reads the media type of a Content-Type value (parameters ignored, case-insensitive), without
// allocating.
func TypeOf(contentType string) Type {
	mt := mediaType(contentType)
	switch {
	case strings.EqualFold(mt, MediaURLEncoded):
		return URLEncoded
	case strings.EqualFold(mt, MediaMultipart):
		return Multipart
	}
	return NotForm
}

// mediaType is the type/subtype part of a Content-Type value, trimmed.
func mediaType(contentType string) string {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	return strings.Trim(contentType, " \t")
}

// Kind is what is wrong with a form.
type Kind uint8

// Kinds of Error.
const (
	// Unsupported: the Content-Type is not a form's.
	Unsupported Kind = iota + 1
	// File: a multipart part is a file (it has a filename); only fields are taken.
	File
	// Malformed: a bad escape, a multipart body that cannot be read, a part without a form-data name,
	// a multipart Content-Type without a usable boundary, a Content-Type over MaxContentTypeBytes.
	Malformed
	// TooMany: more than MaxFields pairs, or MaxParts parts.
	TooMany
	// TooLong: a name over MaxNameBytes or a value over MaxValueBytes.
	TooLong
	// InvalidUTF8: a name or value that is not UTF-8 once decoded.
	InvalidUTF8
)

// Error is why a body is not a form Inlet takes. Its text, for the activity log, says what and where.
type Error struct {
	Kind Kind
	msg  string
}

func (e *Error) Error() string { return e.msg }

func fail(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, msg: fmt.Sprintf(format, args...)}
}

// quoted renders a sender's name for an error message, cut to a readable length.
func quoted(name []byte) string {
	const max = 40
	if len(name) > max {
		return fmt.Sprintf("%q…", name[:max])
	}
	return fmt.Sprintf("%q", name)
}

// Validate checks that body is a form Inlet takes under contentType, or says why not (an *Error).
func Validate(contentType string, body []byte) error {
	if len(contentType) > MaxContentTypeBytes {
		return fail(Malformed, "Content-Type longer than %d bytes", MaxContentTypeBytes)
	}
	switch TypeOf(contentType) {
	case URLEncoded:
		return validateURLEncoded(body)
	case Multipart:
		return readMultipart(contentType, body, nil)
	}
	return fail(Unsupported, "Content-Type %q is not a form", mediaType(contentType))
}

// ToJSON appends the JSON view of the form body to dst (see the package doc), or returns an *Error as
// Validate would.
func ToJSON(dst []byte, contentType string, body []byte) ([]byte, error) {
	var fields []field
	switch {
	case len(contentType) > MaxContentTypeBytes || TypeOf(contentType) == NotForm:
		return dst, Validate(contentType, body)
	case TypeOf(contentType) == URLEncoded:
		if err := validateURLEncoded(body); err != nil {
			return dst, err
		}
		fields = urlencodedFields(body)
	default: // multipart: read once, checked as it is read
		if err := readMultipart(contentType, body, func(name, value []byte) {
			fields = append(fields, field{name, value})
		}); err != nil {
			return dst, err
		}
	}
	return appendJSON(dst, fields), nil
}

type field struct{ name, value []byte }

// validateURLEncoded checks a urlencoded body without allocating, in one pass: each component (a name,
// then its value) ends at its pair's first '=', at '&' or at the end; only a component with an escape
// or a non-ASCII byte has its decoded bytes checked for UTF-8.
func validateURLEncoded(body []byte) error {
	if len(body) > 0 && (body[0] == '{' || body[0] == '[') {
		return fail(Malformed, "the body looks like JSON: send it with Content-Type application/json")
	}
	n := 0
	pairStart, compStart, inValue, escapes, ascii := 0, 0, false, 0, true
	for i := 0; i <= len(body); i++ {
		for i < len(body) && !special[body[i]] {
			i++
		}
		if i < len(body) {
			switch c := body[i]; {
			case c == '%':
				if i+2 >= len(body) || !isHex(body[i+1]) || !isHex(body[i+2]) {
					return fail(Malformed, "invalid percent-escape at byte %d", i)
				}
				escapes++
				i += 2
				continue
			case c >= 0x80:
				ascii = false
				continue
			case c == '=' && !inValue:
				if err := checkComponent(body[compStart:i], compStart, escapes, ascii, false); err != nil {
					return err
				}
				inValue, compStart, escapes, ascii = true, i+1, 0, true
				continue
			case c != '&':
				continue
			}
		}
		// The end of a pair, at '&' or at the body's end; empty pairs are skipped.
		if i > pairStart {
			if n++; n > MaxFields {
				return fail(TooMany, "more than %d fields", MaxFields)
			}
			if err := checkComponent(body[compStart:i], compStart, escapes, ascii, inValue); err != nil {
				return err
			}
		}
		pairStart, compStart, inValue, escapes, ascii = i+1, i+1, false, 0, true
	}
	return nil
}

// special are the bytes validateURLEncoded stops at: runs of others are skipped with one table
// lookup a byte.
var special = func() (t [256]bool) {
	t['%'], t['='], t['&'] = true, true, true
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	return t
}()

// checkComponent checks one encoded name or value that starts at byte at of the body, whose escapes
// (counted) are valid: its decoded length, and that its decoded bytes are UTF-8.
func checkComponent(raw []byte, at, escapes int, ascii, value bool) *Error {
	max, what := MaxNameBytes, "name"
	if value {
		max, what = MaxValueBytes, "value"
	}
	if len(raw)-2*escapes > max {
		return fail(TooLong, "field %s longer than %d bytes at byte %d", what, max, at)
	}
	if (escapes > 0 || !ascii) && !validDecodedUTF8(raw) {
		return fail(InvalidUTF8, "invalid UTF-8 in a field %s at byte %d", what, at)
	}
	return nil
}

// validDecodedUTF8 reports whether raw, decoded, is UTF-8. It decodes through a fixed buffer, carrying
// a sequence cut by the buffer's end over to the next round.
func validDecodedUTF8(raw []byte) bool {
	if bytes.IndexByte(raw, '%') < 0 {
		return utf8.Valid(raw) // '+' becomes a space: no difference to UTF-8
	}
	var buf [512]byte
	n := 0
	for i := 0; i < len(raw); {
		buf[n], i = decodedAt(raw, i)
		if n++; n == len(buf) {
			k := cutSequence(buf[:n])
			if !utf8.Valid(buf[:n-k]) {
				return false
			}
			n = copy(buf[:], buf[n-k:n])
		}
	}
	return utf8.Valid(buf[:n])
}

// cutSequence is how many bytes at the end of b start a UTF-8 sequence that b does not complete.
func cutSequence(b []byte) int {
	for j := 1; j <= 3 && j <= len(b); j++ {
		c := b[len(b)-j]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a lead byte
			need := 4
			switch {
			case c < 0xE0:
				need = 2
			case c < 0xF0:
				need = 3
			}
			if need > j {
				return j
			}
			return 0
		}
	}
	return 0
}

// urlencodedFields decodes a valid urlencoded body's pairs, in order.
func urlencodedFields(body []byte) []field {
	var fields []field
	buf := make([]byte, 0, len(body))
	for _, pair := range bytes.Split(body, []byte{'&'}) {
		if len(pair) == 0 {
			continue
		}
		name, value, _ := bytes.Cut(pair, []byte{'='})
		at := len(buf)
		buf = appendDecoded(buf, name)
		mid := len(buf)
		buf = appendDecoded(buf, value)
		fields = append(fields, field{buf[at:mid:mid], buf[mid:len(buf):len(buf)]})
	}
	return fields
}

func appendDecoded(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		var c byte
		c, i = decodedAt(raw, i)
		dst = append(dst, c)
	}
	return dst
}

// decodedAt returns the decoded byte of a urlencoded component at i and where the next one starts;
// the escapes were checked.
func decodedAt(s []byte, i int) (byte, int) {
	switch s[i] {
	case '+':
		return ' ', i + 1
	case '%':
		return unhex(s[i+1])<<4 | unhex(s[i+2]), i + 3
	}
	return s[i], i + 1
}

// readMultipart reads a multipart body's fields, handing each to yield when it is not nil.
func readMultipart(contentType string, body []byte, yield func(name, value []byte)) error {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fail(Malformed, "multipart Content-Type cannot be read: %v", err)
	}
	boundary := params["boundary"]
	if boundary == "" || len(boundary) > 70 {
		return fail(Malformed, "multipart Content-Type without a boundary of 1 to 70 characters")
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	for n := 1; ; n++ {
		p, err := r.NextRawPart()
		if err == io.EOF { // a bare io.EOF only: the reader wraps the one of a body cut short
			// The reader also ends with a bare io.EOF when the body stops inside a part's header: the
			// body must end with the close delimiter (and whatever epilogue follows it).
			delim := "--" + boundary
			if i := bytes.LastIndex(body, []byte(delim)); i < 0 || !bytes.HasPrefix(body[i+len(delim):], []byte("--")) {
				return fail(Malformed, "multipart body cut short: it does not end with its closing boundary")
			}
			return nil
		}
		if err != nil {
			return fail(Malformed, "multipart part %d cannot be read: %v", n, err)
		}
		if n > MaxParts {
			return fail(TooMany, "more than %d parts", MaxParts)
		}
		disposition, dparams, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		if err != nil || !strings.EqualFold(disposition, "form-data") {
			return fail(Malformed, "multipart part %d has no Content-Disposition form-data", n)
		}
		name, hasName := dparams["name"]
		_, file := dparams["filename"]
		_, fileExt := dparams["filename*"]
		switch {
		case file || fileExt:
			return fail(File, "multipart part %d (%s) is a file: only fields are accepted", n, quoted([]byte(name)))
		case !hasName:
			return fail(Malformed, "multipart part %d has no name", n)
		case len(name) > MaxNameBytes:
			return fail(TooLong, "multipart part %d: name longer than %d bytes", n, MaxNameBytes)
		case !utf8.ValidString(name):
			return fail(InvalidUTF8, "multipart part %d: invalid UTF-8 in its name", n)
		}
		value, err := io.ReadAll(io.LimitReader(p, MaxValueBytes+1))
		if err != nil {
			return fail(Malformed, "multipart part %d (%s) cannot be read: %v", n, quoted([]byte(name)), err)
		}
		if len(value) > MaxValueBytes {
			return fail(TooLong, "multipart part %d (%s): value longer than %d bytes", n, quoted([]byte(name)), MaxValueBytes)
		}
		if !utf8.Valid(value) {
			return fail(InvalidUTF8, "multipart part %d (%s): invalid UTF-8 in its value", n, quoted([]byte(name)))
		}
		if yield != nil {
			yield([]byte(name), value)
		}
	}
}

// appendJSON writes the fields as one object: a name once → a string, a name repeated → an array, in
// the order names first appear. Names and values were checked as UTF-8 when read, so
// wire.AppendJSONString writes them as they are but for the escapes RFC 8259 requires (its U+FFFD for
// invalid UTF-8 never applies).
func appendJSON(dst []byte, fields []field) []byte {
	order := make([]string, 0, len(fields))
	values := make(map[string][][]byte, len(fields))
	for _, f := range fields {
		k := string(f.name)
		if _, ok := values[k]; !ok {
			order = append(order, k)
		}
		values[k] = append(values[k], f.value)
	}
	dst = append(dst, '{')
	for i, k := range order {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = wire.AppendJSONString(dst, k)
		dst = append(dst, ':')
		vs := values[k]
		if len(vs) == 1 {
			dst = wire.AppendJSONString(dst, bytesString(vs[0]))
			continue
		}
		dst = append(dst, '[')
		for j, v := range vs {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = wire.AppendJSONString(dst, bytesString(v))
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// bytesString reads b as a string without copying it: wire.AppendJSONString does not keep it.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
