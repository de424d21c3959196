package chstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/domainerr"
)

// Sentinel errors, each of a domainerr kind.
var (
	// ErrNotFound: no such entry in the caller's project. It is domainerr.ErrNotFound.
	ErrNotFound = domainerr.New(domainerr.ErrNotFound, "activity entry not found")
	// ErrInvalid: a bad cursor, status filter or limit. It is domainerr.ErrInvalid.
	ErrInvalid = domainerr.New(domainerr.ErrInvalid, "invalid activity query")
)

// Limits of one page.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	// PreviewBytes of the payload are returned with each entry of a list; Entry returns all of it.
	PreviewBytes = 512
)

// Reader answers the admin API's and console's questions about webhook traffic: the 24-hour summary and
// the all-time Received counts (from the per-minute rollup, never the raw rows), a webhook's entries
// newest first with cursor pagination, one entry in full, a user's or device's event history (newest
// first, with the same cursors), and a webhook's notifications. Every query is scoped by project and,
// where it reads raw rows, by webhook or subject, which are the leading columns of the tables' ordering
// keys, so none of them scans another webhook's rows.
type Reader struct {
	conn driver.Conn
}

// NewReader returns a Reader on conn (the pipeline's database).
func NewReader(conn driver.Conn) *Reader { return &Reader{conn: conn} }

// Summary is a webhook's traffic over a window: Hits = Success + Failed + Duplicate + Skipped + Held. Duplicates (a
// sender repeating a delivery already taken in) are neither successes nor failures: the request was
// authenticated and accepted, and the event was fired once, by the first request.
type Summary struct {
	Hits      uint64 `json:"hits"`
	Success   uint64 `json:"success"`
	Failed    uint64 `json:"failed"`
	Duplicate uint64 `json:"duplicate"`
	// Skipped counts requests no route took (or whose fan-out had no elements), by reason: not
	// failures.
	Skipped         uint64            `json:"skipped"`
	SkippedByReason map[string]uint64 `json:"skipped_by_reason"`
	// Held counts requests waiting for their user (unknown-user policy hold) whose latest outcome is
	// still held.
	Held     uint64            `json:"held"`
	ByReason map[string]uint64 `json:"failed_by_reason"`
}

// Summary24h sums the rollup over the 24 hours before now (whole minutes).
func (r *Reader) Summary24h(ctx context.Context, projectID int64, webhookID string, now time.Time) (Summary, error) {
	since := now.Add(-24 * time.Hour).Truncate(time.Minute)
	rows, err := r.conn.Query(ctx,
		"SELECT toString(status), reason, sum(hits) FROM activity_minute WHERE project_id = ? AND webhook_id = ? AND minute >= toDateTime(?) GROUP BY status, reason",
		uint64(projectID), webhookID, since.Unix())
	if err != nil {
		return Summary{}, fmt.Errorf("24h summary of webhook %s: %w", webhookID, err)
	}
	defer rows.Close()
	s := Summary{ByReason: map[string]uint64{}, SkippedByReason: map[string]uint64{}}
	for rows.Next() {
		var status, reason string
		var signed int64
		if err := rows.Scan(&status, &reason, &signed); err != nil {
			return Summary{}, fmt.Errorf("24h summary of webhook %s: %w", webhookID, err)
		}
		if signed <= 0 {
			continue // every request of it has a later outcome (hits are signed: see activity_minute_replaced_mv)
		}
		n := uint64(signed)
		s.Hits += n
		switch status {
		case StatusSuccess:
			s.Success += n
		case StatusDuplicate:
			s.Duplicate += n
		case StatusSkipped:
			s.Skipped += n
			s.SkippedByReason[reason] += n
		case StatusHeld:
			s.Held += n
		default:
			s.Failed += n
			s.ByReason[reason] += n
		}
	}
	return s, rows.Err()
}

// Received returns the all-time request count of every webhook of the project that has any, in one
// query over the rollup.
func (r *Reader) Received(ctx context.Context, projectID int64) (map[string]uint64, error) {
	rows, err := r.conn.Query(ctx, "SELECT webhook_id, sum(hits) FROM activity_minute WHERE project_id = ? GROUP BY webhook_id", uint64(projectID))
	if err != nil {
		return nil, fmt.Errorf("received counts of project %d: %w", projectID, err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("received counts of project %d: %w", projectID, err)
		}
		out[id] = uint64(max(n, 0))
	}
	return out, rows.Err()
}

