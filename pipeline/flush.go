package pipeline

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// flushPolicy says when the consume loop writes its batch: when it is full (batch_rows, batch_bytes),
// when it is flush_interval old, or, once a poll has caught up with Kafka, when it is flush_linger old.
// A pipeline that keeps up so writes a row about flush_linger after its record arrived instead of
// waiting out flush_interval, and at most one batch per flush_linger; under a backlog polls do not
// catch up and batches stay large (few large inserts, as ClickHouse wants).
type flushPolicy struct {
	rows, bytes      int
	interval, linger time.Duration
}

func newFlushPolicy(cfg *Config) flushPolicy {
	return flushPolicy{rows: cfg.BatchRows, bytes: cfg.BatchBytes, interval: cfg.FlushInterval, linger: cfg.FlushLinger}
}

// due reports whether a non-empty batch of rows and bytes, started at started, is to be written at
// now; caughtUp is what the last poll said (caughtUp).
func (f flushPolicy) due(rows, bytes int, started time.Time, caughtUp bool, now time.Time) bool {
	age := now.Sub(started)
	return rows >= f.rows || bytes >= f.bytes || age >= f.interval || caughtUp && age >= f.linger
}

// pollWait is how long the next poll may wait for records: until the batch is due by age (the
// interval, or the linger once caught up), at least 1ms; the whole interval while the batch is empty
// (started zero).
func (f flushPolicy) pollWait(started time.Time, caughtUp bool, now time.Time) time.Duration {
	if started.IsZero() {
		return f.interval
	}
	limit := f.interval
	if caughtUp {
		limit = f.linger
	}
	return max(started.Add(limit).Sub(now), time.Millisecond)
}

// pollRecords is how many records the next poll may take so that the batch, holding batchBytes, stays
// within batch_bytes when its records are about perRecord bytes each (the last poll's average; 0 when
// unknown): a poll is handled whole before the batch is checked, and the ClickHouse client's buffers
// grow with the batch. At least 1, at most batch_rows.
func (f flushPolicy) pollRecords(batchBytes, perRecord int) int {
	if perRecord <= 0 {
		return f.rows
	}
	return min(max((f.bytes-batchBytes)/perRecord, 1), f.rows)
}

// recordBytes is the average size of a poll's record values, 0 for an empty poll.
func recordBytes(fs kgo.Fetches) int {
	n, size := 0, 0
	fs.EachRecord(func(r *kgo.Record) {
		n++
		size += len(r.Value)
	})
	if n == 0 {
		return 0
	}
	return size / n
}

// caughtUp reports whether a poll of at most maxRecords brought everything Kafka had: fewer records
// than it could take (nothing left buffered in the client), and each partition's last record the last
// one the broker had when it answered (its high watermark). An empty poll (it waited out its time) is
// caught up.
func caughtUp(fs kgo.Fetches, maxRecords int) bool {
	n, up := 0, true
	fs.EachPartition(func(ft kgo.FetchTopicPartition) {
		if len(ft.Records) == 0 {
			return
		}
		n += len(ft.Records)
		if ft.Records[len(ft.Records)-1].Offset+1 < ft.HighWatermark {
			up = false
		}
	})
	return up && n < maxRecords
}
