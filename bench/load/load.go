// Package load is the bench suite's HTTP load generator: a fasthttp client over keep-alive connections
// in one of two modes.
//
//   - Closed loop: Conns workers each send the next request as soon as the previous one is answered. It
//     finds the maximum a server sustains, but its latencies hide queueing: a slow answer delays the
//     next send, so the generator backs off exactly when the server struggles (coordinated omission).
//   - Open loop: requests are scheduled at a constant Rate, request i at start + i/Rate, whatever the
//     server does; latency is measured from each request's scheduled send time, not from when a worker
//     got round to it, so time spent queued behind a slow answer counts (no coordinated omission).
//
// Latencies go into HDR histograms (microsecond resolution, 3 significant digits). Every run is bounded
// in time and in count and stops by itself.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"
)

// Histogram bounds: 1 µs to 5 minutes at 3 significant digits (about 0.1% error), ~40 KiB each.
const (
	histMinMicros = 1
	histMaxMicros = int64(5 * time.Minute / time.Microsecond)
	histSigFigs   = 3
)

// NewHistogram returns an empty latency histogram in microseconds with the package's bounds.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
}

// Mode is closed or open loop.
type Mode string

// The modes.
const (
	Closed Mode = "closed"
	Open   Mode = "open"
)

// Request is one request to send. The generator never modifies it; Source may return the same one many
// times.
type Request struct {
	// Path with query, e.g. "/hooks/abc".
	Path string
	// Authorization header value; empty sends none.
	Authorization string
	// ContentType header value; empty sends none.
	ContentType string
	// Headers are set as given (names not normalized): a signature scheme's headers.
	Headers []Header
	Body    []byte
}

// Header is one header of a Request.
type Header struct {
	Name, Value string
}

// Source returns request i (0-based, in send order).
type Source func(i int64) *Request

// Config is one run.
type Config struct {
	// Addr is host:port of the server. Only loopback addresses are accepted: loads go to this machine
	// only.
	Addr string
	// Mode is Closed or Open.
	Mode Mode
	// Conns is the number of keep-alive connections, and of workers. Closed loop: the concurrency.
	// Open loop: the most requests outstanding at once; it must cover Rate × the worst latency, or
	// scheduled requests start late (which is then counted in their latency, not hidden).
	Conns int
	// Rate in requests per second (open loop only).
	Rate float64
	// Duration of the run: no request is scheduled (open) or started (closed) after it.
	Duration time.Duration
	// MaxRequests bounds the requests of the run; 0 means Duration alone bounds it.
	MaxRequests int64
	// Timeout bounds each request (connect, write, read). An expired request counts as an error.
	Timeout time.Duration
	// Drain bounds how long requests scheduled before the end of Duration may still be sent and
	// answered afterwards (open loop: the workers may be behind). Requests not started by then are
	// counted as Unsent.
	Drain time.Duration
	// CollectIDs keeps the request_id of every 2xx answer (the body {"request_id":"…"}) for the
	// correctness check.
	CollectIDs bool
	// OnAccepted, when set, is called with the time of each 2xx answer and its body (valid only during
	// the call), from the worker goroutines: keep it cheap.
	OnAccepted func(at time.Time, body []byte)
}

// Limits of Config, checked by Validate.
const (
	MaxConns = 4096
	MaxRate  = 1_000_000
)

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("addr %q: %w", c.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("addr %q: only loopback addresses are loaded", c.Addr)
	}
	switch {
	case c.Mode != Closed && c.Mode != Open:
		return fmt.Errorf("mode %q: want closed or open", c.Mode)
	case c.Conns < 1 || c.Conns > MaxConns:
		return fmt.Errorf("conns %d: outside 1..%d", c.Conns, MaxConns)
	case c.Mode == Open && (c.Rate <= 0 || c.Rate > MaxRate):
		return fmt.Errorf("rate %g: outside (0, %d]", c.Rate, MaxRate)
	case c.Duration <= 0 || c.Duration > time.Hour:
		return fmt.Errorf("duration %s: outside (0, 1h]", c.Duration)
	case c.MaxRequests < 0:
		return fmt.Errorf("max requests %d: negative", c.MaxRequests)
	case c.Timeout <= 0:
		return fmt.Errorf("timeout %s: must be positive", c.Timeout)
	case c.Drain < 0:
		return fmt.Errorf("drain %s: negative", c.Drain)
	}
	return nil
}

