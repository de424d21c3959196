package ingestor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
)

func TestMain(m *testing.M) {
	uuid.EnableRandPool() // as the process does, before anything makes UUIDs
	os.Exit(m.Run())
}

// fakeHooks is an in-memory Hooks.
type fakeHooks struct {
	mu    sync.Mutex
	hooks map[string]*webhook.Hook
	errs  map[string]error // per id
}

func (f *fakeHooks) Get(_ context.Context, id string) (*webhook.Hook, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs[id]; err != nil {
		return nil, err
	}
	h, ok := f.hooks[id]
	if !ok {
		return nil, domainerr.ErrNotFound
	}
	return h, nil
}

func (f *fakeHooks) set(h *webhook.Hook) {
	f.mu.Lock()
	f.hooks[h.PublicID] = h
	f.mu.Unlock()
}

// secretOf is the Authorization value of a test webhook.
func secretOf(id string) string { return "Bearer whsec_test-secret-of-" + id }

func testHook(id string) *webhook.Hook {
	return &webhook.Hook{
		PublicID: id, ProjectID: 42, Enabled: true, Version: 7,
		SecretDigest: secret.Digest([]byte(secretOf(id))),
	}
}

// fakeProducer records what it is given. By default it acknowledges at once from another goroutine, as
// franz-go does; hold keeps records unacknowledged until release; err fails them; full refuses them.
type fakeProducer struct {
	mu       sync.Mutex
	records  []*kgo.Record // deep copies
	held     []func()
	hold     bool
	err      error
	full     bool
	flushed  int
	produced chan struct{} // receives one value per TryProduce when non-nil
	inline   bool          // call the promise synchronously (benchmarks)
}

func (f *fakeProducer) TryProduce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	if f.inline {
		promise(r, nil)
		return
	}
	f.mu.Lock()
	f.records = append(f.records, copyRecord(r))
	err := f.err
	if f.full {
		err = kgo.ErrMaxBuffered
	}
	ack := func() { promise(r, err) }
	if f.hold && err == nil {
		f.held = append(f.held, ack)
		ack = nil
	}
	f.mu.Unlock()
	if f.produced != nil {
		f.produced <- struct{}{}
	}
	if ack != nil {
		go ack()
	}
}

// release acknowledges every held record.
func (f *fakeProducer) release() {
	f.mu.Lock()
	held := f.held
	f.held, f.hold = nil, false
	f.mu.Unlock()
	for _, ack := range held {
		ack()
	}
}

func (f *fakeProducer) Flush(context.Context) error {
	f.mu.Lock()
	f.flushed++
	f.mu.Unlock()
	return nil
}
func (f *fakeProducer) BufferedProduceRecords() int64 { return 0 }
func (f *fakeProducer) BufferedProduceBytes() int64   { return 0 }

func (f *fakeProducer) got() []*kgo.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*kgo.Record(nil), f.records...)
}

func copyRecord(r *kgo.Record) *kgo.Record {
	c := &kgo.Record{Topic: r.Topic, Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value), Timestamp: r.Timestamp}
	for _, h := range r.Headers {
		c.Headers = append(c.Headers, kgo.RecordHeader{Key: h.Key, Value: bytes.Clone(h.Value)})
	}
	return c
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// testConfig is Defaults with small limits that tests can reach.
func testConfig() Config {
	c := Defaults()
	c.ListenAddr = "127.0.0.1:0"
	c.ShutdownTimeout = 5 * time.Second
	// Generous: the tests that use real Kafka run beside the whole suite on a shared 2-core machine,
	// where a first ack has taken over a second (TestKafkaChunkedBodyOverLimit answered 503 once).
	// Tests of the deadline itself set their own.
	c.AckTimeout = 10 * time.Second
	return c
}

// edge is a running Server on an in-memory listener with a client dialing it.
type edge struct {
	s      *Server
	ln     *fasthttputil.InmemoryListener
	client *fasthttp.HostClient
	reg    *prometheus.Registry
	stop   func() error // cancels Serve and returns its error
}

