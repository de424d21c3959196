package chstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The reads below find rows by their Kafka position (src_partition, src_offset), which is not in the
// tables' ordering keys: each reads only the rows from since on, filtering on the table's partitioning
// time column, so that ClickHouse prunes the older daily partitions instead of scanning the table.
// Rows older than the caller's look-back come from offsets Kafka no longer keeps.

// timeColumns is each table's partitioning time column.
var timeColumns = [NumTables]string{"received_at", "occurred_at", "created_at"}

// HighWater returns, per partition asked, the highest src_offset the table holds among its rows from
// since on (-1 when none).
func (w *Writer) HighWater(ctx context.Context, t Table, partitions []int32, since time.Time) (map[int32]int64, error) {
	out := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		out[p] = -1
	}
	if len(partitions) == 0 {
		return out, nil
	}
	q := fmt.Sprintf("SELECT src_partition, max(src_offset) FROM %s WHERE %s >= toDateTime(%d) AND src_partition IN (%s) GROUP BY src_partition",
		t, timeColumns[t], since.Unix(), int32List(partitions))
	rows, err := w.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("high-water mark of %s: %w", t, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p int32
		var off int64
		if err := rows.Scan(&p, &off); err != nil {
			return nil, fmt.Errorf("high-water mark of %s: %w", t, err)
		}
		out[p] = off
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("high-water mark of %s: %w", t, err)
	}
	return out, nil
}

// Fired is what an activity_log row says its request fired: its single event, or, for a fan-out
// (FanOut), the elements whose outcome is success.
type Fired struct {
	FanOut   bool
	Elements []int32
}

// FiredAbove lists, by offset, what a partition's activity_log rows above after fired, for the rows
// that fired any event (successes, and fan-outs that fired some elements and failed others), from
// since on. A fan-out's elements are read from its outcomes: after a crash between the two inserts the
// pipeline rebuilds the events rows of exactly those elements, not what the request would fire now.
func (w *Writer) FiredAbove(ctx context.Context, partition int32, after int64, since time.Time) (map[int64]Fired, error) {
	q := fmt.Sprintf("SELECT src_offset, outcomes FROM activity_log WHERE received_at >= toDateTime(%d) AND src_partition = %d AND src_offset > %d AND (status = 'success' AND attempt = 0 OR events_fired > 0)",
		since.Unix(), partition, after)
	rows, err := w.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("rows of partition %d above %d that fired events: %w", partition, after, err)
	}
	defer rows.Close()
	out := map[int64]Fired{}
	for rows.Next() {
		var off int64
		var outcomes string
		if err := rows.Scan(&off, &outcomes); err != nil {
			return nil, err
		}
		f := Fired{}
		if outcomes != "" {
			var elems []struct {
				Index   int32  `json:"index"`
				Status  string `json:"status"`
				Earlier bool   `json:"earlier"` // fired by an earlier attempt, whose rows have its events row
			}
			if err := json.Unmarshal([]byte(outcomes), &elems); err != nil {
				return nil, fmt.Errorf("outcomes of partition %d offset %d: %w", partition, off, err)
			}
			f.FanOut = true
			for _, e := range elems {
				if e.Status == StatusSuccess && !e.Earlier {
					f.Elements = append(f.Elements, e.Index)
				}
			}
		}
		out[off] = f
	}
	return out, rows.Err()
}

// StreakState is what a partition's rows say of its webhooks' auth-failure streaks.
type StreakState struct {
	// LastAuthenticated is, per webhook, the offset of its last activity_log row that ends a streak:
	// any reason but auth_rejected and webhook_disabled (which neither counts nor ends one).
	LastAuthenticated map[string]int64
	// LastNotified is, per webhook, the offset of the request that raised its last notification.
	LastNotified map[string]int64
	// Failures are, per webhook, its last auth_rejected rows, newest first.
	Failures map[string][]AuthFailure
}

// AuthFailure is an auth_rejected activity_log row, as much of it as a streak needs.
type AuthFailure struct {
	ProjectID  uint64
	RequestID  uuid.UUID
	ReceivedMs uint64
	Offset     int64
}

// StreakState reads a partition's streak state from its rows from since on, with at most limit
// failures per webhook.
func (w *Writer) StreakState(ctx context.Context, partition int32, since time.Time, limit int) (StreakState, error) {
	var st StreakState
	var err error
	st.LastAuthenticated, err = w.lastOffsets(ctx, fmt.Sprintf(
		"SELECT webhook_id, max(src_offset) FROM activity_log WHERE received_at >= toDateTime(%d) AND src_partition = %d AND reason NOT IN ('auth_rejected', 'webhook_disabled') GROUP BY webhook_id",
		since.Unix(), partition))
	if err != nil {
		return StreakState{}, err
	}
	st.LastNotified, err = w.lastOffsets(ctx, fmt.Sprintf(
		"SELECT webhook_id, max(src_offset) FROM notifications WHERE created_at >= toDateTime(%d) AND src_partition = %d GROUP BY webhook_id",
		since.Unix(), partition))
	if err != nil {
		return StreakState{}, err
	}
	rows, err := w.conn.Query(ctx, fmt.Sprintf(
		"SELECT webhook_id, project_id, request_id, received_ms, src_offset FROM activity_log WHERE received_at >= toDateTime(%d) AND src_partition = %d AND reason = 'auth_rejected' ORDER BY webhook_id, src_offset DESC LIMIT %d BY webhook_id",
		since.Unix(), partition, limit))
	if err != nil {
		return StreakState{}, fmt.Errorf("auth-failure streaks of partition %d: %w", partition, err)
	}
	defer rows.Close()
	st.Failures = map[string][]AuthFailure{}
	for rows.Next() {
		var wh string
		var f AuthFailure
		if err := rows.Scan(&wh, &f.ProjectID, &f.RequestID, &f.ReceivedMs, &f.Offset); err != nil {
			return StreakState{}, fmt.Errorf("auth-failure streaks of partition %d: %w", partition, err)
		}
		st.Failures[wh] = append(st.Failures[wh], f)
	}
	if err := rows.Err(); err != nil {
		return StreakState{}, fmt.Errorf("auth-failure streaks of partition %d: %w", partition, err)
	}
	return st, nil
}

// lastOffsets reads (webhook id, offset) pairs.
func (w *Writer) lastOffsets(ctx context.Context, q string) (map[string]int64, error) {
	rows, err := w.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("auth-failure streak state: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var wh string
		var off int64
		if err := rows.Scan(&wh, &off); err != nil {
			return nil, fmt.Errorf("auth-failure streak state: %w", err)
		}
		out[wh] = off
	}
	return out, rows.Err()
}

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
