package ingestor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// Deps are what the edge is built from besides its settings.
type Deps struct {
	// Hooks resolves webhook ids (the configuration plane's cache).
	Hooks Hooks
	// Producer appends records; a *kgo.Client built with ProducerOpts. The edge flushes it on shutdown
	// but does not close it: its owner does, after Run returns.
	Producer Producer
	// Topic receives the records (kafka.Config.RequestsTopic).
	Topic string
	// Registry gets the edge's metrics; nil registers them on a registry of their own.
	Registry prometheus.Registerer
	// Logger receives the edge's logs; nil discards them.
	Logger *slog.Logger
	// Tracer starts a span per request (see serveTraced); nil: tracing off, and nothing of it runs.
	Tracer trace.Tracer
}

// Server is the public edge. Build it with New and run it with Run or Serve, once.
//
// Request ids are UUIDv7 from github.com/google/uuid; call uuid.EnableRandPool once at process start,
// before any goroutine makes UUIDs, to keep the request path allocation-free.
type Server struct {
	cfg      Config
	hooks    Hooks
	producer Producer
	topic    string
	log      *slog.Logger
	tracer   trace.Tracer // nil: tracing off
	metrics  *metrics
	http     *fasthttp.Server
	states   *hookStates
	heads    *chunkedHeads // chunked requests' heads, see chunkedHeads
	lingers  *lingerer     // connections closed after a request refused unread, see lingerer
	conns    *connLimiter  // connections admitted under MaxConns and MaxConnsPerIP, see connLimiter
	verifier *verifyRequests
	pool     sync.Pool

	inFlight        atomic.Int64
	rejectedPending atomic.Int64
	draining        atomic.Bool // stopped accepting connections: not ready
	closing         atomic.Bool // flushing the producer: no new records

	retryAfter []byte // rendered RetryAfter, in whole seconds

	// lookupCtx bounds config lookups by the life of the server, not of a request: a request in flight
	// during a graceful shutdown still completes.
	lookupCtx     context.Context
	cancelLookups context.CancelFunc

	lookupLog, produceLog, serverLog throttle
}

// New builds the edge. It registers its metrics on d.Registry, so build one Server per registry.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingestor config: %w", err)
	}
	if d.Hooks == nil || d.Producer == nil || d.Topic == "" {
		return nil, errors.New("ingestor: Hooks, Producer and Topic are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:      cfg,
		hooks:    d.Hooks,
		producer: d.Producer,
		topic:    d.Topic,
		log:      d.Logger,
		tracer:   d.Tracer,
		states:   newHookStates(cfg.MaxTrackedWebhooks),
		heads:    newChunkedHeads(cfg.MaxConns, cfg.ReadTimeout),
		verifier: newVerifyRequests(cfg.PublicURL),
	}
	s.lookupLog.every, s.produceLog.every, s.serverLog.every = 5*time.Second, 5*time.Second, 10*time.Second
	s.retryAfter = strconv.AppendInt(nil, int64(max(1, math.Ceil(cfg.RetryAfter.Seconds()))), 10)
	s.lookupCtx, s.cancelLookups = context.WithCancel(context.Background())
	m, err := newMetrics(d.Registry, s)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.lingers = newLingerer(cfg, &m.linger)
	s.conns = newConnLimiter(cfg, s.retryAfter, &m.conns, d.Logger)
	// The listener enforces MaxConns and MaxConnsPerIP (see connLimiter); fasthttp's own limit,
	// Concurrency, must never be reached first. A fasthttp worker frees its place a moment after the
	// connection it served is closed, when the listener may already have admitted the next one, so it
	// gets room for a second MaxConns of workers finishing (workers are made on demand: the room costs
	// nothing).
	s.http = &fasthttp.Server{
		Handler:                      s.handle,
		ErrorHandler:                 s.handleError,
		HeaderReceived:               s.headerReceived,
		Name:                         "inlet",
		ReadBufferSize:               cfg.MaxHeaderBytes,
		MaxRequestBodySize:           cfg.MaxBodyBytes,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		Concurrency:                  2 * cfg.MaxConns,
		DisablePreParseMultipartForm: true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		TCPKeepalive:                 true,
		SecureErrorLogMessage:        true, // fasthttp's own error logs must not echo request bytes
		Logger:                       fasthttpLogger{s},
		ConnState:                    s.conns.connState, // idle connections give their places (see connLimiter)
	}
	return s, nil
}

