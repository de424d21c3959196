// Package delivery remembers the delivery keys of senders, so that a delivery the sender repeats (its
// retry after a timeout, a redelivery) fires one event, not two. The state is in PostgreSQL
// (sender_deliveries), never in the pipeline's memory: it survives restarts and crashes and is shared by
// every pipeline process, and what a process holds per key is nothing.
//
// A key's requests are decided in the order of their position in webhooks.requests (a webhook's
// requests share a Kafka partition). The first request of a key is its original delivery; a later
// request is a duplicate of the latest original before it when it was received before that original's
// window ends, and otherwise an original of its own, with a window of its own. Only originals are
// stored, one row each, with their position: a request's verdict depends only on the originals before
// it, so deciding it again after a crash — when requests after it may have been decided and stored
// already — gives the same answer.
package delivery

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Claim is a request that carries a sender's delivery key.
type Claim struct {
	WebhookID string
	// Key is the key's hash (Hasher): the key itself is never stored.
	Key       [32]byte
	RequestID uuid.UUID
	// Partition and Offset are the request's position in webhooks.requests.
	Partition int32
	Offset    int64
	// ReceivedMs is the edge's receive time (Unix ms): the same on every replay.
	ReceivedMs int64
	// Window is how long the request, if it is an original, makes repeats of its key duplicates.
	Window time.Duration
}

func (c *Claim) expiresMs() int64 { return c.ReceivedMs + c.Window.Milliseconds() }

// Verdict is what a claim turned out to be.
type Verdict struct {
	// DuplicateOf is the request id of the original delivery; uuid.Nil when the claim is an original.
	DuplicateOf uuid.UUID
}

// Duplicate reports whether the claim repeats an earlier delivery.
func (v Verdict) Duplicate() bool { return v.DuplicateOf != uuid.Nil }

// Store keeps the originals in PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool (the config database, migrated).
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// claimSQL decides the first claim of each key of a call (at most one per key, see Claim) and stores
// those that are originals, in one round trip. For each claim it reads the latest original of its key
// before its position (a position after it, stored by an earlier run, is not looked at) and returns it
// with its end of window; the claim is an original when there is none or its window ended at or before
// the claim's receive time. The caller applies the same rule to the answer. One statement sees one
// snapshot: two claims of one key in it would not see each other, hence one per key.
//
// Storing is idempotent: an original decided again finds its own row (its position). A row at that
// position for another request (the requests topic recreated, its offsets starting again) is replaced.
const claimSQL = `
WITH c AS (
    SELECT i, webhook_id, key_hash, src_partition, src_offset, request_id,
        timestamptz 'epoch' + received_ms * interval '1 millisecond' AS received_at,
        timestamptz 'epoch' + expires_ms * interval '1 millisecond' AS expires_at
    FROM unnest($1::int[], $2::text[], $3::bytea[], $4::int[], $5::bigint[], $6::uuid[], $7::bigint[], $8::bigint[])
        AS c(i, webhook_id, key_hash, src_partition, src_offset, request_id, received_ms, expires_ms)
), decided AS (
    SELECT c.*, p.request_id AS prior_id, p.expires_at AS prior_expires
    FROM c LEFT JOIN LATERAL (
        SELECT d.request_id, d.expires_at FROM sender_deliveries d
        WHERE d.webhook_id = c.webhook_id AND d.key_hash = c.key_hash
          AND d.src_partition = c.src_partition AND d.src_offset < c.src_offset
        ORDER BY d.src_offset DESC
        LIMIT 1
    ) p ON true
), stored AS (
    INSERT INTO sender_deliveries (webhook_id, key_hash, src_partition, src_offset, request_id, received_at, expires_at)
    SELECT webhook_id, key_hash, src_partition, src_offset, request_id, received_at, expires_at FROM decided
    WHERE prior_id IS NULL OR prior_expires <= received_at
    ON CONFLICT (webhook_id, key_hash, src_partition, src_offset) DO UPDATE
        SET request_id = excluded.request_id, received_at = excluded.received_at, expires_at = excluded.expires_at
        WHERE sender_deliveries.request_id <> excluded.request_id
)
SELECT i, prior_id, (extract(epoch FROM prior_expires) * 1000)::bigint FROM decided`

