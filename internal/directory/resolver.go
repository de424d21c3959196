package directory

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/dgraph-io/ristretto/v2/z"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/phone"
)

// Subject is who a webhook request is about.
type Subject struct {
	// UserID is the matched user; empty for a device without a user.
	UserID string
	// HWID is the matched device of a hwid lookup; empty for the other kinds.
	HWID string
	// HWIDs are all the user's devices (most recently updated first, at most Config.MaxHWIDs, the
	// matched device first), or just the matched device when it has no user. The slice is shared with
	// the cache: read it, never modify it.
	HWIDs []string
}

// Resolver turns identifiers into subjects for the data path. It answers from a ristretto cache and
// asks PostgreSQL once per Resolve call for all the values it misses. Entries are invalidated by the
// change notifications of pgdb.Notifier (payloads "user:<project>:…", "device:<project>:…" and
// "project:<project>"): a change in a project makes every cached entry of that project stale, a
// listener reconnect makes every entry stale. Stale entries are refetched, but served when PostgreSQL
// cannot be reached (stale-if-error). It is safe for concurrent use.
//
// Phone values are normalised in the project's phone region (from PhoneRegions, else
// Config.DefaultRegion), read on a phone miss and cached per project until a "project:<project>"
// notification, a listener reconnect or Config.TTL. Entries are keyed by the value as sent, so a region
// change must make them stale too: the same notification does.
type Resolver struct {
	pool     *pgxpool.Pool
	projects PhoneRegions
	cfg      Config
	log      *slog.Logger
	cache    *ristretto.Cache[string, *entry]
	m        resolverMetrics

	// epoch counts listener (re)connects: bumping it makes every entry stale at once.
	epoch atomic.Uint64
	// gens counts changes per project. A project absent from the map is at generation 0; its counters
	// are created on its first change, so entries stored at 0 become stale then. regions caches each
	// project's phone region; both maps hold one small entry per project seen.
	mu      sync.RWMutex
	gens    map[int64]*projectGen
	regions map[int64]cachedRegion
}

// projectGen counts one project's change notifications.
type projectGen struct {
	changes  atomic.Uint64 // every notification: the project's cached entries are stale
	settings atomic.Uint64 // "project:" notifications only: the project's cached phone region is stale
}

// cachedRegion is a project's phone_region as read at epoch and settings generation settings.
type cachedRegion struct {
	region          string // as stored: "" means Config.DefaultRegion
	epoch, settings uint64
	freshUntil      int64 // unix nanoseconds; past it the region is read again
}

// entry is one cached answer, found or not. It is immutable once stored.
type entry struct {
	epoch, gen uint64
	freshUntil int64 // unix nanoseconds; past it the entry is refetched, but may still be served on error
	found      bool
	subject    Subject
}

type resolverMetrics struct {
	values       *prometheus.CounterVec // kind, result
	queries      *prometheus.CounterVec // kind
	queryErrors  *prometheus.CounterVec // kind
	queryTime    *prometheus.HistogramVec
	invalidation *prometheus.CounterVec // scope: project, all
	created      *prometheus.CounterVec // kind: subjects Create inserted
	// Resolved counters per kind and result, so that the hot path does no label lookups.
	byKind map[identify.Kind]*[numResults]prometheus.Counter
}

// Per-value outcomes of Resolve, counted in inlet_directory_resolve_values_total.
const (
	resultHit         = iota // fresh entry, found
	resultNegativeHit        // fresh entry, not found
	resultQueried            // asked PostgreSQL
	resultStale              // PostgreSQL failed, stale entry served
	resultUnavailable        // PostgreSQL failed, nothing cached
	numResults
)

var resultNames = [numResults]string{"hit", "negative_hit", "queried", "stale", "unavailable"}

var kinds = []identify.Kind{identify.ByUserID, identify.ByEmail, identify.ByPhone, identify.ByHWID}