// Run listens on cfg.ListenAddr and serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.ListenAddr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves ln until ctx is done, then shuts down in this order, logging each step: stop accepting,
// let in-flight requests finish (they wait for their own acks), flush the producer, return. The whole
// shutdown is bounded by ShutdownTimeout. Requests answered 2xx were acknowledged by Kafka before the
// answer, so none is lost whatever happens to the process afterwards.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		s.log.Info("ingestor serving", "addr", ln.Addr().String())
		err := s.http.Serve(s.conns.listen(s.lingers.listen(ln)))
		if s.draining.Load() {
			return nil
		}
		if err == nil {
			err = errors.New("listener closed")
		}
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	})
	g.Go(func() error {
		<-gctx.Done()
		return s.shutdown()
	})
	return g.Wait()
}

func (s *Server) shutdown() error {
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	defer s.cancelLookups()
	var errs []error

	s.log.Info("ingestor shutdown: stop accepting, draining in-flight requests", "in_flight", s.inFlight.Load())
	s.draining.Store(true)
	if err := s.http.ShutdownWithContext(sctx); err != nil {
		errs = append(errs, fmt.Errorf("drain in-flight requests: %w", err))
	}
	// Connections lingering after a refused request end on their own within LingerCloseTimeout, while
	// the producer flushes; new ones close at once. So do answers to connections refused over a limit,
	// within refuseWriteTimeout.
	s.conns.stop()
	s.lingers.stop()
	s.log.Info("ingestor shutdown: flushing producer", "in_flight", s.inFlight.Load(),
		"buffered_records", s.producer.BufferedProduceRecords())
	s.closing.Store(true)
	if err := s.producer.Flush(sctx); err != nil {
		errs = append(errs, fmt.Errorf("flush producer (%d records left): %w", s.producer.BufferedProduceRecords(), err))
	}
	s.conns.wait(sctx)
	if n := s.lingers.len(); n > 0 {
		s.log.Info("ingestor shutdown: waiting for lingering connections", "connections", n)
	}
	if n := s.lingers.wait(sctx); n > 0 {
		s.log.Info("ingestor shutdown: lingering connections closed early", "connections", n)
	}
	err := errors.Join(errs...)
	s.log.Info("ingestor shutdown: done", "err", err)
	return err
}

// Ready reports whether the edge accepts requests; it is not ready once shutdown has begun, so that load
// balancers stop sending. Kafka reachability is a separate check (kafka.Ping) on the internal listener.
func (s *Server) Ready(context.Context) error {
	if s.draining.Load() {
		return errShuttingDown
	}
	return nil
}

var (
	hooksPrefix     = []byte("/hooks/")
	retryAfterKey   = []byte("Retry-After")
	allowKey        = []byte("Allow")
	allowPost       = []byte("POST")
	jsonContentType = []byte("application/json")
)

// handle is the request handler: everything that reached it was read within the limits.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	now := time.Now()
	s.heads.release(s.heads.take(&ctx.Request.Header)) // a chunked body that fitted: its head is intact
	var res result
	if s.tracer != nil {
		res = s.serveTraced(ctx, now, false)
	} else {
		res = s.serve(ctx, now, false, nil)
	}
	s.metrics.requests[res].Inc()
	s.metrics.latency[res].Observe(time.Since(now).Seconds())
}

// headerReceived runs after a request's head is read and before its body is. It keeps a copy of a
// chunked request's head for handleError, because fasthttp discards the head when such a body passes
// the limit (see chunkedHeads). Other requests cost one comparison.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() != -1 {
		// Whatever an earlier request on this header left (see chunkedHeads) must not be taken for this
		// request's head.
		s.heads.release(s.heads.take(h))
	} else if !s.heads.put(h, time.Now().UnixNano()) {
		s.serverLog.log(s.log, slog.LevelWarn, "chunked request head not kept: too many chunked bodies being read",
			"max", s.cfg.MaxConns)
	}
	return fasthttp.RequestConfig{} // the server's limits
}

// handleError answers requests fasthttp could not read. A body over MaxBodyBytes gets here before any of
// it is read (Content-Length) or as soon as the limit is passed (chunked: before the chunk that would
// pass it is read). Such a request is authenticated like any other so that its 413 goes to the
// webhook's activity log, without its payload. fasthttp has reset a chunked one by then; its head is
// restored from the copy headerReceived made. Either way the connection is closed after the answer:
// the rest of the body is never read, but the close lingers (see lingerer) so that a sender still
// uploading gets the answer rather than a connection reset. So does every other answer given here but
// a timeout's: fasthttp closes the connection after each, with the rest of the request unread, and a
// sender that has not delivered its request within ReadTimeout is given no more time.
func (s *Server) handleError(ctx *fasthttp.RequestCtx, err error) {
	now := time.Now()
	res := classify(err)
	if res != resRequestTimeout {
		s.lingers.mark(ctx.Conn(), now.UnixNano())
	}
	head := s.heads.take(&ctx.Request.Header)
	if res == resPayloadTooLarge {
		if head != nil {
			head.restore(&ctx.Request)
		}
		if s.tracer != nil {
			res = s.serveTraced(ctx, now, true)
		} else {
			res = s.serve(ctx, now, true, nil)
		}
	} else {
		s.respond(ctx, res)
		s.serverLog.log(s.log, slog.LevelDebug, "request not readable", "outcome", results[res].label, "err", err)
	}
	s.heads.release(head)
	s.metrics.requests[res].Inc()
	s.metrics.latency[res].Observe(time.Since(now).Seconds())
}

