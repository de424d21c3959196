package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// timeColumns is each table's partitioning time column: the high-water queries filter on it so that
// ClickHouse prunes partitions older than the look-back instead of scanning the whole table.
var timeColumns = [chstore.NumTables]string{"received_at", "occurred_at", "created_at"}

// sink is everything the pipeline does with ClickHouse: it inserts a batch's blocks exactly once,
// reads back the high-water marks, the events to heal and the auth-failure streaks of newly assigned
// partitions, and drops expired partitions. Rows are written by chstore.Writer, which owns their layout
// and the INSERT statements.
type sink struct {
	store    *chstore.Writer
	conn     driver.Conn
	topic    string // the requests topic, named in insert query ids
	lookback time.Duration
	cfg      *Config
	retry    *retrier
	m        *metrics
	log      *slog.Logger
}

// send inserts table t's rows of the batch as one block.
func (s *sink) send(ctx context.Context, t chstore.Table, b *batch) error {
	switch t {
	case chstore.ActivityLog:
		return s.store.InsertActivity(ctx, b.activity)
	case chstore.Events:
		return s.store.InsertEvents(ctx, b.events)
	}
	return s.store.InsertNotifications(ctx, b.notes)
}

// awaitQuery waits until the query with this id no longer runs on the server (system.processes), for
// at most limit; it fails when that cannot be told.
func (s *sink) awaitQuery(ctx context.Context, queryID string, limit time.Duration) error {
	return s.awaitNone(ctx, "insert "+queryID, limit, "SELECT count() FROM system.processes WHERE query_id = ?", queryID)
}

