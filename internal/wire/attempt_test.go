package wire

import (
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func sampleAttempt() Attempt {
	return Attempt{Number: 3, Cause: "replay", Job: "rj_42", AtMs: 1764756999000, OriginPartition: 5,
		OriginOffset: 123456789, ReplacesStatus: "failed", ReplacesReason: "user_not_found", Fired: "0,2,7"}
}

// TestAttemptRoundTrip: a later attempt's record — the first attempt's headers plus the attempt
// headers — decodes to the request and the attempt; a first attempt decodes to a zero Attempt.
func TestAttemptRoundTrip(t *testing.T) {
	in := sampleRequest()
	var h RequestHeaders
	first := h.Encode(&in)
	a := sampleAttempt()
	rec := &kgo.Record{Key: []byte(in.WebhookID), Headers: AppendAttemptHeaders(slices.Clone(first), &a)}
	var out Request
	if bad := DecodeRequest(rec, &out); bad != nil {
		t.Fatalf("decode: %v", bad)
	}
	want := in
	want.Attempt = a
	if !reflect.DeepEqual(out, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, want)
	}
	if got, err := out.Attempt.FiredIndices(nil); err != nil || !slices.Equal(got, []int{0, 2, 7}) {
		t.Errorf("FiredIndices = %v, %v; want [0 2 7]", got, err)
	}
	// No job, nothing fired: those headers are absent and read back empty.
	a = Attempt{Number: 1, Cause: "release", AtMs: 1, ReplacesStatus: "failed", ReplacesReason: "user_not_found"}
	hdrs := AppendAttemptHeaders(nil, &a)
	for _, x := range hdrs {
		if x.Key == HeaderAttemptJob || x.Key == HeaderAttemptFired {
			t.Errorf("header %s written for an empty value", x.Key)
		}
		if !IsAttemptHeader(x.Key) {
			t.Errorf("IsAttemptHeader(%q) = false", x.Key)
		}
	}
	out = Request{}
	if bad := DecodeRequest(&kgo.Record{Headers: append(slices.Clone(first), hdrs...)}, &out); bad != nil || out.Attempt != a {
		t.Errorf("decode: %v %+v; want %+v", bad, out.Attempt, a)
	}
	out = Request{}
	if DecodeRequest(&kgo.Record{Headers: first}, &out); out.Attempt != (Attempt{}) {
		t.Errorf("first attempt decodes an attempt: %+v", out.Attempt)
	}
	if IsAttemptHeader(HeaderRequestID) || IsAttemptHeader(HeaderSenderPrefix+"inlet-attempt") {
		t.Error("IsAttemptHeader of a request header")
	}
}

// TestAttemptMalformed: a malformed attempt header, or attempt headers without a number, break the
// contract (the record is logged as invalid_record).
func TestAttemptMalformed(t *testing.T) {
	in := sampleRequest()
	for _, tc := range []struct {
		name string
		hdrs []kgo.RecordHeader
	}{
		{"number zero", []kgo.RecordHeader{{Key: HeaderAttempt, Value: []byte("0")}}},
		{"number too large", []kgo.RecordHeader{{Key: HeaderAttempt, Value: []byte("65536")}}},
		{"number not decimal", []kgo.RecordHeader{{Key: HeaderAttempt, Value: []byte("x")}}},
		{"no number", []kgo.RecordHeader{{Key: HeaderAttemptCause, Value: []byte("replay")}}},
		{"origin without offset", []kgo.RecordHeader{{Key: HeaderAttempt, Value: []byte("1")}, {Key: HeaderOrigin, Value: []byte("3")}}},
		{"origin partition too large", []kgo.RecordHeader{{Key: HeaderAttempt, Value: []byte("1")}, {Key: HeaderOrigin, Value: []byte("2147483648/1")}}},
		{"attempt time", []kgo.RecordHeader{{Key: HeaderAttempt, Value: []byte("1")}, {Key: HeaderAttemptAt, Value: []byte("-5")}}},
	} {
		var h RequestHeaders
		var out Request
		bad := DecodeRequest(&kgo.Record{Headers: append(slices.Clone(h.Encode(&in)), tc.hdrs...)}, &out)
		if !slices.Equal(bad, []string{BadAttempt}) {
			t.Errorf("%s: bad = %v; want [%s]", tc.name, bad, BadAttempt)
		}
	}
	for _, s := range []string{",", "1,", "a", "-2", "1,,2"} {
		a := Attempt{Fired: s}
		if _, err := a.FiredIndices(nil); err == nil {
			t.Errorf("FiredIndices(%q): no error", s)
		}
	}
	if got := FormatFired([]int{-1}); got != "-1" {
		t.Errorf("FormatFired([-1]) = %q", got)
	}
}

// TestDecodeAttemptAllocs: decoding a later attempt allocates nothing either.
func TestDecodeAttemptAllocs(t *testing.T) {
	in := sampleRequest()
	var h RequestHeaders
	a := sampleAttempt()
	rec := &kgo.Record{Headers: AppendAttemptHeaders(slices.Clone(h.Encode(&in)), &a)}
	var out Request
	if n := testing.AllocsPerRun(100, func() { DecodeRequest(rec, &out) }); n != 0 {
		t.Errorf("DecodeRequest of an attempt: %v allocs; want 0", n)
	}
}
