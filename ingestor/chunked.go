package ingestor

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// When a chunked body passes MaxBodyBytes, fasthttp resets the request (method, path and headers gone)
// before it calls the error handler, so the edge could not tell which webhook the 413 was for. A
// Content-Length body over the limit does not have this problem: it is refused from its header, before
// the reset. chunkedHeads bridges the gap: the server's HeaderReceived hook, which runs after the head
// is read and before the body is, copies a chunked request's head (the method, the request URI and
// every header: a webhook's verification may read any of them, a signature, a timestamp, a token in
// the query); the handler or the error handler of the same request takes it back. The key is the request's header, which is the same object in the hook and in both handlers.
//
// Entries normally live for the time of one body read. When fasthttp gives up on a connection without
// calling either handler (the client closes between two chunks), the entry is left behind; entries
// older than ReadTimeout, by which time their body read has necessarily ended, are swept, and there are
// never more than MaxConns (one body is read per connection at a time), so a client closing on purpose
// can neither grow the map nor pin memory for long.
type chunkedHeads struct {
	n      atomic.Int64 // len(m), read without the lock on every request
	mu     sync.Mutex
	m      map[*fasthttp.RequestHeader]*chunkedHead
	max    int
	maxAge int64 // nanoseconds
	sweep  int64 // unix nanos of the next sweep
	pool   sync.Pool
}

// chunkedHead is a copy of a request's head: its method, request URI and headers (but cookies), each
// header's name and value back to back in buf. Its buffers are bounded by MaxHeaderBytes.
type chunkedHead struct {
	at     int64 // unix nanos of the copy
	method []byte
	uri    []byte
	buf    []byte
	ends   []int // where each name, then each value, ends in buf
}

// maxPooledHead is the largest head copy kept in the pool; heads are bounded by MaxHeaderBytes anyway.
const maxPooledHead = 16 << 10

var cookieKey = []byte("Cookie")

func newChunkedHeads(maxEntries int, maxAge time.Duration) *chunkedHeads {
	return &chunkedHeads{m: make(map[*fasthttp.RequestHeader]*chunkedHead), max: maxEntries, maxAge: int64(maxAge)}
}

// put copies what serve needs from h, replacing what an earlier request with the same header left. It
// reports false when the map is full of requests still within their read time: the request is then
// answered as before, 413 without an activity-log record.
func (c *chunkedHeads) put(h *fasthttp.RequestHeader, now int64) bool {
	e := c.get()
	e.at = now
	e.method = append(e.method[:0], h.Method()...)
	e.uri = append(e.uri[:0], h.RequestURI()...)
	e.buf, e.ends = e.buf[:0], e.ends[:0]
	for k, v := range h.All() {
		if bytes.EqualFold(k, cookieKey) {
			continue // never read by serve, and a credential
		}
		e.buf = append(e.buf, k...)
		e.ends = append(e.ends, len(e.buf))
		e.buf = append(e.buf, v...)
		e.ends = append(e.ends, len(e.buf))
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[h]; old != nil {
		c.m[h] = e
		c.release(old)
		return true
	}
	if now >= c.sweep || len(c.m) >= c.max {
		c.sweepLocked(now)
	}
	if len(c.m) >= c.max {
		c.release(e)
		return false
	}
	c.m[h] = e
	c.n.Store(int64(len(c.m)))
	return true
}

// sweepLocked removes the entries whose body read has ended without either handler taking them.
func (c *chunkedHeads) sweepLocked(now int64) {
	for k, e := range c.m {
		if now-e.at > c.maxAge {
			delete(c.m, k)
			c.release(e)
		}
	}
	c.n.Store(int64(len(c.m)))
	c.sweep = now + c.maxAge
}

// take removes and returns the copy made for h, or nil. The caller releases it.
func (c *chunkedHeads) take(h *fasthttp.RequestHeader) *chunkedHead {
	if c.n.Load() == 0 {
		return nil
	}
	c.mu.Lock()
	e := c.m[h]
	if e != nil {
		delete(c.m, h)
		c.n.Store(int64(len(c.m)))
	}
	c.mu.Unlock()
	return e
}

func (c *chunkedHeads) len() int { return int(c.n.Load()) }

func (c *chunkedHeads) get() *chunkedHead {
	if v := c.pool.Get(); v != nil {
		return v.(*chunkedHead)
	}
	return &chunkedHead{}
}

// release returns e to the pool. The copy is zeroed first: credentials and signatures travel in
// headers and in the query.
func (c *chunkedHeads) release(e *chunkedHead) {
	if e == nil {
		return
	}
	clear(e.buf)
	clear(e.uri)
	if cap(e.method)+cap(e.uri)+cap(e.buf) > maxPooledHead {
		return
	}
	c.pool.Put(e)
}

// header is the value of the named header in the copy (exact name as fasthttp spells it), or nil.
func (e *chunkedHead) header(name string) []byte {
	from := 0
	for i := 0; i+1 < len(e.ends); i += 2 {
		if string(e.buf[from:e.ends[i]]) == name {
			return e.buf[e.ends[i]:e.ends[i+1]]
		}
		from = e.ends[i+1]
	}
	return nil
}

// restore writes the copy back into a request that fasthttp has reset.
func (e *chunkedHead) restore(r *fasthttp.Request) {
	r.Header.SetMethodBytes(e.method)
	r.SetRequestURIBytes(e.uri)
	from := 0
	for i := 0; i+1 < len(e.ends); i += 2 {
		r.Header.SetBytesKV(e.buf[from:e.ends[i]], e.buf[e.ends[i]:e.ends[i+1]])
		from = e.ends[i+1]
	}
}
