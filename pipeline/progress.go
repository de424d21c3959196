package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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

// Ready fails while a partition is stalled: records are waiting and none has been written for
// StallAfter. A pipeline that cannot make progress (a dependency down, or a defect) is then visible
// to the orchestrator and the operator, not only in its logs.
func (p *Pipeline) Ready(context.Context) error {
	p.progress.mu.Lock()
	defer p.progress.mu.Unlock()
	if p.progress.stalled != "" {
		return fmt.Errorf("stalled: %s", p.progress.stalled)
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
func (p *Pipeline) watchProgress(ctx context.Context) error {
	adm := kadm.NewClient(p.cl)
	every := min(max(p.cfg.StallAfter/4, 100*time.Millisecond), 5*time.Second)
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
		pos := p.progress.snapshot()
		if len(pos) == 0 {
			clear(watch)
			p.m.stalled.Set(0)
			p.progress.setStalled("")
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
		ends, err := adm.ListEndOffsets(lctx, p.kcfg.RequestsTopic)
		cancel()
		if err != nil {
			if ctx.Err() == nil && time.Since(lastWarn) > time.Minute {
				lastWarn = time.Now()
				p.log.Warn("end offsets unavailable; lag not updated", "err", err)
			}
			continue
		}
		now := time.Now()
		var stalled []string
		for part, at := range pos {
			end, ok := ends.Lookup(p.kcfg.RequestsTopic, part)
			if !ok || end.Err != nil {
				continue
			}
			lag := max(end.Offset-at, 0)
			p.m.lag.WithLabelValues(partitionLabel(part)).Set(float64(lag))
			w := watch[part]
			switch {
			case lag == 0:
				delete(watch, part)
				continue
			case w == nil || w.pos != at:
				watch[part] = &stallWatch{pos: at, since: now}
				continue
			case now.Sub(w.since) < p.cfg.StallAfter:
				continue
			}
			stalled = append(stalled, fmt.Sprintf("partition %d waits at offset %d with %d records behind it, nothing written for %s",
				part, at, lag, now.Sub(w.since).Round(time.Second)))
			if !w.warned {
				w.warned = true
				p.log.Warn("partition stalled: records are waiting and none has been written", "partition", part,
					"offset", at, "lag", lag, "for", now.Sub(w.since).Round(time.Second))
			}
		}
		for part := range watch {
			if _, ok := pos[part]; !ok {
				delete(watch, part)
			}
		}
		sort.Strings(stalled)
		p.m.stalled.Set(float64(len(stalled)))
		p.progress.setStalled(strings.Join(stalled, "; "))
	}
}