// NewResolver builds a Resolver on pool and subscribes it to n (which must not be running yet; nil
// leaves only the TTLs to expire entries); projects tells it each project's phone region. cfg must be
// valid; metrics are registered on reg (nil: not exported). Close releases the cache.
func NewResolver(pool *pgxpool.Pool, n *pgdb.Notifier, projects PhoneRegions, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("directory settings: %w", err)
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
		// Ten counters per expected entry, assuming entries of ~200 bytes.
		NumCounters:        max(cfg.CacheMaxBytes/20, 10_000),
		MaxCost:            cfg.CacheMaxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		// Keys are built in a scratch buffer (see key): hashing them directly keeps the generic
		// KeyToHash from boxing each one, and ristretto keeps only the hashes, never the key.
		KeyToHash: func(k string) (uint64, uint64) { return z.MemHashString(k), xxhash.Sum64String(k) },
	})
	if err != nil {
		return nil, fmt.Errorf("directory cache: %w", err)
	}
	r := &Resolver{pool: pool, projects: projects, cfg: cfg, log: log, cache: cache, gens: map[int64]*projectGen{}, regions: map[int64]cachedRegion{}}
	r.m = resolverMetrics{
		values: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_directory_resolve_values_total",
			Help: "Identifiers resolved, by kind and result (hit, negative_hit, queried, stale, unavailable).",
		}, []string{"kind", "result"}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_directory_resolve_queries_total",
			Help: "PostgreSQL queries made by the resolver for cache misses, by kind.",
		}, []string{"kind"}),
		queryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_directory_resolve_query_errors_total",
			Help: "Resolver queries that failed (PostgreSQL unreachable or slow), by kind.",
		}, []string{"kind"}),
		queryTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "inlet_directory_resolve_query_duration_seconds",
			Help:    "Duration of resolver queries, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"kind"}),
		invalidation: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_directory_cache_invalidations_total",
			Help: "Resolver cache invalidations by scope: project (a change notification) or all (listener reconnect).",
		}, []string{"scope"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_directory_created_total",
			Help: "Users (and anonymous devices, kind hwid) created for unknown identifiers by the unknown-user policy create, by identifier kind.",
		}, []string{"kind"}),
		byKind: map[identify.Kind]*[numResults]prometheus.Counter{},
	}
	for _, k := range kinds {
		var cs [numResults]prometheus.Counter
		for i := range cs {
			cs[i] = r.m.values.WithLabelValues(string(k), resultNames[i])
		}
		r.m.byKind[k] = &cs
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{r.m.values, r.m.queries, r.m.queryErrors, r.m.queryTime, r.m.invalidation, r.m.created} {
			if err := reg.Register(c); err != nil {
				cache.Close()
				return nil, fmt.Errorf("directory metrics: %w", err)
			}
		}
	}
	if n != nil {
		n.Subscribe("user:", r)
		n.Subscribe("device:", r)
		n.Subscribe("project:", r)
	}
	return r, nil
}

// Close releases the cache. Resolve must not be called afterwards.
func (r *Resolver) Close() { r.cache.Close() }

// Changed implements pgdb.Subscriber: a change in project P makes all of P's cached entries stale, and
// a "project:P" change (its phone region) its cached region too. An unparsable payload makes everything
// stale, to be safe.
func (r *Resolver) Changed(payload string) {
	rest := payload[strings.IndexByte(payload, ':')+1:]
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	pid, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		r.log.Warn("directory: unparsable change notification, invalidating everything", "payload", payload)
		r.Resync()
		return
	}
	r.mu.RLock()
	g := r.gens[pid]
	r.mu.RUnlock()
	if g == nil {
		r.mu.Lock()
		if g = r.gens[pid]; g == nil {
			g = new(projectGen)
			r.gens[pid] = g
		}
		r.mu.Unlock()
	}
	// The region first: a Resolve that sees the new entry generation then also sees the region stale.
	if strings.HasPrefix(payload, "project:") {
		g.settings.Add(1)
	}
	g.changes.Add(1)
	r.m.invalidation.WithLabelValues("project").Inc()
}

// Resync implements pgdb.Subscriber: notifications may have been lost while the listener was away, so
// every entry becomes stale.
func (r *Resolver) Resync() {
	r.epoch.Add(1)
	r.m.invalidation.WithLabelValues("all").Inc()
}

