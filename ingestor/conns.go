package ingestor

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
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
//   - an admitted connection must deliver its first byte within FirstByteTimeout (see limitedConn);
//   - a keep-alive connection idle between requests gives its place to a new one: at a limit, the
//     longest-idle connection (of the new one's address, at MaxConnsPerIP) is closed and the new one
//     admitted in its place. Only when no connection is idle is the new one refused.
//
// Idle connections make one flood in which few requests are sent: without eviction, connections that
// each made one cheap request keep their places for IdleTimeout, and enough addresses together fill
// MaxConns. An idle connection costs its sender nothing to lose (it opens another, as after
// IdleTimeout); a connection that has read a byte of a request, or has not sent one yet, is never
// closed for another (the latter is bounded by FirstByteTimeout instead). fasthttp reports the idle
// ones through Server.ConnState (see connState); they are kept in two intrusive lists, oldest first,
// so that each change of state costs O(1) and nothing is allocated.
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
	byAddr   map[netip.Addr]addrConns // connections open per client address; no entry at 0
	idle     idleList                 // idle connections, longest-idle first (links[allIdle])
	idleN    int                      // len(idle)
	refusing int                      // answers being written
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

// addrConns are the connections of one client address.
type addrConns struct {
	n    int      // open
	idle idleList // idle, longest-idle first (links[addrIdle])
}

// The two idle lists a connection is on while idle: the limiter's and its address's.
const (
	allIdle = iota
	addrIdle
	numIdleLists
)

// idleList is a doubly linked list of idle connections threaded through their links[k], so that a
// connection joins and leaves it in O(1) without allocating.
type idleList struct{ head, tail *limitedConn }

func (li *idleList) push(c *limitedConn, k int) {
	c.links[k] = idleLinks{prev: li.tail}
	if li.tail != nil {
		li.tail.links[k].next = c
	} else {
		li.head = c
	}
	li.tail = c
}

func (li *idleList) remove(c *limitedConn, k int) {
	ln := c.links[k]
	if ln.prev != nil {
		ln.prev.links[k].next = ln.next
	} else {
		li.head = ln.next
	}
	if ln.next != nil {
		ln.next.links[k].prev = ln.prev
	} else {
		li.tail = ln.prev
	}
	c.links[k] = idleLinks{}
}

type idleLinks struct{ prev, next *limitedConn }

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
		byAddr:    make(map[netip.Addr]addrConns),
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

// admit takes a place for c, closing the longest-idle connection to make room if need be, or says which
// limit refuses it.
func (l *connLimiter) admit(c net.Conn, now time.Time) (*limitedConn, connLimit, bool) {
	addr := clientAddr(c)
	l.mu.Lock()
	lc, victim, why, ok := l.admitLocked(c, addr, now)
	l.mu.Unlock()
	if victim != nil {
		// Its fasthttp worker, waiting for the next request, reads the end of the connection and closes
		// it again: a no-op on a limitedConn already closed.
		_ = victim.Conn.Close()
		l.m.idleClosed[why].Inc()
	}
	return lc, why, ok
}

// admitLocked is admit under l.mu. victim, when not nil, is an idle connection whose place was taken for
// c, to close once l.mu is released; why is then the limit that made room for c.
func (l *connLimiter) admitLocked(c net.Conn, addr netip.Addr, now time.Time) (lc, victim *limitedConn, why connLimit, ok bool) {
	// The per-address limit first: when an address over its own limit meets a full edge, the address is
	// the one to name, and one of its own idle connections makes room under both limits.
	if l.perIP > 0 && addr.IsValid() && l.byAddr[addr].n >= l.perIP {
		why = limitMaxConnsPerIP
		if victim = l.evictLocked(addr); victim == nil {
			return nil, nil, why, false
		}
	}
	if l.open >= l.max {
		why = limitMaxConns
		if victim = l.evictLocked(netip.Addr{}); victim == nil {
			return nil, nil, why, false
		}
	}
	l.open++
	if addr.IsValid() {
		a := l.byAddr[addr]
		a.n++
		l.byAddr[addr] = a
	}
	lc = &limitedConn{Conn: c, l: l, addr: addr, waiting: true, firstByte: now.Add(l.firstByte)}
	return lc, victim, why, true
}

