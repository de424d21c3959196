package chstore

import (
	"context"
	"fmt"
	"time"
)

// MaxRecorded bounds one Recorded read: a backtest's requests.
const MaxRecorded = 10_000

// Recorded is one request the edge accepted, as the activity log keeps it, with what became of it.
type Recorded struct {
	RequestID  string
	ReceivedMs uint64
	Status     string
	Reason     string
	Detail     string
	Payload    string
	// Truncated: Payload is only the first bytes of the body (the edge cut it), so it cannot be
	// evaluated again.
	Truncated bool
	// Headers are the sender headers kept, a JSON object (name → value); "" for none.
	Headers string
	// ContentType is a form body's Content-Type; "" for JSON, and for every request logged before
	// the column existed (a form among those cannot be told from a broken JSON body).
	ContentType string
	// Route and EventsFired are the activity log's (EventsFired is 0 on rows logged before it
	// existed: see Events).
	Route       string
	EventsFired uint32
}

// Events is how many events the request fired: events_fired, or one for a success logged before
// the column existed.
func (r *Recorded) Events() int {
	if r.EventsFired == 0 && r.Status == StatusSuccess {
		return 1
	}
	return int(r.EventsFired)
}

// Recorded returns up to limit (1..MaxRecorded) of the webhook's newest requests that the edge
// accepted (edge_status 202), duplicates left out (what a sender's repeat becomes depends on its first
// request, not on its body), and so are those whose payload is not stored (cleared by the project's
// retention, or a body a webhook's masking could not read); newest first; a request that ran more than
// once (a replay) once, with its latest outcome. Two queries: the first reads only received_ms to find
// the oldest time wanted, so that the second reads payloads only from the granules after it.
func (r *Reader) Recorded(ctx context.Context, projectID int64, webhookID string, limit int) ([]Recorded, error) {
	if limit < 1 || limit > MaxRecorded {
		return nil, fmt.Errorf("%w: limit %d is outside 1..%d", ErrInvalid, limit, MaxRecorded)
	}
	const where = "project_id = ? AND webhook_id = ? AND edge_status = 202 AND status != 'duplicate' AND payload != ''"
	var since uint64
	rows, err := r.conn.Query(ctx, "SELECT received_ms FROM activity_log WHERE "+where+
		" AND attempt = 0 ORDER BY received_ms DESC LIMIT 1 OFFSET ?", uint64(projectID), webhookID, uint64(limit-1))
	if err != nil {
		return nil, fmt.Errorf("recorded requests of webhook %s: %w", webhookID, err)
	}
	for rows.Next() {
		if err := rows.Scan(&since); err != nil {
			rows.Close()
			return nil, fmt.Errorf("recorded requests of webhook %s: %w", webhookID, err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recorded requests of webhook %s: %w", webhookID, err)
	}
	// since is 0 when the webhook has fewer than limit requests: all of them.
	rows, err = r.conn.Query(ctx, "SELECT toString(request_id), received_ms, toString(status), reason, detail, payload, "+
		"payload_truncated, headers, content_type, route, events_fired FROM activity_log WHERE "+where+" AND received_at >= toDateTime(?) AND received_ms >= ? "+
		"ORDER BY received_ms DESC, toString(request_id) DESC, attempt DESC LIMIT 1 BY request_id LIMIT ?",
		uint64(projectID), webhookID, time.UnixMilli(int64(since)).Unix(), since, uint64(limit))
	if err != nil {
		return nil, fmt.Errorf("recorded requests of webhook %s: %w", webhookID, err)
	}
	defer rows.Close()
	out := make([]Recorded, 0, min(limit, 1024))
	for rows.Next() {
		var rec Recorded
		var truncated uint8
		if err := rows.Scan(&rec.RequestID, &rec.ReceivedMs, &rec.Status, &rec.Reason, &rec.Detail, &rec.Payload, &truncated, &rec.Headers, &rec.ContentType, &rec.Route, &rec.EventsFired); err != nil {
			return nil, fmt.Errorf("recorded requests of webhook %s: %w", webhookID, err)
		}
		rec.Truncated = truncated != 0
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recorded requests of webhook %s: %w", webhookID, err)
	}
	return out, nil
}
