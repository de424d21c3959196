package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumer owns the Kafka side of the pipeline: the poll loop, the partitions assigned and revoked,
// the fence that abandons work holding up a rebalance, rewinding to what is known written, committing
// offsets, and watching that every partition makes progress. It hands each poll to the processor and
// flushes when the batch is due.
//
// One lock, mu, serialises the polling goroutine and franz-go's rebalance callbacks, and covers the
// processor's and the batch's state, which only ever change under it.
type consumer struct {
	cl    *kgo.Client
	cfg   *Config
	topic string // the requests topic
	log   *slog.Logger
	m     *metrics
	proc  *processor
	// flush writes the batch and empties it (Pipeline.flush).
	flush func(ctx context.Context) error

	// progress is what the stall watch reads while the consume loop may be stuck holding mu.
	progress progress
	fence    fence

	mu sync.Mutex
	b  *batch
	// resume is, per partition, the first offset not known to be written: where to rewind to if the
	// work in memory is abandoned.
	resume map[int32]kgo.EpochOffset
	// rewindPending asks the consume loop to abandon and rewind before handling its next poll (a flush
	// on revocation failed, so the batch's state is unknown).
	rewindPending bool
}

func (c *consumer) consume(ctx context.Context) error {
	c.log.Info("pipeline consuming", "topic", c.topic, "group", c.cfg.Group)
	var runErr error
	policy := newFlushPolicy(c.cfg)
	perRecord := 0 // the last poll's average record size
	for ctx.Err() == nil {
		c.mu.Lock()
		started := !c.b.started.IsZero()
		wait := policy.pollWait(c.b.started, time.Now())
		n := policy.pollRecords(c.b.bytes, perRecord)
		c.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, wait)
		polling := time.Now()
		fs := c.cl.PollRecords(pctx, n)
		waited := time.Since(polling)
		cancel()
		if fs.IsClientClosed() {
			break
		}
		policy.polled(waited, started, caughtUp(fs, n))
		if size := recordBytes(fs); size > 0 {
			perRecord = size
		}
		fs.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				c.log.Warn("fetch failed", "topic", topic, "partition", part, "err", err)
			}
		})
		wctx := c.fence.begin(ctx)
		c.mu.Lock()
		var err error
		if c.rewindPending {
			c.abandon(fs)
		} else {
			c.noteResume(fs)
			err = c.proc.handle(wctx, fs)
			if now := time.Now(); err == nil && !c.b.empty() && policy.due(c.b.rows(), c.b.bytes, c.b.started, now) {
				err = c.flush(wctx)
				policy.flushed(time.Since(now))
			}
			if err != nil && abandoned(ctx, wctx) {
				c.abandon(fs)
				err = nil
			}
		}
		c.mu.Unlock()
		c.fence.end()
		c.cl.AllowRebalance()
		if err != nil {
			if ctx.Err() == nil {
				runErr = err
			}
			break
		}
	}
	c.log.Info("pipeline stopping: fetching stopped, flushing the last batch")
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
	defer cancel()
	c.mu.Lock()
	if err := c.flush(fctx); err != nil {
		c.log.Warn("last batch not flushed; the next consumer redoes it", "err", err, "rows", c.b.rows())
	} else {
		c.log.Info("last batch flushed and committed")
	}
	// Whatever happens now, this process writes nothing more.
	c.b.reset()
	c.proc.forget(nil)
	c.mu.Unlock()
	c.cl.Close()
	c.log.Info("kafka client closed")
	return runErr
}

