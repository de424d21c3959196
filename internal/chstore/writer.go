package chstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
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

// insertColumn is one insert column: its name, and its type in the rows a gated insert sends along (the
// table's own type, but String for an Enum8, which the INSERT … SELECT converts, so that a value added to
// an enum by a migration needs no change here).
type insertColumn struct{ name, typ string }

type columns []insertColumn

func (cs columns) names() []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// insertColumns are each table's insert columns, in the order of the append functions' values.
var insertColumns = [NumTables]columns{
	ActivityLog: {{"project_id", "UInt64"}, {"webhook_id", "String"}, {"request_id", "UUID"},
		{"received_at", "DateTime('UTC')"}, {"received_ms", "UInt64"}, {"processed_ms", "UInt64"},
		{"status", "String"}, {"reason", "String"}, {"edge_status", "UInt16"}, {"identifier_kind", "String"},
		{"identifier_value", "String"}, {"user_id", "String"}, {"hwid", "String"}, {"event_name", "String"},
		{"attributes", "String"}, {"payload", "String"}, {"payload_bytes", "UInt32"},
		{"payload_truncated", "UInt8"}, {"detail", "String"}, {"config_version", "UInt64"},
		{"src_partition", "Int32"}, {"src_offset", "Int64"}, {"duplicate_of", "String"}, {"headers", "String"},
		{"route", "String"}, {"events_fired", "UInt32"}, {"outcomes", "String"}, {"content_type", "String"},
		{"attempt", "UInt16"}, {"attempt_cause", "String"}, {"attempt_job", "String"},
		{"replaces_status", "String"}, {"replaces_reason", "String"}},
	Events: {{"project_id", "UInt64"}, {"subject_kind", "String"}, {"subject", "String"},
		{"occurred_at", "DateTime('UTC')"}, {"event_id", "UUID"}, {"event_name", "String"},
		{"webhook_id", "String"}, {"user_id", "String"}, {"hwid", "String"}, {"hwids", "Array(String)"},
		{"attributes", "String"}, {"received_ms", "UInt64"}, {"src_partition", "Int32"}, {"src_offset", "Int64"},
		{"element", "Int32"}},
	Notifications: {{"project_id", "UInt64"}, {"webhook_id", "String"}, {"notification_id", "UUID"},
		{"kind", "String"}, {"created_at", "DateTime('UTC')"}, {"message", "String"}, {"src_partition", "Int32"},
		{"src_offset", "Int64"}},
}

// Writer is the pipeline's side of the store: it inserts blocks and reads back what the tables hold of
// Kafka partitions. It decides nothing: when to insert, retry, wait or skip is the caller's.
//
// Each Insert method writes its rows as one INSERT of one block. A block whose rows share one PARTITION
// BY value (one UTC day; the caller sees to it) is applied atomically by MergeTree: all rows or none. A
// query id set on ctx (clickhouse.WithQueryID, see InsertQueryID) names the insert on the server.
type Writer struct {
	conn driver.Conn
	// On a cluster: every replica's own connection (AwaitQuery, AwaitInserts ask each), and the
	// insert_quorum of inserts; nil and 0 on a single server.
	replicas []driver.Conn
	quorum   int
}

// NewWriter returns a Writer on conn (the pipeline's database on a single server).
func NewWriter(conn driver.Conn) *Writer { return &Writer{conn: conn} }

// NewReplicatedWriter returns a Writer on a cluster's replicas of one shard: conn reaches any of them
// (chdb.Open), replicas each one (chdb.OpenReplicas). Its inserts succeed only once quorum replicas have
// them (insert_quorum); its reads by Kafka position (HighWater, FiredAbove, StreakState) see exactly the
// inserts that reached the quorum (select_sequential_consistency), whichever replica answers; and
// AwaitQuery and AwaitInserts look for running inserts on every replica. docs/architecture.md says why
// that keeps exactly once.
func NewReplicatedWriter(conn driver.Conn, replicas []driver.Conn, quorum int) *Writer {
	return &Writer{conn: conn, replicas: replicas, quorum: quorum}
}

// QuorumTimeout is the insert_quorum_timeout of a replicated Writer's inserts: how long the replica that
// takes an insert waits for the others to have it before it answers an error. The insert is not undone
// then: its part stays and reaches the other replicas later, counted by the reads (see
// docs/architecture.md). Below the pipeline's default insert_timeout (30 s), so the server answers first.
const QuorumTimeout = 20 * time.Second

// insertCtx adds the quorum settings to an insert's context (keeping its query id).
func (w *Writer) insertCtx(ctx context.Context) context.Context {
	if w.quorum == 0 {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_quorum":         w.quorum,
		"insert_quorum_timeout": int(QuorumTimeout.Milliseconds()),
	}))
}

// readCtx makes a read by Kafka position see exactly the quorum inserts: a replica that lacks one fails
// the read (it is retried), and parts whose quorum is pending are not read.
func (w *Writer) readCtx(ctx context.Context) context.Context {
	if w.quorum == 0 {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"select_sequential_consistency": 1}))
}

