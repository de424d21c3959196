package ingestor

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// When the edge refuses a request it has not read whole — a body over MaxBodyBytes is answered 413 from
// its Content-Length, or as soon as a chunked body passes the limit — fasthttp closes the connection
// after the answer while the sender may still be uploading. A socket closed with unread bytes in its
// receive buffer, or that receives bytes after its close, answers with a RST instead of a FIN, and the
// RST can cost the sender the answer: its upload fails with "connection reset by peer", and the answer
// itself is lost when the RST overtakes it on the network or the sender's system drops what it had
// received. The sender then retries a payload that can never fit.
//
// The lingerer does what net/http calls a lingering close for those connections only: the handler of
// the refused request marks its connection, and the listener's connection, when fasthttp closes it,
// half-closes it (the FIN follows the answer) and reads and discards what the sender still sends, in a
// goroutine of its own, until the sender closes, LingerCloseBytes have been read or LingerCloseTimeout
// has passed; then it closes. No fasthttp worker waits for it, and at most LingerCloseMaxConns
// connections linger at once: above that, and during shutdown, a marked connection is closed at once,
// as if the lingerer were off. Every other connection (keep-alive, idle, timed out) closes as before.
//
// The mark is keyed by the connection's addresses rather than kept on the connection, because the
// handler sees the connection limiter's wrapper around it (see connLimiter), not the lingerer's
// connection. A connection refused over a connection limit lingers the same way, without a mark.
type lingerer struct {
	timeout  time.Duration
	maxBytes int64
	max      int   // lingering connections at once
	maxMarks int   // marks waiting for their connection's close: at most one per served connection
	maxAge   int64 // nanoseconds after which a mark is stale (see sweepLocked)
	m        *lingerMetrics

	marks    atomic.Int64 // len(marked), read without the lock on every close
	mu       sync.Mutex
	marked   map[connKey]int64 // unix nanos of the mark
	sweep    int64             // unix nanos of the next sweep
	active   map[*lingerConn]struct{}
	stopped  bool
	cut      atomic.Bool // shutdown ended the lingering connections early
	wg       sync.WaitGroup
	disabled bool
}

// connKey names a TCP connection by its two ends: no two open connections of a listener share it.
type connKey struct{ local, remote netip.AddrPort }

func keyOf(c net.Conn) (connKey, bool) {
	l, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		return connKey{}, false
	}
	r, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return connKey{}, false
	}
	return connKey{l.AddrPort(), r.AddrPort()}, true
}

// lingerOutcome is how a marked connection ended.
type lingerOutcome uint8

const (
	lingerEOF      lingerOutcome = iota // the sender closed: the case the linger is for
	lingerTimeout                       // LingerCloseTimeout passed
	lingerMaxBytes                      // LingerCloseBytes read; closed with a RST if the sender still sends
	lingerError                         // the connection failed (reset by the sender, …)
	lingerOverCap                       // LingerCloseMaxConns were lingering: closed at once
	lingerShutdown                      // the edge was shutting down: closed at once or cut short
	numLingerOutcomes
)

var lingerLabels = [numLingerOutcomes]string{"eof", "timeout", "max_bytes", "error", "over_cap", "shutdown"}

func newLingerer(cfg Config, m *lingerMetrics) *lingerer {
	return &lingerer{
		timeout:  cfg.LingerCloseTimeout,
		maxBytes: int64(cfg.LingerCloseBytes),
		max:      cfg.LingerCloseMaxConns,
		maxMarks: cfg.MaxConns,
		// A mark is taken when fasthttp closes the connection, right after writing the answer, which
		// WriteTimeout bounds.
		maxAge:   int64(2*cfg.WriteTimeout + time.Second),
		m:        m,
		marked:   make(map[connKey]int64),
		active:   make(map[*lingerConn]struct{}),
		disabled: cfg.LingerCloseTimeout == 0 || cfg.LingerCloseMaxConns == 0,
	}
}

// listen wraps ln so that marked connections linger when closed. Connections that cannot be half-closed
// (not TCP) are served unwrapped, and close at once as before.
func (l *lingerer) listen(ln net.Listener) net.Listener {
	if l.disabled {
		return ln
	}
	return lingerListener{ln, l}
}