// storeSQL stores originals decided without a lookup (see Claim), with claimSQL's conflict rule.
const storeSQL = `
INSERT INTO sender_deliveries (webhook_id, key_hash, src_partition, src_offset, request_id, received_at, expires_at)
SELECT webhook_id, key_hash, src_partition, src_offset, request_id,
    timestamptz 'epoch' + received_ms * interval '1 millisecond', timestamptz 'epoch' + expires_ms * interval '1 millisecond'
FROM unnest($1::text[], $2::bytea[], $3::int[], $4::bigint[], $5::uuid[], $6::bigint[], $7::bigint[])
    AS c(webhook_id, key_hash, src_partition, src_offset, request_id, received_ms, expires_ms)
ON CONFLICT (webhook_id, key_hash, src_partition, src_offset) DO UPDATE
    SET request_id = excluded.request_id, received_at = excluded.received_at, expires_at = excluded.expires_at
    WHERE sender_deliveries.request_id <> excluded.request_id`

// chain is what deciding a key's claims in order needs: the latest original so far.
type chain struct {
	id        uuid.UUID
	expiresMs int64
}

type chainKey struct {
	webhook   string
	key       [32]byte
	partition int32
}

// Claim decides claims into verdicts (same length, same order) and stores the originals. Claims may
// come in any order and repeat a key: the claims of one key are decided in position order, the first
// against the store and the rest against it in memory. That is one round trip, and a second only when
// a key's window ends between two of its claims of the call. Run again on the same claims (a replay
// after a crash), it gives the same verdicts. Errors are PostgreSQL's (unreachable, a timeout): nothing
// the claims themselves can cause, so the caller retries; a verdict is only returned whole.
func (s *Store) Claim(ctx context.Context, claims []Claim, verdicts []Verdict) error {
	if len(verdicts) != len(claims) {
		return fmt.Errorf("delivery claim: %d verdicts for %d claims", len(verdicts), len(claims))
	}
	if len(claims) == 0 {
		return nil
	}
	order := make([]int, len(claims))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ca, cb := &claims[a], &claims[b]
		return cmp.Or(cmp.Compare(ca.Partition, cb.Partition), cmp.Compare(ca.Offset, cb.Offset))
	})
	chains := make(map[chainKey]*chain, len(claims))
	var first []int
	for _, i := range order {
		c := &claims[i]
		k := chainKey{c.WebhookID, c.Key, c.Partition}
		if _, ok := chains[k]; !ok {
			chains[k] = nil
			first = append(first, i)
		}
	}
	if err := s.decideFirst(ctx, claims, first, verdicts, chains); err != nil {
		return err
	}
	// The rest of each key's claims, in order, against its chain.
	var later []int
	isFirst := make(map[int]bool, len(first))
	for _, i := range first {
		isFirst[i] = true
	}
	for _, i := range order {
		if isFirst[i] {
			continue
		}
		c := &claims[i]
		ch := chains[chainKey{c.WebhookID, c.Key, c.Partition}]
		if c.ReceivedMs < ch.expiresMs {
			verdicts[i] = Verdict{DuplicateOf: ch.id}
			continue
		}
		verdicts[i] = Verdict{}
		*ch = chain{id: c.RequestID, expiresMs: c.expiresMs()}
		later = append(later, i)
	}
	if len(later) > 0 {
		if err := s.store(ctx, claims, later); err != nil {
			return err
		}
	}
	return nil
}

// decideFirst runs claimSQL for the claims at idx (one per key) and starts each key's chain.
func (s *Store) decideFirst(ctx context.Context, claims []Claim, idx []int, verdicts []Verdict, chains map[chainKey]*chain) error {
	n := len(idx)
	ord := make([]int32, n)
	for j, i := range idx {
		ord[j] = int32(i)
	}
	col := columnsOf(claims, idx)
	rows, err := s.pool.Query(ctx, claimSQL, ord, col.webhooks, col.keys, col.parts, col.offsets, col.ids, col.received, col.expires)
	if err != nil {
		return fmt.Errorf("claim %d sender delivery keys: %w", n, err)
	}
	defer rows.Close()
	answered := 0
	var i int32
	var prior pgtype.UUID
	var priorExpires pgtype.Int8
	for rows.Next() {
		if err := rows.Scan(&i, &prior, &priorExpires); err != nil {
			return fmt.Errorf("claim %d sender delivery keys: %w", n, err)
		}
		if i < 0 || int(i) >= len(claims) {
			return fmt.Errorf("claim %d sender delivery keys: answer for claim %d", n, i)
		}
		c := &claims[i]
		ch := &chain{id: c.RequestID, expiresMs: c.expiresMs()}
		verdicts[i] = Verdict{}
		// The rule of claimSQL's insert: a duplicate when received before the prior original's end.
		if prior.Valid && priorExpires.Valid && c.ReceivedMs < priorExpires.Int64 {
			verdicts[i] = Verdict{DuplicateOf: uuid.UUID(prior.Bytes)}
			ch = &chain{id: uuid.UUID(prior.Bytes), expiresMs: priorExpires.Int64}
		}
		chains[chainKey{c.WebhookID, c.Key, c.Partition}] = ch
		answered++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("claim %d sender delivery keys: %w", n, err)
	}
	if answered != n {
		return fmt.Errorf("claim %d sender delivery keys: %d answered", n, answered)
	}
	return nil
}

