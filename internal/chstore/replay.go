package chstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// ReplayQuery selects the requests a replay runs again: a webhook's requests received in [SinceMs,
// UntilMs) whose latest outcome (the row with the highest attempt) is failed, optionally with one
// reason, or one request. Only requests the edge accepted (edge_status 202) qualify: a refusal at the
// edge is decided again the same way.
type ReplayQuery struct {
	ProjectID int64
	WebhookID string
	SinceMs   int64
	UntilMs   int64
	Reason    string    // "" for every failure reason
	RequestID uuid.UUID // uuid.Nil for every request of the range
	// AfterMs and AfterID are the position after which a page starts (the last candidate of the previous
	// page); AfterID uuid.Nil starts at the beginning.
	AfterMs int64
	AfterID uuid.UUID
	Limit   int
}

// Candidate is one request a replay may run again: its first attempt's Kafka position and its latest
// outcome.
type Candidate struct {
	RequestID  uuid.UUID
	ReceivedMs int64
	// Partition and Offset are the first attempt's position in webhooks.requests.
	Partition int32
	Offset    int64
	Truncated bool // the first attempt's stored body is a preview
	// LatestAttempt, LatestStatus and LatestReason are the request's latest row's.
	LatestAttempt uint16
	LatestStatus  string
	LatestReason  string
	// Fired are the fan-out elements its attempts fired (from the latest row's outcomes).
	Fired []int
	// IdentifierKind and IdentifierValue are how the first attempt identified its user (a fan-out's
	// only when its elements share it): a replay refuses a request whose subject was erased since.
	IdentifierKind, IdentifierValue string
}

// where is the query's filter over activity_log rows and its arguments; the latest-outcome condition
// is a HAVING of the grouped query.
func (q *ReplayQuery) where() (string, []any) {
	var b strings.Builder
	args := []any{uint64(q.ProjectID), q.WebhookID, q.SinceMs / 1000, (q.UntilMs + 999) / 1000, q.SinceMs, q.UntilMs}
	// received_at bounds let ClickHouse prune the daily partitions; received_ms is the exact range.
	b.WriteString("project_id = ? AND webhook_id = ? AND received_at >= toDateTime(?) AND received_at <= toDateTime(?) AND received_ms >= ? AND received_ms < ? AND edge_status = 202")
	if q.RequestID != uuid.Nil {
		b.WriteString(" AND request_id = toUUID(?)")
		args = append(args, q.RequestID.String())
	}
	if q.AfterID != uuid.Nil {
		b.WriteString(" AND (received_ms > ? OR (received_ms = ? AND toString(request_id) > ?))")
		args = append(args, q.AfterMs, q.AfterMs, q.AfterID.String())
	}
	return b.String(), args
}

const replayGrouped = `SELECT toString(request_id) AS id, received_ms AS ms, argMin(src_partition, attempt), argMin(src_offset, attempt),
    argMin(payload_truncated, attempt), max(attempt), argMax(toString(status), attempt) AS latest, argMax(reason, attempt) AS latest_reason,
    argMax(outcomes, attempt), min(attempt) AS first, argMin(identifier_kind, attempt), argMin(identifier_value, attempt)
FROM activity_log WHERE %s
GROUP BY request_id, received_ms
HAVING first = 0 AND latest = 'failed'%s`

// ReplayPage is one page of a replay: the candidates among the next Scanned requests after the page's
// start, and the position after the last one scanned (where the next page starts).
type ReplayPage struct {
	Candidates []Candidate
	Scanned    int
	LastMs     int64
	LastID     uuid.UUID
}

