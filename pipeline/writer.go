package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Failpoints at which a test can make the process die (see FailpointFromEnv): before the first
// INSERT of a flush (events already fired), between the activity_log and events INSERTs, and after all
// INSERTs but before the offset commit.
const (
	FailBeforeInsert  = "before_insert"
	FailBetweenInsert = "between_inserts"
	FailAfterInserts  = "after_inserts"
)

// writer writes a batch: it fires the batch's events to webhooks.events, then inserts its rows into
// ClickHouse table by table (through the sink). A write that fails half-way resumes, on the next call,
// where it stopped (the batch records how far it got), so nothing is written twice.
type writer struct {
	cl          *kgo.Client // the pipeline's client, producing events
	eventsTopic string
	sink        *sink
	retry       *retrier
	m           *metrics
	log         *slog.Logger
	holds       Holds             // nil: no hold store (then no batch has holds)
	tr          *tracer           // nil: tracing off
	failpoint   func(name string) // tests: SIGKILL at the named point; nil in production
}

// write fires the batch's events and inserts its rows; it retries until done or ctx ends.
func (w *writer) write(ctx context.Context, b *batch) error {
	if !b.fired && len(b.fire) > 0 {
		var span trace.Span
		if w.tr != nil {
			span = w.tr.start(ctx, spanFire, b.links, b.linksDropped, attribute.Int("inlet.events", len(b.fire)),
				attribute.String("messaging.destination.name", w.eventsTopic))
		}
		err := w.fire(ctx, b)
		end(span, err)
		if err != nil {
			return err
		}
	}
	b.fired = true
	if !b.holdsDone && len(b.holds) > 0 {
		// Before the rows: an activity row that says held has its hold. A crash after this and
		// before the rows redoes the batch, which finds its holds (ON CONFLICT DO NOTHING).
		about := logFunc(func() []any { return []any{"writing", "held requests", "holds", len(b.holds)} })
		if err := w.retry.do(ctx, "postgres", about, func(ctx context.Context) error {
			return w.holds.Insert(ctx, b.holds)
		}); err != nil {
			return err
		}
	}
	b.holdsDone = true
	w.at(FailBeforeInsert)
	for t := range chstore.NumTables {
		if b.done[t] {
			continue
		}
		if n := b.tableRows(t); n > 0 {
			var span trace.Span
			if w.tr != nil {
				span = w.tr.start(ctx, spanInsert, b.links, b.linksDropped, attribute.String("db.collection.name", t.String()),
					attribute.Int("inlet.rows", n))
			}
			err := w.sink.insert(ctx, t, b)
			end(span, err)
			if err != nil {
				return err
			}
		}
		b.done[t] = true
		if t == chstore.ActivityLog {
			w.at(FailBetweenInsert)
		}
	}
	w.at(FailAfterInserts)
	return nil
}

func (w *writer) at(failpoint string) {
	if w.failpoint != nil {
		w.failpoint(failpoint)
	}
}

// fire produces the batch's events and waits for every ack; those that failed for a transient reason
// are produced again. An event Kafka refuses for good (too large for the topic, an invalid record) is
// that request's failure: its activity row says why, its events row is dropped, and the batch goes on.
func (w *writer) fire(ctx context.Context, b *batch) error {
	pending := make([]*kgo.Record, 0, len(b.fire))
	for _, f := range b.fire {
		pending = append(pending, f.rec)
	}
	var refused map[int]bool // events rows to drop, by index
	var waiting *fireRecord  // the first record being retried, for the log
	about := logFunc(func() []any {
		if waiting == nil {
			return nil
		}
		row := &b.activity[waiting.activity]
		return []any{"webhook_id", row.WebhookID, "partition", row.Partition, "offset", row.Offset, "request_id", row.RequestID}
	})
	err := w.retry.do(ctx, "kafka produce", about, func(ctx context.Context) error {
		var failed, suspects []*kgo.Record
		var firstErr error
		nRefused := 0
		sort := func(r kgo.ProduceResult, alone bool) {
			if r.Err == nil {
				return
			}
			if reason, ok := refusedForGood(r.Err); ok {
				if !alone {
					// The broker refuses a whole batch when it is too large: the records that were in it
					// with the culprit are tried again alone before any is refused.
					suspects = append(suspects, r.Record)
					return
				}
				if refused == nil {
					refused = map[int]bool{}
				}
				f := w.fireRecordOf(b, r.Record)
				w.refuseEvent(b, f, reason, r.Err)
				refused[f.event] = true
				nRefused++
				return
			}
			failed = append(failed, r.Record)
			if firstErr == nil {
				firstErr = r.Err
				waiting = w.fireRecordOf(b, r.Record)
			}
		}
		for _, r := range w.cl.ProduceSync(ctx, pending...) {
			sort(r, len(pending) == 1)
		}
		// One at a time, so that each is a batch of its own: nothing else is produced meanwhile.
		for _, rec := range suspects {
			for _, r := range w.cl.ProduceSync(ctx, rec) {
				sort(r, true)
			}
		}
		w.m.fired.Add(float64(len(pending) - len(failed) - nRefused))
		pending = failed
		if firstErr != nil {
			return fmt.Errorf("produce %d events to %s: %w", len(failed), w.eventsTopic, firstErr)
		}
		return nil
	})
	if err == nil && len(refused) > 0 {
		b.dropEvents(refused)
	}
	return err
}

