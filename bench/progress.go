package bench

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/inlet-dev/inlet/bench/load"
)

// IsTerminal reports whether f is a terminal (the progress bar is drawn only then).
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Progress bar geometry and refresh period.
const (
	barWidth    = 24
	barInterval = 200 * time.Millisecond
)

// progress draws one status line on stderr while a load runs; a no-op when disabled.
type progress struct {
	enabled bool
	mu      sync.Mutex
	label   string
	dur     time.Duration
	started time.Time
	prog    *load.Progress
	quit    chan struct{}
	wg      sync.WaitGroup
}

func newProgress(enabled bool) *progress {
	p := &progress{enabled: enabled, quit: make(chan struct{})}
	if enabled {
		p.wg.Add(1)
		go p.loop()
	}
	return p
}

func (p *progress) loop() {
	defer p.wg.Done()
	t := time.NewTicker(barInterval)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.draw()
		}
	}
}

// start shows a load run.
func (p *progress) start(label string, cfg load.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label, p.dur, p.started, p.prog = label, cfg.Duration, time.Now(), &load.Progress{}
}

// counters are what the running load updates.
func (p *progress) counters() *load.Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.prog
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prog = nil
}

// status shows a step that is not a load.
func (p *progress) status(msg string) {
	p.mu.Lock()
	p.label, p.prog = msg, nil
	p.mu.Unlock()
	p.draw()
}

func (p *progress) draw() {
	if !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	line := p.label
	if p.prog != nil {
		el := time.Since(p.started)
		frac := min(1, el.Seconds()/max(p.dur.Seconds(), 1e-9))
		n := int(frac * barWidth)
		rate := float64(p.prog.Accepted()) / max(el.Seconds(), 1e-9)
		line = fmt.Sprintf("%s [%s%s] %3.0f%%  sent %d  2xx %d  other %d  %.0f/s", p.label,
			strings.Repeat("#", n), strings.Repeat("-", barWidth-n), frac*100,
			p.prog.Sent(), p.prog.Accepted(), p.prog.Failed(), rate)
	}
	fmt.Fprintf(os.Stderr, "\r\033[K%s", line)
}

// clear erases the line.
func (p *progress) clear() {
	if p.enabled {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
}

func (p *progress) stop() {
	if p.enabled {
		close(p.quit)
		p.wg.Wait()
		p.clear()
	}
}