// InsertActivity inserts rows into activity_log as one block, as they are (no Gate: tests, tools).
func (w *Writer) InsertActivity(ctx context.Context, rows []ActivityRow) error {
	return w.insertDirect(ctx, ActivityLog, len(rows), func(add adder) error { return appendActivity(add, rows) })
}

// InsertEvents inserts rows into events as one block, as they are (no Gate).
func (w *Writer) InsertEvents(ctx context.Context, rows []EventRow) error {
	return w.insertDirect(ctx, Events, len(rows), func(add adder) error { return appendEvents(add, rows) })
}

// InsertNotifications inserts rows into notifications as one block, as they are (no Gate).
func (w *Writer) InsertNotifications(ctx context.Context, rows []NotificationRow) error {
	return w.insertDirect(ctx, Notifications, len(rows), func(add adder) error { return appendNotifications(add, rows) })
}

// adder appends one row's values, in the order of the table's insert columns.
type adder func(v ...any) error

// The append functions hand the columns pointers to the rows' fields (the columns take *string,
// *uint64, *time.Time, … as they take the values) and reuse one []any for every row: a value boxed in
// an interface is an allocation per field unless it is a pointer, and the variadic slice escapes
// through the adder, so passing the values themselves cost ~14 allocations per activity row.

func appendActivity(add adder, rows []ActivityRow) error {
	var v [33]any
	for i := range rows {
		r := &rows[i]
		v = [33]any{&r.ProjectID, &r.WebhookID, &r.RequestID, &r.ReceivedAt, &r.ReceivedMs, &r.ProcessedMs,
			&r.Status, &r.Reason, &r.EdgeStatus, &r.IdentifierKind, &r.IdentifierValue, &r.UserID, &r.HWID,
			&r.EventName, &r.Attributes, &r.Payload, &r.PayloadBytes, r.PayloadTruncated, &r.Detail, &r.ConfigVersion,
			&r.Partition, &r.Offset, &r.DuplicateOf, &r.Headers, &r.Route, &r.EventsFired, &r.Outcomes, &r.ContentType,
			&r.Attempt, &r.AttemptCause, &r.AttemptJob, &r.ReplacesStatus, &r.ReplacesReason}
		if err := add(v[:]...); err != nil {
			return fmt.Errorf("append activity_log row %d: %w", i, err)
		}
	}
	return nil
}

func appendEvents(add adder, rows []EventRow) error {
	var v [15]any
	empty := []string{}
	for i := range rows {
		r := &rows[i]
		hwids := &r.HWIDs
		if r.HWIDs == nil {
			hwids = &empty
		}
		v = [15]any{&r.ProjectID, &r.SubjectKind, &r.Subject, &r.OccurredAt, &r.EventID, &r.EventName,
			&r.WebhookID, &r.UserID, &r.HWID, *hwids, &r.Attributes, &r.ReceivedMs, &r.Partition, &r.Offset, &r.Element}
		if err := add(v[:]...); err != nil {
			return fmt.Errorf("append events row %d: %w", i, err)
		}
	}
	return nil
}

func appendNotifications(add adder, rows []NotificationRow) error {
	for i := range rows {
		n := &rows[i]
		if err := add(n.ProjectID, n.WebhookID, n.ID, n.Kind, n.CreatedAt, n.Message, n.Partition, n.Offset); err != nil {
			return fmt.Errorf("append notifications row %d: %w", i, err)
		}
	}
	return nil
}

// insertDirect writes table t's rows with a plain INSERT of one block.
func (w *Writer) insertDirect(ctx context.Context, t Table, n int, fill func(adder) error) error {
	ctx = w.insertCtx(ctx)
	bt, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+t.String()+" ("+strings.Join(insertColumns[t].names(), ", ")+")")
	if err != nil {
		return fmt.Errorf("prepare %s insert: %w", t, err)
	}
	if err := fill(bt.Append); err != nil {
		_ = bt.Abort()
		return err
	}
	if err := bt.Send(); err != nil {
		return fmt.Errorf("insert %d %s rows: %w", n, t, err)
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

// awaitNone polls a count until it is 0, for at most limit; on a cluster, on every replica (an insert
// runs on the replica that took it), and a replica that does not answer fails the wait.
func (w *Writer) awaitNone(ctx context.Context, what string, limit time.Duration, q string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	conns := w.replicas
	if len(conns) == 0 {
		conns = []driver.Conn{w.conn}
	}
	for {
		var total uint64
		for i, c := range conns {
			var n uint64
			if err := c.QueryRow(ctx, q, args...).Scan(&n); err != nil {
				if len(conns) > 1 {
					return fmt.Errorf("is %s still running on replica %d: %w", what, i+1, err)
				}
				return fmt.Errorf("is %s still running: %w", what, err)
			}
			total += n
		}
		if total == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still running: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