func startEdge(t testing.TB, cfg Config, hooks Hooks, prod Producer) *edge {
	t.Helper()
	return startEdgeOn(t, cfg, hooks, prod, "requests")
}

func startEdgeOn(t testing.TB, cfg Config, hooks Hooks, prod Producer, topic string) *edge {
	t.Helper()
	return startEdgeLogging(t, cfg, hooks, prod, topic, testenv.Logger())
}

func startEdgeLogging(t testing.TB, cfg Config, hooks Hooks, prod Producer, topic string, log *slog.Logger) *edge {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, Deps{Hooks: hooks, Producer: prod, Topic: topic, Registry: reg, Logger: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e := inmemEdge(s, reg)
	e.serve(t, e.ln)
	return e
}

// inmemEdge is an edge on an in-memory listener with a client dialing it; e.serve starts serving.
func inmemEdge(s *Server, reg *prometheus.Registry) *edge {
	ln := fasthttputil.NewInmemoryListener()
	e := &edge{s: s, ln: ln, reg: reg}
	e.client = &fasthttp.HostClient{
		Addr:     "edge",
		Dial:     func(string) (net.Conn, error) { return ln.Dial() },
		MaxConns: 1024, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
	}
	return e
}

// serve runs the edge's server on ln until the test ends (or e.stop).
func (e *edge) serve(t testing.TB, ln net.Listener) {
	e.serveWith(t, func(ctx context.Context) error { return e.s.Serve(ctx, ln) })
}

// serveWith runs serve (an edge's Serve, or the composed ingestor's) until the test ends (or e.stop).
func (e *edge) serveWith(t testing.TB, serve func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx) }()
	var once sync.Once
	var serveErr error
	e.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-errc:
			case <-time.After(20 * time.Second):
				serveErr = errors.New("Serve did not return within 20s of cancel")
			}
		})
		return serveErr
	}
	t.Cleanup(func() { _ = e.stop() })
}

// answer is a response's parts that tests look at.
type answer struct {
	status     int
	body       string
	retryAfter string
	allow      string
	raw        string // the whole response but its Date header, for byte-for-byte comparisons
}

type req struct {
	method  string
	path    string
	auth    string
	body    []byte
	ctype   string      // Content-Type; "" is application/json, noContentType none
	headers [][2]string // more request headers
}

// dateLine is a response's Date header line, the one part of an answer that differs by when it was
// given.
var dateLine = regexp.MustCompile(`(?m)^Date: [^\r\n]*\r\n`)

// noContentType is a req.ctype that sends no Content-Type.
const noContentType = "-"

func (e *edge) do(t testing.TB, r req) answer {
	t.Helper()
	q := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(q)
	defer fasthttp.ReleaseResponse(resp)
	q.SetRequestURI("http://edge" + r.path)
	if r.method == "" {
		r.method = "POST"
	}
	q.Header.SetMethod(r.method)
	if r.auth != "" {
		q.Header.Set("Authorization", r.auth)
	}
	switch r.ctype {
	case "":
		q.Header.SetContentType("application/json")
	case noContentType:
		q.Header.SetNoDefaultContentType(true)
	default:
		q.Header.SetContentType(r.ctype)
	}
	for _, h := range r.headers {
		q.Header.Set(h[0], h[1])
	}
	q.SetBody(r.body)
	if err := e.client.Do(q, resp); err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	a := answer{
		status:     resp.StatusCode(),
		body:       string(resp.Body()),
		retryAfter: string(resp.Header.Peek("Retry-After")),
		allow:      string(resp.Header.Peek("Allow")),
	}
	a.raw = dateLine.ReplaceAllString(resp.String(), "")
	return a
}

// counter reads a counter or gauge of the edge's registry; labels as name=value pairs.
func (e *edge) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func newReg() *prometheus.Registry { return prometheus.NewRegistry() }

func testLog() *slog.Logger { return testenv.Logger() }
