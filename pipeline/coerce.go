package pipeline

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bytedance/sonic/ast"
	"github.com/shopspring/decimal"

	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Coercion rules: how a payload value becomes an attribute of each type. The rules are lenient where
// senders are known to differ (numbers sent as strings, booleans as 0/1) and strict where guessing would
// corrupt data (a fractional integer, a date in an unknown layout). A value that fits no rule fails the
// request with attribute_type_mismatch naming the attribute, unless its mapping says on_error "drop":
// then the attribute is omitted, the event fires and the detail says why. A null value counts as absent.
//
//	integer  JSON integer; a JSON number with an integral value (3.0, 1e3); a string holding either
//	         (surrounding spaces ignored). Must fit in int64. Written as a JSON number.
//	string   a string as is; a number as its literal text; true/false as "true"/"false".
//	         Arrays and objects do not coerce.
//	list     a JSON array of scalars, each turned into a string as for string; a string split on commas
//	         with spaces trimmed and empty items dropped ("a, b,,c" → ["a","b","c"]); a single number or
//	         boolean becomes a one-item list. Nested arrays or objects do not coerce. Written as a JSON
//	         array of strings.
//	date     an ISO 8601 / RFC 3339 date and time, 'T' or a space between them ("2026-11-26T10:12:31",
//	         "2026-11-26 10:12:31"), an optional fraction of up to 9 digits, an optional offset (Z,
//	         ±HH:MM, ±HHMM, ±HH, " UTC"); a date alone (YYYY-MM-DD: midnight); an RFC 1123 date
//	         ("Thu, 26 Nov 2026 10:12:31 GMT", or with a numeric offset, RFC 1123Z; other zone
//	         abbreviations are ambiguous and refused); a Unix epoch as a JSON number or numeric string:
//	         absolute values below 1e11 are seconds (1e11 s is the year 5138), larger ones milliseconds
//	         (1e11 ms is March 1973), so every plausible timestamp of either unit is read right. A time
//	         without an offset and a date alone are wall-clock times in the webhook's time zone (UTC by
//	         default); where its clocks jump, a skipped time is read with the offset before the jump
//	         (02:30 becomes 03:30) and a repeated one is its first occurrence. Written as RFC 3339 in
//	         UTC with the fraction only when there is one.
//	boolean  true/false; the strings "true"/"false", "yes"/"no", "1"/"0" (case-insensitive, spaces
//	         ignored); the numbers 1 and 0. Written as a JSON boolean.
//	price    a JSON number read from its literal text, never through float64, so 99.99 stays 99.99; a
//	         string holding a decimal number. Written as a JSON string keeping the sender's scale
//	         ("99.90" stays "99.90"; 1e2 becomes "100").
//
// Numbers read exactly (integer, price, epoch date) are bounded by max_number_digits counted as written
// out in full (1e10000 has 10,001 digits): past it the request fails with number_out_of_range, checked
// before any arithmetic. A coerced value longer than max_attribute_bytes fails with attribute_too_large.

// errAbsent: the mapped field is missing or null; the attribute is omitted and the detail says so.
var errAbsent = errors.New("field absent")

// errOutOfRange: a number is too large or too precise to be read exactly within Limits.NumberDigits.
// Its own failure reason (number_out_of_range), because it is a bound of Inlet's, not a type mismatch.
var errOutOfRange = errors.New("number out of range")

// Limits bound what one request can make of its event, whatever its body holds (see Config: the
// settings max_attribute_bytes, max_number_digits and max_event_bytes).
type Limits struct {
	// AttributeBytes bounds one attribute's JSON value (a string, a list): attribute_too_large.
	AttributeBytes int
	// NumberDigits bounds a number read exactly (integer, price, epoch date), counted as written out
	// in full: 1e10000 has 10,001 digits, 1e-40 has 40. Reading such a number exactly costs time and
	// memory in proportion to its digits, so the bound is checked before any arithmetic.
	NumberDigits int
	// EventBytes bounds the whole webhooks.events value: event_too_large.
	EventBytes int
	// IdentifierBytes bounds the identifier read from the payload: identifier_invalid.
	IdentifierBytes int
}

