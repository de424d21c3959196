package wire

import (
	"slices"
	"strconv"
	"unsafe"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

// Request is a webhooks.requests record's metadata: everything but the body, which is the record's
// value as received. The ingestor encodes it, the pipeline, the bench and the tests decode it; nothing
// else reads or writes the headers.
type Request struct {
	ID            uuid.UUID // UUIDv7: time-sortable; also the id of the event it fires
	WebhookID     string    // public id; also the record key
	ProjectID     int64
	ReceivedMs    int64 // Unix milliseconds at the edge; also the record timestamp
	ConfigVersion int64 // the webhook version the edge authenticated against
	Outcome       Outcome
	EdgeStatus    int // the HTTP status the edge answered
	// BodyBytes is the size of the body as received; the value may be a prefix of it (a preview) or
	// empty. For a chunked body refused as too large, the limit + 1 (a lower bound).
	BodyBytes int
	Truncated bool   // the value is not the whole body
	Detail    []byte // the edge's words for a refusal (HeaderEdgeDetail); nil for none
	// ContentType is the form's Content-Type (HeaderContentType); nil for a JSON body.
	ContentType []byte
	// Sender are the sender headers kept with the record (HeaderSenderPrefix), in the webhook's order.
	Sender []SenderHeader
	// Trace is the edge span's context (HeaderTraceParent); zero (not IsValid) for none.
	Trace TraceParent
	// Attempt is a later attempt's headers (HeaderAttempt, …): zero for the edge's record, the first
	// attempt. Encode never writes it (the edge makes first attempts only); AppendAttemptHeaders does.
	Attempt Attempt
}

// TraceParent is a W3C traceparent: the trace and span ids of a span and its flags (sampled).
type TraceParent struct {
	TraceID trace.TraceID
	SpanID  trace.SpanID
	Flags   trace.TraceFlags
}

// IsValid reports whether both ids are set (W3C: all-zero ids are invalid).
func (t TraceParent) IsValid() bool { return t.TraceID.IsValid() && t.SpanID.IsValid() }

// TraceParentOf is the traceparent of span context sc.
func TraceParentOf(sc trace.SpanContext) TraceParent {
	return TraceParent{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: sc.TraceFlags()}
}

// SpanContext is t as the remote span context a child or a link of it names.
func (t TraceParent) SpanContext() trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: t.TraceID, SpanID: t.SpanID, TraceFlags: t.Flags, Remote: true})
}

// traceParentLen is the length of a version-00 traceparent: 2+1+32+1+16+1+2.
const traceParentLen = 55

// AppendTraceParent appends t in the traceparent form of version 00, lower-case hex.
func AppendTraceParent(dst []byte, t TraceParent) []byte {
	dst = append(dst, "00-"...)
	dst = appendHex(dst, t.TraceID[:])
	dst = append(dst, '-')
	dst = appendHex(dst, t.SpanID[:])
	dst = append(dst, '-')
	return appendHex(dst, []byte{byte(t.Flags)})
}

// ParseTraceParent reads a traceparent header value, without allocating, as W3C Trace Context says a
// receiver does: version 00 exactly, a later version by its first four fields (and a '-' after them);
// version ff, upper-case hex, all-zero ids or any other shape is not one (ok false). Flags keep only
// the sampled bit, the one this version defines.
func ParseTraceParent(b []byte) (t TraceParent, ok bool) {
	if len(b) < traceParentLen || b[2] != '-' || b[35] != '-' || b[52] != '-' {
		return TraceParent{}, false
	}
	var ver [1]byte
	if !decodeHex(ver[:], b[0:2]) || ver[0] == 0xff || ver[0] == 0 && len(b) != traceParentLen ||
		ver[0] != 0 && len(b) > traceParentLen && b[traceParentLen] != '-' {
		return TraceParent{}, false
	}
	var flags [1]byte
	if !decodeHex(t.TraceID[:], b[3:35]) || !decodeHex(t.SpanID[:], b[36:52]) || !decodeHex(flags[:], b[53:55]) || !t.IsValid() {
		return TraceParent{}, false
	}
	t.Flags = trace.TraceFlags(flags[0]) & trace.FlagsSampled
	return t, true
}

