// Package jsonvalid decides which request bodies Inlet takes as JSON. The edge refuses what Validate
// refuses (400 invalid_json), the admin API's sample-fields refuses the same samples with the same
// words, and the pipeline treats a record body that breaks the rule as invalid JSON: one rule, so that
// nothing one part accepts is read differently, or refused, by another.
//
// The rule is RFC 8259 JSON (one value, optional surrounding whitespace) with the restrictions of I-JSON
// (RFC 7493) that change what a reader sees:
//
//   - the text is UTF-8 (RFC 8259 §8.1, I-JSON §2.1): invalid UTF-8 is refused rather than read as
//     U+FFFD by some readers and passed through by others;
//   - strings hold no raw control characters U+0000–U+001F (RFC 8259 §7: they must be escaped);
//   - escapes encode no lone surrogate: \ud800–\udbff only as the first half of a pair with
//     \udc00–\udfff (I-JSON §2.1; RFC 8259 §8.2 leaves such strings' meaning open);
//   - no object has two members with the same name, compared after unescaping (I-JSON §2.3; RFC 8259
//     §4 leaves the result open, and readers differ: sonic's searcher takes the first, encoding/json
//     and most others the last, so a body's "user_id" could name one user to the sender's parser and
//     another to Inlet's);
//   - containers nest at most maxDepth deep (the edge's max_json_depth).
//
// I-JSON's other rules are not enforced, since no part of Inlet reads such bodies differently:
// noncharacters (U+FFFE, U+FDD0 …) are valid Unicode scalar values every part stores and reads alike;
// numbers are not held to float64's range and precision (the pipeline reads a number as its text); the
// top-level value may be a scalar (I-JSON §4.1 only recommends an object or array).
//
// Validate reads the body once, left to right, eight bytes at a time inside strings (a long string's end
// is found first with the runtime's vectorised bytes.IndexByte, then its bytes are checked up to there,
// so they are read at most three times, each time sequentially). The names of an object are compared with
// each other directly while it has at most 16, and go into a hash set (hash/maphash, randomly seeded)
// from the 17th, so that the work stays linear even for one object of 100k names in a 1 MiB body.
// Containers, names and the set live in pooled scanners: a valid body costs no allocation unless its
// objects hold more than about 2000 names in all past their 16th, when the set grows beyond what the pool
// keeps (16 bytes a slot, at least two slots a name: at most 8 MiB for the ~175k names a 1 MiB body
// holds).
package jsonvalid

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Depth limits.
const (
	// DefaultDepth is the edge's default max_json_depth; the admin API checks samples with it.
	DefaultDepth = 64
	// MaxDepth is the deepest nesting Validate is asked to allow (the largest max_json_depth); a
	// larger maxDepth is lowered to it. The pipeline checks records with it: the depth was the edge's
	// to decide.
	MaxDepth = 10000
)

// Kind is what is wrong with a body.
type Kind uint8

// Kinds of Error.
const (
	// Syntax: not JSON (an unexpected byte, or the end of the body where more was needed).
	Syntax Kind = iota + 1
	// TooDeep: an object or array opens deeper than maxDepth.
	TooDeep
	// ControlChar: a raw byte 0x00–0x1F inside a string.
	ControlChar
	// InvalidUTF8: a byte sequence that is not UTF-8 (including encoded surrogates and overlong forms).
	InvalidUTF8
	// LoneSurrogate: a \uXXXX escape of a surrogate that is not half of a pair.
	LoneSurrogate
	// DuplicateKey: an object member name repeated in the same object.
	DuplicateKey
)

// syntax sub-cases, for the message.
const (
	synChar   uint8 = iota // an unexpected byte
	synEOF                 // the body ends too early
	synExtra               // a byte after the top-level value
	synEscape              // an invalid escape
	synLong                // over 2 GiB
)

// maxQuote bounds the part of the body an Error quotes (a duplicate key), in bytes.
const maxQuote = 64

// Error says what is wrong with a body and where. Its text names the problem and its byte offset, e.g.
// `duplicate key "user_id" at byte 18`; it quotes at most 64 bytes of the body.
type Error struct {
	Kind Kind
	// Offset is the 0-based byte offset of the problem: the unexpected byte (the length of the body
	// when it ends too early), the bracket that nests too deep, the control character, the first byte
	// of the invalid UTF-8, the backslash of the lone surrogate's escape, the opening quote of the
	// repeated key.
	Offset int

	syn    uint8
	char   byte // the unexpected byte or control character
	cut    bool // quote was cut to maxQuote
	depth  int  // the limit passed, for TooDeep
	nquote uint8
	quote  [maxQuote]byte // the escape (LoneSurrogate) or the key as written (DuplicateKey)
}