// epochMillisThreshold separates epoch seconds from epoch milliseconds (see the rules above).
const epochMillisThreshold = 100_000_000_000

// maxListItems bounds a list attribute: a sender cannot make one event arbitrarily large.
const maxListItems = 1000

// appendCoerced appends the JSON form of n coerced to t. It returns errAbsent for a missing or null
// value and a descriptive error when the value does not coerce.
//
// loc is the webhook's time zone, in which a date without an offset is read (nil: UTC).
func appendCoerced(dst []byte, t webhook.AttrType, n *ast.Node, lim *Limits, loc *time.Location) ([]byte, error) {
	kind := n.TypeSafe()
	if kind == ast.V_NONE || kind == ast.V_NULL {
		return dst, errAbsent
	}
	switch t {
	case webhook.TypeInteger:
		return coerceInteger(dst, n, kind, lim)
	case webhook.TypeString:
		s, err := scalarText(n, kind)
		if err != nil {
			return dst, err
		}
		return wire.AppendJSONString(dst, s), nil
	case webhook.TypeList:
		return coerceList(dst, n, kind)
	case webhook.TypeDate:
		return coerceDate(dst, n, kind, lim, loc)
	case webhook.TypeBoolean:
		return coerceBool(dst, n, kind)
	case webhook.TypePrice:
		return coercePrice(dst, n, kind, lim)
	}
	return dst, fmt.Errorf("unknown attribute type %q", t)
}

func kindName(kind int) string {
	switch kind {
	case ast.V_TRUE, ast.V_FALSE:
		return "boolean"
	case ast.V_ARRAY:
		return "array"
	case ast.V_OBJECT:
		return "object"
	case ast.V_STRING:
		return "string"
	case ast.V_NUMBER:
		return "number"
	}
	return "invalid JSON"
}

// scalarText is a scalar's text: a string unquoted, a number's literal, true/false.
func scalarText(n *ast.Node, kind int) (string, error) {
	switch kind {
	case ast.V_STRING:
		s, err := n.String()
		if err != nil {
			return "", fmt.Errorf("bad string: %w", err)
		}
		return s, nil
	case ast.V_NUMBER:
		return n.Raw()
	case ast.V_TRUE:
		return "true", nil
	case ast.V_FALSE:
		return "false", nil
	}
	return "", fmt.Errorf("%s is not a scalar", kindName(kind))
}

// numberText is the literal text of a number or numeric string (trimmed), or an error.
func numberText(n *ast.Node, kind int) (string, error) {
	switch kind {
	case ast.V_NUMBER:
		return n.Raw()
	case ast.V_STRING:
		s, err := n.String()
		if err != nil {
			return "", fmt.Errorf("bad string: %w", err)
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return "", errors.New("empty string is not a number")
		}
		return s, nil
	}
	return "", fmt.Errorf("%s is not a number", kindName(kind))
}

// exactDecimal reads number text as an exact decimal, refusing (errOutOfRange) a number with more than
// maxDigits digits written out, before doing any arithmetic with it: parsing is superlinear in the
// length of the text, and 1e999999999 (11 bytes) would become a billion digits when compared, rescaled
// or printed.
func exactDecimal(s string, maxDigits int) (decimal.Decimal, error) {
	// Sign, point, exponent and a few leading zeros: anything longer has too many digits anyway.
	if len(s) > maxDigits+24 {
		return decimal.Decimal{}, fmt.Errorf("%w: a number of %d characters is longer than %d digits", errOutOfRange, len(s), maxDigits)
	}
	if hugeExponent(s) {
		return decimal.Decimal{}, fmt.Errorf("%w: %q has more than %d digits written out", errOutOfRange, truncateText(s), maxDigits)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%q is not a number", truncateText(s))
	}
	n, e := d.NumDigits(), int64(d.Exponent())
	width := int64(n) + e // digits of an integer written out
	if e < 0 {
		width = max(int64(n), -e) // digits of a fraction: every one after the point
	}
	if width > int64(maxDigits) {
		return decimal.Decimal{}, fmt.Errorf("%w: %q has %d digits written out, more than %d", errOutOfRange, truncateText(s), width, maxDigits)
	}
	return d, nil
}

