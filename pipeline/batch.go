package pipeline

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/hold"
)

// batch is what the pipeline holds between two flushes: the rows of every table, the events to fire,
// and per Kafka partition the offset to commit. Rows are appended in offset order per partition, so each
// table's rows of one partition form a contiguous range; all rows share one UTC day, so one INSERT never
// spans two PARTITION BY values (the batch is flushed when the day changes).
//
// A flush may fail half-way (a dependency down, shutdown); fired and done record how far it got so that
// the next attempt resumes instead of writing a table twice.
type batch struct {
	day     int64 // UTC day (Unix days) of the rows; meaningful when rows > 0
	bytes   int   // payload and attribute bytes held, for BatchBytes
	started time.Time

	activity []chstore.ActivityRow
	events   []chstore.EventRow
	notes    []chstore.NotificationRow
	fire     []fireRecord
	// ends are the ends of notified auth-failure streaks (an authenticated request), handed to the
	// Notifier after the flush as notes are; they have no row of their own.
	ends []Notification
	// holds are the batch's held requests, written to PostgreSQL after its events are fired and
	// before its rows are inserted (holdsDone once written).
	holds     []hold.Hold
	holdsDone bool

	// marks is, per partition, the next offset to commit (last consumed + 1) with its leader epoch.
	marks map[int32]kgo.EpochOffset
	// maxOffset is, per table and partition, the highest src_offset in the batch: the table's
	// high-water mark once the insert is done.
	maxOffset [chstore.NumTables]map[int32]int64

	// links are the links to the edge spans of the batch's sampled requests, for the flush's spans
	// (at most the tracer's maxLinks; linksDropped the others). Empty when tracing is off.
	links        []trace.Link
	linksDropped int

	fired bool
	done  [chstore.NumTables]bool
	// attempt is, per table, the query id of the last insert attempt of the batch's rows, "" before
	// any: an attempt that failed may have landed, and the next one checks first (sink.insert).
	attempt [chstore.NumTables]string
}

func newBatch() *batch {
	b := &batch{marks: map[int32]kgo.EpochOffset{}}
	for t := range b.maxOffset {
		b.maxOffset[t] = map[int32]int64{}
	}
	return b
}

func (b *batch) rows() int { return len(b.activity) + len(b.events) + len(b.notes) }

// empty reports whether there is nothing to write or commit.
func (b *batch) empty() bool { return b.rows() == 0 && len(b.marks) == 0 }

func (b *batch) touch(now time.Time) {
	if b.started.IsZero() {
		b.started = now
	}
}

// mark records that the partition was consumed up to offset.
func (b *batch) mark(partition int32, offset int64, epoch int32, now time.Time) {
	b.touch(now)
	b.marks[partition] = kgo.EpochOffset{Epoch: epoch, Offset: offset + 1}
}

func (b *batch) noteOffset(table chstore.Table, partition int32, offset int64) {
	if cur, ok := b.maxOffset[table][partition]; !ok || offset > cur {
		b.maxOffset[table][partition] = offset
	}
}

func (b *batch) reset() {
	b.started = time.Time{}
	b.bytes = 0
	b.activity = b.activity[:0]
	clear(b.events)
	b.events = b.events[:0]
	b.notes = b.notes[:0]
	clear(b.ends)
	b.ends = b.ends[:0]
	clear(b.fire)
	b.fire = b.fire[:0]
	clear(b.marks)
	for t := range b.maxOffset {
		clear(b.maxOffset[t])
	}
	clear(b.links)
	b.links = b.links[:0]
	b.linksDropped = 0
	b.fired = false
	clear(b.holds)
	b.holds = b.holds[:0]
	b.holdsDone = false
	b.done = [chstore.NumTables]bool{}
	b.attempt = [chstore.NumTables]string{}
}

// fireRecord is an event to produce, with its request's rows in the batch.
type fireRecord struct {
	rec      *kgo.Record
	activity int // index of the request's activity row
	event    int // index of its events row
	refused  bool
}

// dropEvents removes the events rows at the given indices (events Kafka refused) and recomputes the
// table's high-water marks from the rows left, so that a retried insert checks for what it wrote.
func (b *batch) dropEvents(drop map[int]bool) {
	kept := b.events[:0]
	for i, e := range b.events {
		if !drop[i] {
			kept = append(kept, e)
		}
	}
	clear(b.events[len(kept):])
	b.events = kept
	clear(b.maxOffset[chstore.Events])
	for i := range b.events {
		b.noteOffset(chstore.Events, b.events[i].Partition, b.events[i].Offset)
	}
}

// tableRows is how many rows the batch has for table t.
func (b *batch) tableRows(t chstore.Table) int {
	switch t {
	case chstore.ActivityLog:
		return len(b.activity)
	case chstore.Events:
		return len(b.events)
	}
	return len(b.notes)
}
