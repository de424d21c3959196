package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/bench/load"
	"github.com/inlet-dev/inlet/internal/wire"
)

// offsets are the end offsets of a topic's partitions at one moment.
type offsets map[int32]int64

// endOffsets lists the topic's end offsets (the next offset each partition will write).
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (offsets, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := offsets{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// span is the records a run appended: per partition, [from, to).
type span struct {
	topic    string
	from, to offsets
}

func (s span) records() int64 {
	var n int64
	for p, to := range s.to {
		n += to - s.from[p]
	}
	return n
}

// topicCount is what the records of a span say.
type topicCount struct {
	Records  int64            // all records in the span
	Accepted map[[16]byte]int // request id → records with edge outcome "accepted"
	Outcomes map[string]int64 // records by edge outcome
}

// readTopicTimeout bounds reading a span back.
const readTopicTimeout = 2 * time.Minute

// countTopic reads every record of the span back (franz-go, direct partition consumption) and counts
// accepted records by request id. Peer records (no Inlet headers) are counted in Records only.
func countTopic(ctx context.Context, brokers []string, sp span) (*topicCount, error) {
	out := &topicCount{Accepted: map[[16]byte]int{}, Outcomes: map[string]int64{}}
	want := sp.records()
	if want == 0 {
		return out, nil
	}
	parts := map[int32]kgo.Offset{}
	for p, to := range sp.to {
		if to > sp.from[p] {
			parts[p] = kgo.NewOffset().At(sp.from[p])
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("inlet-bench-count"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{sp.topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, readTopicTimeout)
	defer cancel()
	remaining := map[int32]int64{}
	for p, to := range sp.to {
		if n := to - sp.from[p]; n > 0 {
			remaining[p] = n
		}
	}
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s back: %d of %d records after %s: %w", sp.topic, out.Records, want, readTopicTimeout, err)
		}
		fs.EachError(func(t string, p int32, e error) { err = fmt.Errorf("fetch %s/%d: %w", t, p, e) })
		if err != nil {
			return nil, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= sp.to[r.Partition] || r.Offset < sp.from[r.Partition] {
				return
			}
			out.Records++
			if remaining[r.Partition]--; remaining[r.Partition] <= 0 {
				delete(remaining, r.Partition)
			}
			var req wire.Request
			wire.DecodeRequest(r, &req) // a malformed record counts with what could be read
			if req.Outcome != "" {
				out.Outcomes[string(req.Outcome)]++
			}
			if req.Outcome == wire.OutcomeAccepted {
				out.Accepted[req.ID]++
			}
		})
	}
	return out, nil
}

// activityCount is what ClickHouse holds for a span of webhooks.requests.
type activityCount struct {
	Rows        int64                   // rows whose source offset is in the span
	ByID        map[[16]byte]int        // request id → rows
	Statuses    map[string]int64        // rows by status (success / failed)
	EventsFired int64                   // sum of the rows' events_fired
	ByRecord    map[recordKey]uuid.UUID // the request id of each row's source record
}

// recordKey is a webhooks.requests record: the activity_log row and the events rows it gave share it
// (src_partition, src_offset).
type recordKey struct {
	Partition int32
	Offset    int64
}

// countActivity counts the activity_log rows that came from the span's offsets. received is a lower
// bound of the rows' received_at, so that ClickHouse reads only the day partitions of the run.
func countActivity(ctx context.Context, conn driver.Conn, sp span, received time.Time) (*activityCount, error) {
	out := &activityCount{ByID: map[[16]byte]int{}, Statuses: map[string]int64{}, ByRecord: map[recordKey]uuid.UUID{}}
	for p, to := range sp.to {
		from := sp.from[p]
		if to <= from {
			continue
		}
		q := fmt.Sprintf("SELECT request_id, toString(status), src_offset, events_fired FROM activity_log WHERE received_at >= toDateTime(%d) AND src_partition = %d AND src_offset >= %d AND src_offset < %d",
			received.Unix(), p, from, to)
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("activity rows of partition %d: %w", p, err)
		}
		for rows.Next() {
			var id uuid.UUID
			var status string
			var off int64
			var fired uint32
			if err := rows.Scan(&id, &status, &off, &fired); err != nil {
				rows.Close()
				return nil, fmt.Errorf("activity rows of partition %d: %w", p, err)
			}
			out.Rows++
			out.ByID[id]++
			out.Statuses[status]++
			out.EventsFired += int64(fired)
			out.ByRecord[recordKey{p, off}] = id
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("activity rows of partition %d: %w", p, err)
		}
	}
	return out, nil
}

// eventRow is one row of the events table, as the check reads it.
type eventRow struct {
	Record  recordKey
	Element int32 // the fan-out element's index; -1 for a request's single event
	ID      uuid.UUID
}

// readEvents reads the events rows that came from the span's records. received is a lower bound of
// their occurred_at (the edge's receive time), so that ClickHouse reads only the run's day partitions.
func readEvents(ctx context.Context, conn driver.Conn, sp span, received time.Time) ([]eventRow, error) {
	var out []eventRow
	for p, to := range sp.to {
		from := sp.from[p]
		if to <= from {
			continue
		}
		q := fmt.Sprintf("SELECT src_offset, element, event_id FROM events WHERE occurred_at >= toDateTime(%d) AND src_partition = %d AND src_offset >= %d AND src_offset < %d",
			received.Unix(), p, from, to)
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("events rows of partition %d: %w", p, err)
		}
		for rows.Next() {
			r := eventRow{Record: recordKey{Partition: p}}
			if err := rows.Scan(&r.Record.Offset, &r.Element, &r.ID); err != nil {
				rows.Close()
				return nil, fmt.Errorf("events rows of partition %d: %w", p, err)
			}
			out = append(out, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("events rows of partition %d: %w", p, err)
		}
	}
	return out, nil
}

// eventCount is what the events rows of a span say, against the activity rows of the same records.
type eventCount struct {
	Rows    int64 // events rows from the span's records
	Unique  int64 // distinct event ids among them
	WrongID int64 // ids other than the request id (element -1) or wire.ElementEventID(request id, element)
	Orphans int64 // rows whose record has no activity row
}

// countEvents checks every events row's id against the request id of its record's activity row.
func countEvents(ac *activityCount, rows []eventRow) eventCount {
	out := eventCount{Rows: int64(len(rows))}
	seen := make(map[uuid.UUID]struct{}, len(rows))
	for _, r := range rows {
		seen[r.ID] = struct{}{}
		req, ok := ac.ByRecord[r.Record]
		switch {
		case !ok:
			out.Orphans++
		case r.Element < 0 && r.ID != req, r.Element >= 0 && r.ID != wire.ElementEventID(req, int(r.Element)):
			out.WrongID++
		}
	}
	out.Unique = int64(len(seen))
	return out
}

// activityRows counts the rows of the span, cheaply, to wait for the pipeline.
func activityRows(ctx context.Context, conn driver.Conn, sp span, received time.Time) (int64, error) {
	var conds []string
	for p, to := range sp.to {
		if to > sp.from[p] {
			conds = append(conds, fmt.Sprintf("(src_partition = %d AND src_offset >= %d AND src_offset < %d)", p, sp.from[p], to))
		}
	}
	if len(conds) == 0 {
		return 0, nil
	}
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM activity_log WHERE received_at >= toDateTime(%d) AND (%s)", received.Unix(), strings.Join(conds, " OR "))
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("count activity rows: %w", err)
	}
	return int64(n), nil
}