// Entry is one activity-log row.
type Entry struct {
	RequestID        string    `json:"request_id"`
	WebhookID        string    `json:"webhook_id"`
	ReceivedAt       time.Time `json:"received_at"`
	ProcessedAt      time.Time `json:"processed_at"`
	Status           string    `json:"status"`
	Reason           string    `json:"reason,omitempty"`
	EdgeStatus       uint16    `json:"edge_status"`
	IdentifierKind   string    `json:"identifier_kind,omitempty"`
	IdentifierValue  string    `json:"identifier_value,omitempty"`
	UserID           string    `json:"user_id,omitempty"`
	HWID             string    `json:"hwid,omitempty"`
	EventName        string    `json:"event_name,omitempty"`
	Attributes       string    `json:"attributes,omitempty"` // JSON object, as fired
	Payload          string    `json:"payload"`              // a preview in lists; in full from Entry
	PayloadBytes     uint32    `json:"payload_bytes"`
	PayloadTruncated bool      `json:"payload_truncated"`
	Detail           string    `json:"detail,omitempty"`
	// DuplicateOf is, for a duplicate, the request id of the first request of the delivery.
	DuplicateOf string `json:"duplicate_of,omitempty"`
	// Headers are the sender headers the webhook keeps, as sent: a JSON object of name → value.
	Headers json.RawMessage `json:"headers,omitempty"`
	// Route is the route that took the request (its name, or "#<position>"); "" for a webhook's single
	// unnamed route.
	Route string `json:"route,omitempty"`
	// EventsFired counts the events the request fired.
	EventsFired uint32 `json:"events_fired"`
	// Outcomes are a fan-out's per-element outcomes (a JSON array: index, event_id, status, reason,
	// detail, user_id, hwid, attributes).
	Outcomes json.RawMessage `json:"outcomes,omitempty"`
	// ContentType is a form body's Content-Type; empty for JSON.
	ContentType string `json:"content_type,omitempty"`
	// Attempt is the attempt's number: 0 for the request as the edge took it, 1, 2, … for each later
	// attempt (a replay, the release or expiry of a held request), each an entry of its own with the
	// same request id.
	Attempt uint16 `json:"attempt"`
	// AttemptCause is why a later attempt ran (replay, release, expire); AttemptJob the replay job.
	AttemptCause string `json:"attempt_cause,omitempty"`
	AttemptJob   string `json:"attempt_job,omitempty"`
	// ReplacesStatus and ReplacesReason are the request's outcome before this attempt.
	ReplacesStatus string `json:"replaces_status,omitempty"`
	ReplacesReason string `json:"replaces_reason,omitempty"`
}

// EntriesQuery selects a page of a webhook's entries.
type EntriesQuery struct {
	ProjectID int64
	WebhookID string
	// Status is "", "success", "failed", "duplicate", "skipped" or "held".
	Status string
	// Identifier keeps the entries whose user identifier value is exactly this ("" keeps all); at most
	// 256 bytes.
	Identifier string
	// Cursor is the NextCursor of the previous page; "" for the first page.
	Cursor string
	// Limit defaults to DefaultLimit, at most MaxLimit.
	Limit int
}