// onRevoked runs at the end of every group session (cooperative rebalancing: with the partitions moving
// to another consumer, often none). It flushes the batch so that nothing consumed is redone elsewhere;
// if ClickHouse cannot take it within the grace, the batch is abandoned (not committed): the revoked
// partitions are redone by their new owner, the others by this process after a rewind.
func (c *consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	// The consume loop may hold mu through a flush begun after an empty poll, which the client's own
	// rebalance gate does not see.
	c.fence.rebalanceWaiting()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fence.rebalanceRunning()
	parts := partitionSet(revoked)
	fctx, cancel := context.WithTimeout(ctx, c.cfg.RebalanceGrace)
	defer cancel()
	if err := c.flush(fctx); err != nil {
		c.log.Warn("flush on revoke failed; the batch is abandoned and redone from what is known written", "err", err)
		c.m.abandoned.Inc()
		c.giveUpBatch()
	}
	c.forget(parts)
	if len(parts) > 0 {
		c.log.Info("partitions revoked", "partitions", slices.Sorted(mapsKeys(parts)))
	}
}

// onLost abandons the batch without writing it (this consumer no longer owns some of its partitions):
// the lost partitions' new owner reads the high-water marks and redoes whatever is missing; the others
// are rewound.
func (c *consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.fence.rebalanceWaiting()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fence.rebalanceRunning()
	parts := partitionSet(lost)
	if !c.b.empty() {
		c.m.abandoned.Inc()
	}
	c.giveUpBatch()
	c.forget(parts)
	c.log.Warn("partitions lost", "partitions", slices.Sorted(mapsKeys(parts)))
}

// giveUpBatch drops the batch and all partition state; the consume loop rewinds the partitions still
// assigned before it handles another poll (SetOffsets belongs in the polling goroutine).
func (c *consumer) giveUpBatch() {
	c.b.reset()
	c.proc.forget(nil)
	c.rewindPending = true
}

// forget drops what is known of partitions no longer assigned.
func (c *consumer) forget(parts map[int32]bool) {
	c.proc.forget(parts)
	for x := range parts {
		delete(c.resume, x)
		c.progress.forget(x)
		c.m.lag.DeleteLabelValues(partitionLabel(x))
	}
}

func partitionSet(m map[string][]int32) map[int32]bool {
	parts := map[int32]bool{}
	for _, ps := range m {
		for _, x := range ps {
			parts[x] = true
		}
	}
	return parts
}

func mapsKeys(m map[int32]bool) func(func(int32) bool) {
	return func(yield func(int32) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// commit stores the consumed offsets. They are advisory (the high-water marks decide what is written),
// so a failed commit only costs a re-read after a restart.
func (c *consumer) written(ctx context.Context, b *batch) {
	c.commit(ctx, b)
	for x, m := range b.marks {
		c.resume[x] = m
		c.progress.advance(x, m.Offset)
	}
}

func (c *consumer) commit(ctx context.Context, b *batch) {
	if len(b.marks) == 0 {
		return
	}
	offsets := map[string]map[int32]kgo.EpochOffset{c.topic: maps(b.marks)}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.cl.CommitOffsetsSync(cctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			c.log.Warn("offset commit failed; records will be re-read and skipped after a restart", "err", err)
		}
	})
}

