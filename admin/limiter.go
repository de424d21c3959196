package admin

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// authLimiter slows down key guessing: a token bucket per client address that only failed
// authentications drain. Each refused key takes a token; an address without a token left is answered 429
// before any key it presents is checked (so that a 429 tells nothing about the key, and a limited address
// costs no PostgreSQL lookup), and successes take nothing.
//
// Checking and recording are separate steps, so concurrent failures from one address may all pass the
// check; each still takes its token, the bucket goes below zero and the address waits that debt off. The
// long-run rate is thus the configured one whatever the concurrency.
//
// Memory is bounded: an address whose bucket has refilled is forgotten (it is then indistinguishable from
// a new one), and past max addresses the one whose last failure is oldest is forgotten.
//
// The bucket is written out here rather than taken from golang.org/x/time/rate: it is a few lines, and
// the limiter needs its state (the refill time decides when an address may be forgotten) anyway.
type authLimiter struct {
	rate  float64 // tokens per second; 0: no limit
	burst float64
	max   int
	now   func() time.Time

	mu  sync.Mutex
	m   map[netip.Addr]*list.Element
	lru list.List // of *ipBucket; the most recent failure at the front
}

// ipBucket is one address's bucket as of its last failure.
type ipBucket struct {
	addr   netip.Addr
	tokens float64
	at     time.Time
}

func newAuthLimiter(cfg Config) *authLimiter {
	return &authLimiter{
		rate:  cfg.AuthFailuresPerMinute / 60,
		burst: float64(cfg.AuthFailureBurst),
		max:   cfg.AuthLimiterMaxIPs,
		now:   time.Now,
		m:     map[netip.Addr]*list.Element{},
	}
}

// tokensAt is b's token count at now.
func (l *authLimiter) tokensAt(b *ipBucket, now time.Time) float64 {
	return math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
}

// wait returns 0 when addr may present a key, or how long until it may.
func (l *authLimiter) wait(addr netip.Addr) time.Duration {
	if l.rate == 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[addr]
	if e == nil {
		return 0
	}
	tokens := l.tokensAt(e.Value.(*ipBucket), l.now())
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / l.rate * float64(time.Second))
}

// fail records a refused key from addr.
func (l *authLimiter) fail(addr netip.Addr) {
	if l.rate == 0 {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.m[addr]; e != nil {
		b := e.Value.(*ipBucket)
		b.tokens, b.at = l.tokensAt(b, now)-1, now
		l.lru.MoveToFront(e)
	} else {
		l.m[addr] = l.lru.PushFront(&ipBucket{addr: addr, tokens: l.burst - 1, at: now})
	}
	// Forget the addresses whose buckets have refilled, oldest failure first, and the oldest beyond max.
	for back := l.lru.Back(); back != nil && back != l.lru.Front(); back = l.lru.Back() {
		b := back.Value.(*ipBucket)
		if len(l.m) <= l.max && l.tokensAt(b, now) < l.burst {
			break
		}
		l.lru.Remove(back)
		delete(l.m, b.addr)
	}
}

// tracked is the number of addresses remembered (for tests).
func (l *authLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// clientAddr is the address a request is limited as: the connection's peer, or with trustForwardedFor
// the last X-Forwarded-For entry (the one the proxy in front appended). IPv6 addresses are reduced to
// their /64, which one client usually has whole.
func clientAddr(r *http.Request, trustForwardedFor bool) netip.Addr {
	var addr netip.Addr
	if trustForwardedFor {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			addr, _ = netip.ParseAddr(strings.TrimSpace(last))
		}
	}
	if !addr.IsValid() {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		addr, _ = netip.ParseAddr(host)
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		if p, err := addr.Prefix(64); err == nil {
			addr = p.Addr()
		}
	}
	return addr
}