// Result is what a run measured.
type Result struct {
	Mode     Mode
	Rate     float64       // requested (open loop)
	Elapsed  time.Duration // from the start to the last answer
	Sent     int64         // requests written (answered or not)
	Unsent   int64         // open loop: scheduled in Duration but not started before the drain ended
	Errors   int64         // transport errors and timeouts
	Statuses map[int]int64 // answers by HTTP status
	// Latency of every answered request, in microseconds: from the scheduled send time (open loop) or
	// the actual send time (closed loop) to the answer.
	Latency *hdrhistogram.Histogram
	// IDs of 2xx answers when Config.CollectIDs; IDErrors counts 2xx bodies without a readable id.
	IDs      [][16]byte
	IDErrors int64
}

// Accepted is the number of 2xx answers.
func (r *Result) Accepted() int64 {
	var n int64
	for s, c := range r.Statuses {
		if s >= 200 && s < 300 {
			n += c
		}
	}
	return n
}

// AcceptedPerSecond over the elapsed time.
func (r *Result) AcceptedPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Accepted()) / r.Elapsed.Seconds()
}

// Status is the count of answers with status code s.
func (r *Result) Status(s int) int64 { return r.Statuses[s] }

// Progress is read while a run goes on (e.g. by a progress bar).
type Progress struct {
	sent, accepted, failed atomic.Int64
}

// Sent, Accepted (2xx) and Failed (non-2xx or error) so far.
func (p *Progress) Sent() int64     { return p.sent.Load() }
func (p *Progress) Accepted() int64 { return p.accepted.Load() }
func (p *Progress) Failed() int64   { return p.failed.Load() }

// ErrNoAnswers is returned when a run got no answer at all: the server is not there.
var ErrNoAnswers = errors.New("no request was answered")

// worker is one connection's state; merged into the Result at the end.
type worker struct {
	hist     *hdrhistogram.Histogram
	statuses map[int]int64
	errs     int64
	sent     int64
	ids      [][16]byte
	idErrors int64
}