// evictLocked takes the place of the longest-idle connection, of addr if it is valid, of any address
// otherwise, and returns the connection for the caller to close; nil when none is idle.
func (l *connLimiter) evictLocked(addr netip.Addr) *limitedConn {
	for {
		var c *limitedConn
		if addr.IsValid() {
			c = l.byAddr[addr].idle.head
		} else {
			c = l.idle.head
		}
		if c == nil {
			return nil
		}
		l.unlinkLocked(c)
		// A connection being closed by its worker (or by Shutdown) gives its place back itself, in a
		// moment: it is no room for the new one now.
		if c.closed.CompareAndSwap(false, true) {
			l.releaseLocked(c)
			return c
		}
	}
}

// release gives back the place of c.
func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unlinkLocked(c)
	l.releaseLocked(c)
}

func (l *connLimiter) releaseLocked(c *limitedConn) {
	l.open--
	if c.addr.IsValid() {
		if a := l.byAddr[c.addr]; a.n > 1 {
			a.n--
			l.byAddr[c.addr] = a
		} else {
			delete(l.byAddr, c.addr)
		}
	}
}

// connState is fasthttp's Server.ConnState: it keeps the idle lists. fasthttp calls it from the
// goroutine serving the connection, with the connection the listener returned.
func (l *connLimiter) connState(nc net.Conn, st fasthttp.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	switch st {
	case fasthttp.StateIdle:
		l.mu.Lock()
		if !c.idle.Load() && !c.closed.Load() {
			c.idle.Store(true)
			l.idle.push(c, allIdle)
			if c.addr.IsValid() {
				a := l.byAddr[c.addr]
				a.idle.push(c, addrIdle)
				l.byAddr[c.addr] = a
			}
			l.idleN++
		}
		l.mu.Unlock()
	case fasthttp.StateActive:
		// Read has usually done it already; a pipelined request read from fasthttp's buffer has not.
		c.busy()
	}
}

// unlinkLocked takes c off the idle lists, if it is on them.
func (l *connLimiter) unlinkLocked(c *limitedConn) {
	if !c.idle.Load() {
		return
	}
	c.idle.Store(false)
	l.idle.remove(c, allIdle)
	if c.addr.IsValid() {
		a := l.byAddr[c.addr]
		a.idle.remove(c, addrIdle)
		l.byAddr[c.addr] = a
	}
	l.idleN--
}

// len is the number of connections open now.
func (l *connLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// idleLen is the number of open connections idle between requests.
func (l *connLimiter) idleLen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.idleN
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

	// idle: between two requests, on the limiter's idle lists through links, which l.mu guards. It is
	// written under l.mu and read without it by Read.
	idle  atomic.Bool
	links [numIdleLists]idleLinks

	waiting   bool      // no byte read yet
	firstByte time.Time // the cap while waiting
	want      time.Time // the read deadline last asked for while waiting
}

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		// The first byte of the next request: from now on the connection is busy, never closed to
		// make room, before fasthttp reports it active.
		c.busy()
	}
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

// busy takes c off the idle lists; one atomic load when it is not on them.
func (c *limitedConn) busy() {
	if !c.idle.Load() {
		return
	}
	c.l.mu.Lock()
	c.l.unlinkLocked(c)
	c.l.mu.Unlock()
}

// Close gives the connection's place back once, then closes it (the lingerer's Close may linger).
// fasthttp may close a connection twice (an idle one closed by Shutdown, then by its worker); the
// second call must neither free a second place nor cut a lingering close short.
func (c *limitedConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	c.l.release(c)
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
