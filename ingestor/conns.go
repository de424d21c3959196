package ingestor

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// fasthttp can bound connections itself (Concurrency, MaxConnsPerIP), but it answers a connection over
// either limit with a fixed plain-text body and no Retry-After, counts nothing, and leaves a connection
// that sends nothing in its place for the whole ReadTimeout: 10,000 idle connections then denied every
// sender for 10 s, unseen. The edge's listener admits connections itself instead:
//
//   - at most MaxConns open at once, and MaxConnsPerIP from one client address;
//   - a connection over either limit gets the edge's own 503 (JSON error body, Retry-After,
//     Connection: close), is counted by reason, and closed; the answer is written in a goroutine of its
//     own, under a write deadline and at most maxRefusing at once, so that Accept never waits for a
//     client;
//   - an admitted connection must deliver its first byte within FirstByteTimeout (see limitedConn).
//
// fasthttp's own limits are set so that they never apply before the edge's (see New).
type connLimiter struct {
	max, perIP int
	firstByte  time.Duration
	answers    [numConnLimits][]byte // the whole HTTP answer to a refused connection
	m          *connMetrics
	log        *slog.Logger
	refuseLog  throttle

	mu       sync.Mutex
	open     int
	byAddr   map[netip.Addr]int // connections open per client address; no entry at 0
	refusing int                // answers being written
	stopped  bool
	wg       sync.WaitGroup // answers being written
}

// connLimit is why a connection was refused.
type connLimit uint8

const (
	limitMaxConns connLimit = iota
	limitMaxConnsPerIP
	numConnLimits
)

var connLimitLabels = [numConnLimits]string{"max_conns", "max_conns_per_ip"}

const (
	// maxRefusing bounds the answers to refused connections being written at once; past it a refused
	// connection is closed without one. Writing ~250 bytes to a new connection's empty send buffer does
	// not wait, so a writer lives for microseconds and the bound is only reached when writes stall.
	maxRefusing = 1024
	// refuseWriteTimeout bounds the write of one refusal.
	refuseWriteTimeout = time.Second
)

func newConnLimiter(cfg Config, retryAfter []byte, m *connMetrics, log *slog.Logger) *connLimiter {
	l := &connLimiter{
		max:       cfg.MaxConns,
		perIP:     cfg.MaxConnsPerIP,
		firstByte: min(cfg.FirstByteTimeout, cfg.ReadTimeout),
		m:         m,
		log:       log,
		byAddr:    make(map[netip.Addr]int),
	}
	l.refuseLog.every = 10 * time.Second
	l.answers[limitMaxConns] = refusal(results[resOverloaded].body, retryAfter)
	l.answers[limitMaxConnsPerIP] = refusal(connsPerIPBody, retryAfter)
	return l
}

// listen wraps ln so that its connections are admitted under the limits.
func (l *connLimiter) listen(ln net.Listener) net.Listener { return limitListener{ln, l} }

// clientAddr is what MaxConnsPerIP counts c under: its peer's IP, IPv6 reduced to its /64. It is invalid
// for connections without an IP peer (in-memory ones in tests), which only MaxConns bounds.
func clientAddr(c net.Conn) netip.Addr {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	a, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}
	}
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			a = p.Addr()
		}
	}
	return a
}

// admit takes a place for c, or says which limit refuses it.
func (l *connLimiter) admit(c net.Conn, now time.Time) (*limitedConn, connLimit, bool) {
	addr := clientAddr(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	// The per-address limit first: when an address over its own limit meets a full edge, the address is
	// the one to name.
	if l.perIP > 0 && addr.IsValid() && l.byAddr[addr] >= l.perIP {
		return nil, limitMaxConnsPerIP, false
	}
	if l.open >= l.max {
		return nil, limitMaxConns, false
	}
	l.open++
	if addr.IsValid() {
		l.byAddr[addr]++
	}
	lc := &limitedConn{Conn: c, l: l, addr: addr, waiting: true, firstByte: now.Add(l.firstByte)}
	return lc, 0, true
}

// release gives back the place of a connection admitted from addr.
func (l *connLimiter) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if addr.IsValid() {
		if n := l.byAddr[addr] - 1; n > 0 {
			l.byAddr[addr] = n
		} else {
			delete(l.byAddr, addr)
		}
	}
}