// mark asks for a lingering close of c, the connection of a request the edge refused without reading it
// whole. It is a no-op for connections that are not TCP, and when too many marks are waiting.
func (l *lingerer) mark(c net.Conn, now int64) {
	if l.disabled || c == nil {
		return
	}
	k, ok := keyOf(c)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now >= l.sweep || len(l.marked) >= l.maxMarks {
		l.sweepLocked(now)
	}
	if len(l.marked) < l.maxMarks {
		l.marked[k] = now
		l.marks.Store(int64(len(l.marked)))
	}
}

// sweepLocked drops marks that no close has taken: those of connections the listener did not wrap
// (Serve was given a listener whose connections report TCP addresses but are not *net.TCPConn).
func (l *lingerer) sweepLocked(now int64) {
	for k, at := range l.marked {
		if now-at > l.maxAge {
			delete(l.marked, k)
		}
	}
	l.marks.Store(int64(len(l.marked)))
	l.sweep = now + l.maxAge
}

// take removes c's mark and reports whether there was one. Unmarked closes cost one atomic load while
// no mark is waiting.
func (l *lingerer) take(c *lingerConn) bool {
	if l.marks.Load() == 0 {
		return false
	}
	k, ok := keyOf(c)
	if !ok {
		return false
	}
	l.mu.Lock()
	_, ok = l.marked[k]
	if ok {
		delete(l.marked, k)
		l.marks.Store(int64(len(l.marked)))
	}
	l.mu.Unlock()
	return ok
}

// begin admits c to linger, or counts why it may not.
func (l *lingerer) begin(c *lingerConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopped:
		l.m.outcomes[lingerShutdown].Inc()
		return false
	case len(l.active) >= l.max:
		l.m.outcomes[lingerOverCap].Inc()
		return false
	}
	l.active[c] = struct{}{}
	l.wg.Add(1)
	return true
}

// run half-closes c, discards what arrives until the sender closes or a bound is reached, and closes.
func (l *lingerer) run(c *lingerConn) {
	defer l.wg.Done()
	var n int64
	var err error
	if err = c.CloseWrite(); err == nil {
		if err = c.SetReadDeadline(time.Now().Add(l.timeout)); err == nil {
			// io.Discard reads into a pooled buffer: nothing is kept.
			n, err = io.CopyN(io.Discard, c.TCPConn, l.maxBytes)
		}
	}
	_ = c.TCPConn.Close()
	l.mu.Lock()
	delete(l.active, c)
	l.mu.Unlock()

	out := lingerError
	switch {
	case l.cut.Load():
		out = lingerShutdown
	case err == nil:
		out = lingerMaxBytes
	case errors.Is(err, io.EOF):
		out = lingerEOF
	case errors.Is(err, os.ErrDeadlineExceeded):
		out = lingerTimeout
	}
	l.m.outcomes[out].Inc()
	l.m.discarded.Add(float64(n))
}

// len is the number of connections lingering now.
func (l *lingerer) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.active)
}

// stop closes connections marked from now on at once.
func (l *lingerer) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// wait waits for the lingering connections to end on their own until ctx is done, then closes those
// left. It returns how many it closed.
func (l *lingerer) wait(ctx context.Context) int {
	done := waitDone(&l.wg)
	select {
	case <-done:
		return 0
	case <-ctx.Done():
	}
	l.mu.Lock()
	l.cut.Store(true)
	n := len(l.active)
	for c := range l.active {
		_ = c.TCPConn.Close() // its read fails at once; run closes it again, harmlessly
	}
	l.mu.Unlock()
	<-done
	return n
}

type lingerListener struct {
	net.Listener
	l *lingerer
}

func (ln lingerListener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		return &lingerConn{TCPConn: tc, l: ln.l}, nil
	}
	return c, err
}

// lingerConn is a listener's connection. It embeds *net.TCPConn so that fasthttp still finds
// SetKeepAlive and the rest on it.
type lingerConn struct {
	*net.TCPConn
	l *lingerer
}

// Close lingers when the connection was marked, in a goroutine of its own, and closes at once otherwise.
func (c *lingerConn) Close() error {
	if !c.l.take(c) {
		return c.TCPConn.Close()
	}
	return c.lingerClose()
}

// lingerClose lingers without a mark: for a connection answered before anything of it was read (see
// connLimiter.refuse).
func (c *lingerConn) lingerClose() error {
	if !c.l.begin(c) {
		return c.TCPConn.Close()
	}
	go c.l.run(c)
	return nil
}
