package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// authLimiter slows down key guessing: a token bucket per client address that only failed
// authentications drain. Each refused key takes a token; an address without a token left is answered 429
// before any key it presents is checked (so that a 429 tells nothing about the key), and successes take
// nothing.
//
// The buckets are rows of PostgreSQL's auth_failures table, so that every admin process behind one
// address counts the same failures: spreading guesses over several processes buys nothing. The cost per
// path: a presented key (Bearer request or sign-in form) first reads its address's row (one primary-key
// read, finding nothing for an address that never failed); a refused key then takes its token with one
// UPSERT that computes the refill in SQL; a success writes nothing; a console session request presents
// no key and touches no bucket. Times are the processes' clocks (kept in step by NTP), not the database's,
// so tests can drive them.
//
// Checking and recording are separate steps, so concurrent failures from one address may all pass the
// check; each still takes its token, the bucket goes below zero and the address waits that debt off. The
// long-run rate is thus the configured one whatever the concurrency and the number of processes.
//
// The table is bounded: each failure deletes up to trimBatch of the least recently failed addresses whose
// bucket has refilled (an address is then indistinguishable from a new one), and at most every
// trimEvery a process deletes the rows past the max most recently failed addresses (their next failure
// starts from a full bucket).
type authLimiter struct {
	db    *pgxpool.Pool
	rate  float64 // tokens per second; 0: no limit
	burst float64
	max   int
	now   func() time.Time
	// trimEvery: how often at most this process enforces max (a query that walks max index entries).
	trimEvery time.Duration

	mu        sync.Mutex
	lastTrim  time.Time
	trimBatch int
}

// defaultTrimEvery lets the table exceed admin.auth_limiter_max_ips by the failures of a few seconds.
const defaultTrimEvery = 5 * time.Second

func newAuthLimiter(db *pgxpool.Pool, cfg Config) *authLimiter {
	return &authLimiter{
		db:        db,
		rate:      cfg.AuthFailuresPerMinute / 60,
		burst:     float64(cfg.AuthFailureBurst),
		max:       cfg.AuthLimiterMaxIPs,
		now:       time.Now,
		trimEvery: defaultTrimEvery,
		trimBatch: 64,
	}
}

// wait returns 0 when addr may present a key, or how long until it may. One primary-key read.
func (l *authLimiter) wait(ctx context.Context, addr netip.Addr) (time.Duration, error) {
	if l.rate == 0 {
		return 0, nil
	}
	var tokens float64
	err := l.db.QueryRow(ctx, `SELECT LEAST($2, tokens + GREATEST(0, extract(epoch FROM $3 - updated_at)) * $4)
FROM auth_failures WHERE addr = $1`, addr, l.burst, l.now(), l.rate).Scan(&tokens)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && tokens >= 1) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read failed-authentication bucket of %s: %w", addr, err)
	}
	return time.Duration((1 - tokens) / l.rate * float64(time.Second)), nil
}

// fail records a refused key from addr: one statement takes the token (refilling the bucket first) and
// deletes up to trimBatch other addresses whose buckets have refilled.
func (l *authLimiter) fail(ctx context.Context, addr netip.Addr) error {
	if l.rate == 0 {
		return nil
	}
	now := l.now()
	_, err := l.db.Exec(ctx, `WITH up AS (
	INSERT INTO auth_failures AS f (addr, tokens, updated_at) VALUES ($1, $2 - 1, $3)
	ON CONFLICT (addr) DO UPDATE SET
		tokens = LEAST($2, f.tokens + GREATEST(0, extract(epoch FROM $3 - f.updated_at)) * $4) - 1,
		updated_at = GREATEST(f.updated_at, $3)),
refilled AS (
	DELETE FROM auth_failures WHERE addr IN (
		SELECT addr FROM (SELECT addr, tokens, updated_at FROM auth_failures WHERE addr <> $1 ORDER BY updated_at LIMIT $5) o
		WHERE o.tokens + extract(epoch FROM $3 - o.updated_at) * $4 >= $2))
SELECT 1`, addr, l.burst, now, l.rate, l.trimBatch)
	if err != nil {
		return fmt.Errorf("record failed authentication of %s: %w", addr, err)
	}
	l.mu.Lock()
	due := now.Sub(l.lastTrim) >= l.trimEvery
	if due {
		l.lastTrim = now
	}
	l.mu.Unlock()
	if !due {
		return nil
	}
	// Keep the max most recently failed addresses (ties on updated_at may keep a few more).
	if _, err := l.db.Exec(ctx, `DELETE FROM auth_failures WHERE updated_at < (
	SELECT updated_at FROM auth_failures ORDER BY updated_at DESC OFFSET $1 - 1 LIMIT 1)`, l.max); err != nil {
		return fmt.Errorf("trim failed-authentication buckets to %d: %w", l.max, err)
	}
	return nil
}

// tracked is the number of addresses remembered (for tests).
func (l *authLimiter) tracked(ctx context.Context) (int, error) {
	var n int
	err := l.db.QueryRow(ctx, `SELECT count(*) FROM auth_failures`).Scan(&n)
	return n, err
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