// serve decides and writes the answer. The checks run cheapest and least revealing first: route, load,
// webhook, method, verification, handshake, enabled, size, rate, body. Verification comes before
// "disabled" so that only a sender holding the secret learns that a webhook is disabled and gets its
// payload logged; a handshake is answered for a disabled webhook too (senders check the URL before the
// webhook is enabled). tr is the request's span (serveTraced); nil when tracing is off.
func (s *Server) serve(ctx *fasthttp.RequestCtx, now time.Time, tooLarge bool, tr *edgeTrace) result {
	path := ctx.Path()
	if tooLarge && !bytes.HasPrefix(path, hooksPrefix) {
		// Not a webhook's, or a chunked request whose head could not be kept (see headerReceived).
		return s.respond(ctx, resPayloadTooLarge)
	}
	if !bytes.HasPrefix(path, hooksPrefix) || !validID(path[len(hooksPrefix):]) {
		return s.respond(ctx, resRouteNotFound)
	}
	rawID := path[len(hooksPrefix):]
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	if n > int64(s.cfg.MaxInFlight) {
		return s.respond(ctx, resOverloaded)
	}

	st := s.states.get(rawID)
	id := ""
	if st != nil {
		id = st.id
	} else {
		id = string(rawID) // first request for this id (or an unknown id): the only allocation
	}
	hook, err := s.hooks.Get(s.lookupCtx, id)
	if !ctx.IsPost() {
		return s.notPost(ctx, hook, err)
	}
	if err != nil {
		res := classify(err)
		if res != resWebhookNotFound {
			res = classify(fmt.Errorf("%w %s: %w", errLookup, id, err))
			s.lookupLog.log(s.log, slog.LevelWarn, "webhook lookup failed", "webhook_id", id, "err", err)
		}
		return s.respond(ctx, res)
	}
	if st == nil {
		st = s.states.add(id)
	}

	bodyLen := 0
	if tooLarge {
		if bodyLen = ctx.Request.Header.ContentLength(); bodyLen <= s.cfg.MaxBodyBytes {
			bodyLen = s.cfg.MaxBodyBytes + 1 // chunked: all we know is that it passed the limit
		}
	} else {
		bodyLen = len(ctx.PostBody())
	}
	head := &ctx.Request.Header
	if ares := s.verifier.verify(ctx, hook, now); ares != verify.OK {
		if tooLarge && ares == verify.SignatureMismatch && signsBody(hook, now) {
			// Everything else about the signature was right; it covers a body that was never read.
			s.appendRejected(st, hook, resPayloadTooLarge, nil, bodyLen, now, meta{detail: detailUnverified, head: head, trace: tr})
			return s.respond(ctx, resPayloadTooLarge)
		}
		var preview []byte
		if !tooLarge {
			body := ctx.PostBody()
			preview = body[:min(len(body), s.cfg.AuthPreviewBytes)]
		}
		s.appendRejected(st, hook, resAuthRejected, preview, bodyLen, now, meta{detail: authDetails[ares], head: head, trace: tr})
		return s.respond(ctx, resAuthRejected)
	}
	if hook.Handshake != webhook.HandshakeNone && !tooLarge {
		if res, ok := s.postHandshake(ctx, hook, now); ok {
			return res
		}
	}
	if !hook.Enabled {
		s.appendRejected(st, hook, resWebhookDisabled, ctx.PostBody(), bodyLen, now, meta{head: head, trace: tr})
		return s.respond(ctx, resWebhookDisabled)
	}
	if tooLarge {
		s.appendRejected(st, hook, resPayloadTooLarge, nil, bodyLen, now, meta{head: head, trace: tr})
		return s.respond(ctx, resPayloadTooLarge)
	}
	if ok, wait := st.takeRate(now.UnixNano(), s.cfg.RatePerWebhook, s.cfg.RateBurst); !ok {
		s.respond(ctx, resRateLimited)
		var b [20]byte
		secs := int64(math.Ceil(wait.Seconds()))
		ctx.Response.Header.SetBytesKV(retryAfterKey, strconv.AppendInt(b[:0], max(1, secs), 10))
		return resRateLimited
	}
	body := ctx.PostBody()
	contentType := head.ContentType()
	kind := kindOf(contentType)
	if res, err := s.checkBody(kind, contentType, body); res != resAccepted {
		s.appendRejected(st, hook, res, body, bodyLen, now, meta{detailErr: err, head: head, trace: tr})
		return s.respond(ctx, res)
	}
	m := meta{head: head, trace: tr}
	if kind == bodyForm {
		m.contentType = contentType
	}
	return s.accept(ctx, st, hook, body, now, m)
}