// Run sends the load described by cfg, taking requests from src, until Duration (plus Drain for
// requests already scheduled) or MaxRequests or ctx ends. prog may be nil.
func Run(ctx context.Context, cfg Config, src Source, prog *Progress) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if prog == nil {
		prog = &Progress{}
	}
	client := &fasthttp.HostClient{
		Addr:                          cfg.Addr,
		MaxConns:                      cfg.Conns,
		ReadTimeout:                   cfg.Timeout,
		WriteTimeout:                  cfg.Timeout,
		MaxIdleConnDuration:           time.Minute,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		MaxConnWaitTimeout:            cfg.Timeout,
	}
	defer client.CloseIdleConnections()

	limit := cfg.MaxRequests
	if limit == 0 {
		limit = math.MaxInt64
	}
	var next atomic.Int64 // the next request index to claim
	start := time.Now()
	end := start.Add(cfg.Duration)
	hardEnd := end.Add(cfg.Drain)
	ctx, cancel := context.WithDeadline(ctx, hardEnd)
	defer cancel()
	// scheduled is request i's send time in the open loop; computed in float to keep rates like 3/s exact.
	scheduled := func(i int64) time.Time {
		return start.Add(time.Duration(float64(i) * float64(time.Second) / cfg.Rate))
	}

	workers := make([]*worker, cfg.Conns)
	var unsent atomic.Int64
	var lastAnswer atomic.Int64 // unix nanos
	var wg sync.WaitGroup
	for w := range workers {
		wk := &worker{hist: NewHistogram(), statuses: map[int]int64{}}
		workers[w] = wk
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for {
				i := next.Add(1) - 1
				if i >= limit || ctx.Err() != nil {
					return
				}
				var t0 time.Time
				if cfg.Mode == Open {
					t0 = scheduled(i)
					if !t0.Before(end) {
						return
					}
					if d := time.Until(t0); d > 0 {
						timer.Reset(d)
						select {
						case <-timer.C:
						case <-ctx.Done():
							unsent.Add(1)
							return
						}
					}
				} else {
					t0 = time.Now()
					if !t0.Before(end) {
						return
					}
				}
				if ctx.Err() != nil {
					unsent.Add(1)
					return
				}
				r := src(i)
				req.Reset()
				req.Header.SetMethod(fasthttp.MethodPost)
				req.SetRequestURI(r.Path)
				req.Header.SetHost(cfg.Addr)
				if r.Authorization != "" {
					req.Header.Set(fasthttp.HeaderAuthorization, r.Authorization)
				}
				if r.ContentType != "" {
					req.Header.SetContentType(r.ContentType)
				}
				for _, h := range r.Headers {
					req.Header.Set(h.Name, h.Value)
				}
				req.SetBodyRaw(r.Body)
				resp.Reset()
				err := client.DoDeadline(req, resp, time.Now().Add(cfg.Timeout))
				now := time.Now()
				wk.sent++
				prog.sent.Add(1)
				lastAnswer.Store(now.UnixNano())
				if err != nil {
					wk.errs++
					prog.failed.Add(1)
					continue
				}
				_ = wk.hist.RecordValue(max(histMinMicros, min(now.Sub(t0).Microseconds(), histMaxMicros)))
				code := resp.StatusCode()
				wk.statuses[code]++
				if code < 200 || code >= 300 {
					prog.failed.Add(1)
					continue
				}
				prog.accepted.Add(1)
				if cfg.CollectIDs {
					if id, ok := RequestID(resp.Body()); ok {
						wk.ids = append(wk.ids, id)
					} else {
						wk.idErrors++
					}
				}
				if cfg.OnAccepted != nil {
					cfg.OnAccepted(now, resp.Body())
				}
			}
		}()
	}
	wg.Wait()

	res := &Result{Mode: cfg.Mode, Rate: cfg.Rate, Statuses: map[int]int64{}, Latency: NewHistogram()}
	if cfg.Mode == Open {
		// Scheduled in Duration (and within MaxRequests) but never started.
		planned := min(limit, int64(math.Ceil(cfg.Duration.Seconds()*cfg.Rate)))
		claimed := min(next.Load(), planned)
		res.Unsent = unsent.Load() + max(0, planned-claimed)
		if res.Unsent > planned {
			res.Unsent = planned
		}
	}
	for _, wk := range workers {
		res.Latency.Merge(wk.hist)
		for s, n := range wk.statuses {
			res.Statuses[s] += n
		}
		res.Errors += wk.errs
		res.Sent += wk.sent
		res.IDs = append(res.IDs, wk.ids...)
		res.IDErrors += wk.idErrors
	}
	if la := lastAnswer.Load(); la > 0 {
		res.Elapsed = time.Unix(0, la).Sub(start)
	}
	if cfg.Mode == Open && res.Elapsed < cfg.Duration {
		// The rate is over the scheduled window, even if the last request was scheduled a bit before its end.
		res.Elapsed = cfg.Duration
	}
	if res.Sent == 0 || res.Sent == res.Errors {
		return res, fmt.Errorf("%s loop on %s: %d sent, %d errors: %w", cfg.Mode, cfg.Addr, res.Sent, res.Errors, ErrNoAnswers)
	}
	return res, nil
}

var requestIDKey = []byte(`"request_id":"`)

// RequestID reads the id out of an ingestor's 202 body, {"request_id":"<uuid>"}.
func RequestID(body []byte) ([16]byte, bool) {
	i := bytes.Index(body, requestIDKey)
	if i < 0 {
		return [16]byte{}, false
	}
	rest := body[i+len(requestIDKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return [16]byte{}, false
	}
	id, err := uuid.ParseBytes(rest[:j])
	if err != nil {
		return [16]byte{}, false
	}
	return id, true
}
