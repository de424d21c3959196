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
    argMax(outcomes, attempt), min(attempt) AS first
FROM activity_log WHERE %s
GROUP BY request_id, received_ms
HAVING first = 0 AND latest = 'failed'%s`

// ReplayCandidates returns a page of the requests q selects, in (received_ms, request id text) order,
// at most q.Limit (1..10000). ClickHouse groups the rows from the page's start on: memory here is one
// page.
func (r *Reader) ReplayCandidates(ctx context.Context, q ReplayQuery) ([]Candidate, error) {
	if q.Limit < 1 || q.Limit > 10_000 {
		return nil, fmt.Errorf("%w: replay page of %d is outside 1..10000", ErrInvalid, q.Limit)
	}
	where, args := q.where()
	having := ""
	if q.Reason != "" {
		having = " AND latest_reason = ?"
		args = append(args, q.Reason)
	}
	sql := fmt.Sprintf(replayGrouped, where, having) + fmt.Sprintf(" ORDER BY ms, id LIMIT %d", q.Limit)
	rows, err := r.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("replay candidates of webhook %s: %w", q.WebhookID, err)
	}
	defer rows.Close()
	var out []Candidate
	for rows.Next() {
		var c Candidate
		var id, outcomes string
		var ms uint64
		var truncated uint8
		var first uint16
		if err := rows.Scan(&id, &ms, &c.Partition, &c.Offset, &truncated, &c.LatestAttempt, &c.LatestStatus, &c.LatestReason, &outcomes, &first); err != nil {
			return nil, fmt.Errorf("replay candidates of webhook %s: %w", q.WebhookID, err)
		}
		if c.RequestID, err = uuid.Parse(id); err != nil {
			return nil, fmt.Errorf("replay candidates of webhook %s: request id %q: %w", q.WebhookID, id, err)
		}
		c.ReceivedMs, c.Truncated = int64(ms), truncated == 1
		if outcomes != "" {
			var elems []struct {
				Index  int    `json:"index"`
				Status string `json:"status"`
			}
			if err := json.Unmarshal([]byte(outcomes), &elems); err != nil {
				return nil, fmt.Errorf("outcomes of request %s: %w", id, err)
			}
			for _, e := range elems {
				if e.Status == StatusSuccess {
					c.Fired = append(c.Fired, e.Index)
				}
			}
		}
		out = append(out, c)
	}
	return out, rows.Err()
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
