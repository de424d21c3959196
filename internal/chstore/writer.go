package chstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// Table is one of the tables the pipeline writes, in the order it inserts them. Each has its own
// high-water mark per Kafka partition (HighWater), so a crash between two inserts is healed by writing
// only to the tables that lack a range.
type Table int

// The tables the pipeline writes, in insert order.
const (
	ActivityLog   Table = iota // activity_log: one row per logged request
	Events                     // events: one row per fired event
	Notifications              // notifications: one row per auth-failure alert
	NumTables
)

var tableNames = [NumTables]string{"activity_log", "events", "notifications"}

// String is the table's name in ClickHouse.
func (t Table) String() string { return tableNames[t] }

// Status values of activity_log.status (an Enum8).
const (
	StatusSuccess = "success"
	StatusFailed  = "failed"
	// StatusDuplicate: an authenticated, accepted request that repeats a delivery the webhook has
	// taken in already (the sender's key within its window); it fires no event. Not a failure.
	StatusDuplicate = "duplicate"
	// StatusSkipped: an authenticated, accepted request that no route takes (reason no_route), or
	// whose fan-out has no elements (no_elements); it fires no event. Not a failure.
	StatusSkipped = "skipped"
	// StatusHeld: a request waiting for its user (reason waiting_for_user: its route's unknown-user
	// policy is hold); a later attempt of the request says what became of it.
	StatusHeld = "held"
)

// ActivityRow is one activity_log row: a request and what became of it. Fields are in the order of
// the table's columns; docs/clickhouse.md says what each holds.
type ActivityRow struct {
	ProjectID        uint64
	WebhookID        string
	RequestID        uuid.UUID
	ReceivedAt       time.Time
	ReceivedMs       uint64
	ProcessedMs      uint64
	Status           string // StatusSuccess, StatusFailed or StatusDuplicate
	Reason           string
	EdgeStatus       uint16
	IdentifierKind   string
	IdentifierValue  string
	UserID           string
	HWID             string
	EventName        string
	Attributes       string
	Payload          string
	PayloadBytes     uint32
	PayloadTruncated uint8
	Detail           string
	ConfigVersion    uint64
	Partition        int32  // src_partition: the request's Kafka position
	Offset           int64  // src_offset
	DuplicateOf      string // the first request's id, for StatusDuplicate; "" otherwise
	Headers          string // the kept sender headers as a JSON object; "" when the request has none
	Route            string // the route that took the request: its name, or "#<position>"; "" for a single unnamed route
	EventsFired      uint32 // events the request fired
	Outcomes         string // a fan-out's per-element outcomes, a JSON array; "" otherwise
	ContentType      string // a form body's Content-Type; "" for JSON
	// Attempt is the attempt's number: 0 for the edge's first attempt, then 1, 2, … for each later
	// attempt of the same request (a replay, the release or expiry of a held request), logged as a row
	// of its own with the same RequestID and ReceivedAt.
	Attempt      uint16
	AttemptCause string // why a later attempt ran: replay, release, expire; "" for the first
	AttemptJob   string // the replay job of a later attempt, when one ran it
	// ReplacesStatus and ReplacesReason are the request's latest outcome before this attempt (""
	// for the first): the rollup counts the request there no more (activity_minute_replaced_mv).
	ReplacesStatus string
	ReplacesReason string
}

// Statuses lists every activity status: the values of activity_log.status, and of the Enum8 that
// activity_minute_replaced_mv casts replaces_status to (a status outside it would fail the insert).
var Statuses = []string{StatusSuccess, StatusFailed, StatusDuplicate, StatusSkipped, StatusHeld}

// EventRow is one events row: a fired event.
type EventRow struct {
	ProjectID   uint64
	SubjectKind string
	Subject     string
	OccurredAt  time.Time
	EventID     uuid.UUID
	EventName   string
	WebhookID   string
	UserID      string
	HWID        string
	HWIDs       []string // nil is written as an empty array
	Attributes  string
	ReceivedMs  uint64
	Partition   int32 // src_partition: the request's Kafka position
	Offset      int64 // src_offset
	Element     int32 // the element's index in a fan-out; -1 for a request's single event
}

// NotificationRow is one notifications row: an auth-failure alert.
type NotificationRow struct {
	ProjectID uint64
	WebhookID string
	ID        uuid.UUID // notification_id
	Kind      string
	CreatedAt time.Time
	Message   string
	Partition int32 // src_partition: the Kafka position of the request that raised it
	Offset    int64 // src_offset
}

const insertActivity = "INSERT INTO activity_log (project_id, webhook_id, request_id, received_at, received_ms, " +
	"processed_ms, status, reason, edge_status, identifier_kind, identifier_value, user_id, hwid, event_name, " +
	"attributes, payload, payload_bytes, payload_truncated, detail, config_version, src_partition, src_offset, " +
	"duplicate_of, headers, route, events_fired, outcomes, content_type, attempt, attempt_cause, attempt_job, " +
	"replaces_status, replaces_reason)"

const insertEvents = "INSERT INTO events (project_id, subject_kind, subject, occurred_at, event_id, event_name, " +
	"webhook_id, user_id, hwid, hwids, attributes, received_ms, src_partition, src_offset, element)"

const insertNotifications = "INSERT INTO notifications (project_id, webhook_id, notification_id, kind, created_at, " +
	"message, src_partition, src_offset)"