// Page is one page of entries, newest first; NextCursor is "" on the last page.
type Page struct {
	Entries    []Entry `json:"entries"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

const entryColumns = "toString(request_id), webhook_id, received_ms, processed_ms, toString(status), reason, edge_status, " +
	"identifier_kind, identifier_value, user_id, hwid, event_name, attributes, %s, payload_bytes, payload_truncated, detail, " +
	"duplicate_of, headers, route, events_fired, outcomes, content_type, attempt, attempt_cause, attempt_job, replaces_status, replaces_reason"

// Entries returns a page of the webhook's entries, newest first: by received_ms, then by the request
// id's text within one millisecond. Not by the UUID column: ClickHouse 18.16 compares UUIDs by their low
// 64 bits first, which shuffles UUIDv7 ids, whereas their text form sorts as their bytes on every
// version. The cursor is the (received_ms, request_id) of the last entry of the previous page, a unique
// position in that order, so pages neither skip nor repeat an entry, however many share a millisecond,
// and stay stable while new requests arrive.
func (r *Reader) Entries(ctx context.Context, q EntriesQuery) (Page, error) {
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return Page{}, fmt.Errorf("%w: limit %d is outside 1..%d", ErrInvalid, q.Limit, MaxLimit)
	}
	var where strings.Builder
	args := []any{uint64(q.ProjectID), q.WebhookID}
	where.WriteString("project_id = ? AND webhook_id = ?")
	switch q.Status {
	case "":
	case StatusSuccess, StatusFailed, StatusDuplicate, StatusSkipped, StatusHeld:
		where.WriteString(" AND status = ?")
		args = append(args, q.Status)
	default:
		return Page{}, fmt.Errorf("%w: status %q is not success, failed, duplicate, skipped or held", ErrInvalid, q.Status)
	}
	if q.Identifier != "" {
		if len(q.Identifier) > 256 {
			return Page{}, fmt.Errorf("%w: identifier is over 256 bytes", ErrInvalid)
		}
		where.WriteString(" AND identifier_value = ?")
		args = append(args, q.Identifier)
	}
	if q.Cursor != "" {
		c, err := decodeEntriesCursor(q.Cursor)
		if err != nil {
			return Page{}, err
		}
		// The condition on received_at adds nothing to the result; it lets the primary key skip the
		// newer granules.
		where.WriteString(" AND received_at <= toDateTime(?) AND (received_ms < ? OR (received_ms = ? AND (toString(request_id) < ? OR (toString(request_id) = ? AND attempt < ?))))")
		args = append(args, c.ms/1000, c.ms, c.ms, c.id.String(), c.id.String(), c.attempt)
	}
	sql := fmt.Sprintf("SELECT "+entryColumns+" FROM activity_log WHERE %s ORDER BY received_ms DESC, toString(request_id) DESC, attempt DESC LIMIT %d",
		fmt.Sprintf("substring(payload, 1, %d)", PreviewBytes), where.String(), limit+1)
	rows, err := r.conn.Query(ctx, sql, args...)
	if err != nil {
		return Page{}, fmt.Errorf("entries of webhook %s: %w", q.WebhookID, err)
	}
	defer rows.Close()
	var page Page
	var last cursor
	for rows.Next() {
		e, ms, err := scanEntry(rows)
		if err != nil {
			return Page{}, fmt.Errorf("entries of webhook %s: %w", q.WebhookID, err)
		}
		if len(page.Entries) == limit {
			page.NextCursor = last.encode()
			break
		}
		page.Entries = append(page.Entries, e)
		if last.id, err = uuid.Parse(e.RequestID); err != nil {
			return Page{}, fmt.Errorf("entries of webhook %s: request id %q: %w", q.WebhookID, e.RequestID, err)
		}
		last.ms, last.attempt = ms, e.Attempt
	}
	return page, rows.Err()
}

// Entry returns one entry in full (the whole payload).
func (r *Reader) Entry(ctx context.Context, projectID int64, webhookID, requestID string) (Entry, error) {
	id, err := uuid.Parse(requestID)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: request id %q", ErrNotFound, requestID)
	}
	rows, err := r.conn.Query(ctx, fmt.Sprintf("SELECT "+entryColumns+" FROM activity_log WHERE project_id = ? AND webhook_id = ? AND request_id = toUUID(?) ORDER BY attempt DESC LIMIT 1", "payload"),
		uint64(projectID), webhookID, id.String())
	if err != nil {
		return Entry{}, fmt.Errorf("entry %s: %w", requestID, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Entry{}, fmt.Errorf("entry %s: %w", requestID, err)
		}
		return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, requestID)
	}
	e, _, err := scanEntry(rows)
	if err != nil {
		return Entry{}, fmt.Errorf("entry %s: %w", requestID, err)
	}
	return e, nil
}

// scanEntry reads one row of entryColumns; it also returns received_ms as stored, the cursor's key.
func scanEntry(rows driver.Rows) (Entry, uint64, error) {
	var e Entry
	var receivedMs, processedMs uint64
	var truncated uint8
	var headers, outcomes string
	err := rows.Scan(&e.RequestID, &e.WebhookID, &receivedMs, &processedMs, &e.Status, &e.Reason, &e.EdgeStatus,
		&e.IdentifierKind, &e.IdentifierValue, &e.UserID, &e.HWID, &e.EventName, &e.Attributes, &e.Payload,
		&e.PayloadBytes, &truncated, &e.Detail, &e.DuplicateOf, &headers, &e.Route, &e.EventsFired, &outcomes, &e.ContentType,
		&e.Attempt, &e.AttemptCause, &e.AttemptJob, &e.ReplacesStatus, &e.ReplacesReason)
	if headers != "" && json.Valid([]byte(headers)) {
		e.Headers = json.RawMessage(headers)
	}
	if outcomes != "" && json.Valid([]byte(outcomes)) {
		e.Outcomes = json.RawMessage(outcomes)
	}
	e.ReceivedAt = time.UnixMilli(int64(receivedMs)).UTC()
	e.ProcessedAt = time.UnixMilli(int64(processedMs)).UTC()
	e.PayloadTruncated = truncated == 1
	return e, receivedMs, err
}

// cursor is a position in the order of Entries or History: the last row of a page, by its receive time
// in milliseconds and its id (a request id, which is also the event id of the request's event).
type cursor struct {
	ms uint64
	id uuid.UUID
	// attempt is the entry's attempt (Entries only: a request's attempts share its ms and id); a
	// cursor of the version-1 format has 0, which is the last attempt of a request in Entries' order.
	attempt uint16
}

// cursorVersion leads the encoded cursor. Cursors of Entries' first format (24 bytes: received_at in
// seconds and the request id, in ClickHouse's UUID order) name no position in the current order; they
// are refused with a message saying to start again from the first page rather than answered with a page
// that skips or repeats entries. History had no cursor before this format.
const cursorVersion = 1

// cursorAttempts is the version of a cursor that also holds an attempt (Entries).
const cursorAttempts = 2

// encode is base64url of the version byte, received_ms (8 bytes, big-endian) and the id, and for a
// cursor past a later attempt the attempt (2 bytes, big-endian, version cursorAttempts).
func (c cursor) encode() string {
	var b [27]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], c.ms)
	copy(b[9:], c.id[:])
	if c.attempt == 0 {
		return base64.RawURLEncoding.EncodeToString(b[:25])
	}
	b[0] = cursorAttempts
	binary.BigEndian.PutUint16(b[25:], c.attempt)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// decodeEntriesCursor is decodeCursor for Entries, whose cursors had a first format.
func decodeEntriesCursor(s string) (cursor, error) {
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil && len(b) == 24 {
		return cursor{}, fmt.Errorf("%w: cursor %q is of an earlier format that no longer names a position; request the first page again", ErrInvalid, s)
	}
	return decodeCursor(s)
}

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !(len(b) == 25 && b[0] == cursorVersion || len(b) == 27 && b[0] == cursorAttempts) {
		return cursor{}, fmt.Errorf("%w: cursor %q is not a next_cursor of this API", ErrInvalid, s)
	}
	var c cursor
	c.ms = binary.BigEndian.Uint64(b[1:9])
	copy(c.id[:], b[9:25])
	if len(b) == 27 {
		c.attempt = binary.BigEndian.Uint16(b[25:])
	}
	return c, nil
}

// SubjectKind selects a user's or a device's history.
type SubjectKind string

// Subject kinds of the events table.
const (
	SubjectUser   SubjectKind = "user"
	SubjectDevice SubjectKind = "device"
)

// Event is one fired event as User Explorer shows it.
type Event struct {
	EventID    string    `json:"event_id"`
	EventName  string    `json:"event_name"`
	OccurredAt time.Time `json:"occurred_at"`
	WebhookID  string    `json:"webhook_id"`
	UserID     string    `json:"user_id,omitempty"`
	HWID       string    `json:"hwid,omitempty"`
	HWIDs      []string  `json:"hwids"`
	Attributes string    `json:"attributes"` // JSON object including __webhook
}

// HistoryQuery selects a page of a user's or a device's events.
type HistoryQuery struct {
	ProjectID int64
	Kind      SubjectKind
	Subject   string
	// Before keeps the events received before this instant, to the millisecond (zero: no bound).
	Before time.Time
	// Cursor is the NextCursor of the previous page; "" for the first page. With Before, both apply.
	Cursor string
	// Limit defaults to DefaultLimit, at most MaxLimit.
	Limit int
}

// HistoryPage is one page of events, newest first; NextCursor is "" on the last page.
type HistoryPage struct {
	Events     []Event `json:"events"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// History returns a page of a user's or a device's events, newest first, in the order of Entries: by
// received_ms (the edge's receive time; occurred_at is the same to the second), then by the event id's
// text within one millisecond (the event id is the request id, a UUIDv7; see Entries for why its text).
// The cursor is the (received_ms, event_id) of the last event of the previous page, so that "Load more"
// neither skips nor repeats an event however many share a millisecond (paging on occurred_at < the last
// event's second, as the console did, skipped the rest of that second).
func (r *Reader) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	if q.Kind != SubjectUser && q.Kind != SubjectDevice {
		return HistoryPage{}, fmt.Errorf("%w: subject kind %q", ErrInvalid, q.Kind)
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return HistoryPage{}, fmt.Errorf("%w: limit %d is outside 1..%d", ErrInvalid, q.Limit, MaxLimit)
	}
	var where strings.Builder
	where.WriteString("project_id = ? AND subject_kind = ? AND subject = ?")
	args := []any{uint64(q.ProjectID), string(q.Kind), q.Subject}
	if !q.Before.IsZero() {
		// The first millisecond not before q.Before: received_ms < it keeps what is strictly older.
		bound := q.Before.UnixMilli()
		if q.Before.Nanosecond()%int(time.Millisecond) != 0 {
			bound++
		}
		if bound <= 0 {
			return HistoryPage{Events: []Event{}}, nil // nothing was received before 1970
		}
		// As in Entries, the condition on occurred_at only lets the primary key skip newer granules.
		where.WriteString(" AND occurred_at <= toDateTime(?) AND received_ms < ?")
		args = append(args, (bound-1)/1000, uint64(bound))
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return HistoryPage{}, err
		}
		where.WriteString(" AND occurred_at <= toDateTime(?) AND (received_ms < ? OR (received_ms = ? AND toString(event_id) < ?))")
		args = append(args, c.ms/1000, c.ms, c.ms, c.id.String())
	}
	sql := fmt.Sprintf("SELECT toString(event_id), event_name, received_ms, webhook_id, user_id, hwid, hwids, attributes FROM events "+
		"WHERE %s ORDER BY received_ms DESC, toString(event_id) DESC LIMIT %d", where.String(), limit+1)
	rows, err := r.conn.Query(ctx, sql, args...)
	if err != nil {
		return HistoryPage{}, fmt.Errorf("history of %s %s: %w", q.Kind, q.Subject, err)
	}
	defer rows.Close()
	var page HistoryPage
	var last cursor
	for rows.Next() {
		var e Event
		var ms uint64
		if err := rows.Scan(&e.EventID, &e.EventName, &ms, &e.WebhookID, &e.UserID, &e.HWID, &e.HWIDs, &e.Attributes); err != nil {
			return HistoryPage{}, fmt.Errorf("history of %s %s: %w", q.Kind, q.Subject, err)
		}
		if len(page.Events) == limit {
			page.NextCursor = last.encode()
			break
		}
		e.OccurredAt = time.UnixMilli(int64(ms)).UTC()
		page.Events = append(page.Events, e)
		if last.id, err = uuid.Parse(e.EventID); err != nil {
			return HistoryPage{}, fmt.Errorf("history of %s %s: event id %q: %w", q.Kind, q.Subject, e.EventID, err)
		}
		last.ms = ms
	}
	return page, rows.Err()
}

