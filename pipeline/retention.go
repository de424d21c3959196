package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// retention drops daily partitions of activity_log and events older than RetentionDays, every
// RetentionInterval. Dropping a partition is instant and frees its disk at once, unlike a DELETE; the
// per-minute rollup (and so the all-time Received count) is not touched.
func (p *Pipeline) retention(ctx context.Context) error {
	t := time.NewTicker(p.cfg.RetentionInterval)
	defer t.Stop()
	for {
		if n, err := p.DropExpired(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("retention failed; retried at the next interval", "err", err)
		} else if n > 0 {
			p.log.Info("retention dropped old partitions", "partitions", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// DropExpired drops the daily partitions of activity_log and events that end before now minus
// RetentionDays and returns how many it dropped.
func (p *Pipeline) DropExpired(ctx context.Context, now time.Time) (int, error) {
	cutoff := now.UTC().AddDate(0, 0, -p.cfg.RetentionDays).Format("20060102")
	rows, err := p.store.conn.Query(ctx,
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
		if err := p.store.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", x.table, x.partition)); err != nil {
			return dropped, fmt.Errorf("drop partition %s of %s: %w", x.partition, x.table, err)
		}
		dropped++
		p.m.dropped.Inc()
	}
	return dropped, nil
}
