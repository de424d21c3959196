package verify

import (
	"bytes"
	"hash"
)

// formParam is one parameter of an application/x-www-form-urlencoded body, still encoded: slices of the
// body itself, so that parsing copies nothing.
type formParam struct {
	name, value []byte
}

// parseParams appends the parameters of a form body to dst (whose capacity bounds them), sorted by
// decoded name, then decoded value; ok is false for a malformed escape or more than cap(dst)
// parameters. Pairs are split on '&', name from value on the first '='; empty pairs are skipped, as
// the WHATWG URL standard's form parser does. Insertion sort: at most MaxFormParams, in a fixed array.
func parseParams(dst []formParam, body []byte) (_ []formParam, ok bool) {
	for len(body) > 0 {
		pair := body
		if i := bytes.IndexByte(body, '&'); i >= 0 {
			pair, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(pair) == 0 {
			continue
		}
		p := formParam{name: pair}
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			p.name, p.value = pair[:i], pair[i+1:]
		}
		if len(dst) == cap(dst) || !validEscapes(p.name) || !validEscapes(p.value) {
			return dst, false
		}
		j := len(dst)
		dst = append(dst, p)
		for ; j > 0 && cmpParam(dst[j-1], p) > 0; j-- {
			dst[j] = dst[j-1]
		}
		dst[j] = p
	}
	return dst, true
}

// writeParams writes sorted parameters as Twilio signs them: each name followed by its value, decoded;
// a parameter repeated with the same value is written once (Twilio's Python library signs a name's
// distinct values).
func writeParams(mac hash.Hash, scratch *[256]byte, params []formParam) {
	d := decoder{mac: mac, buf: scratch}
	for i, p := range params {
		if i > 0 && cmpParam(params[i-1], p) == 0 {
			continue
		}
		d.form(p.name)
		d.form(p.value)
	}
	d.flush()
}

// writeHubSpotURI writes uri with the escapes HubSpot's v3 signature decodes (see PartHubSpotURI)
// decoded; every other byte as it is.
func writeHubSpotURI(mac hash.Hash, scratch *[256]byte, uri []byte) {
	if bytes.IndexByte(uri, '%') < 0 {
		mac.Write(uri)
		return
	}
	d := decoder{mac: mac, buf: scratch}
	for len(uri) > 0 {
		i := bytes.IndexByte(uri, '%')
		if i < 0 || i+2 >= len(uri) {
			d.write(uri)
			break
		}
		d.write(uri[:i])
		if c, ok := hubspotDecoded(uri[i+1], uri[i+2]); ok {
			d.writeByte(c)
		} else {
			d.write(uri[i : i+3])
		}
		uri = uri[i+3:]
	}
	d.flush()
}

// hubspotDecoded reports the character %hi lo stands for when it is one HubSpot's v3 signature
// decodes: : / ? @ ! $ ' ( ) * , ;
func hubspotDecoded(hi, lo byte) (byte, bool) {
	h, ok1 := unhex(hi)
	l, ok2 := unhex(lo)
	if !ok1 || !ok2 {
		return 0, false
	}
	switch c := h<<4 | l; c {
	case ':', '/', '?', '@', '!', '$', '\'', '(', ')', '*', ',', ';':
		return c, true
	}
	return 0, false
}

// decoder writes decoded bytes into a MAC through a fixed buffer, so that no decoded copy is made
// and the MAC sees few, large writes.
type decoder struct {
	mac hash.Hash
	buf *[256]byte
	n   int
}

func (d *decoder) write(p []byte) {
	if len(p) > len(d.buf)-d.n {
		d.flush()
		if len(p) >= len(d.buf) {
			d.mac.Write(p)
			return
		}
	}
	d.n += copy(d.buf[d.n:], p)
}

func (d *decoder) writeByte(c byte) {
	if d.n == len(d.buf) {
		d.flush()
	}
	d.buf[d.n] = c
	d.n++
}

func (d *decoder) flush() {
	if d.n > 0 {
		d.mac.Write(d.buf[:d.n])
		d.n = 0
	}
}

// form writes one form component decoded: '+' is a space, %hh a byte (validEscapes checked them).
func (d *decoder) form(raw []byte) {
	for len(raw) > 0 {
		i := 0
		for i < len(raw) && raw[i] != '+' && raw[i] != '%' {
			i++
		}
		d.write(raw[:i])
		if i == len(raw) {
			return
		}
		var c byte
		c, i = decodedAt(raw, i)
		d.writeByte(c)
		raw = raw[i:]
	}
}

// validEscapes reports whether every '%' of a form component starts an escape of two hex digits.
func validEscapes(s []byte) bool {
	for i := bytes.IndexByte(s, '%'); i >= 0; {
		if i+2 >= len(s) {
			return false
		}
		if _, ok := unhex(s[i+1]); !ok {
			return false
		}
		if _, ok := unhex(s[i+2]); !ok {
			return false
		}
		j := bytes.IndexByte(s[i+3:], '%')
		if j < 0 {
			break
		}
		i += 3 + j
	}
	return true
}

// decodedAt returns the decoded byte of a form component at i and where the next one starts.
func decodedAt(s []byte, i int) (byte, int) {
	switch s[i] {
	case '+':
		return ' ', i + 1
	case '%':
		h, _ := unhex(s[i+1])
		l, _ := unhex(s[i+2])
		return h<<4 | l, i + 3
	}
	return s[i], i + 1
}

// cmpDecoded compares two form components by their decoded bytes.
func cmpDecoded(a, b []byte) int {
	// Up to the first difference or escape, encoded and decoded bytes are the same.
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] && a[i] != '%' && a[i] != '+' {
		i++
	}
	if i < len(a) && i < len(b) && a[i] != b[i] && a[i] != '%' && a[i] != '+' && b[i] != '%' && b[i] != '+' {
		if a[i] < b[i] {
			return -1
		}
		return 1
	}
	j := i
	for i < len(a) && j < len(b) {
		var x, y byte
		x, i = decodedAt(a, i)
		y, j = decodedAt(b, j)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case i < len(a):
		return 1
	case j < len(b):
		return -1
	}
	return 0
}

func cmpParam(a, b formParam) int {
	if c := cmpDecoded(a.name, b.name); c != 0 {
		return c
	}
	return cmpDecoded(a.value, b.value)
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