func maps(m map[int32]kgo.EpochOffset) map[int32]kgo.EpochOffset {
	out := make(map[int32]kgo.EpochOffset, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// abandon drops everything this process holds in memory for its partitions, as a restart would: the
// batch (nothing of it is committed), the high-water marks, heal lists and streaks (read again, after
// in-flight inserts end, when the partition's next records arrive). The partitions still assigned are
// rewound to the first offset not known to be written, so their records are fetched again; the marks
// make writing them exactly-once. fs is the poll being handled, whose records may not all have been
// looked at. Call it from the consume loop before AllowRebalance, holding c.mu.
func (c *consumer) abandon(fs kgo.Fetches) {
	c.b.reset()
	c.proc.forget(nil)
	c.noteResume(fs)
	if len(c.resume) > 0 {
		c.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{c.topic: maps(c.resume)})
	}
	c.log.Warn("in-memory batch abandoned; partitions rewound to what is known written", "rewound", len(c.resume))
	clear(c.resume)
	c.rewindPending = false
}

// noteResume records, for each partition of fs not yet tracked, its first record's offset: the
// position to rewind to if the work on it is abandoned.
func (c *consumer) noteResume(fs kgo.Fetches) {
	fs.EachPartition(func(ft kgo.FetchTopicPartition) {
		if len(ft.Records) == 0 {
			return
		}
		if _, ok := c.resume[ft.Partition]; !ok {
			r := ft.Records[0]
			c.resume[ft.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
			c.progress.start(ft.Partition, r.Offset)
		}
	})
}

// member is this process's member id and the generation it last joined (sink.claim).
func (c *consumer) member() (string, int32) { return c.cl.GroupMetadata() }

// current asks the group coordinator whether this process is still a member of the generation it last
// joined: a heartbeat with that generation, which the coordinator refuses (ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS) unless it is the group's current one.
func (c *consumer) current(ctx context.Context) error {
	member, gen := c.cl.GroupMetadata()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = c.cfg.Group, gen, member
	if c.cfg.InstanceID != "" {
		req.InstanceID = &c.cfg.InstanceID
	}
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return fmt.Errorf("heartbeat to the group coordinator: %w", err)
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

// Ready fails while a partition is stalled: records are waiting and none has been written for
// StallAfter. A pipeline that cannot make progress (a dependency down, or a defect) is then visible
// to the orchestrator and the operator, not only in its logs.
func (c *consumer) Ready(context.Context) error {
	c.progress.mu.Lock()
	defer c.progress.mu.Unlock()
	if c.progress.stalled != "" {
		return fmt.Errorf("stalled: %s", c.progress.stalled)
	}
	return nil
}

// stallWatch is the stall detector's memory of one partition with lag: where it stood when the lag
// was first seen at that position.
type stallWatch struct {
	pos    int64
	since  time.Time
	warned bool
}

// watchProgress compares, every StallAfter/4 (at most 5s), each assigned partition's log end offset
// with what is written: the difference is inlet_pipeline_lag_records, the real backlog whether or not
// the consume loop is polling. A partition whose position has not moved for StallAfter while it has lag
// is stalled: counted in inlet_pipeline_stalled_partitions, logged once per stall with the record it
// waits on, and reported by Ready.
func (c *consumer) watchProgress(ctx context.Context) error {
	adm := kadm.NewClient(c.cl)
	every := min(max(c.cfg.StallAfter/4, 100*time.Millisecond), 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	watch := map[int32]*stallWatch{}
	var lastWarn time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pos := c.progress.snapshot()
		if len(pos) == 0 {
			clear(watch)
			c.m.stalled.Set(0)
			c.progress.setStalled("")
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
		ends, err := adm.ListEndOffsets(lctx, c.topic)
		cancel()
		if err != nil {
			if ctx.Err() == nil && time.Since(lastWarn) > time.Minute {
				lastWarn = time.Now()
				c.log.Warn("end offsets unavailable; lag not updated", "err", err)
			}
			continue
		}
		now := time.Now()
		var stalled []string
		for part, at := range pos {
			end, ok := ends.Lookup(c.topic, part)
			if !ok || end.Err != nil {
				continue
			}
			lag := max(end.Offset-at, 0)
			c.m.lag.WithLabelValues(partitionLabel(part)).Set(float64(lag))
			w := watch[part]
			switch {
			case lag == 0:
				delete(watch, part)
				continue
			case w == nil || w.pos != at:
				watch[part] = &stallWatch{pos: at, since: now}
				continue
			case now.Sub(w.since) < c.cfg.StallAfter:
				continue
			}
			stalled = append(stalled, fmt.Sprintf("partition %d waits at offset %d with %d records behind it, nothing written for %s",
				part, at, lag, now.Sub(w.since).Round(time.Second)))
			if !w.warned {
				w.warned = true
				c.log.Warn("partition stalled: records are waiting and none has been written", "partition", part,
					"offset", at, "lag", lag, "for", now.Sub(w.since).Round(time.Second))
			}
		}
		for part := range watch {
			if _, ok := pos[part]; !ok {
				delete(watch, part)
			}
		}
		sort.Strings(stalled)
		c.m.stalled.Set(float64(len(stalled)))
		c.progress.setStalled(strings.Join(stalled, "; "))
	}
}
