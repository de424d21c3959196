package ingestor

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// When a chunked body passes MaxBodyBytes, fasthttp resets the request (method, path and headers gone)
// before it calls the error handler, so the edge could not tell which webhook the 413 was for. A
// Content-Length body over the limit does not have this problem: it is refused from its header, before
// the reset. chunkedHeads bridges the gap: the server's HeaderReceived hook, which runs after the head
// is read and before the body is, copies the parts of a chunked request's head that decide its answer
// (method, request URI, Authorization); the handler or the error handler of the same request takes them
// back. The key is the request's header, which is the same object in the hook and in both handlers.
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

// chunkedHead is a copy of what serve reads from a request head besides the body.
type chunkedHead struct {
	at            int64 // unix nanos of the copy
	method        []byte
	uri           []byte
	authorization []byte
	hasAuth       bool
}

// maxPooledHead is the largest head copy kept in the pool; heads are bounded by MaxHeaderBytes anyway.
const maxPooledHead = 4 << 10

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
	auth := h.PeekBytes(authorizationKey)
	e.hasAuth = auth != nil
	e.authorization = append(e.authorization[:0], auth...)

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

// release returns e to the pool. The Authorization copy is zeroed first: it may be a secret.
func (c *chunkedHeads) release(e *chunkedHead) {
	if e == nil {
		return
	}
	clear(e.authorization)
	if cap(e.method)+cap(e.uri)+cap(e.authorization) > maxPooledHead {
		return
	}
	c.pool.Put(e)
}

// restore writes the copy back into a request that fasthttp has reset.
func (e *chunkedHead) restore(r *fasthttp.Request) {
	r.Header.SetMethodBytes(e.method)
	r.SetRequestURIBytes(e.uri)
	if e.hasAuth {
		r.Header.SetBytesKV(authorizationKey, e.authorization)
	}
}
