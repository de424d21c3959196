package chstore

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// DropExpired drops the daily partitions of activity_log and events that end before now minus days and
// returns how many it dropped, also when it fails part-way. Dropping a partition is instant and frees
// its disk at once, unlike a DELETE; the per-minute rollup (activity_minute, and so the all-time
// Received count) is not touched.
func (w *Writer) DropExpired(ctx context.Context, now time.Time, days int) (int, error) {
	cutoff := now.UTC().AddDate(0, 0, -days).Format("20060102")
	rows, err := w.conn.Query(ctx,
		"SELECT DISTINCT table, partition FROM system.parts WHERE database = currentDatabase() AND active AND table IN ('activity_log', 'events')")
	if err != nil {
		return 0, fmt.Errorf("list partitions: %w", err)
	}
	type part struct{ table, partition string }
	var old []part
	for rows.Next() {
		var x part
		if err := rows.Scan(&x.table, &x.partition); err != nil {
			rows.Close()
			return 0, fmt.Errorf("list partitions: %w", err)
		}
		// Partitions are toYYYYMMDD values; anything else is not ours to drop.
		if _, err := strconv.ParseUint(x.partition, 10, 32); err != nil || len(x.partition) != 8 {
			continue
		}
		if x.partition < cutoff {
			old = append(old, x)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("list partitions: %w", err)
	}
	dropped := 0
	for _, x := range old {
		if err := w.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", x.table, x.partition)); err != nil {
			return dropped, fmt.Errorf("drop partition %s of %s: %w", x.partition, x.table, err)
		}
		dropped++
	}
	return dropped, nil
}

// ProjectRetention is one project's retention, shorter than the server's (0: the server's). Payloads
// are cleared from activity rows older than PayloadDays (the rows stay, and so their counts and
// Kafka positions); activity rows older than ActivityDays and events older than EventsDays are
// deleted.
type ProjectRetention struct {
	ProjectID                             int64
	ActivityDays, PayloadDays, EventsDays int
}

// retentionStep is one mutation a project's retention may need.
type retentionStep struct {
	table, timeCol, action, extra string
	days                          int
}

func (p *ProjectRetention) steps() []retentionStep {
	var out []retentionStep
	if p.PayloadDays > 0 {
		// headers go with the payload: they are what the sender sent beside it.
		out = append(out, retentionStep{"activity_log", "received_at", "UPDATE payload = '', headers = ''", " AND (payload != '' OR headers != '')", p.PayloadDays})
	}
	if p.ActivityDays > 0 {
		out = append(out, retentionStep{"activity_log", "received_at", "DELETE", "", p.ActivityDays})
	}
	if p.EventsDays > 0 {
		out = append(out, retentionStep{"events", "occurred_at", "DELETE", "", p.EventsDays})
	}
	return out
}

// ApplyRetention enforces each project's shorter retention at now with ALTER TABLE … DELETE or
// UPDATE (mutations, which ClickHouse 18.16 has), issuing one only where rows are due (a count over
// the table's leading key column first) and none is still running for the same statement: a
// mutation rewrites every part it touches, so it is not issued for nothing, nor twice. It returns
// how many mutations it issued. Days are whole UTC days back from now, as DropExpired counts them.
func (w *Writer) ApplyRetention(ctx context.Context, projects []ProjectRetention, now time.Time) (int, error) {
	issued := 0
	for i := range projects {
		p := &projects[i]
		for _, s := range p.steps() {
			cutoff := now.UTC().AddDate(0, 0, -s.days).Unix()
			where := fmt.Sprintf("project_id = %d AND %s < toDateTime(%d)%s", p.ProjectID, s.timeCol, cutoff, s.extra)
			var due uint64
			if err := w.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s WHERE %s", s.table, where)).Scan(&due); err != nil {
				return issued, fmt.Errorf("retention of project %d in %s: %w", p.ProjectID, s.table, err)
			}
			if due == 0 {
				continue
			}
			var running uint64
			if err := w.conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = ? AND is_done = 0 AND command LIKE ?",
				s.table, fmt.Sprintf("%%project_id = %d AND %%", p.ProjectID)).Scan(&running); err != nil {
				return issued, fmt.Errorf("retention of project %d in %s: %w", p.ProjectID, s.table, err)
			}
			if running > 0 {
				continue
			}
			if err := w.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s %s WHERE %s", s.table, s.action, where)); err != nil {
				return issued, fmt.Errorf("retention of project %d in %s: %w", p.ProjectID, s.table, err)
			}
			issued++
		}
	}
	return issued, nil
}
