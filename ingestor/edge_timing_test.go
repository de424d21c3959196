package ingestor

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/inlet-dev/inlet/internal/jsonvalid"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/tracing"
)

// benchConfig lifts the per-webhook rate limit out of the way of a benchmark.
func benchConfig() Config {
	c := testConfig()
	c.RatePerWebhook = 1e9
	c.RateBurst = 1 << 30
	return c
}

// BenchmarkHandler is the request path of an accepted request, from the parsed request to the 202, with
// a producer that acknowledges at once: what the edge itself costs per request (target 0 allocs/op).
func BenchmarkHandler(b *testing.B) { benchHandler(b, nil) }

// BenchmarkHandlerTraced is BenchmarkHandler with tracing on: every request a span, sampled (ratio 1,
// exported in batches to an exporter that discards them) or not (ratio 0); "off" is BenchmarkHandler,
// for comparison within one run.
func BenchmarkHandlerTraced(b *testing.B) {
	for _, c := range []struct {
		name  string
		ratio float64
		on    bool
	}{{"off", 0, false}, {"unsampled", 0, true}, {"sampled", 1, true}} {
		b.Run(c.name, func(b *testing.B) {
			if !c.on {
				benchHandler(b, nil)
				return
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tracing.NewSampler(c.ratio)),
				sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			benchHandler(b, tp.Tracer("ingestor"))
		})
	}
}

func benchHandler(b *testing.B, tracer trace.Tracer) {
	s, err := New(benchConfig(), Deps{Hooks: tableHooks(), Producer: &fakeProducer{inline: true}, Topic: "requests",
		Registry: newReg(), Logger: testLog(), Tracer: tracer})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/hooks/" + idOk)
		ctx.Request.Header.Set("Authorization", secretOf(idOk))
		ctx.Request.SetBody(goodBody)
		for pb.Next() {
			ctx.Response.Reset()
			s.handle(&ctx)
			if ctx.Response.StatusCode() != 202 {
				b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
		}
	})
	b.ReportAllocs()
	b.SetBytes(int64(len(goodBody)))
}

// bodyValid is the edge's check of a body, as serve runs it.
func bodyValid(body []byte, maxDepth int) bool {
	return jsonvalid.Validate(body, maxDepth) == nil
}

// BenchmarkHandlerInmemory is the same through fasthttp's connection handling on an in-memory listener,
// client included.
func BenchmarkHandlerInmemory(b *testing.B) {
	e := startEdge(b, benchConfig(), tableHooks(), &fakeProducer{inline: true})
	b.ReportAllocs()
	b.SetBytes(int64(len(goodBody)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		q, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		q.SetRequestURI("http://edge/hooks/" + idOk)
		q.Header.SetMethod("POST")
		q.Header.Set("Authorization", secretOf(idOk))
		q.Header.SetContentType("application/json")
		q.SetBody(goodBody)
		for pb.Next() {
			if err := e.client.Do(q, resp); err != nil || resp.StatusCode() != 202 {
				b.Fatalf("%v %d", err, resp.StatusCode())
			}
		}
	})
}

// BenchmarkValidate is the edge's check of a body (bodyValid), on bodies from a typical payload to the
// worst the body limit lets in: one object of 100k keys in 1 MiB.
func BenchmarkValidate(b *testing.B) {
	for _, c := range validateBodies(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for i := 0; i < b.N; i++ {
				if !bodyValid(c.body, 64) {
					b.Fatal("rejected")
				}
			}
		})
	}
}

type namedBody struct {
	name string
	body []byte
}

// validateBodies are the bodies of BenchmarkValidate.
func validateBodies(b *testing.B) []namedBody {
	order, err := os.ReadFile("testdata/order.json")
	if err != nil {
		b.Fatal(err)
	}
	note := []byte(seed.Sample[:len(seed.Sample)-1] + `,"note":"` + strings.Repeat("x", 64<<10) + `"}`)
	items := []byte(`[`)
	for i := 0; len(items) < 64<<10; i++ {
		if i > 0 {
			items = append(items, ',')
		}
		items = fmt.Appendf(items, `{"sku":"SKU-%d","qty":%d,"price":"%d.99","title":"Item %d"}`, i, i%7+1, i%100, i)
	}
	items = append(items, ']')
	keys := []byte(`{`)
	for i := 0; i < 100_000; i++ {
		if i > 0 {
			keys = append(keys, ',')
		}
		keys = fmt.Appendf(keys, `"k%d":%d`, i, i)
	}
	keys = append(keys, '}')
	return []namedBody{
		{"seed", []byte(seed.Sample)},
		{"order-3k", order},
		{"string-64k", note},
		{"array-64k", items},
		{"keys-100k", keys},
	}
}