const lowerHex = "0123456789abcdef"

func appendHex(dst, src []byte) []byte {
	for _, c := range src {
		dst = append(dst, lowerHex[c>>4], lowerHex[c&0xf])
	}
	return dst
}

// decodeHex decodes lower-case hex src into dst (len(src) = 2 len(dst)).
func decodeHex(dst, src []byte) bool {
	for i := range dst {
		hi, ok1 := fromHex(src[2*i])
		lo, ok2 := fromHex(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// SenderHeader is one sender header kept with a record.
type SenderHeader struct {
	// Key is the record header's key, HeaderSenderPrefix + the name (the edge keeps it precomputed, so
	// that encoding allocates nothing); Name returns the name.
	Key   string
	Value []byte
}

// Name is the header's name, as the webhook spells it.
func (h SenderHeader) Name() string { return h.Key[len(HeaderSenderPrefix):] }

// numRequestHeaders is how many headers a request record has at most: the nine always there, the
// detail, the content type, the traceparent and the sender headers.
const numRequestHeaders = 12 + MaxSenderHeaders

// RequestHeaders holds one record's headers and their values. Keep one per record in flight (the
// ingestor pools them with the record): Encode then allocates nothing, and the values stay valid for
// as long as the record is.
type RequestHeaders struct {
	list [numRequestHeaders]kgo.RecordHeader
	// buf holds the values but the detail: a 36-byte id, a public id, six decimals, a flag and a
	// 55-byte traceparent.
	buf [320]byte
}

// Encode lays r out as record headers and returns them; they point into h (and into r.Detail,
// r.ContentType and the sender headers' values, which must stay unchanged until the record is
// produced). Sender headers past MaxSenderHeaders are left out; so is a trace that is not IsValid.
func (h *RequestHeaders) Encode(r *Request) []kgo.RecordHeader {
	// Each value is appended to buf and its header set at once, with the key a constant: this is on the
	// edge's hot path. buf is large enough for every value, so the slices never move.
	b := h.buf[:0]
	from := 0
	put := func(i int, key string) {
		h.list[i] = kgo.RecordHeader{Key: key, Value: b[from:len(b):len(b)]}
		from = len(b)
	}
	b = AppendUUID(b, r.ID)
	put(0, HeaderRequestID)
	b = append(b, r.WebhookID...)
	put(1, HeaderWebhookID)
	b = strconv.AppendInt(b, r.ProjectID, 10)
	put(2, HeaderProjectID)
	b = strconv.AppendInt(b, r.ReceivedMs, 10)
	put(3, HeaderReceivedAt)
	b = strconv.AppendInt(b, r.ConfigVersion, 10)
	put(4, HeaderConfigVersion)
	b = append(b, r.Outcome...)
	put(5, HeaderEdgeOutcome)
	b = strconv.AppendInt(b, int64(r.EdgeStatus), 10)
	put(6, HeaderEdgeStatus)
	b = strconv.AppendInt(b, int64(r.BodyBytes), 10)
	put(7, HeaderBodyBytes)
	if r.Truncated {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	put(8, HeaderTruncated)
	n := 9
	if r.Detail != nil {
		h.list[n] = kgo.RecordHeader{Key: HeaderEdgeDetail, Value: r.Detail}
		n++
	}
	if r.ContentType != nil {
		h.list[n] = kgo.RecordHeader{Key: HeaderContentType, Value: r.ContentType}
		n++
	}
	if r.Trace.IsValid() {
		b = AppendTraceParent(b, r.Trace)
		h.list[n] = kgo.RecordHeader{Key: HeaderTraceParent, Value: b[from:len(b):len(b)]}
		from = len(b)
		n++
	}
	for i := range r.Sender[:min(len(r.Sender), MaxSenderHeaders)] {
		h.list[n] = kgo.RecordHeader{Key: r.Sender[i].Key, Value: r.Sender[i].Value}
		n++
	}
	return h.list[:n]
}

// RequestID is the text form of the encoded request id (the 202's request_id), valid until the next
// Encode.
func (h *RequestHeaders) RequestID() []byte { return h.list[0].Value }

// Request headers that are required: DecodeRequest names them when they are missing or malformed.
const (
	BadRequestID  = "request id"
	BadProjectID  = "project id"
	BadReceivedAt = "received at"
	BadOutcome    = "edge outcome"
)

// MaxReceivedMs is the last millisecond ClickHouse's DateTime holds (2105-12-31 23:59:59 UTC): a later
// receive time is malformed.
const MaxReceivedMs = 4_291_747_199_999

// DecodeRequest reads a record's key and headers into r, allocating nothing (unless the record is
// malformed): r's strings and Detail alias the record's bytes, which must not change while r is used. It
// returns what breaks the contract (BadRequestID, …): a malformed value, or no edge outcome; nil when
// the record keeps it. r then holds what could be read, zero where nothing could: a reader decides what
// stands in for a missing id or receive time. Unknown headers are ignored, so that a newer edge can add
// some.
func DecodeRequest(rec *kgo.Record, r *Request) (bad []string) {
	sender := r.Sender[:0] // reused: decoding into the same Request again allocates nothing
	*r = Request{WebhookID: bytesString(rec.Key)}
	for _, h := range rec.Headers {
		v := h.Value
		if len(h.Key) > len(HeaderSenderPrefix) && h.Key[:len(HeaderSenderPrefix)] == HeaderSenderPrefix {
			sender = append(sender, SenderHeader{Key: h.Key, Value: v})
			continue
		}
		switch h.Key {
		case HeaderRequestID:
			id, err := uuid.ParseBytes(v)
			if err != nil {
				bad = append(bad, BadRequestID)
			}
			r.ID = id
		case HeaderWebhookID:
			r.WebhookID = bytesString(v)
		case HeaderProjectID:
			n, ok := parseDecimal(v)
			if !ok {
				bad = append(bad, BadProjectID)
			}
			r.ProjectID = n
		case HeaderReceivedAt:
			n, ok := parseDecimal(v)
			if !ok || n > MaxReceivedMs {
				bad = append(bad, BadReceivedAt)
				n = 0
			}
			r.ReceivedMs = n
		case HeaderConfigVersion:
			r.ConfigVersion, _ = parseDecimal(v)
		case HeaderEdgeOutcome:
			r.Outcome = Outcome(bytesString(v))
		case HeaderEdgeStatus:
			n, _ := parseDecimal(v)
			r.EdgeStatus = int(min(n, 999))
		case HeaderBodyBytes:
			n, _ := parseDecimal(v)
			r.BodyBytes = int(min(n, 1<<32-1))
		case HeaderTruncated:
			r.Truncated = len(v) == 1 && v[0] == '1'
		case HeaderEdgeDetail:
			r.Detail = v
		case HeaderContentType:
			r.ContentType = v
		case HeaderTraceParent:
			r.Trace, _ = ParseTraceParent(v)
		default:
			if len(h.Key) >= len(attemptPrefix) && h.Key[:len(attemptPrefix)] == attemptPrefix {
				if _, ok := decodeAttempt(h.Key, v, &r.Attempt); !ok {
					bad = append(bad, BadAttempt)
				}
			}
		}
	}
	if len(sender) > 0 {
		r.Sender = sender
	}
	if r.Outcome == "" {
		bad = append(bad, BadOutcome)
	}
	if r.Attempt != (Attempt{}) && r.Attempt.Number == 0 && !slices.Contains(bad, BadAttempt) {
		bad = append(bad, BadAttempt) // attempt headers without the attempt's number
	}
	return bad
}

// AppendUUID appends id's text form (8-4-4-4-12, lower case) without allocating, as uuid's String does
// not.
func AppendUUID(dst []byte, id uuid.UUID) []byte {
	const hex = "0123456789abcdef"
	var buf [36]byte
	j := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
	return append(dst, buf[:]...)
}

// parseDecimal reads a non-negative decimal header value without allocating (strconv needs a string).
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// bytesString views b as a string without copying; see DecodeRequest.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// attemptPrefix begins every attempt header's key.
const attemptPrefix = "inlet-attempt"