// notPost answers a request to a webhook's URL with another method than POST: Meta's GET handshake
// for a webhook connected to Meta, 405 otherwise (with Allow: GET, POST for such a webhook, POST for
// others, and for an id that cannot be looked up).
func (s *Server) notPost(ctx *fasthttp.RequestCtx, hook *webhook.Hook, lookupErr error) result {
	if lookupErr == nil && hook.Handshake == webhook.HandshakeMeta {
		if ctx.IsGet() {
			return s.metaHandshake(ctx, hook)
		}
		ctx.Response.Header.SetBytesKV(allowKey, allowGetPost)
		return s.respond(ctx, resMethodNotAllowed)
	}
	ctx.Response.Header.SetBytesKV(allowKey, allowPost)
	return s.respond(ctx, resMethodNotAllowed)
}

// accept appends the request and answers 202 once Kafka has acknowledged it, or 503 when it cannot within
// AckTimeout.
func (s *Server) accept(ctx *fasthttp.RequestCtx, st *hookState, hook *webhook.Hook, body []byte, now time.Time, m meta) result {
	if s.closing.Load() {
		return s.respond(ctx, resShuttingDown)
	}
	p := s.getPending()
	p.fill(s.topic, st.id, hook, resAccepted, body, len(body), now, m)
	p.start = time.Now()
	// The record is not tied to the request's context: once handed over it is either delivered or failed
	// by the producer (DeliveryTimeout), and a late delivery after a 503 is harmless (same request id).
	s.producer.TryProduce(context.Background(), &p.rec, p.promise)
	err, owned := p.wait(s.cfg.AckTimeout)
	if err != nil {
		res := classify(err)
		if res != resKafkaTimeout && res != resKafkaBufferFull && res != resShuttingDown {
			res = classify(fmt.Errorf("%w: %w", errProduce, err))
		}
		s.produceLog.log(s.log, slog.LevelWarn, "request not acknowledged by kafka", "webhook_id", st.id,
			"outcome", results[res].label, "err", err)
		if owned {
			s.release(p)
		}
		return s.respond(ctx, res)
	}
	var b [64]byte
	out := append(b[:0], `{"request_id":"`...)
	out = append(out, p.hdrs.RequestID()...)
	out = append(out, `"}`...)
	s.release(p)
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentTypeBytes(jsonContentType)
	ctx.SetBody(out)
	return resAccepted
}

// appendRejected hands a rejected request to Kafka for the activity log without waiting for the ack: the
// sender's answer does not depend on it. It is bounded per webhook (RejectedLogRate) and in total
// (MaxRejectedPending) so that bad traffic can neither flood the log nor crowd out accepted records;
// what is not appended is counted. m carries the reason in words for the activity log's detail (the
// wire.HeaderEdgeDetail header) and the request's header for the kept sender headers.
func (s *Server) appendRejected(st *hookState, hook *webhook.Hook, res result, value []byte, bodyLen int, now time.Time, m meta) {
	if !st.takeReject(now.UnixNano(), s.cfg.RejectedLogRate, s.cfg.RejectedLogBurst) {
		s.metrics.rejDropped.rateLimited.Inc()
		return
	}
	if s.closing.Load() {
		s.metrics.rejDropped.backlog.Inc()
		return
	}
	if s.rejectedPending.Add(1) > int64(s.cfg.MaxRejectedPending) {
		s.rejectedPending.Add(-1)
		s.metrics.rejDropped.backlog.Inc()
		return
	}
	p := s.getPending()
	p.async = true
	p.fill(s.topic, st.id, hook, res, value, bodyLen, now, m)
	p.start = time.Now()
	s.producer.TryProduce(context.Background(), &p.rec, p.promise)
}

// respond writes the answer of a non-accepted result.
func (s *Server) respond(ctx *fasthttp.RequestCtx, res result) result {
	info := &results[res]
	ctx.SetStatusCode(info.status)
	if info.body != nil {
		ctx.SetContentTypeBytes(jsonContentType)
		ctx.SetBody(info.body)
	}
	if info.retry {
		ctx.Response.Header.SetBytesKV(retryAfterKey, s.retryAfter)
	}
	return res
}

// fasthttpLogger routes fasthttp's own messages (connection errors, limits hit) to the throttled debug
// log: they are per-connection and would otherwise flood under attack.
type fasthttpLogger struct{ s *Server }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.s.serverLog.log(l.s.log, slog.LevelDebug, "http server", "msg", fmt.Sprintf(format, args...))
}
