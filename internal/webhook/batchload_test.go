package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/domainerr"
)

// gatedBatches is a HookBatchLoader whose queries wait at gate (when set) and count their ids.
type gatedBatches struct {
	hooks   map[string]*Hook
	gate    chan struct{}
	fail    atomic.Bool
	queries atomic.Int64
	mu      sync.Mutex
	sizes   []int
}

func (g *gatedBatches) HooksByID(ctx context.Context, ids []string) ([]*Hook, error) {
	g.queries.Add(1)
	g.mu.Lock()
	g.sizes = append(g.sizes, len(ids))
	g.mu.Unlock()
	if g.gate != nil {
		<-g.gate
	}
	if g.fail.Load() {
		return nil, errors.New("connection refused")
	}
	var out []*Hook
	for _, id := range ids {
		if h := g.hooks[id]; h != nil {
			out = append(out, h)
		}
	}
	return out, nil
}

// Misses that arrive while a query runs share the next one; unknown ids are not found; an error
// reaches every caller of its query.
func TestBatchLoader(t *testing.T) {
	g := &gatedBatches{hooks: map[string]*Hook{}, gate: make(chan struct{})}
	for i := range 40 {
		id := fmt.Sprintf("hook%02d", i)
		g.hooks[id] = &Hook{PublicID: id}
	}
	b := NewBatchLoader(g, 16, 1, time.Second)
	ctx := context.Background()
	type answer struct {
		id  string
		h   *Hook
		err error
	}
	answers := make(chan answer, 50)
	ask := func(id string) {
		h, err := b.Hook(ctx, id)
		answers <- answer{id, h, err}
	}
	go ask("hook00") // leads the first query, held at the gate
	for g.queries.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < 40; i++ {
		go ask(fmt.Sprintf("hook%02d", i))
	}
	go ask("unknown")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		queued := len(b.queue)
		b.mu.Unlock()
		if queued == 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d queued; want 40", queued)
		}
		time.Sleep(time.Millisecond)
	}
	close(g.gate)
	for range 41 {
		a := <-answers
		switch {
		case a.id == "unknown" && !errors.Is(a.err, domainerr.ErrNotFound):
			t.Errorf("unknown: %v, %v; want domainerr.ErrNotFound", a.h, a.err)
		case a.id != "unknown" && (a.err != nil || a.h == nil || a.h.PublicID != a.id):
			t.Errorf("%s: %+v, %v", a.id, a.h, a.err)
		}
	}
	// The first query had one id; the 40 queued went in ceil(40/16) = 3.
	if q := g.queries.Load(); q != 4 {
		t.Errorf("%d queries (sizes %v); want 4", q, g.sizes)
	}
	b.mu.Lock()
	if b.running != 0 || len(b.queue) != 0 {
		t.Errorf("after: %d running, %d queued", b.running, len(b.queue))
	}
	b.mu.Unlock()

	g.fail.Store(true)
	if _, err := b.Hook(ctx, "hook01"); err == nil || errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("failing query: %v; want its error", err)
	}
	// A caller whose context ends stops waiting.
	g.fail.Store(false)
	g.gate = make(chan struct{})
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := b.Hook(cctx, "hook02"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired context: %v", err)
	}
	close(g.gate)
}