func (r *Resolver) generation(projectID int64) uint64 {
	r.mu.RLock()
	g := r.gens[projectID]
	r.mu.RUnlock()
	if g == nil {
		return 0
	}
	return g.changes.Load()
}

// phoneRegion returns the region that reads the project's phone values without a country code: its
// phone region, else Config.DefaultRegion. The region is cached. A query error is returned rather than a
// stale region served: answers normalised in an outdated region would be cached as current, whereas the
// caller serves its stale entries instead. A project that does not exist gets the default (its values
// match nothing anyway).
func (r *Resolver) phoneRegion(ctx context.Context, projectID int64) (string, error) {
	epoch := r.epoch.Load()
	var settings uint64
	r.mu.RLock()
	if g := r.gens[projectID]; g != nil {
		settings = g.settings.Load()
	}
	c, cached := r.regions[projectID]
	r.mu.RUnlock()
	if cached && c.epoch == epoch && c.settings == settings && time.Now().UnixNano() < c.freshUntil {
		return cmp.Or(c.region, r.cfg.DefaultRegion), nil
	}
	qctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
	region, err := r.projects.PhoneRegion(qctx, projectID)
	cancel()
	switch {
	case errors.Is(err, domainerr.ErrNotFound):
		region = ""
	case err != nil:
		return "", err
	}
	// Stored with the generations read before the query: a change notified meanwhile makes it stale.
	r.mu.Lock()
	r.regions[projectID] = cachedRegion{region: region, epoch: epoch, settings: settings,
		freshUntil: time.Now().Add(r.cfg.TTL).UnixNano()}
	r.mu.Unlock()
	return cmp.Or(region, r.cfg.DefaultRegion), nil
}

// Resolve looks up values of one kind in the project and returns the subject of each value found,
// keyed by the value as given. Emails match case-insensitively as given: the caller passes them
// through NormalizeEmail, as the directory wrote them (the pipeline does). Values not found are absent from the map; so are values that cannot
// match anything (an empty string, a phone number that cannot be normalised).
//
// All cache misses are fetched with one query. When that query fails (PostgreSQL unreachable, or
// slower than Config.QueryTimeout), values with a cached entry, however stale, are answered from it,
// and the error is an *UnavailableError (errors.Is domainerr.ErrUnavailable) listing the values that have no
// answer at all; the map still holds every value that was answered. Such values are neither found
// nor not found: retry them later.
func (r *Resolver) Resolve(ctx context.Context, projectID int64, kind identify.Kind, values []string) (map[string]Subject, error) {
	return r.resolve(ctx, projectID, kind, values, false)
}

// ResolveFresh is Resolve without answers from the cache: every value is asked of PostgreSQL, in one
// query, and nothing stale is served when it fails. The answers are cached as Resolve's are. A dry run
// uses it: it must see a user created a moment ago, and a failure is its caller's to see.
func (r *Resolver) ResolveFresh(ctx context.Context, projectID int64, kind identify.Kind, values []string) (map[string]Subject, error) {
	return r.resolve(ctx, projectID, kind, values, true)
}

func (r *Resolver) resolve(ctx context.Context, projectID int64, kind identify.Kind, values []string, fresh bool) (map[string]Subject, error) {
	counters, ok := r.m.byKind[kind]
	if !ok {
		return nil, domainerr.Invalid("kind", "%q is not one of user_id, email, phone, hwid", kind)
	}
	epoch, gen := r.epoch.Load(), r.generation(projectID)
	now := time.Now().UnixNano()
	out := make(map[string]Subject, len(values))
	var counts [numResults]int
	var misses []miss
	buf := make([]byte, 0, 128)
	for _, v := range values {
		if _, done := out[v]; done || v == "" {
			continue
		}
		if fresh {
			misses = append(misses, miss{value: v})
			continue
		}
		buf = appendKey(buf[:0], projectID, kind, v)
		e, ok := r.cache.Get(unsafeString(buf))
		if ok && e.epoch == epoch && e.gen == gen && now < e.freshUntil {
			if e.found {
				out[v] = e.subject
				counts[resultHit]++
			} else {
				counts[resultNegativeHit]++
			}
			continue
		}
		if !ok {
			e = nil
		}
		misses = append(misses, miss{value: v, stale: e})
	}
	var err error
	if len(misses) > 0 {
		err = r.fetch(ctx, projectID, kind, epoch, gen, misses, out, &counts, buf)
	}
	for i, n := range counts {
		if n > 0 {
			counters[i].Add(float64(n))
		}
	}
	return out, err
}