// awaitNone polls a count until it is 0, for at most limit.
func (s *sink) awaitNone(ctx context.Context, what string, limit time.Duration, q string, args ...any) error {
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
func (s *sink) awaitInserts(ctx context.Context, topic string, parts []int32, limit time.Duration) error {
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
func (s *sink) highWater(ctx context.Context, table chstore.Table, partitions []int32) (map[int32]int64, error) {
	out := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		out[p] = -1
	}
	if len(partitions) == 0 {
		return out, nil
	}
	q := fmt.Sprintf("SELECT src_partition, max(src_offset) FROM %s WHERE %s >= toDateTime(%d) AND src_partition IN (%s) GROUP BY src_partition",
		table, timeColumns[table], s.since(), int32List(partitions))
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("high-water mark of %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p int32
		var off int64
		if err := rows.Scan(&p, &off); err != nil {
			return nil, fmt.Errorf("high-water mark of %s: %w", table, err)
		}
		out[p] = off
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("high-water mark of %s: %w", table, err)
	}
	return out, nil
}

// successesAbove lists the offsets of successful activity rows of a partition above after: on
// assignment, those whose events row is missing (a crash between the two inserts) are healed.
func (s *sink) successesAbove(ctx context.Context, partition int32, after int64) (map[int64]struct{}, error) {
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

func (s *sink) since() int64 { return time.Now().Add(-s.lookback).Unix() }

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

// partitions reads what the pipeline needs to know of partitions seen for the first time since their
// assignment: each table's high-water mark, the events to heal and the auth-failure streaks, and the
// notifications a crash left unraised. It retries until ClickHouse answers or ctx ends.
func (s *sink) partitions(ctx context.Context, parts []int32) (map[int32]*partState, []chstore.NotificationRow, error) {
	var loaded map[int32]*partState
	var missing []chstore.NotificationRow
	err := s.retry.do(ctx, "clickhouse", partitionsRef(parts), func(ctx context.Context) error {
		// An insert of these partitions' rows that a previous owner (or this process, before abandoning
		// its batch) gave up on may still be running on the server: read the marks after it ends.
		if err := s.awaitInserts(ctx, s.topic, parts, s.cfg.InsertTimeout); err != nil {
			return err
		}
		var hwm [chstore.NumTables]map[int32]int64
		for t := range chstore.NumTables {
			m, err := s.highWater(ctx, t, parts)
			if err != nil {
				return err
			}
			hwm[t] = m
		}
		loaded, missing = map[int32]*partState{}, nil
		for _, x := range parts {
			st := &partState{streaks: map[string]*streak{}}
			for t := range chstore.NumTables {
				st.hwm[t] = hwm[t][x]
			}
			if st.hwm[chstore.ActivityLog] > st.hwm[chstore.Events] {
				heal, err := s.successesAbove(ctx, x, st.hwm[chstore.Events])
				if err != nil {
					return err
				}
				for off := range heal {
					if off > st.hwm[chstore.ActivityLog] {
						delete(heal, off)
					}
				}
				if len(heal) > 0 {
					st.heal = heal
				}
			}
			m, err := s.loadStreaks(ctx, x, st)
			if err != nil {
				return err
			}
			if len(m) > 0 {
				s.log.Warn("auth-failure notifications missing after a crash, raising them now", "partition", x, "count", len(m))
				missing = append(missing, m...)
			}
			loaded[x] = st
			s.log.Info("partition assigned", "partition", x, "activity_hwm", st.hwm[chstore.ActivityLog],
				"events_hwm", st.hwm[chstore.Events], "notifications_hwm", st.hwm[chstore.Notifications], "heal", len(st.heal))
		}
		return nil
	})
	return loaded, missing, err
}

// insert writes one table's rows. A failed attempt may still have landed (the server applied the block
// but the answer was lost), so before trying again the high-water marks are read back: writing the block
// twice is the one thing that must never happen.
func (s *sink) insert(ctx context.Context, t chstore.Table, b *batch) error {
	n := b.tableRows(t)
	name := t.String()
	parts := make([]int32, 0, len(b.maxOffset[t]))
	for part := range b.maxOffset[t] {
		parts = append(parts, part)
	}
	var lastQuery string // query id of the previous attempt
	about := logFunc(func() []any {
		return []any{"table", name, "rows", n, "partitions_to_offset", b.maxOffset[t]}
	})
	return s.retry.do(ctx, "clickhouse", about, func(ctx context.Context) error {
		if lastQuery != "" {
			// An attempt that reported an error may still be running on the server (the client gave
			// up, the server did not): wait for it to end before reading whether it landed, or the
			// retry could write the rows a second time.
			if err := s.awaitQuery(ctx, lastQuery, s.cfg.InsertTimeout); err != nil {
				return err
			}
			hw, err := s.highWater(ctx, t, parts)
			if err != nil {
				return err
			}
			if landed(hw, b.maxOffset[t]) {
				s.log.Info("insert that reported an error had landed", "table", name, "rows", n)
				return nil
			}
		}
		lastQuery = insertQueryID(s.topic, parts)
		ictx, cancel := context.WithTimeout(clickhouse.Context(ctx, clickhouse.WithQueryID(lastQuery)), s.cfg.InsertTimeout)
		defer cancel()
		start := time.Now()
		if err := s.send(ictx, t, b); err != nil {
			s.m.insertErrors.WithLabelValues(name).Inc()
			return err
		}
		s.m.insertSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		s.m.batchRows.WithLabelValues(name).Observe(float64(n))
		return nil
	})
}

func landed(hw map[int32]int64, want map[int32]int64) bool {
	for part, off := range want {
		if hw[part] < off {
			return false
		}
	}
	return true
}

// loadStreaks rebuilds a partition's streaks from ClickHouse as of its activity high-water mark: for
// each webhook, the auth_rejected rows after its last authenticated row (at most AuthFailureStreak of
// them are needed) and whether a notification was raised since. A streak that reached the threshold
// without its notification (a crash between the activity and notifications inserts) is returned so the
// caller raises it now.
func (s *sink) loadStreaks(ctx context.Context, part int32, st *partState) ([]chstore.NotificationRow, error) {
	since := s.since()
	lastOK, err := s.lastOffsets(ctx, fmt.Sprintf(
		"SELECT webhook_id, max(src_offset) FROM activity_log WHERE received_at >= toDateTime(%d) AND src_partition = %d AND reason NOT IN ('auth_rejected', 'webhook_disabled') GROUP BY webhook_id",
		since, part))
	if err != nil {
		return nil, err
	}
	lastNote, err := s.lastOffsets(ctx, fmt.Sprintf(
		"SELECT webhook_id, max(src_offset) FROM notifications WHERE created_at >= toDateTime(%d) AND src_partition = %d GROUP BY webhook_id",
		since, part))
	if err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(
		"SELECT webhook_id, project_id, request_id, received_ms, src_offset FROM activity_log WHERE received_at >= toDateTime(%d) AND src_partition = %d AND reason = 'auth_rejected' ORDER BY webhook_id, src_offset DESC LIMIT %d BY webhook_id",
		since, part, s.cfg.AuthFailureStreak))
	if err != nil {
		return nil, fmt.Errorf("auth-failure streaks of partition %d: %w", part, err)
	}
	defer rows.Close()
	type fail struct {
		project   uint64
		requestID uuid.UUID
		ms        uint64
		offset    int64
	}
	recent := map[string][]fail{} // newest first
	for rows.Next() {
		var w string
		var f fail
		if err := rows.Scan(&w, &f.project, &f.requestID, &f.ms, &f.offset); err != nil {
			return nil, fmt.Errorf("auth-failure streaks of partition %d: %w", part, err)
		}
		recent[w] = append(recent[w], f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth-failure streaks of partition %d: %w", part, err)
	}
	var missing []chstore.NotificationRow
	for w, fails := range recent {
		ok, seen := lastOK[w]
		if !seen {
			ok = -1
		}
		var run streak
		for _, f := range fails {
			if f.offset <= ok {
				break
			}
			run.count++
			run.startMs = int64(f.ms)
		}
		if run.count == 0 {
			continue
		}
		note, noted := lastNote[w]
		run.notified = noted && note > ok
		if run.count >= s.cfg.AuthFailureStreak && !run.notified {
			run.notified = true
			f := fails[run.count-1] // the failure that completed the streak
			if f.offset > st.hwm[chstore.Notifications] {
				missing = append(missing, chstore.NotificationRow{
					ProjectID: f.project, WebhookID: w, ID: notificationID(f.requestID), Kind: notificationKind,
					CreatedAt: time.UnixMilli(int64(f.ms)).UTC(), Message: authMessage(w, run.count),
					Partition: part, Offset: f.offset,
				})
			}
		}
		st.streaks[w] = &run
	}
	return missing, nil
}

// lastOffsets reads (webhook id, offset) pairs.
func (s *sink) lastOffsets(ctx context.Context, q string) (map[string]int64, error) {
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("auth-failure streak state: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var w string
		var off int64
		if err := rows.Scan(&w, &off); err != nil {
			return nil, fmt.Errorf("auth-failure streak state: %w", err)
		}
		out[w] = off
	}
	return out, rows.Err()
}

// dropExpired drops the daily partitions of activity_log and events that end before now minus
// RetentionDays and returns how many it dropped.
func (s *sink) dropExpired(ctx context.Context, now time.Time) (int, error) {
	cutoff := now.UTC().AddDate(0, 0, -s.cfg.RetentionDays).Format("20060102")
	rows, err := s.conn.Query(ctx,
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
		if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", x.table, x.partition)); err != nil {
			return dropped, fmt.Errorf("drop partition %s of %s: %w", x.partition, x.table, err)
		}
		dropped++
		s.m.dropped.Inc()
	}
	return dropped, nil
}
