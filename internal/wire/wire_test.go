package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

func sampleRequest() Request {
	return Request{ID: uuid.Must(uuid.NewV7()), WebhookID: "1Lg9DZF8k6c7unooi37Ji7", ProjectID: 42,
		ReceivedMs: 1764756000123, ConfigVersion: 7, Outcome: OutcomeInvalidJSON, EdgeStatus: 400,
		BodyBytes: 1048577, Truncated: true, Detail: []byte(`duplicate key "user_id" at byte 18`),
		ContentType: []byte("application/x-www-form-urlencoded"),
		Sender: []SenderHeader{
			{Key: HeaderSenderPrefix + "X-Shopify-Topic", Value: []byte("orders/create")},
			{Key: HeaderSenderPrefix + "X-Shopify-Webhook-Id", Value: []byte("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")},
		},
		Trace: TraceParent{TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
			SpanID: trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, Flags: trace.FlagsSampled}}
}

// TestSenderHeaders: kept sender headers travel under their prefix, by name, in order; past
// MaxSenderHeaders they are left out.
func TestSenderHeaders(t *testing.T) {
	in := sampleRequest()
	if got := in.Sender[0].Name(); got != "X-Shopify-Topic" {
		t.Errorf("Name() = %q", got)
	}
	for i := range MaxSenderHeaders + 3 {
		in.Sender = append(in.Sender, SenderHeader{Key: HeaderSenderPrefix + "X-Extra", Value: []byte{byte('a' + i%26)}})
	}
	var h RequestHeaders
	var out Request
	if bad := DecodeRequest(&kgo.Record{Headers: h.Encode(&in)}, &out); bad != nil {
		t.Fatal(bad)
	}
	if len(out.Sender) != MaxSenderHeaders || string(out.Sender[1].Value) != "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043" {
		t.Errorf("decoded %d sender headers (second %q); want %d, the first ones", len(out.Sender), out.Sender[1].Value, MaxSenderHeaders)
	}
}

// TestRequestRoundTrip: what the edge encodes, every reader decodes to the same values.
func TestRequestRoundTrip(t *testing.T) {
	for _, in := range []Request{sampleRequest(), {ID: uuid.Must(uuid.NewV7()), WebhookID: "w", Outcome: OutcomeAccepted, EdgeStatus: 202}} {
		var h RequestHeaders
		rec := &kgo.Record{Key: []byte(in.WebhookID), Headers: h.Encode(&in)}
		var out Request
		if bad := DecodeRequest(rec, &out); bad != nil {
			t.Fatalf("decode: %v", bad)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
		}
		if string(h.RequestID()) != in.ID.String() {
			t.Errorf("RequestID() = %s; want %s", h.RequestID(), in.ID)
		}
	}
}

// TestDecodeRequestContract: a record that breaks the contract says how; one from a newer edge with
// headers this one does not know still decodes.
func TestDecodeRequestContract(t *testing.T) {
	in := sampleRequest()
	var h RequestHeaders
	hdrs := append(h.Encode(&in), kgo.RecordHeader{Key: "inlet-something-new", Value: []byte("x")})
	var out Request
	if bad := DecodeRequest(&kgo.Record{Headers: hdrs}, &out); bad != nil || out.ProjectID != 42 {
		t.Errorf("unknown header: bad %v, project %d; want none, 42", bad, out.ProjectID)
	}
	broken := []kgo.RecordHeader{
		{Key: HeaderRequestID, Value: []byte("not-a-uuid")},
		{Key: HeaderProjectID, Value: []byte("-1")},
		{Key: HeaderReceivedAt, Value: []byte("4291747200000")}, // past ClickHouse's DateTime
	}
	bad := DecodeRequest(&kgo.Record{Headers: broken}, &out)
	want := []string{BadRequestID, BadProjectID, BadReceivedAt, BadOutcome}
	if !reflect.DeepEqual(bad, want) {
		t.Errorf("broken record: bad %v; want %v", bad, want)
	}
}