func (e *Error) Error() string {
	b, _ := e.AppendText(make([]byte, 0, 48+len(e.quote)))
	return string(b)
}

// AppendText appends the error's text to dst (encoding.TextAppender): the edge writes it into a record
// header without allocating.
func (e *Error) AppendText(dst []byte) ([]byte, error) {
	switch e.Kind {
	case Syntax:
		switch e.syn {
		case synEOF:
			if e.Offset == 0 {
				return append(dst, "empty body"...), nil
			}
			dst = append(dst, "unexpected end of JSON input"...)
		case synExtra:
			dst = append(dst, "unexpected "...)
			dst = appendChar(dst, e.char)
			dst = append(dst, " after the JSON value"...)
		case synEscape:
			dst = append(dst, "invalid escape character "...)
			dst = appendChar(dst, e.char)
			dst = append(dst, " in string"...)
		case synLong:
			dst = append(dst, "body over 2 GiB"...)
		default:
			dst = append(dst, "unexpected "...)
			dst = appendChar(dst, e.char)
		}
	case TooDeep:
		dst = append(dst, "nested deeper than "...)
		dst = strconv.AppendInt(dst, int64(e.depth), 10)
	case ControlChar:
		dst = append(dst, "control character U+00"...)
		dst = append(dst, hexDigits[e.char>>4], hexDigits[e.char&0xf])
		dst = append(dst, " in string"...)
	case InvalidUTF8:
		dst = append(dst, "invalid UTF-8"...)
	case LoneSurrogate:
		dst = append(dst, "lone surrogate "...)
		dst = append(dst, e.quote[:e.nquote]...)
	case DuplicateKey:
		dst = append(dst, `duplicate key "`...)
		dst = append(dst, e.quote[:e.nquote]...)
		if e.cut {
			dst = append(dst, "…"...)
		}
		dst = append(dst, '"')
	default:
		dst = append(dst, "invalid JSON"...)
	}
	dst = append(dst, " at byte "...)
	return strconv.AppendInt(dst, int64(e.Offset), 10), nil
}

const hexDigits = "0123456789ABCDEF"

// appendChar writes a byte the way a reader recognises it: 'x' when printable ASCII, else byte 0xNN.
func appendChar(dst []byte, c byte) []byte {
	if c > ' ' && c < 0x7f {
		return append(dst, '\'', c, '\'')
	}
	dst = append(dst, "byte 0x"...)
	return append(dst, hexDigits[c>>4], hexDigits[c&0xf])
}

// Validate returns nil when b is one JSON value that follows the package's rule with no object or array
// nested deeper than maxDepth (at least 1, at most MaxDepth), and otherwise an *Error for the first
// problem in b. It allocates only for the error, and for objects of thousands of keys (see the package
// doc).
//
// b must be shorter than 2 GiB (offsets are kept in 32 bits); a longer b is refused.
func Validate(b []byte, maxDepth int) error {
	if len(b) > math.MaxInt32 {
		return &Error{Kind: Syntax, Offset: math.MaxInt32, syn: synLong}
	}
	s := scanners.Get().(*scanner)
	ok := s.run(b, min(max(maxDepth, 1), MaxDepth))
	var err error
	if !ok {
		e := s.err
		err = &e
	}
	s.reset()
	scanners.Put(s)
	return err
}

var scanners = sync.Pool{New: func() any {
	return &scanner{levels: make([]level, 0, 32), keys: make([]key, 0, 64)}
}}

// Bounds of the pooled state: a scanner that grew past them for a rare body lets the GC have the extra.
const (
	// linearKeys is how many keys an object compares with each other directly before its keys go into
	// the hash set: up to linearKeys²/2 comparisons, of tags unless two keys have the same length, first
	// and last byte.
	linearKeys = 16
	// maxPooledSlots bounds the hash set kept in the pool (16 bytes a slot).
	maxPooledSlots = 1 << 12
	// maxPooledLevels and maxPooledKeys bound the stacks kept in the pool.
	maxPooledLevels = 1 << 10
	maxPooledKeys   = 1 << 12
)

// level is an open object or array.
type level struct {
	object bool
	hashed bool   // the object's keys are in the hash set, under id
	id     uint32 // of a hashed object
	base   int32  // index in scanner.keys of the object's first key (not hashed)
}

// key is an object member name: b[start:end] is its text between the quotes. Names without escapes are
// equal only if their tags are: most names of an object differ in length, first or last byte, so that
// comparing an object's few names with each other seldom reads them.
type key struct {
	start, end int32
	tag        uint32 // length, first and last byte of a name without escapes
	escaped    bool
}