// Notification is one auth-failure alert of a webhook.
type Notification struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	Message   string    `json:"message"`
}

// Notifications returns a webhook's notifications, newest first, at most limit (DefaultLimit when 0).
// created_at, the table's only time, has whole seconds; within one second they come by the Kafka
// position (src_partition, src_offset) of the request that raised them, newest first: a webhook's
// requests share a partition (the record key is the webhook id), so offset order is the order the edge
// received them in. A position names one request and so one notification; notification_id's text (see
// Entries) settles a tie should one occur (a topic recreated, its offsets starting again), so the order,
// and which notification is the latest, is the same on every read.
func (r *Reader) Notifications(ctx context.Context, projectID int64, webhookID string, limit int) ([]Notification, error) {
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, fmt.Errorf("%w: limit %d is outside 1..%d", ErrInvalid, limit, MaxLimit)
	}
	rows, err := r.conn.Query(ctx, fmt.Sprintf(
		"SELECT toString(notification_id), kind, created_at, message FROM notifications WHERE project_id = ? AND webhook_id = ? "+
			"ORDER BY created_at DESC, src_partition DESC, src_offset DESC, toString(notification_id) DESC LIMIT %d", limit),
		uint64(projectID), webhookID)
	if err != nil {
		return nil, fmt.Errorf("notifications of webhook %s: %w", webhookID, err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		if err := rows.Scan(&n.ID, &n.Kind, &n.CreatedAt, &n.Message); err != nil {
			return nil, fmt.Errorf("notifications of webhook %s: %w", webhookID, err)
		}
		n.CreatedAt = n.CreatedAt.UTC()
		out = append(out, n)
	}
	return out, rows.Err()
}