// Writer is the pipeline's side of the store: it inserts blocks and reads back what the tables hold of
// Kafka partitions. It decides nothing: when to insert, retry, wait or skip is the caller's.
//
// Each Insert method writes its rows as one INSERT of one block. A block whose rows share one PARTITION
// BY value (one UTC day; the caller sees to it) is applied atomically by MergeTree: all rows or none. A
// query id set on ctx (clickhouse.WithQueryID, see InsertQueryID) names the insert on the server.
type Writer struct {
	conn driver.Conn
}

// NewWriter returns a Writer on conn (the pipeline's database).
func NewWriter(conn driver.Conn) *Writer { return &Writer{conn: conn} }

// InsertActivity inserts rows into activity_log as one block.
func (w *Writer) InsertActivity(ctx context.Context, rows []ActivityRow) error {
	bt, err := w.conn.PrepareBatch(ctx, insertActivity)
	if err != nil {
		return fmt.Errorf("prepare activity_log insert: %w", err)
	}
	for i := range rows {
		r := &rows[i]
		if err := bt.Append(r.ProjectID, r.WebhookID, r.RequestID, r.ReceivedAt, r.ReceivedMs, r.ProcessedMs,
			r.Status, r.Reason, r.EdgeStatus, r.IdentifierKind, r.IdentifierValue, r.UserID, r.HWID,
			r.EventName, r.Attributes, r.Payload, r.PayloadBytes, r.PayloadTruncated, r.Detail, r.ConfigVersion,
			r.Partition, r.Offset, r.DuplicateOf, r.Headers, r.Route, r.EventsFired, r.Outcomes, r.ContentType,
			r.Attempt, r.AttemptCause, r.AttemptJob, r.ReplacesStatus, r.ReplacesReason); err != nil {
			_ = bt.Abort()
			return fmt.Errorf("append activity_log row %d: %w", i, err)
		}
	}
	if err := bt.Send(); err != nil {
		return fmt.Errorf("insert %d activity_log rows: %w", len(rows), err)
	}
	return nil
}

// InsertEvents inserts rows into events as one block.
func (w *Writer) InsertEvents(ctx context.Context, rows []EventRow) error {
	bt, err := w.conn.PrepareBatch(ctx, insertEvents)
	if err != nil {
		return fmt.Errorf("prepare events insert: %w", err)
	}
	for i := range rows {
		r := &rows[i]
		hwids := r.HWIDs
		if hwids == nil {
			hwids = []string{}
		}
		if err := bt.Append(r.ProjectID, r.SubjectKind, r.Subject, r.OccurredAt, r.EventID, r.EventName,
			r.WebhookID, r.UserID, r.HWID, hwids, r.Attributes, r.ReceivedMs, r.Partition, r.Offset, r.Element); err != nil {
			_ = bt.Abort()
			return fmt.Errorf("append events row %d: %w", i, err)
		}
	}
	if err := bt.Send(); err != nil {
		return fmt.Errorf("insert %d events rows: %w", len(rows), err)
	}
	return nil
}

// InsertNotifications inserts rows into notifications as one block.
func (w *Writer) InsertNotifications(ctx context.Context, rows []NotificationRow) error {
	bt, err := w.conn.PrepareBatch(ctx, insertNotifications)
	if err != nil {
		return fmt.Errorf("prepare notifications insert: %w", err)
	}
	for i := range rows {
		n := &rows[i]
		if err := bt.Append(n.ProjectID, n.WebhookID, n.ID, n.Kind, n.CreatedAt, n.Message,
			n.Partition, n.Offset); err != nil {
			_ = bt.Abort()
			return fmt.Errorf("append notifications row %d: %w", i, err)
		}
	}
	if err := bt.Send(); err != nil {
		return fmt.Errorf("insert %d notifications rows: %w", len(rows), err)
	}
	return nil
}

// InsertQueryID names an insert of rows from these partitions of topic, for clickhouse.WithQueryID:
// "inlet-insert|<topic>|,1,4,|<uuid>". The server lists running queries by id (system.processes), which
// lets the next owner of a partition wait for an insert of its rows that is still running (AwaitInserts).
func InsertQueryID(topic string, parts []int32) string {
	return insertQueryPrefix(topic) + "," + int32List(parts) + ",|" + uuid.NewString()
}

func insertQueryPrefix(topic string) string { return "inlet-insert|" + topic + "|" }

// AwaitQuery waits until the query with this id no longer runs on the server (system.processes), for
// at most limit; it fails when that cannot be told.
func (w *Writer) AwaitQuery(ctx context.Context, queryID string, limit time.Duration) error {
	return w.awaitNone(ctx, "insert "+queryID, limit, "SELECT count() FROM system.processes WHERE query_id = ?", queryID)
}

// AwaitInserts waits until no insert named by InsertQueryID for any of these partitions of topic runs
// on the server, for at most limit; it fails when that cannot be told.
func (w *Writer) AwaitInserts(ctx context.Context, topic string, parts []int32, limit time.Duration) error {
	if len(parts) == 0 {
		return nil
	}
	// Kafka topic names are [a-zA-Z0-9._-], so the id's parts never contain the separators.
	cond := make([]string, len(parts))
	for i, x := range parts {
		cond[i] = fmt.Sprintf("position(query_id, ',%d,') > 0", x)
	}
	q := fmt.Sprintf("SELECT count() FROM system.processes WHERE position(query_id, '%s') = 1 AND (%s)",
		insertQueryPrefix(topic), strings.Join(cond, " OR "))
	return w.awaitNone(ctx, fmt.Sprintf("an insert of partitions %v", parts), limit, q)
}

// awaitNone polls a count until it is 0, for at most limit.
func (w *Writer) awaitNone(ctx context.Context, what string, limit time.Duration, q string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		var n uint64
		if err := w.conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			return fmt.Errorf("is %s still running: %w", what, err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still running: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