// Edge against the real Kafka, beside a null fasthttp handler, under the same load over real TCP. The
// load comes from a child process (TestLoadGenerator) so that this process's CPU time is the server's
// alone: accepted requests per CPU-second compare the edge's cost with the cheapest possible server.
// Run with: go test -run '^$' -bench '^BenchmarkEdge$' -benchtime 1x ./ingestor/
// (INLET_BENCH_LINGER and INLET_BENCH_COMPRESSION override those settings of the edge under test;
// BenchmarkEdgeBatchedAcks runs the same loads without the Kafka client.) Besides the ratio, each run
// reports the server's system CPU and context switches per request: at a low rate most of a request's
// cost is threads going to sleep and being woken, which the null server does once per request and the
// edge, whose handler also parks until its batch is acknowledged, more often.

const (
	loadConns    = 256
	loadDuration = 5 * time.Second
)

// loadRates are the offered loads, the same for both servers at each step: CPU per request is only
// comparable at the same request rate, because batching and wake-ups amortise differently at different
// rates (at a low rate each Kafka batch carries few records, and every handler parks and wakes for its
// own ack). They stay below what the edge sustains against the local broker (~25k/s here).
var loadRates = []int{2500, 10000, 20000}

func BenchmarkEdge(b *testing.B) {
	for _, rate := range loadRates {
		var nullPerCPUSecond float64
		b.Run(fmt.Sprintf("rate=%d/null", rate), func(b *testing.B) {
			nullPerCPUSecond = runNull(b, rate)
		})
		b.Run(fmt.Sprintf("rate=%d/kafka", rate), func(b *testing.B) {
			cfg := benchConfig()
			if v := os.Getenv("INLET_BENCH_LINGER"); v != "" { // to explore the settings
				cfg.Linger, _ = time.ParseDuration(v)
			}
			if v := os.Getenv("INLET_BENCH_COMPRESSION"); v != "" {
				cfg.Compression = v
			}
			kcfg, cl := realProducer(b, cfg)
			r := runEdge(b, cfg, cl, kcfg.RequestsTopic, rate)
			if nullPerCPUSecond > 0 {
				b.ReportMetric(r.perCPU/nullPerCPUSecond, "ratio_vs_null")
			}
		})
	}
}

// BenchmarkEdgeBatchedAcks is BenchmarkEdge with the Kafka client replaced by a producer that
// acknowledges whatever it holds once per Linger, from one goroutine: what the edge itself costs per
// CPU-second, its handlers parking and being woken in batches as franz-go wakes them, without the
// client's own per-batch work (encoding, compression, the broker round trip, and the goroutines and
// thread wake-ups behind them). The gap between its ratio and BenchmarkEdge's is the client's share.
func BenchmarkEdgeBatchedAcks(b *testing.B) {
	for _, rate := range loadRates {
		var nullPerCPUSecond float64
		b.Run(fmt.Sprintf("rate=%d/null", rate), func(b *testing.B) {
			nullPerCPUSecond = runNull(b, rate)
		})
		b.Run(fmt.Sprintf("rate=%d/batched", rate), func(b *testing.B) {
			cfg := benchConfig()
			prod := &batchAcker{}
			stop := make(chan struct{})
			stopped := make(chan struct{})
			go func() { prod.run(stop, cfg.Linger); close(stopped) }()
			defer func() { close(stop); <-stopped }()
			r := runEdge(b, cfg, prod, "requests", rate)
			if nullPerCPUSecond > 0 {
				b.ReportMetric(r.perCPU/nullPerCPUSecond, "ratio_vs_null")
			}
		})
	}
}

// batchAcker acknowledges every record it holds once per tick, in order, from one goroutine.
type batchAcker struct {
	mu       sync.Mutex
	recs     []*kgo.Record
	promises []func(*kgo.Record, error)
}

func (a *batchAcker) TryProduce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	a.mu.Lock()
	a.recs = append(a.recs, r)
	a.promises = append(a.promises, promise)
	a.mu.Unlock()
}

func (a *batchAcker) run(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var recs []*kgo.Record
	var promises []func(*kgo.Record, error)
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		a.mu.Lock()
		recs, a.recs = a.recs, recs[:0]
		promises, a.promises = a.promises, promises[:0]
		a.mu.Unlock()
		for i, p := range promises {
			p(recs[i], nil)
		}
	}
}

func (a *batchAcker) Flush(context.Context) error   { return nil }
func (a *batchAcker) BufferedProduceRecords() int64 { return 0 }
func (a *batchAcker) BufferedProduceBytes() int64   { return 0 }