// TestEncodeDecodeAllocs: the edge encodes and the pipeline decodes without allocating.
func TestEncodeDecodeAllocs(t *testing.T) {
	in := sampleRequest()
	var h RequestHeaders
	rec := &kgo.Record{}
	var out Request
	if n := testing.AllocsPerRun(100, func() { rec.Headers = h.Encode(&in) }); n != 0 {
		t.Errorf("Encode: %v allocs; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { DecodeRequest(rec, &out) }); n != 0 {
		t.Errorf("DecodeRequest: %v allocs; want 0", n)
	}
}

// FuzzRequestRoundTrip: any request the edge could make survives the wire unchanged.
func FuzzRequestRoundTrip(f *testing.F) {
	f.Add([]byte{1, 2, 3}, "wh", int64(1), int64(1764756000123), int64(3), "accepted", 202, 172, false, []byte(nil), []byte(nil))
	f.Add([]byte{}, "", int64(0), int64(0), int64(0), "invalid_json", 400, 0, true, []byte("at byte 3"),
		[]byte("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36\x00\xf0\x67\xaa\x0b\xa9\x02\xb7\x01"))
	f.Fuzz(func(t *testing.T, id []byte, webhookID string, project, received, version int64, outcome string, status, bodyBytes int, truncated bool, detail, tp []byte) {
		if project < 0 || received < 0 || received > MaxReceivedMs || version < 0 || outcome == "" ||
			status < 0 || status > 999 || bodyBytes < 0 || bodyBytes > 1<<32-1 || len(webhookID) > 64 {
			return // not something the edge makes
		}
		in := Request{WebhookID: webhookID, ProjectID: project, ReceivedMs: received, ConfigVersion: version,
			Outcome: Outcome(outcome), EdgeStatus: status, BodyBytes: bodyBytes, Truncated: truncated, Detail: detail}
		copy(in.ID[:], id)
		if len(tp) >= 25 {
			copy(in.Trace.TraceID[:], tp)
			copy(in.Trace.SpanID[:], tp[16:])
			in.Trace.Flags = trace.TraceFlags(tp[24]) & trace.FlagsSampled
			if !in.Trace.IsValid() {
				in.Trace = TraceParent{} // not encoded: reads back as none
			}
		}
		var h RequestHeaders
		var out Request
		if bad := DecodeRequest(&kgo.Record{Key: []byte(webhookID), Headers: h.Encode(&in)}, &out); bad != nil {
			t.Fatalf("%+v: decode says %v", in, bad)
		}
		if len(in.Detail) == 0 && in.Detail != nil {
			out.Detail = in.Detail // an empty detail reads back as empty, not nil
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
		}
	})
}

// TestParseTraceParent: the W3C forms a receiver accepts, and those it refuses.
func TestParseTraceParent(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	want := sampleRequest().Trace
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{valid, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", true},        // unknown flag bits dropped
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later", true},  // a later version: its first fields
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later", false}, // version 00 has four fields
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},       // version ff is invalid
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", false},       // upper case
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},       // zero trace id
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},       // zero span id
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false},          // short
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},       // separator
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", false},       // not hex
		{"", false},
	} {
		got, ok := ParseTraceParent([]byte(tc.in))
		if ok != tc.ok {
			t.Errorf("ParseTraceParent(%q) ok = %v; want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok && (got.TraceID != want.TraceID || got.SpanID != want.SpanID) {
			t.Errorf("ParseTraceParent(%q) = %+v; want ids %+v", tc.in, got, want)
		}
	}
	if got := string(AppendTraceParent(nil, want)); got != valid {
		t.Errorf("AppendTraceParent = %s; want %s", got, valid)
	}
	if n := testing.AllocsPerRun(100, func() { ParseTraceParent([]byte(valid)) }); n != 0 {
		t.Errorf("ParseTraceParent: %v allocs; want 0", n)
	}
}

