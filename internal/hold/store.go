// Package hold keeps the requests of routes whose unknown-user policy is hold (webhook.UnknownUserHold)
// waiting for their user, in PostgreSQL (held_requests, migration 00012), and releases them.
//
// The pipeline decides a poll's holds once it has resolved the poll's identifiers (Store.Known: which
// requests are held already, how many each project holds) and writes them when it flushes the batch,
// after the batch's events are fired and before its activity rows are inserted into ClickHouse
// (Store.Insert, ON CONFLICT (request_id) DO NOTHING): a batch redone after a crash finds its holds and
// holds the same requests, each once. A project holds at most a bound of requests (the pipeline's
// hold_max_per_project); past it a request is not held and fails with user_not_found, its detail saying
// the hold is full. The bound is checked per poll: pipelines deciding at the same moment may pass it by
// at most a poll's holds each.
//
// The Releaser (releaser.go) runs in every pipeline process; one at a time does a pass (a lease, a
// PostgreSQL advisory lock held by the pass's transaction). A pass reads held requests in arrival order,
// asks the directory whether all of each one's identifiers resolve now (the directory's own lookup,
// ResolveFresh: user ids, e-mails ignoring case, phones in the project's region, hwids), and produces
// those that do, and those past their expiry, as attempts of the same request (internal/replay: Cause
// release or expire, Number 1, ReplacesStatus held), then marks them released or expired once Kafka has
// acknowledged them. A pass killed after producing and before marking produces them again on the next
// pass; the pipeline runs an attempt (request id, number) once.
package hold

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/identify"
)

// States of held_requests.state.
const (
	StateHeld     = "held"
	StateReleased = "released"
	StateExpired  = "expired"
)

// Hold is one request to hold: the first attempt's record in webhooks.requests, the identifier values
// the directory did not know (all must resolve before it is released) and, for a fan-out, the elements
// the first attempt fired.
type Hold struct {
	ProjectID  int64
	WebhookID  string
	RequestID  uuid.UUID
	Kind       identify.Kind
	Values     []string
	Fired      []int
	Partition  int32
	Offset     int64
	ReceivedAt time.Time
	ExpiresAt  time.Time
}

// Store reads and writes held_requests.
type Store struct {
	db *pgxpool.Pool
}

// NewStore returns a Store on pool (the config database).
func NewStore(pool *pgxpool.Pool) *Store { return &Store{db: pool} }