// refusedForGood tells the produce errors that no retry can cure, with the failure reason they give
// their request. Everything else (leaders moving, timeouts, authorization, an unknown topic) is the
// pipeline's, not the record's, and is retried.
func refusedForGood(err error) (reason string, ok bool) {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return wire.ReasonEventTooLarge, true
	case errors.Is(err, kerr.InvalidRecord):
		return wire.ReasonEventRejected, true
	}
	return "", false
}

// fireRecordOf finds the batch's fireRecord of a produced record (only on the error path).
func (w *writer) fireRecordOf(b *batch, r *kgo.Record) *fireRecord {
	for i := range b.fire {
		if b.fire[i].rec == r {
			return &b.fire[i]
		}
	}
	panic("pipeline: produced record not in the batch")
}

// refuseEvent turns the request of an event Kafka refused into a failure.
func (w *writer) refuseEvent(b *batch, f *fireRecord, reason string, err error) {
	if f.refused {
		return // already refused by an earlier attempt of this flush
	}
	f.refused = true
	row := &b.activity[f.activity]
	row.EventsFired--
	if row.Status != chstore.StatusFailed {
		row.Status, row.Reason, row.Attributes = chstore.StatusFailed, reason, ""
	}
	detail := "kafka refused the event: " + err.Error()
	if ev := &b.events[f.event]; ev.Element >= 0 {
		detail = fmt.Sprintf("kafka refused the event of element %d: %v", ev.Element, err)
		// The element's outcome says so too: a heal after a crash rebuilds only what it says fired.
		if out, mErr := refuseOutcome(row.Outcomes, ev.Element, reason, detail); mErr == nil {
			row.Outcomes = out
		} else {
			w.log.Error("outcomes of a fan-out could not be updated for a refused event", "err", mErr,
				"request_id", row.RequestID, "element", ev.Element)
		}
	}
	if row.Detail != "" {
		detail = row.Detail + "; " + detail
	}
	row.Detail = detail
	w.log.Warn("event refused by kafka; its request fails", "reason", reason, "err", err,
		"webhook_id", row.WebhookID, "partition", row.Partition, "offset", row.Offset, "request_id", row.RequestID)
}

// refuseOutcome marks element index of a fan-out's outcomes (appendOutcomes' JSON array) failed with
// reason and detail, its attributes gone. Only on Kafka's refusal of an event, which is rare: the
// array is decoded and written again.
func refuseOutcome(outcomes string, index int32, reason, detail string) (string, error) {
	var elems []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(outcomes), &elems); err != nil {
		return outcomes, err
	}
	for _, e := range elems {
		var i int32
		if json.Unmarshal(e["index"], &i) != nil || i != index {
			continue
		}
		e["status"], _ = json.Marshal(chstore.StatusFailed)
		e["reason"], _ = json.Marshal(reason)
		e["detail"], _ = json.Marshal(detail)
		delete(e, "attributes")
	}
	out, err := json.Marshal(elems)
	return string(out), err
}
