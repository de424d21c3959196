package pipeline

import (
	"sync"
)

// progress is, per assigned partition, the first offset not yet known to be written: what the
// consume loop has made durable. It has its own lock because the stall watch must read it while the
// consume loop is stuck (a dependency down) holding the pipeline's.
type progress struct {
	mu  sync.Mutex
	pos map[int32]int64
	// stalled describes the stalled partitions for /readyz; empty when none is.
	stalled string
}

// advance records that the partition is written up to next (exclusive).
func (g *progress) advance(part int32, next int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pos == nil {
		g.pos = map[int32]int64{}
	}
	if cur, ok := g.pos[part]; !ok || next > cur {
		g.pos[part] = next
	}
}

// start records the first position of a partition seen since its assignment.
func (g *progress) start(part int32, offset int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pos == nil {
		g.pos = map[int32]int64{}
	}
	if _, ok := g.pos[part]; !ok {
		g.pos[part] = offset
	}
}

func (g *progress) forget(part int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.pos, part)
}

func (g *progress) snapshot() map[int32]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[int32]int64, len(g.pos))
	for k, v := range g.pos {
		out[k] = v
	}
	return out
}

func (g *progress) setStalled(s string) {
	g.mu.Lock()
	g.stalled = s
	g.mu.Unlock()
}
