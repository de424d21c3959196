package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profilesDir is where -profiles saves them, beside the report.
const profilesDir = "profiles"

// sampleRSS samples pid's RSS every 250 ms until the returned function is called, which returns the
// highest seen (bytes).
func sampleRSS(ctx context.Context, pid int) func() int64 {
	ctx, cancel := context.WithCancel(ctx)
	var peak int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			if u, err := readUsage(pid); err == nil {
				peak = max(peak, u.rss)
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	return func() int64 {
		cancel()
		<-done
		return peak
	}
}

// profiling is one scenario's CPU profiles of the ingestor and the pipeline, taken through their
// internal listeners' /debug/pprof (internal/obs) while a phase runs; finish adds their heap profiles.
type profiling struct {
	dir, scenario string
	wg            sync.WaitGroup
	mu            sync.Mutex
	files         []string
	errs          []error
}

// profileTargets are the processes profiled, by the name used in the files.
var profileTargets = []struct{ name, addr string }{{"ingestor", inletInternalAddr}, {"pipeline", pipelineInternalAddr}}

// startProfiles starts CPU profiles of d (whole seconds, at least 1) of both processes.
func (s *Suite) startProfiles(ctx context.Context, scenario string, d time.Duration) *profiling {
	p := &profiling{dir: filepath.Join(s.dir, profilesDir), scenario: scenario}
	secs := max(1, int(math.Round(d.Seconds())))
	for _, t := range profileTargets {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.addr, secs), t.name+".cpu.pprof")
		}()
	}
	return p
}

// finish waits for the CPU profiles, takes the heap profiles and returns the files written (relative to
// the report's directory).
func (p *profiling) finish(ctx context.Context) ([]string, error) {
	p.wg.Wait()
	for _, t := range profileTargets {
		p.fetch(ctx, "http://"+t.addr+"/debug/pprof/heap", t.name+".heap.pprof")
	}
	return p.files, errors.Join(p.errs...)
}

func (p *profiling) fetch(ctx context.Context, url, suffix string) {
	err := func() error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		if err := os.MkdirAll(p.dir, 0o755); err != nil {
			return err
		}
		name := p.scenario + "." + suffix
		f, err := os.Create(filepath.Join(p.dir, name))
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", url, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		p.mu.Lock()
		p.files = append(p.files, filepath.Join(profilesDir, name))
		p.mu.Unlock()
		return nil
	}()
	if err != nil {
		p.mu.Lock()
		p.errs = append(p.errs, err)
		p.mu.Unlock()
	}
}