// ReplayCandidates returns the next page of the requests q selects, in (received_ms, request id text)
// order: the next q.Limit (1..10000) first attempts in the range after the page's start, and among them
// the candidates. It reads in two steps, so that each page costs the same however many requests follow:
// the page's first attempts (an ORDER BY … LIMIT over the rows after the start, no aggregation), then
// the latest outcome of just those requests. Memory here is one page.
func (r *Reader) ReplayCandidates(ctx context.Context, q ReplayQuery) (ReplayPage, error) {
	var page ReplayPage
	if q.Limit < 1 || q.Limit > 10_000 {
		return page, fmt.Errorf("%w: replay page of %d is outside 1..10000", ErrInvalid, q.Limit)
	}
	where, args := q.where()
	rows, err := r.conn.Query(ctx, "SELECT toString(request_id) AS id, received_ms AS ms FROM activity_log WHERE "+where+
		fmt.Sprintf(" AND attempt = 0 ORDER BY ms, id LIMIT %d", q.Limit), args...)
	if err != nil {
		return page, fmt.Errorf("replay page of webhook %s: %w", q.WebhookID, err)
	}
	ids := make([]string, 0, q.Limit)
	for rows.Next() {
		var id string
		var ms uint64
		if err := rows.Scan(&id, &ms); err != nil {
			rows.Close()
			return page, fmt.Errorf("replay page of webhook %s: %w", q.WebhookID, err)
		}
		ids = append(ids, id)
		page.LastMs = int64(ms)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("replay page of webhook %s: %w", q.WebhookID, err)
	}
	if page.Scanned = len(ids); page.Scanned == 0 {
		return page, nil
	}
	if page.LastID, err = uuid.Parse(ids[len(ids)-1]); err != nil {
		return page, fmt.Errorf("replay page of webhook %s: request id %q: %w", q.WebhookID, ids[len(ids)-1], err)
	}
	q.AfterID = uuid.Nil // the ids bound the page now
	where, args = q.where()
	// The ids are literals: each is the text form of a UUID ClickHouse gave (parsed below), so quoting
	// is enough; a bound array does not bind to IN on 18.16.
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return page, fmt.Errorf("replay page of webhook %s: request id %q: %w", q.WebhookID, id, err)
		}
	}
	where += " AND toString(request_id) IN ('" + strings.Join(ids, "','") + "')"
	having := ""
	if q.Reason != "" {
		having = " AND latest_reason = ?"
		args = append(args, q.Reason)
	}
	rows, err = r.conn.Query(ctx, fmt.Sprintf(replayGrouped, where, having)+" ORDER BY ms, id", args...)
	if err != nil {
		return page, fmt.Errorf("replay candidates of webhook %s: %w", q.WebhookID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Candidate
		var id, outcomes string
		var ms uint64
		var truncated uint8
		var first uint16
		if err := rows.Scan(&id, &ms, &c.Partition, &c.Offset, &truncated, &c.LatestAttempt, &c.LatestStatus, &c.LatestReason, &outcomes, &first,
			&c.IdentifierKind, &c.IdentifierValue); err != nil {
			return page, fmt.Errorf("replay candidates of webhook %s: %w", q.WebhookID, err)
		}
		if c.RequestID, err = uuid.Parse(id); err != nil {
			return page, fmt.Errorf("replay candidates of webhook %s: request id %q: %w", q.WebhookID, id, err)
		}
		c.ReceivedMs, c.Truncated = int64(ms), truncated == 1
		if outcomes != "" {
			var elems []struct {
				Index  int    `json:"index"`
				Status string `json:"status"`
			}
			if err := json.Unmarshal([]byte(outcomes), &elems); err != nil {
				return page, fmt.Errorf("outcomes of request %s: %w", id, err)
			}
			for _, e := range elems {
				if e.Status == StatusSuccess {
					c.Fired = append(c.Fired, e.Index)
				}
			}
		}
		page.Candidates = append(page.Candidates, c)
	}
	return page, rows.Err()
}

// CountReplayable counts the requests q selects (its page fields are ignored).
func (r *Reader) CountReplayable(ctx context.Context, q ReplayQuery) (uint64, error) {
	q.AfterID = uuid.Nil
	where, args := q.where()
	having := ""
	if q.Reason != "" {
		having = " AND latest_reason = ?"
		args = append(args, q.Reason)
	}
	var n uint64
	if err := r.conn.QueryRow(ctx, "SELECT count() FROM ("+fmt.Sprintf(replayGrouped, where, having)+")", args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count replayable requests of webhook %s: %w", q.WebhookID, err)
	}
	return n, nil
}

// JobOutcomes counts, by status, the attempts a replay job ran that ClickHouse has, among the webhook's
// rows received in [sinceMs, untilMs).
func (r *Reader) JobOutcomes(ctx context.Context, projectID int64, webhookID, jobID string, sinceMs, untilMs int64) (map[string]uint64, error) {
	rows, err := r.conn.Query(ctx, "SELECT toString(status), count() FROM activity_log WHERE project_id = ? AND webhook_id = ? AND received_at >= toDateTime(?) AND received_at <= toDateTime(?) AND attempt_job = ? GROUP BY status",
		uint64(projectID), webhookID, sinceMs/1000, (untilMs+999)/1000, jobID)
	if err != nil {
		return nil, fmt.Errorf("outcomes of replay job %s: %w", jobID, err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var s string
		var n uint64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("outcomes of replay job %s: %w", jobID, err)
		}
		out[s] = n
	}
	return out, rows.Err()
}
