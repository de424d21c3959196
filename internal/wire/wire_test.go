package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

func sampleRequest() Request {
	return Request{ID: uuid.Must(uuid.NewV7()), WebhookID: "1Lg9DZF8k6c7unooi37Ji7", ProjectID: 42,
		ReceivedMs: 1764756000123, ConfigVersion: 7, Outcome: OutcomeInvalidJSON, EdgeStatus: 400,
		BodyBytes: 1048577, Truncated: true, Detail: []byte(`duplicate key "user_id" at byte 18`),
		ContentType: []byte("application/x-www-form-urlencoded"),
		Sender: []SenderHeader{
			{Key: HeaderSenderPrefix + "X-Shopify-Topic", Value: []byte("orders/create")},
			{Key: HeaderSenderPrefix + "X-Shopify-Webhook-Id", Value: []byte("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")},
		}}
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
	f.Add([]byte{1, 2, 3}, "wh", int64(1), int64(1764756000123), int64(3), "accepted", 202, 172, false, []byte(nil))
	f.Add([]byte{}, "", int64(0), int64(0), int64(0), "invalid_json", 400, 0, true, []byte("at byte 3"))
	f.Fuzz(func(t *testing.T, id []byte, webhookID string, project, received, version int64, outcome string, status, bodyBytes int, truncated bool, detail []byte) {
		if project < 0 || received < 0 || received > MaxReceivedMs || version < 0 || outcome == "" ||
			status < 0 || status > 999 || bodyBytes < 0 || bodyBytes > 1<<32-1 || len(webhookID) > 64 {
			return // not something the edge makes
		}
		in := Request{WebhookID: webhookID, ProjectID: project, ReceivedMs: received, ConfigVersion: version,
			Outcome: Outcome(outcome), EdgeStatus: status, BodyBytes: bodyBytes, Truncated: truncated, Detail: detail}
		copy(in.ID[:], id)
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
