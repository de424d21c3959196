package webhook

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/inlet-dev/inlet/internal/domainerr"
)

// BatchLoader is a HookLoader that reads in one query (HooksByID) the webhooks asked for while a
// query is running: under a burst of cache misses (a cold process with many webhooks, every request
// for a webhook not seen yet) the misses share round trips instead of each taking one of the pool's
// connections for a query of its own, and a query of n ids costs much less than n queries
// (BenchmarkCacheMisses). At most limit queries run at once; a miss arriving when none runs starts one
// at once, so an idle process adds no delay.
type BatchLoader struct {
	src     HookBatchLoader
	max     int           // ids per query
	limit   int           // queries at once
	timeout time.Duration // of one query

	mu      sync.Mutex
	queue   []*hookWaiter
	running int // goroutines running queries (leaders)
}

type hookWaiter struct {
	id   string
	h    *Hook
	err  error
	done chan struct{}
}

// NewBatchLoader reads through src up to max ids per query, limit queries at once, each bounded by
// timeout.
func NewBatchLoader(src HookBatchLoader, max, limit int, timeout time.Duration) *BatchLoader {
	return &BatchLoader{src: src, max: max, limit: limit, timeout: timeout}
}

// Hook implements HookLoader: it answers as Store.Hook does (an error wrapping domainerr.ErrNotFound
// for an unknown or deleted id).
func (b *BatchLoader) Hook(ctx context.Context, publicID string) (*Hook, error) {
	w := &hookWaiter{id: publicID, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, w)
	lead := b.running < b.limit
	if lead {
		b.running++
	}
	b.mu.Unlock()
	if lead {
		go b.lead()
	}
	select {
	case <-w.done:
		return w.h, w.err
	case <-ctx.Done():
		return nil, fmt.Errorf("load webhook %s: %w", publicID, ctx.Err())
	}
}

// HooksByID reads through to the source (Cache.Prefetch).
func (b *BatchLoader) HooksByID(ctx context.Context, ids []string) ([]*Hook, error) {
	return b.src.HooksByID(ctx, ids)
}

// lead runs queries for the queue until it is empty, in a goroutine of its own: a caller waits for its
// answer or its context, never for others' queries.
func (b *BatchLoader) lead() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		n := min(len(b.queue), b.max)
		batch := b.queue[:n:n]
		b.queue = append([]*hookWaiter(nil), b.queue[n:]...)
		b.mu.Unlock()
		b.query(batch)
	}
}

func (b *BatchLoader) query(batch []*hookWaiter) {
	ids := make([]string, len(batch))
	for i, w := range batch {
		ids[i] = w.id
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	hooks, err := b.src.HooksByID(ctx, ids)
	cancel()
	byID := make(map[string]*Hook, len(hooks))
	for _, h := range hooks {
		byID[h.PublicID] = h
	}
	for _, w := range batch {
		switch h, ok := byID[w.id]; {
		case err != nil:
			w.err = fmt.Errorf("load webhook %s: %w", w.id, err)
		case ok:
			w.h = h
		default:
			w.err = fmt.Errorf("webhook %s: %w", w.id, domainerr.ErrNotFound)
		}
		close(w.done)
	}
}
