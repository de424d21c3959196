package chstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// The pipeline's inserts are fenced by partition claims (partition_owners, migration 00006): a process
// that takes a Kafka partition over records a claim, an epoch, before it reads the partition's
// high-water marks (Claim), and each of its inserts keeps only the rows of partitions whose latest claim
// is still its own (Insert with a Gate). The check is part of the insert itself — an INSERT … SELECT
// from the rows sent along with the query as an external table — so a process frozen between deciding
// to insert and sending the INSERT writes nothing once a newer claim exists: there is no moment between
// a check and a write for the claim to change in. The epochs and the argument are the pipeline's
// (pipeline/sink.go claim, docs/architecture.md).

// Owner is a partition's latest claim: the highest epoch recorded for it and the group member that
// recorded it.
type Owner struct {
	Epoch  uint64
	Member string
}

// Owners returns the latest claim of each of these partitions of topic that has one.
func (w *Writer) Owners(ctx context.Context, topic string, parts []int32) (map[int32]Owner, error) {
	out := make(map[int32]Owner, len(parts))
	if len(parts) == 0 {
		return out, nil
	}
	q := fmt.Sprintf("SELECT src_partition, max(epoch), argMax(member, epoch) FROM partition_owners WHERE topic = ? AND src_partition IN (%s) GROUP BY src_partition",
		int32List(parts))
	rows, err := w.conn.Query(w.readCtx(ctx), q, topic)
	if err != nil {
		return nil, fmt.Errorf("owners of partitions %v: %w", parts, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p int32
		var o Owner
		if err := rows.Scan(&p, &o.Epoch, &o.Member); err != nil {
			return nil, fmt.Errorf("owners of partitions %v: %w", parts, err)
		}
		out[p] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("owners of partitions %v: %w", parts, err)
	}
	return out, nil
}

// Claim records member's claims of partitions of topic, at the epoch given per partition. On a cluster
// it is a quorum insert, like the rows: once it returns, a gated insert on any replica of the quorum
// sees it.
func (w *Writer) Claim(ctx context.Context, topic, member string, epochs map[int32]uint64) error {
	if len(epochs) == 0 {
		return nil
	}
	bt, err := w.conn.PrepareBatch(w.insertCtx(ctx), "INSERT INTO partition_owners (topic, src_partition, epoch, member, claimed_at)")
	if err != nil {
		return fmt.Errorf("prepare partition claim: %w", err)
	}
	now := time.Now()
	for p, e := range epochs {
		if err := bt.Append(topic, p, e, member, now); err != nil {
			_ = bt.Abort()
			return fmt.Errorf("append partition claim: %w", err)
		}
	}
	if err := bt.Send(); err != nil {
		return fmt.Errorf("claim partitions of %s at %v: %w", topic, epochs, err)
	}
	return nil
}

// Gate fences an insert: of the rows of partition p of Topic, only those land whose partition's latest
// claim is Epochs[p] (a partition missing from Epochs lands nothing).
type Gate struct {
	Topic  string
	Epochs map[int32]uint64
}

// InsertActivityGated inserts rows into activity_log as one block, keeping only the rows the gate lets
// through.
func (w *Writer) InsertActivityGated(ctx context.Context, g Gate, rows []ActivityRow) error {
	return w.insertGated(ctx, ActivityLog, g, len(rows), func(add adder) error { return appendActivity(add, rows) })
}

// InsertEventsGated inserts rows into events as one block, keeping only the rows the gate lets through.
func (w *Writer) InsertEventsGated(ctx context.Context, g Gate, rows []EventRow) error {
	return w.insertGated(ctx, Events, g, len(rows), func(add adder) error { return appendEvents(add, rows) })
}

// InsertNotificationsGated inserts rows into notifications as one block, keeping only the rows the gate
// lets through.
func (w *Writer) InsertNotificationsGated(ctx context.Context, g Gate, rows []NotificationRow) error {
	return w.insertGated(ctx, Notifications, g, len(rows), func(add adder) error { return appendNotifications(add, rows) })
}

// gatedRows is the name of the external table that carries a gated insert's rows.
const gatedRows = "inlet_rows"

// insertGated sends the rows as an external table with one INSERT … SELECT that keeps the rows of the
// partitions whose latest claim is the gate's epoch. The SELECT reads the external table's one block
// and the INSERT writes it as one block, so it is as atomic as a plain INSERT (all rows that pass, or
// none), and the table's materialized views (the rollup) see exactly the rows written. On a cluster the
// claims are read with select_sequential_consistency, so a replica that lacks the latest quorum claim
// fails the insert (retried) instead of taking an older claim for the latest.
func (w *Writer) insertGated(ctx context.Context, t Table, g Gate, n int, fill func(adder) error) error {
	cols := insertColumns[t]
	tbl, err := gatedTable(t)
	if err != nil {
		return err
	}
	if err := fill(tbl.Append); err != nil {
		return err
	}
	names := strings.Join(cols.names(), ", ")
	q := "INSERT INTO " + t.String() + " (" + names + ") SELECT " + names + " FROM " + gatedRows + " WHERE " + g.where()
	ctx = clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl))
	if w.quorum > 0 { // insertCtx's settings, and the claims' reads'
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
			"insert_quorum":                 w.quorum,
			"insert_quorum_timeout":         int(QuorumTimeout.Milliseconds()),
			"select_sequential_consistency": 1,
		}))
	}
	if err := w.conn.Exec(ctx, q, g.Topic); err != nil {
		return fmt.Errorf("insert %d %s rows: %w", n, t, err)
	}
	gatedTables[t].Put(tbl) // only after a clean return: the client is done with its block
	return nil
}

// gatedTables keep each table's external tables between inserts, with their columns' buffers: a
// fresh table grows every column by doubling, row by row, which was most of what a gated insert cost
// the pipeline (BenchmarkGatedInsertClient). A pool, not one per Writer: inserts run concurrently
// (one per table per flush, the replay job), and the runtime lets idle ones go.
var gatedTables [NumTables]sync.Pool

// gatedTable is an empty external table for table t's insert columns, from the pool when it has one.
func gatedTable(t Table) (*ext.Table, error) {
	if tbl, ok := gatedTables[t].Get().(*ext.Table); ok {
		tbl.Block().Reset()
		return tbl, nil
	}
	cols := insertColumns[t]
	spec := make([]func(*ext.Table) error, len(cols))
	for i, c := range cols {
		spec[i] = ext.Column(c.name, column.Type(c.typ))
	}
	tbl, err := ext.NewTable(gatedRows, spec...)
	if err != nil {
		return nil, fmt.Errorf("%s rows: %w", t, err)
	}
	return tbl, nil
}

// where is the gate's condition on the rows' src_partition: (partition, the gate's epoch for it) must be
// the partition's latest claim. The topic is the query's one parameter.
func (g Gate) where() string {
	parts := make([]int32, 0, len(g.Epochs))
	epochs := make([]string, 0, len(g.Epochs))
	for p, e := range g.Epochs {
		parts = append(parts, p)
		epochs = append(epochs, fmt.Sprintf("toUInt64(%d)", e))
	}
	if len(parts) == 0 {
		return "0"
	}
	list := int32List(parts)
	return fmt.Sprintf("(src_partition, transform(src_partition, [%s], [%s], toUInt64(0))) IN "+
		"(SELECT src_partition, max(epoch) FROM partition_owners WHERE topic = ? AND src_partition IN (%s) GROUP BY src_partition)",
		list, strings.Join(epochs, ", "), list)
}
