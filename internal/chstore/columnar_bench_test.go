package chstore_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// BenchmarkInsertActivity: what writing activity_log rows costs this process (CPU time, not
// ClickHouse's), per row, in blocks of 10,000 seed-payload rows: through Writer.InsertActivity, which
// appends row by row (33 values boxed in a []any per row, each converted by reflection), and through
// a columnar append (each column's values gathered into a typed slice, reused, and appended to the
// block at once with batch.Column(i).Append), the change proposed for InsertActivity.
func BenchmarkInsertActivity(b *testing.B) {
	_, conn := testenv.ClickHouse(b)
	w := chstore.NewWriter(conn)
	const perBlock = 10_000
	rows := make([]chstore.ActivityRow, perBlock)
	now := time.Now().UTC().Truncate(time.Millisecond)
	payload := `{"user_id":"u1","email_address":"jane@example.com","mobile":"+15551234567","purchase_date":"2024-03-15","order_number":"ORD-1","price":99.99,"payment_state":"success"}`
	for i := range rows {
		rows[i] = chstore.ActivityRow{ProjectID: 1, WebhookID: "wh_bench_000000000000", RequestID: uuid.New(), ReceivedAt: now,
			ReceivedMs: uint64(now.UnixMilli()), ProcessedMs: uint64(now.UnixMilli()), Status: chstore.StatusSuccess, EdgeStatus: 202,
			IdentifierKind: "user_id", IdentifierValue: "u1", UserID: "u1", HWID: "hw-u1", EventName: "CheckoutSuccess",
			Attributes: `{"email":"jane@example.com","total":99.99,"order_id":"ORD-1","purchase_date":"2024-03-15T00:00:00Z","__webhook":"wh_bench"}`,
			Payload:    payload, PayloadBytes: uint32(len(payload)), ConfigVersion: 1, Partition: 0, Offset: int64(i), EventsFired: 1}
	}
	var cols activityColumns
	for _, tc := range []struct {
		name   string
		insert func(ctx context.Context, rows []chstore.ActivityRow) error
	}{
		{"rows", w.InsertActivity},
		{"columns", func(ctx context.Context, rows []chstore.ActivityRow) error { return cols.insert(ctx, conn, rows) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			if err := tc.insert(ctx, rows[:10]); err != nil { // warm: connection, column buffers
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			cpu := processCPU(b)
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(perBlock, b.N-done)
				if err := tc.insert(ctx, rows[:n]); err != nil {
					b.Fatal(err)
				}
				done += n
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM activity_log").Scan(&n); err != nil || n == 0 {
		b.Fatalf("activity_log has %d rows (%v); want the inserted ones", n, err)
	}
}

// activityColumns are the columns of an activity_log block, in insertActivity's order, kept between
// inserts so that their backing arrays are reused.
type activityColumns struct {
	projectID, receivedMs, processedMs, configVersion                                     []uint64
	webhookID, status, reason, identKind, identValue, userID, hwid, eventName, attributes []string
	payload, detail, duplicateOf, headers, route, outcomes, contentType                   []string
	attemptCause, attemptJob, replacesStatus, replacesReason                              []string
	requestID                                                                             []uuid.UUID
	receivedAt                                                                            []time.Time
	edgeStatus, attempt                                                                   []uint16
	payloadBytes, eventsFired                                                             []uint32
	truncated                                                                             []uint8
	partition                                                                             []int32
	offset                                                                                []int64
}

// insert writes rows as one block, column by column.
func (c *activityColumns) insert(ctx context.Context, conn driver.Conn, rows []chstore.ActivityRow) error {
	c.fill(rows)
	bt, err := conn.PrepareBatch(ctx, insertActivitySQL)
	if err != nil {
		return fmt.Errorf("prepare activity_log insert: %w", err)
	}
	for i, col := range []any{c.projectID, c.webhookID, c.requestID, c.receivedAt, c.receivedMs, c.processedMs, c.status,
		c.reason, c.edgeStatus, c.identKind, c.identValue, c.userID, c.hwid, c.eventName, c.attributes, c.payload,
		c.payloadBytes, c.truncated, c.detail, c.configVersion, c.partition, c.offset, c.duplicateOf, c.headers, c.route,
		c.eventsFired, c.outcomes, c.contentType, c.attempt, c.attemptCause, c.attemptJob, c.replacesStatus, c.replacesReason} {
		if err := bt.Column(i).Append(col); err != nil {
			_ = bt.Abort()
			return fmt.Errorf("append activity_log column %d: %w", i, err)
		}
	}
	if err := bt.Send(); err != nil {
		return fmt.Errorf("insert %d activity_log rows: %w", len(rows), err)
	}
	return nil
}

func (c *activityColumns) fill(rows []chstore.ActivityRow) {
	c.projectID, c.receivedMs, c.processedMs, c.configVersion = c.projectID[:0], c.receivedMs[:0], c.processedMs[:0], c.configVersion[:0]
	for _, s := range []*[]string{&c.webhookID, &c.status, &c.reason, &c.identKind, &c.identValue, &c.userID, &c.hwid, &c.eventName,
		&c.attributes, &c.payload, &c.detail, &c.duplicateOf, &c.headers, &c.route, &c.outcomes, &c.contentType, &c.attemptCause,
		&c.attemptJob, &c.replacesStatus, &c.replacesReason} {
		clear(*s)
		*s = (*s)[:0]
	}
	c.requestID, c.receivedAt, c.edgeStatus, c.attempt = c.requestID[:0], c.receivedAt[:0], c.edgeStatus[:0], c.attempt[:0]
	c.payloadBytes, c.eventsFired, c.truncated, c.partition, c.offset = c.payloadBytes[:0], c.eventsFired[:0], c.truncated[:0], c.partition[:0], c.offset[:0]
	for i := range rows {
		r := &rows[i]
		c.projectID = append(c.projectID, r.ProjectID)
		c.webhookID = append(c.webhookID, r.WebhookID)
		c.requestID = append(c.requestID, r.RequestID)
		c.receivedAt = append(c.receivedAt, r.ReceivedAt)
		c.receivedMs = append(c.receivedMs, r.ReceivedMs)
		c.processedMs = append(c.processedMs, r.ProcessedMs)
		c.status = append(c.status, r.Status)
		c.reason = append(c.reason, r.Reason)
		c.edgeStatus = append(c.edgeStatus, r.EdgeStatus)
		c.identKind = append(c.identKind, r.IdentifierKind)
		c.identValue = append(c.identValue, r.IdentifierValue)
		c.userID = append(c.userID, r.UserID)
		c.hwid = append(c.hwid, r.HWID)
		c.eventName = append(c.eventName, r.EventName)
		c.attributes = append(c.attributes, r.Attributes)
		c.payload = append(c.payload, r.Payload)
		c.payloadBytes = append(c.payloadBytes, r.PayloadBytes)
		c.truncated = append(c.truncated, r.PayloadTruncated)
		c.detail = append(c.detail, r.Detail)
		c.configVersion = append(c.configVersion, r.ConfigVersion)
		c.partition = append(c.partition, r.Partition)
		c.offset = append(c.offset, r.Offset)
		c.duplicateOf = append(c.duplicateOf, r.DuplicateOf)
		c.headers = append(c.headers, r.Headers)
		c.route = append(c.route, r.Route)
		c.eventsFired = append(c.eventsFired, r.EventsFired)
		c.outcomes = append(c.outcomes, r.Outcomes)
		c.contentType = append(c.contentType, r.ContentType)
		c.attempt = append(c.attempt, r.Attempt)
		c.attemptCause = append(c.attemptCause, r.AttemptCause)
		c.attemptJob = append(c.attemptJob, r.AttemptJob)
		c.replacesStatus = append(c.replacesStatus, r.ReplacesStatus)
		c.replacesReason = append(c.replacesReason, r.ReplacesReason)
	}
}

// insertActivitySQL is chstore's insert statement of activity_log (insertActivity), its columns in the
// order activityColumns appends them.
var insertActivitySQL = "INSERT INTO activity_log (" + strings.Join([]string{"project_id", "webhook_id", "request_id",
	"received_at", "received_ms", "processed_ms", "status", "reason", "edge_status", "identifier_kind", "identifier_value",
	"user_id", "hwid", "event_name", "attributes", "payload", "payload_bytes", "payload_truncated", "detail",
	"config_version", "src_partition", "src_offset", "duplicate_of", "headers", "route", "events_fired", "outcomes",
	"content_type", "attempt", "attempt_cause", "attempt_job", "replaces_status", "replaces_reason"}, ", ") + ")"

// processCPU is the CPU time (user and system) the process has used, in nanoseconds.
func processCPU(tb testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