// processedRate is the pipeline's records and events per second over the span: rows (and the sum of
// their events_fired) / (last - first processed_ms).
func processedRate(ctx context.Context, conn driver.Conn, sp span, received time.Time) (*PipelineRate, error) {
	out := &PipelineRate{}
	var conds []string
	for p, to := range sp.to {
		if to > sp.from[p] {
			conds = append(conds, fmt.Sprintf("(src_partition = %d AND src_offset >= %d AND src_offset < %d)", p, sp.from[p], to))
		}
	}
	if len(conds) == 0 {
		return out, nil
	}
	var n, events, lo, hi uint64
	q := fmt.Sprintf("SELECT count(), sum(events_fired), min(processed_ms), max(processed_ms) FROM activity_log WHERE received_at >= toDateTime(%d) AND (%s)", received.Unix(), strings.Join(conds, " OR "))
	if err := conn.QueryRow(ctx, q).Scan(&n, &events, &lo, &hi); err != nil {
		return nil, fmt.Errorf("pipeline rate: %w", err)
	}
	out.Records, out.Events = int64(n), int64(events)
	if hi > lo {
		secs := float64(hi-lo) / 1000
		out.PerSecond, out.EventsPerSecond = float64(n)/secs, float64(events)/secs
	}
	return out, nil
}

