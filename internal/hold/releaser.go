package hold

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/wire"
)

// lockClass is the first key of the releaser's lease, a PostgreSQL advisory lock (lockClass, 0) held by
// a pass's transaction ("hold" in ASCII).
const lockClass = 0x686f6c64

// Producer produces attempts of earlier requests (replay.Producer).
type Producer interface {
	Produce(ctx context.Context, attempts []replay.Attempt) ([]replay.Result, error)
}

// Resolver answers which identifiers the directory knows now, asking PostgreSQL, never a cache
// (directory.Resolver's ResolveFresh): a user created a moment ago must be seen.
type Resolver interface {
	ResolveFresh(ctx context.Context, projectID int64, kind identify.Kind, values []string) (map[string]directory.Subject, error)
}

// ReleaserConfig are the releaser's settings (the pipeline's hold_* settings).
type ReleaserConfig struct {
	// PollInterval: how often a pass looks at the projects it was told changed and at the holds that
	// ran out.
	PollInterval time.Duration
	// RescanInterval: how often a pass asks the directory about every held request.
	RescanInterval time.Duration
	// PageSize is how many held requests a pass reads, resolves and produces at a time. Default 1000.
	PageSize int
	// KeepDone keeps released and expired rows this long (to be read, and so that a request's first
	// attempt redone after its release finds its hold). Default 24h.
	KeepDone time.Duration
}

// Releaser releases held requests: see the package doc. Run it in every pipeline process; subscribe it
// to the config notifier ("user:" and "device:") so that a user's creation is acted on at once.
type Releaser struct {
	store *Store
	res   Resolver
	prod  Producer
	cfg   ReleaserConfig
	log   *slog.Logger
	m     releaserMetrics

	mu    sync.Mutex
	dirty map[int64]bool // projects whose users or devices changed since the last pass
	all   bool           // resolve every held request at the next pass (a resync, a rescan)
	wake  chan struct{}
}

type releaserMetrics struct {
	released, expired, lost prometheus.Counter
}

// NewReleaser returns a releaser of store's held requests; reg gets its metrics (nil: none exported).
func NewReleaser(store *Store, res Resolver, prod Producer, cfg ReleaserConfig, reg prometheus.Registerer, log *slog.Logger) *Releaser {
	if cfg.PageSize <= 0 {
		cfg.PageSize = 1000
	}
	if cfg.KeepDone <= 0 {
		cfg.KeepDone = 24 * time.Hour
	}
	r := &Releaser{store: store, res: res, prod: prod, cfg: cfg, log: log, dirty: map[int64]bool{}, all: true,
		wake: make(chan struct{}, 1)}
	r.wake <- struct{}{} // Run's first pass is at once, and looks at every hold
	r.m = releaserMetrics{
		released: prometheus.NewCounter(prometheus.CounterOpts{Name: "inlet_hold_released_total",
			Help: "Held requests produced again because their user appeared."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "inlet_hold_expired_total",
			Help: "Held requests produced again because their hold ran out (they fail with user_not_found unless the user exists by then)."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "inlet_hold_unproducible_total",
			Help: "Held requests that could not run again (their record past the topic's retention, truncated or gone): marked expired, their entry stays held."}),
	}
	if reg != nil {
		reg.MustRegister(r.m.released, r.m.expired, r.m.lost)
	}
	return r
}

// Changed implements pgdb.Subscriber: "user:<project>:…" and "device:<project>:…" mark the project's
// holds to be looked at by the next pass, which starts at once.
func (r *Releaser) Changed(payload string) {
	_, rest, _ := strings.Cut(payload, ":")
	id, _, _ := strings.Cut(rest, ":")
	p, err := strconv.ParseInt(id, 10, 64)
	r.mu.Lock()
	if err != nil {
		r.all = true
	} else {
		r.dirty[p] = true
	}
	r.mu.Unlock()
	r.signal()
}

// Resync implements pgdb.Subscriber: notifications may have been lost; every hold is looked at.
func (r *Releaser) Resync() {
	r.mu.Lock()
	r.all = true
	r.mu.Unlock()
	r.signal()
}

func (r *Releaser) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// gather is the most a notification waits for others to join its pass.
const gather = 100 * time.Millisecond

// Run does a pass at once, then at every notification (at most one pass per 100 ms while they stream in),
// every PollInterval, and a full one every RescanInterval, until ctx is done. A failed pass is logged
// and done again at the next tick.
func (r *Releaser) Run(ctx context.Context) error {
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	rescan := time.NewTicker(r.cfg.RescanInterval)
	defer rescan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-poll.C:
		case <-rescan.C:
			r.mu.Lock()
			r.all = true
			r.mu.Unlock()
		}
		if _, err := r.Pass(ctx, time.Now()); err != nil && ctx.Err() == nil && !errors.Is(err, errNoLease) {
			r.log.Warn("held requests not released; retried at the next interval", "err", err)
		}
		// Notifications of an import come by the thousand: let them gather a little.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(r.cfg.PollInterval/4, gather)):
		}
	}
}

// Passed is what one pass did.
type Passed struct {
	Released, Expired, Unproducible int
}