// hugeExponent reports an exponent beyond ±10,000, which the decimal library refuses to read: with the
// mantissa bounded by exactDecimal's length check, such a number has more digits written out than any
// allowed max_number_digits.
func hugeExponent(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return false
	}
	exp := strings.TrimLeft(strings.TrimLeft(s[i+1:], "+-"), "0")
	if len(exp) > 5 {
		return true
	}
	v, err := strconv.Atoi(exp)
	return err == nil && v > 10_000
}

// parseInteger reads an integral value from number text: plain digits fast, anything else (fraction,
// exponent) through an exact decimal that must be integral.
func parseInteger(s string, maxDigits int) (int64, error) {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	d, err := exactDecimal(s, maxDigits)
	if err != nil {
		return 0, err
	}
	if !d.IsInteger() {
		return 0, fmt.Errorf("%q is not a whole number", truncateText(s))
	}
	if d.GreaterThan(maxInt64) || d.LessThan(minInt64) {
		return 0, fmt.Errorf("%q does not fit in 64 bits", truncateText(s))
	}
	return d.IntPart(), nil
}

var (
	maxInt64 = decimal.NewFromInt(1<<63 - 1)
	minInt64 = decimal.NewFromInt(-1 << 63)
)

func coerceInteger(dst []byte, n *ast.Node, kind int, lim *Limits) ([]byte, error) {
	s, err := numberText(n, kind)
	if err != nil {
		return dst, err
	}
	v, err := parseInteger(s, lim.NumberDigits)
	if err != nil {
		return dst, err
	}
	return strconv.AppendInt(dst, v, 10), nil
}

