package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Fencing. A consumer that holds up a group rebalance for longer than Kafka's rebalance timeout is
// removed from the group and its partitions go to another member; if it then went on writing its batch
// (a ClickHouse insert retried through an outage, say) while the new owner wrote the same offsets, rows
// would be duplicated. ClickHouse has no transaction to fence such a writer, so the pipeline fences
// itself, on both sides of a hand-over:
//
//   - The member giving partitions up abandons any work still running RebalanceGrace after a rebalance
//     started waiting for it (the batch is dropped and its partitions rewound to what is known written,
//     as after a restart), so it never writes once Kafka may have moved its partitions.
//   - Every insert carries a query id naming its source partitions, and a member taking partitions over
//     waits until no insert naming them is still running on the server before it reads the high-water
//     marks: an insert the previous owner gave up on but the server was still applying is counted, not
//     redone.
//
// What this cannot cover is a member frozen (SIGSTOP, a VM pause) between deciding to insert and the
// insert reaching the server for longer than the session timeout; see docs/clickhouse.md.

// errRebalance is the cause of a work context cancelled so that a waiting rebalance can proceed.
var errRebalance = errors.New("a consumer-group rebalance waited longer than rebalance_grace")

// fence tracks the consume loop's current unit of work (a poll and what it flushes) and cancels it when
// a rebalance has waited for it longer than the grace.
type fence struct {
	grace time.Duration
	// onAbandon is called (without mu) when work is cancelled for a rebalance.
	onAbandon func(waited time.Duration)

	mu      sync.Mutex
	waiting time.Time               // when a rebalance started waiting; zero when none is
	cancel  context.CancelCauseFunc // the running work's; nil between units of work
	timer   *time.Timer
}

// begin starts a unit of work; its context is cancelled with errRebalance once a rebalance has waited
// longer than the grace. end must follow.
func (f *fence) begin(ctx context.Context) context.Context {
	wctx, cancel := context.WithCancelCause(ctx)
	f.mu.Lock()
	f.cancel = cancel
	now := f.armLocked()
	f.mu.Unlock()
	if now != nil {
		now()
	}
	return wctx
}

// end finishes the unit of work begun last.
func (f *fence) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	if f.cancel != nil {
		f.cancel(nil)
		f.cancel = nil
	}
}

// rebalanceWaiting notes that a rebalance callback is waiting for the consume loop.
func (f *fence) rebalanceWaiting() {
	f.mu.Lock()
	if f.waiting.IsZero() {
		f.waiting = time.Now()
	}
	now := f.armLocked()
	f.mu.Unlock()
	if now != nil {
		now()
	}
}

// rebalanceRunning notes that the waiting callback got its turn.
func (f *fence) rebalanceRunning() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waiting = time.Time{}
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
}

// armLocked sets the deadline of the current work if a rebalance is waiting. When the deadline has
// passed already (work begun while a rebalance waited that long), it returns the cancellation for the
// caller to run at once, after it unlocks mu, rather than leave it to a timer goroutine.
func (f *fence) armLocked() (now func()) {
	if f.cancel == nil || f.waiting.IsZero() || f.timer != nil {
		return nil
	}
	cancel, since := f.cancel, f.waiting
	abandon := func() {
		// Counted and logged before the work sees its cancellation, so that whoever waits on the
		// cancellation also sees the abandonment recorded.
		if f.onAbandon != nil {
			f.onAbandon(time.Since(since))
		}
		cancel(errRebalance)
	}
	if time.Until(since.Add(f.grace)) <= 0 {
		// A stopped timer marks the work as dealt with until end or rebalanceRunning.
		f.timer = time.NewTimer(time.Hour)
		f.timer.Stop()
		return abandon
	}
	f.timer = time.AfterFunc(time.Until(since.Add(f.grace)), func() {
		f.mu.Lock()
		current := f.cancel != nil && f.waiting.Equal(since)
		f.mu.Unlock()
		if current {
			abandon()
		}
	})
	return nil
}

// abandoned reports whether work failed because the fence cancelled it (and not because the pipeline
// is stopping).
func abandoned(ctx, wctx context.Context) bool {
	return ctx.Err() == nil && errors.Is(context.Cause(wctx), errRebalance)
}