// FuzzParseTraceParent: whatever a header holds, parsing does not panic, and what it accepts writes
// back as the version-00 form that parses to the same value.
func FuzzParseTraceParent(f *testing.F) {
	f.Add([]byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
	f.Add([]byte("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-xyz"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tp, ok := ParseTraceParent(b)
		if !ok {
			return
		}
		again, ok := ParseTraceParent(AppendTraceParent(nil, tp))
		if !ok || again != tp {
			t.Fatalf("%q parsed to %+v; written back it parses to %+v, %v", b, tp, again, ok)
		}
	})
}

// TestEventRoundTrip: AppendEvent writes what DecodeEvent (and any JSON reader) reads back.
func TestEventRoundTrip(t *testing.T) {
	f := EventFields{ID: uuid.Must(uuid.NewV7()), Name: `Checkout "Success"`, ProjectID: 3, WebhookID: "wh",
		SubjectKind: "user", IdentifiedBy: "email", UserID: "12345", HWIDs: []string{"hw-a", "hw-b"},
		Attributes: []byte(`{"total":"99.99","__webhook":"wh"}`), ReceivedMs: 1764756000123}
	val := AppendEvent(nil, &f)
	if !json.Valid(val) {
		t.Fatalf("invalid JSON: %s", val)
	}
	rec := &kgo.Record{Value: val, Headers: []kgo.RecordHeader{
		{Key: HeaderEventID, Value: AppendUUID(nil, f.ID)}, {Key: HeaderEventName, Value: []byte(f.Name)}}}
	e, err := DecodeEvent(rec)
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(f.ReceivedMs).UTC()
	want := Event{EventID: f.ID.String(), Event: f.Name, ProjectID: 3, WebhookID: "wh", SubjectKind: "user",
		IdentifiedBy: "email", UserID: "12345", HWIDs: []string{"hw-a", "hw-b"},
		Attributes: map[string]any{"total": "99.99", "__webhook": "wh"}, OccurredAt: at, ReceivedAt: at}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("decoded:\n got %+v\nwant %+v", e, want)
	}
	rec.Headers[1].Value = []byte("Other")
	if _, err := DecodeEvent(rec); err == nil {
		t.Errorf("an event whose name header disagrees with its value decoded without error")
	}
	if n := testing.AllocsPerRun(100, func() { val = AppendEvent(val[:0], &f) }); n != 0 {
		t.Errorf("AppendEvent: %v allocs; want 0", n)
	}
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      `"plain"`,
		"a\"b\\c":    `"a\"b\\c"`,
		"\x01\t":     `"\u0001\t"`,
		"bad\xffutf": `"bad\ufffdutf"`,
		"日本":         `"日本"`,
	} {
		if got := string(AppendJSONString(nil, in)); got != want {
			t.Errorf("AppendJSONString(%q) = %s; want %s", in, got, want)
		}
	}
}

func TestAppendUUID(t *testing.T) {
	id := uuid.Must(uuid.NewV7())
	if got := AppendUUID([]byte("x"), id); !bytes.Equal(got, []byte("x"+id.String())) {
		t.Errorf("AppendUUID = %s; want x%s", got, id)
	}
}

func TestElementEventID(t *testing.T) {
	req := uuid.MustParse("0192f0c4-8a6b-7cc8-9d1a-3f0d2e1b4c5d")
	a, b := ElementEventID(req, 0), ElementEventID(req, 1)
	if a == b || a == req || ElementEventID(req, 0) != a || a.Version() != 5 {
		t.Errorf("ElementEventID = %v, %v (version %d); want distinct, stable version-5 ids", a, b, a.Version())
	}
	// The name is the decimal index in the request id's namespace: anyone can derive it.
	if want := uuid.NewSHA1(req, []byte("1")); b != want {
		t.Errorf("ElementEventID(req, 1) = %v; want %v", b, want)
	}
}