// len is the number of connections open now.
func (l *connLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// refuse answers c, refused over limit, and closes it, without making the caller wait.
func (l *connLimiter) refuse(c net.Conn, why connLimit) {
	l.m.refused[why].Inc()
	l.refuseLog.log(l.log, slog.LevelWarn, "connection refused: too many connections", "limit", connLimitLabels[why],
		"max_conns", l.max, "max_conns_per_ip", l.perIP, "client", c.RemoteAddr())
	if !l.beginRefusal() {
		_ = c.Close()
		return
	}
	go func() {
		defer l.endRefusal()
		_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
		_, err := c.Write(l.answers[why])
		if lc, ok := c.(*lingerConn); ok && err == nil {
			// A sender that wrote its request right after connecting has it unread in the socket: a plain
			// close would answer it with a reset, which can destroy the 503 before it is read.
			_ = lc.lingerClose()
			return
		}
		_ = c.Close()
	}()
}

func (l *connLimiter) beginRefusal() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || l.refusing >= maxRefusing {
		return false
	}
	l.refusing++
	l.wg.Add(1)
	return true
}

func (l *connLimiter) endRefusal() {
	l.mu.Lock()
	l.refusing--
	l.mu.Unlock()
	l.wg.Done()
}

// stop closes connections refused from now on without an answer, so that wait has an end.
func (l *connLimiter) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// wait waits for the answers to refused connections being written, each bounded by refuseWriteTimeout,
// or until ctx is done.
func (l *connLimiter) wait(ctx context.Context) {
	select {
	case <-waitDone(&l.wg):
	case <-ctx.Done():
	}
}

// waitDone is closed once wg's Wait returns: a wait group to select on with a deadline.
func waitDone(wg *sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

type limitListener struct {
	net.Listener
	l *connLimiter
}

// Accept returns the next connection within the limits; those over them are refused on the way.
func (ln limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc, why, ok := ln.l.admit(c, time.Now())
		if ok {
			_ = lc.Conn.SetReadDeadline(lc.firstByte) // until fasthttp sets its own, which is capped too
			return lc, nil
		}
		ln.l.refuse(c, why)
	}
}

// limitedConn is an admitted connection. Its first Close gives its place back.
//
// Until its first byte has been read, every read deadline set on it is capped at firstByte
// (FirstByteTimeout after it was accepted): fasthttp arms ReadTimeout when it starts serving a
// connection, and it would otherwise wait that long for a client that sends nothing. The first byte
// restores the deadline fasthttp asked for. Reads and read deadlines come from the one goroutine
// serving the connection, so waiting and want need no lock.
type limitedConn struct {
	net.Conn // the lingerer's connection, or the listener's
	l        *connLimiter
	addr     netip.Addr
	closed   atomic.Bool

	waiting   bool      // no byte read yet
	firstByte time.Time // the cap while waiting
	want      time.Time // the read deadline last asked for while waiting
}

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.waiting && n > 0 {
		c.waiting = false
		if !c.want.Equal(c.firstByte) {
			if derr := c.Conn.SetReadDeadline(c.want); derr != nil && err == nil {
				err = derr
			}
		}
	}
	return n, err
}

func (c *limitedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.capped(t))
}

func (c *limitedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(c.capped(t))
}

// capped is the read deadline to set for t: t itself once the first byte is in, the earlier of t and
// firstByte before, t being remembered for then.
func (c *limitedConn) capped(t time.Time) time.Time {
	if !c.waiting {
		return t
	}
	c.want = t
	if t.IsZero() || t.After(c.firstByte) {
		return c.firstByte
	}
	return t
}

// Close gives the connection's place back once, then closes it (the lingerer's Close may linger).
// fasthttp may close a connection twice (an idle one closed by Shutdown, then by its worker); the
// second call must neither free a second place nor cut a lingering close short.
func (c *limitedConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	c.l.release(c.addr)
	return c.Conn.Close()
}

// SetKeepAlive and SetKeepAlivePeriod pass fasthttp's TCP keep-alive settings (TCPKeepalive) on.
func (c *limitedConn) SetKeepAlive(on bool) error {
	if k, ok := c.Conn.(interface{ SetKeepAlive(bool) error }); ok {
		return k.SetKeepAlive(on)
	}
	return nil
}

func (c *limitedConn) SetKeepAlivePeriod(d time.Duration) error {
	if k, ok := c.Conn.(interface{ SetKeepAlivePeriod(time.Duration) error }); ok {
		return k.SetKeepAlivePeriod(d)
	}
	return nil
}
