package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// The three tables the pipeline writes, in insert order. Each has its own high-water mark per Kafka
// partition, so a crash between two inserts is healed by writing only to the tables that lack a range.
const (
	tableActivity = iota
	tableEvents
	tableNotifications
	numTables
)

var tableNames = [numTables]string{"activity_log", "events", "notifications"}

// timeColumns is each table's partitioning time column: the high-water queries filter on it so that
// ClickHouse prunes partitions older than the look-back instead of scanning the whole table.
var timeColumns = [numTables]string{"received_at", "occurred_at", "created_at"}

const insertActivity = "INSERT INTO activity_log (project_id, webhook_id, request_id, received_at, received_ms, " +
	"processed_ms, status, reason, edge_status, identifier_kind, identifier_value, user_id, hwid, event_name, " +
	"attributes, payload, payload_bytes, payload_truncated, detail, config_version, src_partition, src_offset)"

const insertEvents = "INSERT INTO events (project_id, subject_kind, subject, occurred_at, event_id, event_name, " +
	"webhook_id, user_id, hwid, hwids, attributes, received_ms, src_partition, src_offset)"

const insertNotifications = "INSERT INTO notifications (project_id, webhook_id, notification_id, kind, created_at, " +
	"message, src_partition, src_offset)"

type activityRow struct {
	projectID       uint64
	webhookID       string
	requestID       uuid.UUID
	receivedAt      time.Time
	receivedMs      uint64
	processedMs     uint64
	status          string
	reason          string
	edgeStatus      uint16
	identifierKind  string
	identifierValue string
	userID          string
	hwid            string
	eventName       string
	attributes      string
	payload         string
	payloadBytes    uint32
	truncated       uint8
	detail          string
	configVersion   uint64
	partition       int32
	offset          int64
}

type eventRow struct {
	projectID   uint64
	subjectKind string
	subject     string
	occurredAt  time.Time
	eventID     uuid.UUID
	eventName   string
	webhookID   string
	userID      string
	hwid        string
	hwids       []string
	attributes  string
	receivedMs  uint64
	partition   int32
	offset      int64
}

