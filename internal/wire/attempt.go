package wire

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header keys of a later attempt of a request (a replay, the release or the expiry of a held request).
// An attempt is the first attempt's record produced again to webhooks.requests — the same key, value
// and request headers (request id, receive time, …) — with these headers added. The edge never sets
// them: a record without HeaderAttempt is a first attempt. package replay produces attempts; the
// pipeline reads them through DecodeRequest (Request.Attempt).
const (
	HeaderAttempt = "inlet-attempt" // the attempt's number, decimal, >= 1 (the edge's record is attempt 0)
	// HeaderAttemptCause is why the request runs again: "replay", "release" or "expire" (package replay's
	// Cause).
	HeaderAttemptCause = "inlet-attempt-cause"
	HeaderAttemptJob   = "inlet-attempt-job" // the replay job's id; absent when none
	HeaderAttemptAt    = "inlet-attempt-at"  // Unix milliseconds when the attempt was produced, decimal
	// HeaderOrigin is the first attempt's position in webhooks.requests, "<partition>/<offset>": where a
	// later attempt reads the body again.
	HeaderOrigin = "inlet-attempt-origin"
	// HeaderReplacesStatus and HeaderReplacesReason are the request's latest outcome before this attempt
	// (its activity status and reason): the rollup counts the request there no more, and at this
	// attempt's outcome instead.
	HeaderReplacesStatus = "inlet-attempt-replaces-status"
	HeaderReplacesReason = "inlet-attempt-replaces-reason"
	// HeaderAttemptFired lists the events earlier attempts fired, which this one does not fire again:
	// comma-separated fan-out element indices, or "-1" for a request's single event. Absent when none.
	HeaderAttemptFired = "inlet-attempt-fired"
)

// MaxAttempt bounds an attempt's number.
const MaxAttempt = 65535

// Attempt is what a later attempt's record says of itself; the zero value (Number 0) is a first
// attempt. Its strings alias the record's bytes, like Request's.
type Attempt struct {
	Number          int
	Cause           string
	Job             string
	AtMs            int64
	OriginPartition int32
	OriginOffset    int64
	ReplacesStatus  string
	ReplacesReason  string
	// Fired is HeaderAttemptFired's value as it is ("" for none); FiredIndices reads it.
	Fired string
}

// BadAttempt names a malformed attempt header (DecodeRequest).
const BadAttempt = "attempt"

// IsAttemptHeader reports whether key is one of the attempt headers, which a producer of an attempt
// replaces.
func IsAttemptHeader(key string) bool {
	switch key {
	case HeaderAttempt, HeaderAttemptCause, HeaderAttemptJob, HeaderAttemptAt, HeaderOrigin,
		HeaderReplacesStatus, HeaderReplacesReason, HeaderAttemptFired:
		return true
	}
	return false
}

// AppendAttemptHeaders appends a's headers (a.Number >= 1) to dst. The values are new memory.
func AppendAttemptHeaders(dst []kgo.RecordHeader, a *Attempt) []kgo.RecordHeader {
	dst = append(dst,
		kgo.RecordHeader{Key: HeaderAttempt, Value: strconv.AppendInt(nil, int64(a.Number), 10)},
		kgo.RecordHeader{Key: HeaderAttemptCause, Value: []byte(a.Cause)},
		kgo.RecordHeader{Key: HeaderAttemptAt, Value: strconv.AppendInt(nil, a.AtMs, 10)},
		kgo.RecordHeader{Key: HeaderOrigin, Value: fmt.Appendf(nil, "%d/%d", a.OriginPartition, a.OriginOffset)},
		kgo.RecordHeader{Key: HeaderReplacesStatus, Value: []byte(a.ReplacesStatus)},
		kgo.RecordHeader{Key: HeaderReplacesReason, Value: []byte(a.ReplacesReason)})
	if a.Job != "" {
		dst = append(dst, kgo.RecordHeader{Key: HeaderAttemptJob, Value: []byte(a.Job)})
	}
	if a.Fired != "" {
		dst = append(dst, kgo.RecordHeader{Key: HeaderAttemptFired, Value: []byte(a.Fired)})
	}
	return dst
}

// FormatFired is HeaderAttemptFired's value for the fired events: element indices, -1 for a single
// event.
func FormatFired(fired []int) string {
	var b []byte
	for i, x := range fired {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(x), 10)
	}
	return string(b)
}

// errFired: HeaderAttemptFired is malformed.
var errFired = errors.New("malformed fired list")

// FiredIndices appends the indices of a.Fired to dst.
func (a *Attempt) FiredIndices(dst []int) ([]int, error) {
	s := a.Fired
	for len(s) > 0 {
		j := 0
		for j < len(s) && s[j] != ',' {
			j++
		}
		n, err := strconv.Atoi(s[:j])
		if err != nil || n < -1 {
			return dst, fmt.Errorf("%w: %q", errFired, a.Fired)
		}
		dst = append(dst, n)
		if j == len(s) {
			break
		}
		s = s[j+1:]
		if s == "" {
			return dst, fmt.Errorf("%w: %q", errFired, a.Fired)
		}
	}
	return dst, nil
}

// decodeAttempt reads one attempt header into a; false when its value is malformed.
func decodeAttempt(key string, v []byte, a *Attempt) (known, ok bool) {
	switch key {
	case HeaderAttempt:
		n, ok := parseDecimal(v)
		a.Number = int(min(n, MaxAttempt))
		return true, ok && n >= 1 && n <= MaxAttempt
	case HeaderAttemptCause:
		a.Cause = bytesString(v)
	case HeaderAttemptJob:
		a.Job = bytesString(v)
	case HeaderAttemptAt:
		n, ok := parseDecimal(v)
		a.AtMs = n
		return true, ok
	case HeaderOrigin:
		i := 0
		for i < len(v) && v[i] != '/' {
			i++
		}
		if i == len(v) {
			return true, false
		}
		p, ok1 := parseDecimal(v[:i])
		o, ok2 := parseDecimal(v[i+1:])
		a.OriginPartition, a.OriginOffset = int32(min(p, 1<<31-1)), o
		return true, ok1 && ok2 && p < 1<<31
	case HeaderReplacesStatus:
		a.ReplacesStatus = bytesString(v)
	case HeaderReplacesReason:
		a.ReplacesReason = bytesString(v)
	case HeaderAttemptFired:
		a.Fired = bytesString(v)
	default:
		return false, true
	}
	return true, true
}