// slot of the hash set: a key's hash, its object's id (0: empty) and its text b[start:end]. Keys of
// objects already closed stay (their id matches no open object): the set holds at most one slot per key
// of the body, so it never needs to be emptied midway.
type slot struct {
	hash       uint32
	id         uint32
	start, end int32
}

type scanner struct {
	b        []byte
	maxDepth int
	err      Error
	levels   []level
	keys     []key     // keys of open objects that are not hashed
	slots    []slot    // hash set, a power of two long, or empty
	used     int       // slots taken
	nextID   uint32    // of the next object to be hashed
	dec      [2][]byte // unescaped keys, for comparing and hashing keys with escapes
}

var seed = maphash.MakeSeed()

func (s *scanner) reset() {
	s.b = nil
	s.levels = s.levels[:0]
	if cap(s.levels) > maxPooledLevels {
		s.levels = make([]level, 0, 32)
	}
	s.keys = s.keys[:0]
	if cap(s.keys) > maxPooledKeys {
		s.keys = make([]key, 0, 64)
	}
	if s.used > 0 {
		if len(s.slots) > maxPooledSlots {
			s.slots = nil
		} else {
			clear(s.slots)
		}
	}
	s.used, s.nextID = 0, 0
	for i := range s.dec {
		if cap(s.dec[i]) > maxQuote<<4 {
			s.dec[i] = nil
		}
	}
}

func (s *scanner) fail(k Kind, at int) bool {
	s.err = Error{Kind: k, Offset: at}
	return false
}

func (s *scanner) failSyntax(syn uint8, at int) bool {
	s.err = Error{Kind: Syntax, Offset: at, syn: syn}
	if at < len(s.b) {
		s.err.char = s.b[at]
	} else if syn == synChar {
		s.err.syn = synEOF
	}
	return false
}

func (s *scanner) failQuote(k Kind, at int, q []byte) bool {
	s.err = Error{Kind: k, Offset: at}
	if len(q) > maxQuote {
		n := maxQuote - len("…")
		for n > 0 && !utf8.RuneStart(q[n]) {
			n--
		}
		q, s.err.cut = q[:n], true
	}
	s.err.nquote = uint8(copy(s.err.quote[:], q))
	return false
}

// run checks b; on failure s.err says why.
func (s *scanner) run(b []byte, maxDepth int) bool {
	s.b, s.maxDepth = b, maxDepth
	i := skipSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return s.failSyntax(synEOF, i)
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(s.levels) == s.maxDepth {
				s.err = Error{Kind: TooDeep, Offset: i, depth: s.maxDepth}
				return false
			}
			s.levels = append(s.levels, level{object: c == '{', base: int32(len(s.keys))})
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				s.levels = s.levels[:len(s.levels)-1]
				i++
				break
			}
			if c == '{' {
				var ok bool
				if i, ok = s.member(i); !ok {
					return false
				}
			}
			continue
		case c == '"':
			var ok bool
			if i, _, ok = s.str(i); !ok {
				return false
			}
		case c == 't':
			if !s.literal(i, "true") {
				return false
			}
			i += 4
		case c == 'f':
			if !s.literal(i, "false") {
				return false
			}
			i += 5
		case c == 'n':
			if !s.literal(i, "null") {
				return false
			}
			i += 4
		case c == '-' || c >= '0' && c <= '9':
			var ok bool
			if i, ok = s.number(i); !ok {
				return false
			}
		default:
			return s.failSyntax(synChar, i)
		}
		// A value ended before i: close what it completes, up to the next value.
		for {
			i = skipSpace(b, i)
			n := len(s.levels)
			if n == 0 {
				if i < len(b) {
					return s.failSyntax(synExtra, i)
				}
				return true
			}
			if i >= len(b) {
				return s.failSyntax(synEOF, i)
			}
			top := &s.levels[n-1]
			c := b[i]
			if c == ',' {
				i = skipSpace(b, i+1)
				if top.object {
					var ok bool
					if i, ok = s.member(i); !ok {
						return false
					}
				}
				break
			}
			if top.object && c != '}' || !top.object && c != ']' {
				return s.failSyntax(synChar, i)
			}
			if top.object && !top.hashed {
				s.keys = s.keys[:top.base]
			}
			s.levels = s.levels[:n-1]
			i++
		}
	}
}