// Pass looks at the held requests of the projects marked changed (all of them after a resync or at a
// rescan) and at those whose hold ran out by now, in arrival order, and produces those whose
// identifiers all resolve now (CauseRelease) and those past their expiry (CauseExpire), marking them
// done once Kafka has them. One process passes at a time (an advisory lock held by the pass's
// transaction); in another the pass returns at once, keeping its marks for its next pass.
func (r *Releaser) Pass(ctx context.Context, now time.Time) (Passed, error) {
	r.mu.Lock()
	dirty, all := r.dirty, r.all
	r.dirty, r.all = map[int64]bool{}, false
	r.mu.Unlock()
	var out Passed
	err := r.pass(ctx, now, dirty, all, &out)
	if err != nil {
		// Looked at again next time.
		r.mu.Lock()
		for p := range dirty {
			r.dirty[p] = true
		}
		r.all = r.all || all
		r.mu.Unlock()
	}
	return out, err
}

func (r *Releaser) pass(ctx context.Context, now time.Time, dirty map[int64]bool, all bool, out *Passed) error {
	projects := make([]int64, 0, len(dirty))
	for p := range dirty {
		projects = append(projects, p)
	}
	return pgx.BeginFunc(ctx, r.store.db, func(tx pgx.Tx) error {
		var leased bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, 0)`, int32(lockClass)).Scan(&leased); err != nil {
			return fmt.Errorf("take the releaser's lease: %w", err)
		}
		if !leased {
			return errNoLease
		}
		var after int64
		for {
			rows, err := tx.Query(ctx, `SELECT `+heldColumns+` FROM held_requests
				WHERE state = 'held' AND id > $1 AND ($2 OR project_id = ANY($3))
				UNION
				SELECT `+heldColumns+` FROM held_requests WHERE state = 'held' AND id > $1 AND expires_at <= $4
				ORDER BY id LIMIT $5`, after, all, projects, now, r.cfg.PageSize)
			if err != nil {
				return fmt.Errorf("read held requests: %w", err)
			}
			page, err := scanHeld(rows)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			after = page[len(page)-1].ID
			if err := r.releasePage(ctx, tx, now, page, out); err != nil {
				return err
			}
			if len(page) < r.cfg.PageSize {
				break
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM held_requests WHERE id IN (SELECT id FROM held_requests
			WHERE state <> 'held' AND done_at < $1 LIMIT 10000)`, now.Add(-r.cfg.KeepDone)); err != nil {
			return fmt.Errorf("delete done holds: %w", err)
		}
		return nil
	})
}

type resolveKey struct {
	project int64
	kind    identify.Kind
}

// releasePage resolves a page of held requests, produces those due and marks them.
func (r *Releaser) releasePage(ctx context.Context, tx pgx.Tx, now time.Time, page []Held, out *Passed) error {
	groups := map[resolveKey][]string{}
	for i := range page {
		h := &page[i]
		k := resolveKey{h.ProjectID, h.Kind}
		groups[k] = append(groups[k], h.Values...)
	}
	found := make(map[resolveKey]map[string]directory.Subject, len(groups))
	for k, values := range groups {
		m, err := r.res.ResolveFresh(ctx, k.project, k.kind, values)
		if _, ok := errors.AsType[*domainerr.ValidationError](err); ok {
			m, err = nil, nil // a kind the directory does not know: nothing resolves; the holds expire
		}
		if err != nil {
			return fmt.Errorf("resolve held identifiers of project %d (%s): %w", k.project, k.kind, err)
		}
		found[k] = m
	}
	var attempts []replay.Attempt
	var due []*Held
	for i := range page {
		h := &page[i]
		resolved := true
		for _, v := range h.Values {
			if _, ok := found[resolveKey{h.ProjectID, h.Kind}][v]; !ok {
				resolved = false
				break
			}
		}
		cause := replay.CauseRelease
		switch {
		case resolved:
		case !h.ExpiresAt.After(now):
			cause = replay.CauseExpire
		default:
			continue
		}
		attempts = append(attempts, replay.Attempt{ProjectID: h.ProjectID, WebhookID: h.WebhookID, RequestID: h.RequestID,
			Partition: h.Partition, Offset: h.Offset, Number: 1, Cause: cause,
			ReplacesStatus: chstore.StatusHeld, ReplacesReason: wire.ReasonWaitingForUser, Fired: h.Fired})
		due = append(due, h)
	}
	if len(attempts) == 0 {
		return nil
	}
	res, err := r.prod.Produce(ctx, attempts)
	if err != nil {
		return fmt.Errorf("produce %d attempts of held requests: %w", len(attempts), err)
	}
	ids := make([]int64, len(due))
	states := make([]string, len(due))
	for i, h := range due {
		ids[i] = h.ID
		switch {
		case res[i].Err != nil:
			states[i] = StateExpired
			out.Unproducible++
			r.m.lost.Inc()
			r.log.Warn("held request cannot run again; its entry stays held", "request_id", h.RequestID,
				"webhook_id", h.WebhookID, "partition", h.Partition, "offset", h.Offset, "err", res[i].Err)
		case attempts[i].Cause == replay.CauseRelease:
			states[i] = StateReleased
			out.Released++
			r.m.released.Inc()
		default:
			states[i] = StateExpired
			out.Expired++
			r.m.expired.Inc()
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE held_requests h SET state = v.state, done_at = now()
		FROM unnest($1::bigint[], $2::text[]) AS v (id, state) WHERE h.id = v.id`, ids, states); err != nil {
		return fmt.Errorf("mark %d held requests done: %w", len(ids), err)
	}
	return nil
}
