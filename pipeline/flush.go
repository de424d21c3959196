package pipeline

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// flushPolicy says when the consume loop writes its batch: when it is full (batch_rows, batch_bytes),
// when it is flush_interval old, or early, once the loop has caught up with Kafka, when it is
// flush_linger old and the loop has waited on Kafka, since the batch started, at least as long as the
// last flush took. A pipeline with time to spare so writes a row about flush_linger after its record
// arrived instead of waiting out flush_interval, at most one batch per flush_linger; one that is
// behind, or busy enough that more flushes would put it behind (its polls never wait), keeps its
// batches large (few large inserts, as ClickHouse wants): the early flushes are paid for with time the
// loop would have spent idle.
//
// It is the consume loop's: polled and flushed tell it what happened, due and pollWait ask it.
type flushPolicy struct {
	rows, bytes      int
	interval, linger time.Duration

	caughtUp  bool          // the last poll brought everything Kafka had (caughtUp)
	idle      time.Duration // time spent waiting in polls since the batch started
	lastFlush time.Duration // how long the last flush took
}

func newFlushPolicy(cfg *Config) *flushPolicy {
	return &flushPolicy{rows: cfg.BatchRows, bytes: cfg.BatchBytes, interval: cfg.FlushInterval, linger: min(cfg.FlushLinger, cfg.FlushInterval)}
}

// polled records a poll that took waited, begun with a non-empty batch or not, and whether it caught
// up. Only waits while a batch is held count: a batch starts with no idle time.
func (f *flushPolicy) polled(waited time.Duration, batchStarted, caughtUp bool) {
	f.caughtUp = caughtUp
	if batchStarted {
		f.idle += waited
	} else {
		f.idle = 0
	}
}

// flushed records a flush that took took.
func (f *flushPolicy) flushed(took time.Duration) {
	f.lastFlush, f.idle = took, 0
}

// due reports whether a non-empty batch of rows and bytes, started at started, is to be written at now.
func (f *flushPolicy) due(rows, bytes int, started, now time.Time) bool {
	age := now.Sub(started)
	return rows >= f.rows || bytes >= f.bytes || age >= f.interval || f.early(age)
}

func (f *flushPolicy) early(age time.Duration) bool {
	return f.caughtUp && age >= f.linger && f.idle >= f.lastFlush
}

// pollWait is how long the next poll may wait for records: until the batch is due by age (the
// interval, or earlier once caught up: the linger, or as long as the idle time still lacks to pay for
// a flush), at least 1ms; the whole interval while the batch is empty (started zero).
func (f *flushPolicy) pollWait(started, now time.Time) time.Duration {
	if started.IsZero() {
		return f.interval
	}
	until := started.Add(f.interval)
	if f.caughtUp {
		if early := maxTime(started.Add(f.linger), now.Add(f.lastFlush-f.idle)); early.Before(until) {
			until = early
		}
	}
	return max(until.Sub(now), time.Millisecond)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pollRecords is how many records the next poll may take so that the batch, holding batchBytes, stays
// within batch_bytes when its records are about perRecord bytes each (the last poll's average; 0 when
// unknown): a poll is handled whole before the batch is checked, and the ClickHouse client's buffers
// grow with the batch. At least 1, at most batch_rows.
func (f *flushPolicy) pollRecords(batchBytes, perRecord int) int {
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