// member reads `"key" :` at i, checks the key against the object's others and returns where its value
// starts.
func (s *scanner) member(i int) (int, bool) {
	b := s.b
	if i >= len(b) || b[i] != '"' {
		return i, s.failSyntax(synChar, i)
	}
	end, escaped, ok := s.str(i)
	if !ok {
		return i, false
	}
	k := key{start: int32(i + 1), end: int32(end - 1), escaped: escaped}
	if n := end - i - 2; !escaped && n > 0 {
		k.tag = uint32(n)<<16 | uint32(b[i+1])<<8 | uint32(b[end-2])
	}
	if !s.addKey(k) {
		return i, s.failQuote(DuplicateKey, i, b[k.start:k.end])
	}
	j := skipSpace(b, end)
	if j >= len(b) || b[j] != ':' {
		return j, s.failSyntax(synChar, j)
	}
	return skipSpace(b, j+1), true
}

// addKey records k in the innermost object, reporting false when the object already has it.
func (s *scanner) addKey(k key) bool {
	top := &s.levels[len(s.levels)-1]
	if !top.hashed {
		own := s.keys[top.base:]
		if len(own) < linearKeys {
			for _, o := range own {
				if (o.tag == k.tag || o.escaped || k.escaped) && s.sameKey(o, k) {
					return false
				}
			}
			s.keys = append(s.keys, k)
			return true
		}
		// The object outgrew direct comparison: move its keys (all different) into the hash set.
		s.nextID++
		top.hashed, top.id = true, s.nextID
		for _, o := range own {
			s.insert(top.id, o, s.hash(o))
		}
		s.keys = s.keys[:top.base]
	}
	h := s.hash(k)
	mask := uint32(len(s.slots) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		sl := &s.slots[j]
		if sl.id == 0 {
			break
		}
		if sl.id == top.id && sl.hash == h && s.sameKey(s.slotKey(*sl), k) {
			return false
		}
	}
	s.insert(top.id, k, h)
	return true
}

// insert adds a key known to be new, growing the set to keep it at most half full.
func (s *scanner) insert(id uint32, k key, h uint32) {
	if (s.used+1)*2 > len(s.slots) {
		old := s.slots
		s.slots = make([]slot, max(len(old)*2, 64))
		s.used = 0
		for _, sl := range old {
			if sl.id != 0 {
				s.put(sl)
			}
		}
	}
	s.put(slot{hash: h, id: id, start: k.start, end: k.end})
}

func (s *scanner) put(sl slot) {
	mask := uint32(len(s.slots) - 1)
	j := sl.hash & mask
	for s.slots[j].id != 0 {
		j = (j + 1) & mask
	}
	s.slots[j] = sl
	s.used++
}

// slotKey is the key of a slot (a hash match, seldom): whether it has escapes is not worth its 4 bytes
// in every slot.
func (s *scanner) slotKey(sl slot) key {
	return key{start: sl.start, end: sl.end, escaped: bytes.IndexByte(s.b[sl.start:sl.end], '\\') >= 0}
}

// hash of a key's unescaped text.
func (s *scanner) hash(k key) uint32 {
	return uint32(maphash.Bytes(seed, s.text(k, 0)))
}

// sameKey compares two keys' unescaped texts.
func (s *scanner) sameKey(a, b key) bool {
	if !a.escaped && !b.escaped {
		return a.end-a.start == b.end-b.start && bytes.Equal(s.b[a.start:a.end], s.b[b.start:b.end])
	}
	return bytes.Equal(s.text(a, 0), s.text(b, 1))
}

// text is k unescaped, in s.dec[buf] when it has escapes. The key was validated by str.
func (s *scanner) text(k key, buf int) []byte {
	raw := s.b[k.start:k.end]
	if !k.escaped {
		return raw
	}
	d := s.dec[buf][:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			d = append(d, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			d = append(d, '\b')
		case 'f':
			d = append(d, '\f')
		case 'n':
			d = append(d, '\n')
		case 'r':
			d = append(d, '\r')
		case 't':
			d = append(d, '\t')
		case 'u':
			r := hex4(raw[i+2:])
			if r >= 0xd800 && r < 0xdc00 {
				r = 0x10000 + (r-0xd800)<<10 + hex4(raw[i+8:]) - 0xdc00
				i += 6
			}
			d = utf8.AppendRune(d, rune(r))
			i += 4
		default: // " \ /
			d = append(d, raw[i+1])
		}
		i += 2
	}
	s.dec[buf] = d
	return d
}

