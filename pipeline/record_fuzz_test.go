package pipeline

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/wire"
)

// FuzzParseRecord: whatever a record's headers hold, parseRecord neither panics nor loses the record:
// it always has a request id and a receive time ClickHouse can store, and a record without a readable
// edge outcome is marked as breaking the contract (so it is logged as invalid_record, not processed).
func FuzzParseRecord(f *testing.F) {
	id := uuid.Must(uuid.NewV7()).String()
	f.Add(id, "wh_1", "1", "1733212800000", "3", "accepted", "202", "172", "0", []byte(`{"user_id":"1"}`))
	f.Add("", "", "", "", "", "", "", "", "", []byte(nil))
	f.Add("not-a-uuid", "wh", "-1", "99999999999999999999", "x", "auth_rejected", "99999", "4294967296", "1", []byte("x"))
	f.Add(id, "wh", "007", "4291747199999", "", "invalid_json", "400", "0", "2", []byte("{"))
	f.Fuzz(func(t *testing.T, reqID, webhookID, project, received, version, outcome, status, bodyBytes, truncated string, value []byte) {
		r := &kgo.Record{Topic: "t", Partition: 2, Offset: 7, Key: []byte(webhookID), Value: value, Timestamp: time.UnixMilli(1733212800000),
			Headers: []kgo.RecordHeader{
				{Key: wire.HeaderRequestID, Value: []byte(reqID)},
				{Key: wire.HeaderWebhookID, Value: []byte(webhookID)},
				{Key: wire.HeaderProjectID, Value: []byte(project)},
				{Key: wire.HeaderReceivedAt, Value: []byte(received)},
				{Key: wire.HeaderConfigVersion, Value: []byte(version)},
				{Key: wire.HeaderEdgeOutcome, Value: []byte(outcome)},
				{Key: wire.HeaderEdgeStatus, Value: []byte(status)},
				{Key: wire.HeaderBodyBytes, Value: []byte(bodyBytes)},
				{Key: wire.HeaderTruncated, Value: []byte(truncated)},
			}}
		var it item
		parseRecord(r, &it, nil)
		if it.requestID == uuid.Nil {
			t.Fatalf("no request id")
		}
		if it.receivedMs <= 0 || it.receivedMs > wire.MaxReceivedMs {
			t.Fatalf("received at %d is outside what ClickHouse stores", it.receivedMs)
		}
		if outcome == "" && it.headerErr == "" {
			t.Fatalf("a record without an edge outcome is not marked invalid")
		}
		if it.partition != 2 || it.offset != 7 {
			t.Fatalf("position %d/%d; want 2/7", it.partition, it.offset)
		}
	})
}

// TestGuardTurnsAPanicIntoTheRecordsFailure: a panic while reading one payload fails that request with
// processing_error; the pipeline goes on.
func TestGuardTurnsAPanicIntoTheRecordsFailure(t *testing.T) {
	p := &processor{log: slog.New(slog.DiscardHandler), m: newMetrics(prometheus.NewRegistry())}
	var it item
	p.guard(&it, func() { panic("coercion bug") })
	if it.reason != wire.ReasonProcessingError || len(it.detail) != 1 || !strings.Contains(it.detail[0], "coercion bug") {
		t.Errorf("after a panic: reason %q, detail %q; want processing_error naming the panic", it.reason, it.detail)
	}
	if got := testutil.ToFloat64(p.m.panics); got != 1 {
		t.Errorf("inlet_pipeline_processing_panics_total = %v; want 1", got)
	}
	it = item{}
	p.guard(&it, func() {})
	if it.reason != "" {
		t.Errorf("without a panic: reason %q; want none", it.reason)
	}
}
