package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Dates as senders write them. ISO 8601 and its relatives are read by hand rather than by trying
// time.Parse layouts in turn: one pass over fixed positions, no allocation (time.Parse makes a
// location for every numeric offset), and an error that says which part is wrong.

// parseDateText reads a date string (trimmed) in one of the formats of the coercion rules: a date
// alone, an ISO 8601 date and time with a 'T' or a space, an RFC 1123 date, or epoch digits. Times
// without an offset, and dates alone, are wall-clock times in loc.
func parseDateText(s string, loc *time.Location, maxDigits int) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty string is not a date")
	}
	switch c := s[0]; {
	case c >= '0' && c <= '9' || c == '-':
		if len(s) >= 10 && s[4] == '-' && s[7] == '-' {
			return parseISO(s, loc)
		}
		return epochTime(s, maxDigits)
	case c >= 'A' && c <= 'Z':
		return parseRFC1123(s)
	}
	return time.Time{}, fmt.Errorf("%q is not a date", truncateText(s))
}

// parseISO reads YYYY-MM-DD, optionally followed by 'T' (or 't', or a space) and HH:MM:SS, an
// optional fraction of up to nine digits and an optional offset: Z, ±HH:MM, ±HHMM or ±HH, with or
// without a space before it, or " UTC" / " GMT".
func parseISO(s string, loc *time.Location) (time.Time, error) {
	bad := func(what string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("%q is not a date (YYYY-MM-DD, then optionally THH:MM:SS and an offset): %s", truncateText(s), what)
	}
	year, ok1 := digits(s, 0, 4)
	month, ok2 := digits(s, 5, 2)
	day, ok3 := digits(s, 8, 2)
	if !ok1 || !ok2 || !ok3 {
		return bad("the date is not YYYY-MM-DD")
	}
	if month < 1 || month > 12 {
		return bad("month out of range")
	}
	if day < 1 || day > daysIn(time.Month(month), year) {
		return bad("day out of range")
	}
	if len(s) == 10 {
		return wallTime(year, time.Month(month), day, 0, 0, 0, 0, loc), nil
	}
	if sep := s[10]; sep != 'T' && sep != 't' && sep != ' ' {
		return bad("the date is followed by neither 'T' nor a space")
	}
	hour, ok1 := digits(s, 11, 2)
	minute, ok2 := digits(s, 14, 2)
	sec, ok3 := digits(s, 17, 2)
	if len(s) < 19 || s[13] != ':' || s[16] != ':' || !ok1 || !ok2 || !ok3 {
		return bad("the time is not HH:MM:SS")
	}
	if hour > 23 || minute > 59 || sec > 59 {
		return bad("time out of range")
	}
	rest := s[19:]
	nsec := 0
	if len(rest) > 0 && (rest[0] == '.' || rest[0] == ',') {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return bad("the fraction of a second has no digits or more than nine")
		}
		frac, _ := digits(rest, 1, n-1)
		for range 10 - n {
			frac *= 10
		}
		nsec, rest = frac, rest[n:]
	}
	if rest == "" {
		return wallTime(year, time.Month(month), day, hour, minute, sec, nsec, loc), nil
	}
	off, ok := parseOffset(rest)
	if !ok {
		return bad("the offset is not Z, ±HH:MM, ±HHMM, ±HH, UTC or GMT")
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC).Add(-time.Duration(off) * time.Second), nil
}

// parseOffset reads an offset in seconds east of UTC (see parseISO).
func parseOffset(s string) (int, bool) {
	switch s {
	case "Z", "z", " UTC", " GMT", "UTC", " Z":
		return 0, true
	}
	if s[0] == ' ' {
		s = s[1:]
	}
	if len(s) < 3 || s[0] != '+' && s[0] != '-' {
		return 0, false
	}
	h, ok := digits(s, 1, 2)
	m := 0
	switch {
	case len(s) == 3:
	case len(s) == 6 && s[3] == ':':
		m, ok = digits(s, 4, 2)
	case len(s) == 5:
		m, ok = digits(s, 3, 2)
	default:
		return 0, false
	}
	if !ok || h > 23 || m > 59 {
		return 0, false
	}
	if off := h*3600 + m*60; s[0] == '-' {
		return -off, true
	} else {
		return off, true
	}
}

// rfc1123 is RFC 1123's layout without its zone, the day of the month in one or two digits.
const rfc1123 = "Mon, 2 Jan 2006 15:04:05"

// parseRFC1123 reads "Thu, 26 Nov 2026 10:12:31 GMT" (HTTP's date; UTC too) or with a numeric offset
// ("… +0100", RFC 1123Z). Other zone abbreviations are refused: EST or CST name different offsets in
// different places, and Go would read an unknown one as UTC without a word.
func parseRFC1123(s string) (time.Time, error) {
	sp := strings.LastIndexByte(s, ' ')
	if sp < 0 {
		return time.Time{}, fmt.Errorf("%q is not a date", truncateText(s))
	}
	head, zone := s[:sp], s[sp+1:]
	var off int
	switch {
	case zone == "GMT" || zone == "UTC" || zone == "Z":
	case zone != "" && (zone[0] == '+' || zone[0] == '-'):
		var ok bool
		if off, ok = parseOffset(zone); !ok {
			return time.Time{}, fmt.Errorf("%q is not an RFC 1123 date: offset %q is not ±HHMM", truncateText(s), truncateText(zone))
		}
	default:
		return time.Time{}, fmt.Errorf("%q is not an RFC 1123 date: the zone must be GMT, UTC or a numeric offset such as +0100", truncateText(s))
	}
	t, err := time.ParseInLocation(rfc1123, head, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 1123 date (Mon, 02 Jan 2006 15:04:05 GMT)", truncateText(s))
	}
	return t.Add(-time.Duration(off) * time.Second), nil
}

// wallTime is the instant a wall-clock time in loc names. Where the clocks jump (a time zone's
// transition), Go's time.Date picks an offset it does not promise; this follows the rule of
// java.time and many databases instead, stated in the coercion rules: a time the clocks skipped (02:30
// when they go from 02:00 to 03:00) is read with the offset before the jump, so it lands as far after
// the jump (03:30); a time that happens twice (when they go back) is its first occurrence.
func wallTime(year int, month time.Month, day, hour, minute, sec, nsec int, loc *time.Location) time.Time {
	u := time.Date(year, month, day, hour, minute, sec, nsec, time.UTC)
	if loc == nil || loc == time.UTC {
		return u
	}
	before, after := offsetAt(u.Add(-24*time.Hour), loc), offsetAt(u.Add(24*time.Hour), loc)
	for _, off := range [2]int{before, after} {
		if t := u.Add(-time.Duration(off) * time.Second); offsetAt(t, loc) == off {
			return t
		}
	}
	return u.Add(-time.Duration(before) * time.Second) // skipped: the offset before the jump
}

func offsetAt(t time.Time, loc *time.Location) int {
	_, off := t.In(loc).Zone()
	return off
}

// digits reads n decimal digits of s at i.
func digits(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