// e2eProbe measures, for a sample of accepted requests, the time from the 202 to the row being
// visible in ClickHouse's activity_log: it polls for the sampled request ids every pollInterval, so
// a measure is late by at most one interval plus a query.
type e2eProbe struct {
	conn     driver.Conn
	since    time.Time
	interval time.Duration // between samples
	poll     time.Duration

	mu      sync.Mutex
	last    time.Time
	phase   string // the phase the next samples are taken in (setPhase)
	pending map[uuid.UUID]e2ePending
	seen    []e2eSample
	lost    int64 // samples dropped because too many were pending
}

// e2ePending is a sampled request not yet seen in ClickHouse: when it was answered, in which phase.
type e2ePending struct {
	at    time.Time
	phase string
}

// e2eSample is one measure: the time from the 202 to the row, and the phase the request was sent in.
type e2eSample struct {
	d     time.Duration
	phase string
}

// Probe limits: samples per second taken from the load, ids pending at once (one IN list), poll period.
const (
	e2eSampleEvery = 20 * time.Millisecond
	e2eMaxPending  = 2000
	e2ePollEvery   = 50 * time.Millisecond
)

func newE2EProbe(conn driver.Conn) *e2eProbe {
	return &e2eProbe{conn: conn, since: time.Now().Add(-time.Minute), interval: e2eSampleEvery, poll: e2ePollEvery,
		pending: map[uuid.UUID]e2ePending{}}
}

// setPhase labels the samples taken from now on with the phase's name.
func (e *e2eProbe) setPhase(name string) {
	e.mu.Lock()
	e.phase = name
	e.mu.Unlock()
}

// observe is load.Config.OnAccepted: it keeps one answer per interval.
func (e *e2eProbe) observe(at time.Time, body []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if at.Sub(e.last) < e.interval {
		return
	}
	raw, ok := load.RequestID(body)
	if !ok {
		return
	}
	id := uuid.UUID(raw)
	e.last = at
	if len(e.pending) >= e2eMaxPending {
		e.lost++
		return
	}
	e.pending[id] = e2ePending{at: at, phase: e.phase}
}

// run polls until ctx is done.
func (e *e2eProbe) run(ctx context.Context) error {
	t := time.NewTicker(e.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := e.pollOnce(ctx); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

func (e *e2eProbe) pollOnce(ctx context.Context) error {
	e.mu.Lock()
	ids := make([]string, 0, len(e.pending))
	var oldest time.Time
	for id, p := range e.pending {
		ids = append(ids, "'"+id.String()+"'")
		if oldest.IsZero() || p.at.Before(oldest) {
			oldest = p.at
		}
	}
	e.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	// No row of a pending request was received before the oldest was answered (less a margin for
	// received_at's whole seconds): the bound lets ClickHouse skip the granules of earlier rows (received_at
	// follows the webhook in the sort key), so a poll costs what is recent, not the whole run.
	from := max(e.since.Unix(), oldest.Add(-2*time.Second).Unix())
	q := fmt.Sprintf("SELECT request_id FROM activity_log WHERE received_at >= toDateTime(%d) AND request_id IN (%s)",
		from, strings.Join(ids, ","))
	rows, err := e.conn.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("end-to-end poll: %w", err)
	}
	defer rows.Close()
	now := time.Now()
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("end-to-end poll: %w", err)
		}
		e.mu.Lock()
		if p, ok := e.pending[id]; ok {
			e.seen = append(e.seen, e2eSample{d: now.Sub(p.at), phase: p.phase})
			delete(e.pending, id)
		}
		e.mu.Unlock()
	}
	return rows.Err()
}

// finish waits up to wait for the pending samples, then returns the measures and how many samples
// were never seen.
func (e *e2eProbe) finish(ctx context.Context, wait time.Duration) ([]e2eSample, int64, error) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		n := len(e.pending)
		e.mu.Unlock()
		if n == 0 {
			break
		}
		if err := e.pollOnce(ctx); err != nil {
			return nil, 0, err
		}
		time.Sleep(e.poll)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen, int64(len(e.pending)), nil
}