// store inserts the claims at idx, originals decided in memory.
func (s *Store) store(ctx context.Context, claims []Claim, idx []int) error {
	col := columnsOf(claims, idx)
	if _, err := s.pool.Exec(ctx, storeSQL, col.webhooks, col.keys, col.parts, col.offsets, col.ids, col.received, col.expires); err != nil {
		return fmt.Errorf("store %d original sender deliveries: %w", len(idx), err)
	}
	return nil
}

// columns are claims as the arrays claimSQL and storeSQL take, one element a claim. They are plain
// arrays pgx encodes without a conversion per element: [16]byte is a uuid (uuid.UUID would go through
// its Valuer, as text), times are Unix milliseconds (made timestamptz in the statements).
type columns struct {
	webhooks          []string
	keys              [][]byte
	parts             []int32
	offsets           []int64
	ids               [][16]byte
	received, expires []int64
}

// columnsOf lays out the claims at idx, in idx's order.
func columnsOf(claims []Claim, idx []int) columns {
	n := len(idx)
	col := columns{
		webhooks: make([]string, n), keys: make([][]byte, n), parts: make([]int32, n), offsets: make([]int64, n),
		ids: make([][16]byte, n), received: make([]int64, n), expires: make([]int64, n),
	}
	for j, i := range idx {
		c := &claims[i]
		col.webhooks[j], col.keys[j], col.parts[j], col.offsets[j], col.ids[j] = c.WebhookID, c.Key[:], c.Partition, c.Offset, c.RequestID
		col.received[j], col.expires[j] = c.ReceivedMs, c.expiresMs()
	}
	return col
}

// deleteExpiredSQL deletes at most $2 rows whose window ended before $1, skipping rows another process
// is deleting at the same time.
const deleteExpiredSQL = `
DELETE FROM sender_deliveries WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM sender_deliveries WHERE expires_at < $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED))`

// DeleteExpired deletes at most limit originals whose window ended before before, and returns how
// many it deleted: call it again while it returns limit.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, errors.New("delivery: delete limit must be positive")
	}
	tag, err := s.pool.Exec(ctx, deleteExpiredSQL, before, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired sender deliveries: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Hasher turns a key into its stored hash: SHA-256 of a version, the key's source and its parts, each
// length-prefixed so that no two different keys give the same input. Reuse one (it is not safe for
// concurrent use): hashing then allocates nothing.
type Hasher struct {
	h   hash.Hash
	sum []byte
	n   [binary.MaxVarintLen64 + 1]byte
}

// NewHasher returns a Hasher.
func NewHasher() *Hasher { return &Hasher{h: sha256.New(), sum: make([]byte, 0, sha256.Size)} }

// Source is where a key comes from, the first thing hashed: a header's value and a body field's value
// of the same text are different keys.
type Source int

// The sources.
const (
	SourceHeader   Source = iota // a header's value
	SourceBody                   // a body field's value
	SourceBodyHash               // the body and chosen headers
	// SourceAttempt: not a sender's key but a later attempt of a request (package replay), keyed by the
	// request id and the attempt's number: an attempt produced twice runs once, the first position
	// winning, by the same rule as a sender's repeats.
	SourceAttempt
)

// sourcePrefixes are what Begin hashes for each source (slices made once: Write takes bytes).
var sourcePrefixes = [...][]byte{
	SourceHeader:   []byte("inlet-delivery-v1\x00header\x00"),
	SourceBody:     []byte("inlet-delivery-v1\x00body\x00"),
	SourceBodyHash: []byte("inlet-delivery-v1\x00body_hash\x00"),
	SourceAttempt:  []byte("inlet-delivery-v1\x00attempt\x00"),
}

// Begin starts a key from source.
func (h *Hasher) Begin(source Source) {
	h.h.Reset()
	h.h.Write(sourcePrefixes[source])
}

// Part adds one part of the key (a header's or a field's value, a body, a header's name).
func (h *Hasher) Part(b []byte) {
	h.n[0] = 'p'
	n := binary.PutUvarint(h.n[1:], uint64(len(b)))
	h.h.Write(h.n[:1+n])
	h.h.Write(b)
}

// Absent adds a part that is missing (a header the request does not have): unlike any Part, the empty
// one included.
func (h *Hasher) Absent() {
	h.n[0] = 'a'
	h.h.Write(h.n[:1])
}

// Sum is the key's hash.
func (h *Hasher) Sum() [32]byte {
	h.sum = h.h.Sum(h.sum[:0])
	return [32]byte(h.sum)
}
