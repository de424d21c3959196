package chstore

import (
	"context"
	"fmt"
	"time"
)

// WindowCounts are one webhook's hits in the rollup over an alert rule's window, and over the
// baseline before it (see Reader.WindowCounts).
type WindowCounts struct {
	WebhookID string
	// Success, Failed: the window's requests by status (duplicates and skipped requests are neither).
	Success, Failed uint64
	// Reason counts the window's requests whose reason is the one asked for ("" counts none).
	Reason uint64
	// Total is every request of the window; Before every request of the baseline before it.
	Total, Before uint64
}

// WindowCounts reads the per-minute rollup (activity_minute) of one project over the minutes in
// [from, to), and of the baseline minutes in [baseline, from), per webhook (webhookID "" reads every
// webhook of the project), counting reason's requests apart. A webhook with no request in either range
// is absent. It is the alert evaluator's one query per rule: it reads the rollup, never the raw rows.
func (r *Reader) WindowCounts(ctx context.Context, projectID int64, webhookID, reason string, baseline, from, to time.Time) ([]WindowCounts, error) {
	q := `SELECT webhook_id,
	sumIf(hits, minute >= toDateTime(?) AND status = 'success'),
	sumIf(hits, minute >= toDateTime(?) AND status = 'failed'),
	sumIf(hits, minute >= toDateTime(?) AND reason = ? AND ? != ''),
	sumIf(hits, minute >= toDateTime(?)),
	sumIf(hits, minute < toDateTime(?))
FROM activity_minute
WHERE project_id = ? AND minute >= toDateTime(?) AND minute < toDateTime(?)`
	f := from.Unix()
	args := []any{f, f, f, reason, reason, f, f, uint64(projectID), baseline.Unix(), to.Unix()}
	if webhookID != "" {
		q += " AND webhook_id = ?"
		args = append(args, webhookID)
	}
	q += " GROUP BY webhook_id ORDER BY webhook_id"
	rows, err := r.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("window counts of project %d: %w", projectID, err)
	}
	defer rows.Close()
	var out []WindowCounts
	for rows.Next() {
		// hits is signed (a replayed request's new outcome subtracts its old one, migration 00004); a
		// sum is never below 0 once both rows are in, and is read as 0 before.
		var c WindowCounts
		var n [5]int64
		if err := rows.Scan(&c.WebhookID, &n[0], &n[1], &n[2], &n[3], &n[4]); err != nil {
			return nil, fmt.Errorf("window counts of project %d: %w", projectID, err)
		}
		c.Success, c.Failed, c.Reason, c.Total, c.Before = uint64(max(n[0], 0)), uint64(max(n[1], 0)), uint64(max(n[2], 0)),
			uint64(max(n[3], 0)), uint64(max(n[4], 0))
		out = append(out, c)
	}
	return out, rows.Err()
}