// runNull serves the load with a null fasthttp handler (reads the body, answers 202) and returns its
// accepted requests per CPU-second.
func runNull(b *testing.B, rate int) float64 {
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			_ = ctx.PostBody()
			ctx.SetStatusCode(202)
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"request_id":"01900000-0000-7000-8000-000000000000"}`)
		},
		ReadBufferSize: 8 << 10, MaxRequestBodySize: 1 << 20, NoDefaultContentType: true,
	}
	ln := listen(b)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown()
	return runLoad(b, ln.Addr().String(), rate).perCPU
}

// runEdge serves the load with the edge producing to prod.
func runEdge(b *testing.B, cfg Config, prod Producer, topic string, rate int) loadReport {
	s, err := New(cfg, Deps{Hooks: tableHooks(), Producer: prod, Topic: topic, Registry: newReg(), Logger: testLog()})
	if err != nil {
		b.Fatal(err)
	}
	ln := listen(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	r := runLoad(b, ln.Addr().String(), rate)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return r
}

func listen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

type loadReport struct {
	Sent     int64   `json:"sent"`
	Accepted int64   `json:"accepted"`
	Seconds  float64 `json:"seconds"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	perCPU   float64
}

// cpuTime is this process's CPU time so far: user + system, and system alone; and its context switches
// (voluntary + involuntary), which at low load are most of the cost of a request.
func cpuTime() (total, sys time.Duration, switches int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw
}

// runLoad runs the load generator child against addr and reports throughput, latency and accepted
// requests per CPU-second of this process.
func runLoad(b *testing.B, addr string, rate int) loadReport {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadGenerator$", "-test.v")
	cmd.Env = append(os.Environ(), "INLET_LOADGEN_ADDR="+addr,
		"INLET_LOADGEN_CONNS="+strconv.Itoa(loadConns), "INLET_LOADGEN_DURATION="+loadDuration.String(),
		"INLET_LOADGEN_RATE="+strconv.Itoa(rate))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cpu0, sys0, sw0 := cpuTime()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var r loadReport
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if line := sc.Bytes(); len(line) > 0 && line[0] == '{' {
			_ = json.Unmarshal(line, &r)
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("load generator: %v", err)
	}
	cpu, sys, sw := cpuTime()
	cpu, sys, sw = cpu-cpu0, sys-sys0, sw-sw0
	if r.Accepted == 0 {
		b.Fatalf("load generator accepted nothing: %+v", r)
	}
	r.perCPU = float64(r.Accepted) / cpu.Seconds()
	b.ReportMetric(float64(r.Accepted)/r.Seconds, "accepted/s")
	b.ReportMetric(r.P50, "p50_ms")
	b.ReportMetric(r.P99, "p99_ms")
	b.ReportMetric(r.perCPU, "accepted/cpu-s")
	b.ReportMetric(cpu.Seconds(), "server_cpu_s")
	b.ReportMetric(sys.Seconds(), "server_sys_s")
	b.ReportMetric(float64(sw)/float64(r.Sent), "ctxsw/req")
	b.ReportMetric(0, "ns/op")
	return r
}

// TestLoadGenerator is the child process of BenchmarkEdge; it does nothing in a normal test run.
func TestLoadGenerator(t *testing.T) {
	addr := os.Getenv("INLET_LOADGEN_ADDR")
	if addr == "" {
		t.Skip("helper process of BenchmarkEdge")
	}
	conns, _ := strconv.Atoi(os.Getenv("INLET_LOADGEN_CONNS"))
	dur, _ := time.ParseDuration(os.Getenv("INLET_LOADGEN_DURATION"))
	rate, _ := strconv.Atoi(os.Getenv("INLET_LOADGEN_RATE"))
	interval := time.Duration(float64(time.Second) * float64(conns) / float64(rate)) // per connection
	client := &fasthttp.HostClient{Addr: addr, MaxConns: conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	var sent, accepted atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			next := start.Add(interval * time.Duration(i) / time.Duration(conns)) // spread the connections
			q, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			q.SetRequestURI("http://" + addr + "/hooks/" + idOk)
			q.Header.SetMethod("POST")
			q.Header.Set("Authorization", secretOf(idOk))
			q.Header.SetContentType("application/json")
			q.SetBody(goodBody)
			local := make([]time.Duration, 0, 1<<16)
			for time.Now().Before(deadline) {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(interval)
				t0 := time.Now()
				err := client.Do(q, resp)
				sent.Add(1)
				if err == nil && resp.StatusCode() == 202 {
					accepted.Add(1)
					local = append(local, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	fmt.Printf("{\"sent\":%d,\"accepted\":%d,\"seconds\":%f,\"p50_ms\":%f,\"p99_ms\":%f}\n",
		sent.Load(), accepted.Load(), secs, pct(0.50), pct(0.99))
}