// Known answers, in one round trip, which of ids are held already, with the identifier values each
// waits (waited) for (a batch redone after a crash finds the holds its first run wrote, whatever
// became of the users since), and how many requests each of projects holds now: what the pipeline
// needs to decide a poll's holds against its bound.
func (s *Store) Known(ctx context.Context, ids []uuid.UUID, projects []int64) (map[uuid.UUID][]string, map[int64]int, error) {
	held := map[uuid.UUID][]string{}
	counts := make(map[int64]int, len(projects))
	rows, err := s.db.Query(ctx, `SELECT 'r', request_id, 0::bigint, identifier_values, 0::bigint FROM held_requests WHERE request_id = ANY($1)
		UNION ALL
		SELECT 'p', NULL, project_id, NULL, count(*) FROM held_requests WHERE project_id = ANY($2) AND state = 'held' GROUP BY project_id`,
		ids, projects)
	if err != nil {
		return nil, nil, fmt.Errorf("read held requests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var what string
		var id *uuid.UUID
		var p int64
		var values []string
		var n int
		if err := rows.Scan(&what, &id, &p, &values, &n); err != nil {
			return nil, nil, fmt.Errorf("read held requests: %w", err)
		}
		if what == "r" {
			held[*id] = values
		} else {
			counts[p] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read held requests: %w", err)
	}
	return held, counts, nil
}

// Insert writes holds, in one statement; a request already held keeps its row (ON CONFLICT
// (request_id) DO NOTHING), so a batch redone after a crash inserts nothing twice.
func (s *Store) Insert(ctx context.Context, holds []Hold) error {
	if len(holds) == 0 {
		return nil
	}
	var ins insertCols
	for i := range holds {
		ins.add(&holds[i])
	}
	_, err := s.db.Exec(ctx, `INSERT INTO held_requests (project_id, webhook_id, request_id, identifier_kind,
		identifier_values, fired, src_partition, src_offset, received_at, expires_at)
		SELECT p, w, r, k, ARRAY(SELECT jsonb_array_elements_text(v)), ARRAY(SELECT jsonb_array_elements_text(f)::int), sp, so, ra, ea
		FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[], $7::int[], $8::bigint[],
			$9::timestamptz[], $10::timestamptz[]) AS t (p, w, r, k, v, f, sp, so, ra, ea)
		ON CONFLICT (request_id) DO NOTHING`,
		ins.projects, ins.webhooks, ins.ids, ins.kinds, ins.values, ins.fired, ins.partitions, ins.offsets, ins.received, ins.expires)
	if err != nil {
		return fmt.Errorf("insert %d held requests: %w", len(holds), err)
	}
	return nil
}

// insertCols are the columns of the holds to insert, for one unnest.
type insertCols struct {
	projects   []int64
	webhooks   []string
	ids        []uuid.UUID
	kinds      []string
	values     [][]string
	fired      [][]int
	partitions []int32
	offsets    []int64
	received   []time.Time
	expires    []time.Time
}

func (c *insertCols) add(h *Hold) {
	c.projects = append(c.projects, h.ProjectID)
	c.webhooks = append(c.webhooks, h.WebhookID)
	c.ids = append(c.ids, h.RequestID)
	c.kinds = append(c.kinds, string(h.Kind))
	c.values = append(c.values, h.Values)
	c.fired = append(c.fired, append([]int{}, h.Fired...)) // never null: a JSON []
	c.partitions = append(c.partitions, h.Partition)
	c.offsets = append(c.offsets, h.Offset)
	c.received = append(c.received, h.ReceivedAt)
	c.expires = append(c.expires, h.ExpiresAt)
}

// Held is a held request as the releaser reads it.
type Held struct {
	ID int64
	Hold
	State string
}

// Count answers how many requests a project holds now.
func (s *Store) Count(ctx context.Context, projectID int64) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM held_requests WHERE project_id = $1 AND state = 'held'`, projectID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count holds of project %d: %w", projectID, err)
	}
	return n, nil
}

// Get reads the hold of a request; ok is false when it has none.
func (s *Store) Get(ctx context.Context, requestID uuid.UUID) (h Held, ok bool, err error) {
	rows, err := s.db.Query(ctx, `SELECT `+heldColumns+` FROM held_requests WHERE request_id = $1`, requestID)
	if err != nil {
		return Held{}, false, fmt.Errorf("read hold of request %s: %w", requestID, err)
	}
	list, err := scanHeld(rows)
	if err != nil || len(list) == 0 {
		return Held{}, false, err
	}
	return list[0], true, nil
}

const heldColumns = `id, project_id, webhook_id, request_id, identifier_kind, identifier_values, fired, src_partition,
	src_offset, received_at, expires_at, state`

func scanHeld(rows pgx.Rows) ([]Held, error) {
	defer rows.Close()
	var out []Held
	for rows.Next() {
		var h Held
		var kind string
		if err := rows.Scan(&h.ID, &h.ProjectID, &h.WebhookID, &h.RequestID, &kind, &h.Values, &h.Fired, &h.Partition,
			&h.Offset, &h.ReceivedAt, &h.ExpiresAt, &h.State); err != nil {
			return nil, err
		}
		h.Kind = identify.Kind(kind)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read held requests: %w", err)
	}
	return out, nil
}

// errNoLease: another process holds the releaser's lease; this pass is skipped.
var errNoLease = errors.New("another pipeline is releasing held requests")