func coerceList(dst []byte, n *ast.Node, kind int) ([]byte, error) {
	switch kind {
	case ast.V_ARRAY:
		items, err := n.ArrayUseNode()
		if err != nil {
			return dst, fmt.Errorf("bad array: %w", err)
		}
		if len(items) > maxListItems {
			return dst, fmt.Errorf("list of %d items is longer than %d", len(items), maxListItems)
		}
		dst = append(dst, '[')
		for i := range items {
			s, err := scalarText(&items[i], items[i].TypeSafe())
			if err != nil {
				return dst, fmt.Errorf("item %d: %w", i, err)
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = wire.AppendJSONString(dst, s)
		}
		return append(dst, ']'), nil
	case ast.V_STRING:
		s, err := n.String()
		if err != nil {
			return dst, fmt.Errorf("bad string: %w", err)
		}
		dst = append(dst, '[')
		count := 0
		for part := range strings.SplitSeq(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if count == maxListItems {
				return dst, fmt.Errorf("list is longer than %d items", maxListItems)
			}
			if count > 0 {
				dst = append(dst, ',')
			}
			dst = wire.AppendJSONString(dst, part)
			count++
		}
		return append(dst, ']'), nil
	case ast.V_NUMBER, ast.V_TRUE, ast.V_FALSE:
		s, _ := scalarText(n, kind)
		dst = append(dst, '[')
		dst = wire.AppendJSONString(dst, s)
		return append(dst, ']'), nil
	}
	return dst, fmt.Errorf("%s is not a list", kindName(kind))
}

func coerceDate(dst []byte, n *ast.Node, kind int, lim *Limits, loc *time.Location) ([]byte, error) {
	var t time.Time
	switch kind {
	case ast.V_NUMBER:
		s, _ := n.Raw()
		var err error
		if t, err = epochTime(s, lim.NumberDigits); err != nil {
			return dst, err
		}
	case ast.V_STRING:
		s, err := n.String()
		if err != nil {
			return dst, fmt.Errorf("bad string: %w", err)
		}
		s = strings.TrimSpace(s)
		if t, err = parseDateText(s, loc, lim.NumberDigits); err != nil {
			return dst, err
		}
	default:
		return dst, fmt.Errorf("%s is not a date", kindName(kind))
	}
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// epochTime reads epoch seconds or milliseconds (see epochMillisThreshold); a fraction is kept to the
// millisecond.
func epochTime(s string, maxDigits int) (time.Time, error) {
	d, err := exactDecimal(s, maxDigits)
	if errors.Is(err, errOutOfRange) {
		return time.Time{}, err
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date or epoch", truncateText(s))
	}
	ms := d
	if d.Abs().LessThan(decimal.NewFromInt(epochMillisThreshold)) {
		ms = d.Shift(3)
	}
	// ±1e15 ms is about ±31,000 years: far beyond any real date, and well inside int64 and time.Time.
	if ms.Abs().GreaterThan(decimal.NewFromInt(1_000_000_000_000_000)) {
		return time.Time{}, fmt.Errorf("epoch %q is out of range", truncateText(s))
	}
	return time.UnixMilli(ms.IntPart()).UTC(), nil
}

func coerceBool(dst []byte, n *ast.Node, kind int) ([]byte, error) {
	switch kind {
	case ast.V_TRUE:
		return append(dst, "true"...), nil
	case ast.V_FALSE:
		return append(dst, "false"...), nil
	case ast.V_NUMBER:
		s, _ := n.Raw()
		switch s {
		case "1":
			return append(dst, "true"...), nil
		case "0":
			return append(dst, "false"...), nil
		}
		return dst, fmt.Errorf("number %s is not a boolean (only 1 or 0)", truncateText(s))
	case ast.V_STRING:
		s, err := n.String()
		if err != nil {
			return dst, fmt.Errorf("bad string: %w", err)
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "yes", "1":
			return append(dst, "true"...), nil
		case "false", "no", "0":
			return append(dst, "false"...), nil
		}
		return dst, fmt.Errorf("%q is not a boolean", truncateText(s))
	}
	return dst, fmt.Errorf("%s is not a boolean", kindName(kind))
}

func coercePrice(dst []byte, n *ast.Node, kind int, lim *Limits) ([]byte, error) {
	s, err := numberText(n, kind)
	if err != nil {
		return dst, err
	}
	if len(s) <= min(lim.NumberDigits, 18) && plainDecimal(s) {
		// Already in the form the decimal would print (its scale kept): written as it is, without
		// the big-number arithmetic, which costs allocations on every price.
		dst = append(dst, '"')
		if s[0] == '-' && strings.Trim(s[1:], "0.") == "" {
			s = s[1:] // -0.00 is 0.00, as the decimal prints it
		}
		dst = append(dst, s...)
		return append(dst, '"'), nil
	}
	d, err := exactDecimal(s, lim.NumberDigits)
	if errors.Is(err, errOutOfRange) {
		return dst, err
	}
	if err != nil {
		return dst, fmt.Errorf("%q is not a price", truncateText(s))
	}
	dst = append(dst, '"')
	if exp := d.Exponent(); exp < 0 {
		dst = append(dst, d.StringFixed(-exp)...)
	} else {
		dst = append(dst, d.String()...)
	}
	return append(dst, '"'), nil
}

// plainDecimal reports whether s is -?(0|[1-9][0-9]*)(.[0-9]+)?: a decimal the decimal library prints
// back as it is (but for a negative zero).
func plainDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	switch {
	case i == start, s[start] == '0' && i-start > 1:
		return false
	case i == len(s):
		return true
	case s[i] != '.':
		return false
	}
	i++
	frac := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i > frac && i == len(s)
}

// truncateText keeps error details short: they end up in the activity log.
func truncateText(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