type miss struct {
	value string
	stale *entry // the entry that was no longer fresh, served if the query fails
}

// fetch asks PostgreSQL for the misses, caches the answers (found or not) and adds the found ones to
// out.
func (r *Resolver) fetch(ctx context.Context, projectID int64, kind identify.Kind, epoch, gen uint64,
	misses []miss, out map[string]Subject, counts *[numResults]int, buf []byte) error {
	// A value given twice in one call is fetched, cached and reported once.
	seen := make(map[string]struct{}, len(misses))
	misses = slices.DeleteFunc(misses, func(m miss) bool {
		_, dup := seen[m.value]
		seen[m.value] = struct{}{}
		return dup
	})
	var qerr error
	region := r.cfg.DefaultRegion
	if kind == identify.ByPhone {
		region, qerr = r.phoneRegion(ctx, projectID)
	}
	// The query takes normalised values; several raw values may share one (two spellings of a phone).
	params := make([]string, 0, len(misses))
	byParam := make(map[string][]int, len(misses))
	for i, m := range misses {
		if qerr != nil {
			break
		}
		p, ok := queryValue(kind, m.value, region)
		if !ok {
			continue // cannot match anything: cached below as not found
		}
		if _, seen := byParam[p]; !seen {
			params = append(params, p)
		}
		byParam[p] = append(byParam[p], i)
	}
	found := make([]*Subject, len(misses))
	if qerr == nil && len(params) > 0 {
		qerr = r.query(ctx, projectID, kind, params, func(param string, s Subject) {
			for _, i := range byParam[param] {
				found[i] = &s
			}
		})
	}
	if qerr != nil {
		var unavailable []string
		for _, m := range misses {
			switch {
			case m.stale == nil:
				unavailable = append(unavailable, m.value)
				counts[resultUnavailable]++
			default:
				if m.stale.found {
					out[m.value] = m.stale.subject
				}
				counts[resultStale]++
			}
		}
		if len(unavailable) == 0 {
			return nil // every value was answered, if from stale entries
		}
		return &UnavailableError{Values: unavailable, Err: qerr}
	}
	now := time.Now()
	for i, m := range misses {
		e := &entry{epoch: epoch, gen: gen}
		if s := found[i]; s != nil {
			e.found, e.subject = true, *s
			e.freshUntil = now.Add(r.cfg.TTL).UnixNano()
			out[m.value] = *s
		} else {
			e.freshUntil = now.Add(r.cfg.NegativeTTL).UnixNano()
		}
		buf = appendKey(buf[:0], projectID, kind, m.value)
		r.cache.SetWithTTL(unsafeString(buf), e, e.cost(len(buf)), r.cfg.MaxStale)
		counts[resultQueried]++
	}
	return nil
}

