package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestFence(t *testing.T) {
	const grace = 50 * time.Millisecond
	newFence := func() (*fence, *atomic.Int32) {
		var n atomic.Int32
		return &fence{grace: grace, onAbandon: func(time.Duration) { n.Add(1) }}, &n
	}
	cancelled := func(ctx context.Context, within time.Duration) bool {
		select {
		case <-ctx.Done():
			return true
		case <-time.After(within):
			return false
		}
	}
	ctx := context.Background()

	t.Run("work is cancelled a grace after a rebalance starts waiting", func(t *testing.T) {
		f, n := newFence()
		wctx := f.begin(ctx)
		start := time.Now()
		f.rebalanceWaiting()
		if !cancelled(wctx, 30*time.Second) {
			t.Fatal("work not cancelled")
		}
		if waited := time.Since(start); waited < grace {
			t.Fatalf("cancelled after %s; want at least the grace %s", waited, grace)
		}
		if !errors.Is(context.Cause(wctx), errRebalance) || !abandoned(ctx, wctx) {
			t.Fatalf("cause = %v; want errRebalance", context.Cause(wctx))
		}
		f.end()
		if n.Load() != 1 {
			t.Fatalf("onAbandon called %d times; want 1", n.Load())
		}
	})

	t.Run("a rebalance that got its turn cancels nothing", func(t *testing.T) {
		f, n := newFence()
		wctx := f.begin(ctx)
		f.rebalanceWaiting()
		f.rebalanceRunning()
		if cancelled(wctx, 3*grace) {
			t.Fatal("work cancelled after the rebalance ran")
		}
		f.end()
		if n.Load() != 0 {
			t.Fatalf("onAbandon called %d times; want 0", n.Load())
		}
	})

	t.Run("work begun while a rebalance waits is cancelled by the same deadline", func(t *testing.T) {
		f, _ := newFence()
		f.rebalanceWaiting()
		time.Sleep(grace)
		wctx := f.begin(ctx)
		if !errors.Is(context.Cause(wctx), errRebalance) {
			t.Fatalf("work begun past the deadline: cause %v; want errRebalance at once", context.Cause(wctx))
		}
		f.end()
	})

	t.Run("ended work is not cancelled, and the next unit has its own context", func(t *testing.T) {
		f, n := newFence()
		wctx := f.begin(ctx)
		f.end()
		if context.Cause(wctx) != context.Canceled {
			t.Fatalf("ended work's cause = %v; want context.Canceled", context.Cause(wctx))
		}
		f.rebalanceWaiting()
		time.Sleep(2 * grace)
		if n.Load() != 0 {
			t.Fatal("a rebalance waiting between units of work abandoned something")
		}
		f.rebalanceRunning()
		next := f.begin(ctx)
		if cancelled(next, 2*grace) {
			t.Fatal("the next unit of work was cancelled")
		}
		f.end()
	})

	t.Run("stopping is not abandoning", func(t *testing.T) {
		f, _ := newFence()
		parent, stop := context.WithCancel(ctx)
		wctx := f.begin(parent)
		stop()
		if abandoned(parent, wctx) {
			t.Fatal("a stopped pipeline's work counted as abandoned")
		}
		f.end()
	})
}