// Notification is one auth-failure alert: a notifications row, and the body POSTed to the project's
// notification URL.
type Notification struct {
	ProjectID int64     `json:"project_id"`
	WebhookID string    `json:"webhook_id"`
	ID        uuid.UUID `json:"notification_id"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	Message   string    `json:"message"`

	partition int32
	offset    int64
}

// store writes blocks to ClickHouse and reads the high-water marks back.
type store struct {
	conn     driver.Conn
	lookback time.Duration
}

// send inserts one block. Each call is a single INSERT of a single block within one PARTITION BY value
// (the batch guarantees it), which MergeTree applies atomically: all rows or none.
func (s *store) send(ctx context.Context, table int, b *batch) error {
	switch table {
	case tableActivity:
		bt, err := s.conn.PrepareBatch(ctx, insertActivity)
		if err != nil {
			return fmt.Errorf("prepare activity_log insert: %w", err)
		}
		for i := range b.activity {
			r := &b.activity[i]
			if err := bt.Append(r.projectID, r.webhookID, r.requestID, r.receivedAt, r.receivedMs, r.processedMs,
				r.status, r.reason, r.edgeStatus, r.identifierKind, r.identifierValue, r.userID, r.hwid,
				r.eventName, r.attributes, r.payload, r.payloadBytes, r.truncated, r.detail, r.configVersion,
				r.partition, r.offset); err != nil {
				_ = bt.Abort()
				return fmt.Errorf("append activity_log row %d: %w", i, err)
			}
		}
		if err := bt.Send(); err != nil {
			return fmt.Errorf("insert %d activity_log rows: %w", len(b.activity), err)
		}
	case tableEvents:
		bt, err := s.conn.PrepareBatch(ctx, insertEvents)
		if err != nil {
			return fmt.Errorf("prepare events insert: %w", err)
		}
		for i := range b.events {
			r := &b.events[i]
			hwids := r.hwids
			if hwids == nil {
				hwids = []string{}
			}
			if err := bt.Append(r.projectID, r.subjectKind, r.subject, r.occurredAt, r.eventID, r.eventName,
				r.webhookID, r.userID, r.hwid, hwids, r.attributes, r.receivedMs, r.partition, r.offset); err != nil {
				_ = bt.Abort()
				return fmt.Errorf("append events row %d: %w", i, err)
			}
		}
		if err := bt.Send(); err != nil {
			return fmt.Errorf("insert %d events rows: %w", len(b.events), err)
		}
	case tableNotifications:
		bt, err := s.conn.PrepareBatch(ctx, insertNotifications)
		if err != nil {
			return fmt.Errorf("prepare notifications insert: %w", err)
		}
		for i := range b.notes {
			n := &b.notes[i]
			if err := bt.Append(uint64(n.ProjectID), n.WebhookID, n.ID, n.Kind, n.CreatedAt, n.Message,
				n.partition, n.offset); err != nil {
				_ = bt.Abort()
				return fmt.Errorf("append notifications row %d: %w", i, err)
			}
		}
		if err := bt.Send(); err != nil {
			return fmt.Errorf("insert %d notifications rows: %w", len(b.notes), err)
		}
	}
	return nil
}

// awaitQuery waits until the query with this id no longer runs on the server (system.processes), for
// at most limit; it fails when that cannot be told.
func (s *store) awaitQuery(ctx context.Context, queryID string, limit time.Duration) error {
	return s.awaitNone(ctx, "insert "+queryID, limit, "SELECT count() FROM system.processes WHERE query_id = ?", queryID)
}

// awaitNone polls a count until it is 0, for at most limit.
func (s *store) awaitNone(ctx context.Context, what string, limit time.Duration, q string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		var n uint64
		if err := s.conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
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

// insertQueryID names an insert of rows from these partitions of topic: "inlet-insert|<topic>|,1,4,|<uuid>".
// The server lists running queries by id (system.processes), which lets the next owner of a partition
// wait for an insert of its rows that is still running (awaitInserts).
func insertQueryID(topic string, parts []int32) string {
	return insertQueryPrefix(topic) + "," + int32List(parts) + ",|" + uuid.NewString()
}

func insertQueryPrefix(topic string) string { return "inlet-insert|" + topic + "|" }

// awaitInserts waits until no insert of rows from these partitions of topic runs on the server, for at
// most limit; it fails when that cannot be told.
func (s *store) awaitInserts(ctx context.Context, topic string, parts []int32, limit time.Duration) error {
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
	return s.awaitNone(ctx, fmt.Sprintf("an insert of partitions %v", parts), limit, q)
}

// highWater returns, per partition asked, the highest src_offset the table holds (-1 when none).
// Only the look-back window is read: older rows come from offsets Kafka no longer keeps.
func (s *store) highWater(ctx context.Context, table int, partitions []int32) (map[int32]int64, error) {
	out := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		out[p] = -1
	}
	if len(partitions) == 0 {
		return out, nil
	}
	q := fmt.Sprintf("SELECT src_partition, max(src_offset) FROM %s WHERE %s >= toDateTime(%d) AND src_partition IN (%s) GROUP BY src_partition",
		tableNames[table], timeColumns[table], s.since(), int32List(partitions))
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("high-water mark of %s: %w", tableNames[table], err)
	}
	defer rows.Close()
	for rows.Next() {
		var p int32
		var off int64
		if err := rows.Scan(&p, &off); err != nil {
			return nil, fmt.Errorf("high-water mark of %s: %w", tableNames[table], err)
		}
		out[p] = off
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("high-water mark of %s: %w", tableNames[table], err)
	}
	return out, nil
}

// successesAbove lists the offsets of successful activity rows of a partition above after: on
// assignment, those whose events row is missing (a crash between the two inserts) are healed.
func (s *store) successesAbove(ctx context.Context, partition int32, after int64) (map[int64]struct{}, error) {
	q := fmt.Sprintf("SELECT src_offset FROM activity_log WHERE received_at >= toDateTime(%d) AND src_partition = %d AND src_offset > %d AND status = 'success'",
		s.since(), partition, after)
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("successes of partition %d above %d: %w", partition, after, err)
	}
	defer rows.Close()
	out := map[int64]struct{}{}
	for rows.Next() {
		var off int64
		if err := rows.Scan(&off); err != nil {
			return nil, err
		}
		out[off] = struct{}{}
	}
	return out, rows.Err()
}

func (s *store) since() int64 { return time.Now().Add(-s.lookback).Unix() }

func int32List(ps []int32) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", p)
	}
	return b.String()
}