// hex4 reads four hex digits, -1 if they are not.
func hex4(b []byte) int32 {
	if len(b) < 4 {
		return -1
	}
	var r int32
	for _, c := range b[:4] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | int32(v)
	}
	return r
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// str checks the string whose opening quote is at i and returns the offset after its closing quote and
// whether it has escapes.
func (s *scanner) str(i int) (int, bool, bool) {
	b := s.b
	escaped := false
	i++
	for {
		// Eight bytes at a time while they are plain. m flags a byte below 0x20 (its subtraction
		// borrows), '"' or '\' (a zero byte of the xor borrows) and one from 0x80 (its own high bit).
		// A borrow only carries into higher bytes, so the lowest flag is always a special byte.
		for n := 0; i+8 <= len(b); n++ {
			if n == 4 {
				// 32 plain bytes: a long string. Find its end with the runtime's vectorised search
				// instead, and check what comes before with the lighter test of printable ASCII.
				i = plainRun(b, i)
				break
			}
			w := binary.LittleEndian.Uint64(b[i:])
			q, bs := w^(ones*'"'), w^(ones*'\\')
			m := ((w-ones*0x20)&^w | (q-ones)&^q | (bs-ones)&^bs | w) & highs
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return i, escaped, s.failSyntax(synEOF, i)
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, true
		case c == '\\':
			escaped = true
			var ok bool
			if i, ok = s.escape(i); !ok {
				return i, escaped, false
			}
		case c < 0x20:
			s.err = Error{Kind: ControlChar, Offset: i, char: c}
			return i, escaped, false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, escaped, s.fail(InvalidUTF8, i)
			}
			i += size
		default: // plain, in the body's last 7 bytes
			i++
		}
	}
}

// plainRun returns the end of the plain bytes of a string from i: the offset of its closing quote, of a
// backslash, or of a byte outside printable ASCII (or the last few bytes of b, left to str).
func plainRun(b []byte, i int) int {
	run := b[i:]
	if j := bytes.IndexByte(run, '"'); j >= 0 {
		run = run[:j]
	}
	if j := bytes.IndexByte(run, '\\'); j >= 0 {
		run = run[:j]
	}
	// Below 0x20 borrows, from 0x80 has its high bit: the lowest flag is the first such byte.
	j := 0
	for ; j+32 <= len(run); j += 32 {
		w0, w1 := binary.LittleEndian.Uint64(run[j:]), binary.LittleEndian.Uint64(run[j+8:])
		w2, w3 := binary.LittleEndian.Uint64(run[j+16:]), binary.LittleEndian.Uint64(run[j+24:])
		if ((w0-ones*0x20)|w0|(w1-ones*0x20)|w1|(w2-ones*0x20)|w2|(w3-ones*0x20)|w3)&highs != 0 {
			break
		}
	}
	for ; j+8 <= len(run); j += 8 {
		w := binary.LittleEndian.Uint64(run[j:])
		if m := ((w - ones*0x20) | w) & highs; m != 0 {
			return i + j + bits.TrailingZeros64(m)>>3
		}
	}
	return i + j
}

// escape checks the escape whose backslash is at i and returns the offset after it.
func (s *scanner) escape(i int) (int, bool) {
	b := s.b
	if i+1 >= len(b) {
		return i, s.failSyntax(synEOF, len(b))
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, true
	case 'u':
	default:
		return i, s.failSyntax(synEscape, i+1)
	}
	r := hex4(b[i+2:])
	if r < 0 {
		return i, s.badHex(i + 2)
	}
	switch {
	case r >= 0xdc00 && r < 0xe000:
		return i, s.failQuote(LoneSurrogate, i, b[i:i+6])
	case r >= 0xd800 && r < 0xdc00:
		j := i + 6
		if j+1 < len(b) && b[j] == '\\' && b[j+1] == 'u' {
			lo := hex4(b[j+2:])
			if lo < 0 {
				return j, s.badHex(j + 2)
			}
			if lo >= 0xdc00 && lo < 0xe000 {
				return j + 6, true
			}
		}
		return i, s.failQuote(LoneSurrogate, i, b[i:i+6])
	}
	return i + 6, true
}

// badHex reports the first byte from i that is not a hex digit of a \u escape.
func (s *scanner) badHex(i int) bool {
	b := s.b
	for j := i; j < i+4; j++ {
		if j >= len(b) {
			return s.failSyntax(synEOF, j)
		}
		if c := b[j]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return s.failSyntax(synChar, j)
		}
	}
	return s.failSyntax(synChar, i)
}

func (s *scanner) literal(i int, lit string) bool {
	b := s.b
	for j := 0; j < len(lit); j++ {
		if i+j >= len(b) || b[i+j] != lit[j] {
			return s.failSyntax(synChar, i+j)
		}
	}
	return true
}

// number checks the number at i and returns the offset after it.
func (s *scanner) number(i int) (int, bool) {
	b := s.b
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return i, s.failSyntax(synChar, i)
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, s.failSyntax(synChar, j)
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, s.failSyntax(synChar, j)
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