// The resolver's queries, one per kind, each answering (matched parameter, user id, hwid, hwids) for
// every parameter that matches. $1 is the project, $2 the parameters, $3 Config.MaxHWIDs. User ids
// match a user row or any device carrying the id (devices often arrive before their user's profile);
// emails match through lower(), the expression of the unique index users_email.
const (
	hwidsOfUser = `
CROSS JOIN LATERAL (SELECT coalesce(array_agg(s.hwid ORDER BY s.updated_at DESC, s.hwid), '{}') AS hwids
  FROM (SELECT d.hwid, d.updated_at FROM devices d WHERE d.project_id = $1 AND d.user_id = %s AND d.user_id <> ''
        ORDER BY d.updated_at DESC, d.hwid LIMIT $3) s) h`
	resolveUserIDSQL = `
SELECT v.val, v.val, '', h.hwids FROM unnest($2::text[]) AS v (val)` + "\n" + `%s
WHERE cardinality(h.hwids) > 0 OR EXISTS (SELECT 1 FROM users u WHERE u.project_id = $1 AND u.user_id = v.val)`
	resolveEmailSQL = `
SELECT v.val, u.user_id, '', h.hwids FROM unnest($2::text[]) AS v (val)
JOIN users u ON u.project_id = $1 AND lower(u.email) = lower(v.val) AND u.email <> ''` + "\n" + `%s`
	resolvePhoneSQL = `
SELECT v.val, u.user_id, '', h.hwids FROM unnest($2::text[]) AS v (val)
JOIN users u ON u.project_id = $1 AND u.phone = v.val AND u.phone <> ''` + "\n" + `%s`
	resolveHWIDSQL = `
SELECT d.hwid, d.user_id, d.hwid, CASE WHEN d.user_id = '' THEN ARRAY[d.hwid] ELSE h.hwids END
FROM unnest($2::text[]) AS v (val)
JOIN devices d ON d.project_id = $1 AND d.hwid = v.val
CROSS JOIN LATERAL (SELECT coalesce(array_agg(s.hwid ORDER BY s.me DESC, s.updated_at DESC, s.hwid), '{}') AS hwids
  FROM (SELECT o.hwid, o.updated_at, o.hwid = d.hwid AS me FROM devices o
        WHERE o.project_id = $1 AND o.user_id = d.user_id AND o.user_id <> ''
        ORDER BY o.hwid = d.hwid DESC, o.updated_at DESC, o.hwid LIMIT $3) s) h`
)

var resolveSQL = map[identify.Kind]string{
	identify.ByUserID: fmt.Sprintf(resolveUserIDSQL, fmt.Sprintf(hwidsOfUser, "v.val")),
	identify.ByEmail:  fmt.Sprintf(resolveEmailSQL, fmt.Sprintf(hwidsOfUser, "u.user_id")),
	identify.ByPhone:  fmt.Sprintf(resolvePhoneSQL, fmt.Sprintf(hwidsOfUser, "u.user_id")),
	identify.ByHWID:   resolveHWIDSQL,
}

func (r *Resolver) query(ctx context.Context, projectID int64, kind identify.Kind, params []string, each func(string, Subject)) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
	defer cancel()
	start := time.Now()
	r.m.queries.WithLabelValues(string(kind)).Inc()
	err := func() error {
		rows, err := r.pool.Query(ctx, resolveSQL[kind], projectID, params, r.cfg.MaxHWIDs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var param string
			var s Subject
			if err := rows.Scan(&param, &s.UserID, &s.HWID, &s.HWIDs); err != nil {
				return err
			}
			each(param, s)
		}
		return rows.Err()
	}()
	r.m.queryTime.WithLabelValues(string(kind)).Observe(time.Since(start).Seconds())
	if err != nil {
		r.m.queryErrors.WithLabelValues(string(kind)).Inc()
		return fmt.Errorf("resolve %d %s values in project %d: %w", len(params), kind, projectID, err)
	}
	return nil
}

// queryValue is what the query compares: the E.164 form of a phone, the value itself otherwise. It
// reports false for a value that cannot match anything.
func queryValue(kind identify.Kind, v, region string) (string, bool) {
	if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return "", false // PostgreSQL text cannot hold it, so no row has it
	}
	if kind == identify.ByPhone {
		p, err := phone.Normalize(v, region)
		return p, err == nil
	}
	return v, true
}

// appendKey builds the cache key: kind, project, then the value exactly as given (entries are per
// spelling; the query normalises). The kind and project come first and have fixed lengths, so no two
// (project, kind, value) triples share a key.
func appendKey(b []byte, projectID int64, kind identify.Kind, v string) []byte {
	b = append(b, kind[0])
	b = binary.LittleEndian.AppendUint64(b, uint64(projectID))
	return append(b, v...)
}

// unsafeString views b as a string without copying: the cache only hashes keys, it never keeps them.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// cost approximates the entry's memory in bytes, for the cache's bound.
func (e *entry) cost(keyLen int) int64 {
	n := 160 + keyLen + len(e.subject.UserID) + len(e.subject.HWID) // entry, ristretto item and map slot
	for _, h := range e.subject.HWIDs {
		n += 16 + len(h)
	}
	return int64(n)
}
