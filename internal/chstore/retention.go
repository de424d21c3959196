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
