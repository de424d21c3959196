package replay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/domainerr"
)

// Job states.
const (
	StatePending   = "pending"   // created, no runner has taken it yet
	StateRunning   = "running"   // a runner holds its lease (or held it and died: another takes over)
	StateDone      = "done"      // every matching request was produced, or said why not
	StateCancelled = "cancelled" // stopped by a user: attempts already produced still run
	StateFailed    = "failed"    // stopped by an error that retrying could not cure (Error says which)
)

// Filter selects what a job replays: a webhook's failed requests received in [Since, Until), with
// Reason (or every reason), or the one request RequestID.
type Filter struct {
	WebhookID string     `json:"webhook_id"`
	Since     time.Time  `json:"since"`
	Until     time.Time  `json:"until"`
	Reason    string     `json:"reason,omitempty"`
	RequestID *uuid.UUID `json:"request_id,omitempty"`
}

// Job is a replay job and its progress.
type Job struct {
	ID        string `json:"id"`
	ProjectID int64  `json:"-"`
	Filter
	State string `json:"state"`
	// Total is how many requests matched when the job was created.
	Total int64 `json:"total"`
	// Produced counts the attempts produced (and acknowledged by Kafka); Expired, Truncated and Skipped
	// the requests not produced: past the topic's retention, with a truncated stored body, or for
	// another reason (another attempt of the request in flight, its record not at its position).
	Produced  int64 `json:"produced"`
	Expired   int64 `json:"expired"`
	Truncated int64 `json:"truncated"`
	Skipped   int64 `json:"skipped"`
	// Succeeded and FailedAgain count the attempts the pipeline has run, as ClickHouse shows them (set
	// by the API when it answers, not stored).
	Succeeded   int64      `json:"succeeded"`
	FailedAgain int64      `json:"failed_again"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`

	cursorMs int64
	cursorID uuid.UUID
}

// Store keeps the jobs and the attempts' claims in PostgreSQL (replay_jobs, replay_claims).
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool (the config database, migrated).
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// MaxRange bounds a job's receive-time range: the requests topic keeps records for days, not longer.
const MaxRange = 90 * 24 * time.Hour

// Validate checks a filter, naming the bad fields.
func (f *Filter) Validate() error {
	var errs []domainerr.FieldError
	if f.WebhookID == "" {
		errs = append(errs, domainerr.FieldError{Field: "webhook_id", Message: "is required"})
	}
	switch {
	case f.Since.IsZero() || f.Until.IsZero():
		errs = append(errs, domainerr.FieldError{Field: "since", Message: "since and until are required (RFC 3339)"})
	case !f.Since.Before(f.Until):
		errs = append(errs, domainerr.FieldError{Field: "until", Message: "must be after since"})
	case f.Until.Sub(f.Since) > MaxRange:
		errs = append(errs, domainerr.FieldError{Field: "until", Message: fmt.Sprintf("the range is longer than %s", MaxRange)})
	}
	if len(f.Reason) > 64 {
		errs = append(errs, domainerr.FieldError{Field: "reason", Message: "is longer than 64 bytes"})
	}
	if len(errs) > 0 {
		return &domainerr.ValidationError{Fields: errs}
	}
	return nil
}

const jobColumns = `id, project_id, webhook_id, since_ms, until_ms, reason, request_id, state, total, produced, expired, truncated, skipped,
	error, created_at, updated_at, finished_at, cursor_ms, cursor_id`

func scanJob(row pgx.Row) (Job, error) {
	var j Job
	var since, until int64
	var req, cur *uuid.UUID
	err := row.Scan(&j.ID, &j.ProjectID, &j.WebhookID, &since, &until, &j.Reason, &req, &j.State, &j.Total, &j.Produced,
		&j.Expired, &j.Truncated, &j.Skipped, &j.Error, &j.CreatedAt, &j.UpdatedAt, &j.FinishedAt, &j.cursorMs, &cur)
	j.Since, j.Until, j.RequestID = time.UnixMilli(since).UTC(), time.UnixMilli(until).UTC(), req
	if cur != nil {
		j.cursorID = *cur
	}
	return j, err
}

// Create stores a pending job of project projectID with the filter and the count of what it matches.
func (s *Store) Create(ctx context.Context, projectID int64, f Filter, total int64) (Job, error) {
	if err := f.Validate(); err != nil {
		return Job{}, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := "rj_" + hex.EncodeToString(b[:])
	j, err := scanJob(s.pool.QueryRow(ctx, `INSERT INTO replay_jobs (id, project_id, webhook_id, since_ms, until_ms, reason, request_id, total)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+jobColumns,
		id, projectID, f.WebhookID, f.Since.UnixMilli(), f.Until.UnixMilli(), f.Reason, f.RequestID, total))
	if err != nil {
		return Job{}, fmt.Errorf("create replay job: %w", err)
	}
	return j, nil
}

// Get returns a job of the project (domainerr.ErrNotFound for another project's).
func (s *Store) Get(ctx context.Context, projectID int64, id string) (Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM replay_jobs WHERE project_id = $1 AND id = $2`, projectID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("replay job %s: %w", id, domainerr.ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("replay job %s: %w", id, err)
	}
	return j, nil
}

// List returns the project's latest jobs, newest first, at most limit (1..100).
func (s *Store) List(ctx context.Context, projectID int64, limit int) ([]Job, error) {
	limit = min(max(limit, 1), 100)
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM replay_jobs WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, projectID, limit)
	if err != nil {
		return nil, fmt.Errorf("list replay jobs: %w", err)
	}
	defer rows.Close()
	out := []Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list replay jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Cancel stops a pending or running job; a finished one is a conflict.
func (s *Store) Cancel(ctx context.Context, projectID int64, id string) (Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `UPDATE replay_jobs SET state = 'cancelled', finished_at = now(), updated_at = now(), lease_owner = ''
		WHERE project_id = $1 AND id = $2 AND state IN ('pending', 'running') RETURNING `+jobColumns, projectID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		j, err := s.Get(ctx, projectID, id)
		if err != nil {
			return Job{}, err
		}
		return j, fmt.Errorf("%w: replay job %s is %s already", domainerr.ErrConflict, id, j.State)
	}
	if err != nil {
		return Job{}, fmt.Errorf("cancel replay job %s: %w", id, err)
	}
	return j, nil
}

// acquire takes the oldest job that is pending, or running with its lease expired (its runner died),
// for owner, leasing it for lease. nil when there is none.
func (s *Store) acquire(ctx context.Context, owner string, lease time.Duration) (*Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `UPDATE replay_jobs SET state = 'running', lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond', updated_at = now()
		WHERE id = (SELECT id FROM replay_jobs WHERE state = 'pending' OR state = 'running' AND lease_until < now()
			ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+jobColumns, owner, lease.Milliseconds()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("acquire a replay job: %w", err)
	}
	return &j, nil
}

// heartbeat extends owner's lease of the job; false when the job is no longer its to run (cancelled,
// or taken over after the lease expired).
func (s *Store) heartbeat(ctx context.Context, id, owner string, lease time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE replay_jobs SET lease_until = now() + $3 * interval '1 millisecond'
		WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, id, owner, lease.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("replay job %s heartbeat: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// pageDone is what one page added.
type pageDone struct {
	cursorMs                    int64
	cursorID                    uuid.UUID
	expired, truncated, skipped int64
}

// savePage records a page the runner has finished (its attempts acknowledged): the position after it
// and its counters, and Produced recounted from the job's claims. False when the job is no longer
// owner's (then nothing is saved).
func (s *Store) savePage(ctx context.Context, id, owner string, p pageDone, lease time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE replay_jobs SET cursor_ms = $3, cursor_id = $4, expired = expired + $5, truncated = truncated + $6, error = '',
		skipped = skipped + $7, produced = (SELECT count(*) FROM replay_claims WHERE job_id = $1), updated_at = now(),
		lease_until = now() + $8 * interval '1 millisecond'
		WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, id, owner, p.cursorMs, p.cursorID, p.expired, p.truncated, p.skipped, lease.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("replay job %s: save page: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// finish ends owner's job in state (done or failed).
func (s *Store) finish(ctx context.Context, id, owner, state, msg string) error {
	_, err := s.pool.Exec(ctx, `UPDATE replay_jobs SET state = $3, error = $4, finished_at = now(), updated_at = now(), lease_owner = '',
		produced = (SELECT count(*) FROM replay_claims WHERE job_id = $1)
		WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, id, owner, state, msg)
	if err != nil {
		return fmt.Errorf("replay job %s: finish: %w", id, err)
	}
	return nil
}

// claimed is a request's claim as claim answers it.
type claimed struct {
	attempt int
	ok      bool // the job may produce this attempt: claimed now, or claimed by this job before
	mine    bool // this job claimed the request before (a page done again)
}

// claim claims, for job, attempt want[request] of each request (its latest attempt in ClickHouse + 1).
// A request whose attempt is claimed by another job is not ok (that attempt is in flight). A request
// this job claimed before (a page done again after the runner died) keeps the attempt it claimed then,
// which is ok if it is still above the latest attempt (not run yet: produced again, the pipeline runs it
// once) and not ok otherwise (it ran: the job does not run a request twice).
func (s *Store) claim(ctx context.Context, job string, want map[uuid.UUID]int) (map[uuid.UUID]claimed, error) {
	ids := make([]uuid.UUID, 0, len(want))
	attempts := make([]int32, 0, len(want))
	for id, a := range want {
		ids = append(ids, id)
		attempts = append(attempts, int32(a))
	}
	out := make(map[uuid.UUID]claimed, len(want))
	rows, err := s.pool.Query(ctx, `SELECT request_id, max(attempt) FROM replay_claims WHERE job_id = $1 AND request_id = ANY($2) GROUP BY request_id`, job, ids)
	if err != nil {
		return nil, fmt.Errorf("replay job %s: read claims: %w", job, err)
	}
	for rows.Next() {
		var id uuid.UUID
		var a int32
		if err := rows.Scan(&id, &a); err != nil {
			rows.Close()
			return nil, err
		}
		out[id] = claimed{attempt: int(a), ok: int(a) >= want[id], mine: true}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("replay job %s: read claims: %w", job, err)
	}
	ids, attempts = ids[:0], attempts[:0]
	for id, a := range want {
		if _, mine := out[id]; !mine {
			ids = append(ids, id)
			attempts = append(attempts, int32(a))
			out[id] = claimed{attempt: a}
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err = s.pool.Query(ctx, `INSERT INTO replay_claims (request_id, attempt, job_id)
		SELECT r, a, $1 FROM unnest($2::uuid[], $3::int[]) AS c(r, a)
		ON CONFLICT (request_id, attempt) DO NOTHING RETURNING request_id`, job, ids, attempts)
	if err != nil {
		return nil, fmt.Errorf("replay job %s: claim %d requests: %w", job, len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		c := out[id]
		c.ok = true
		out[id] = c
	}
	return out, rows.Err()
}

// release drops the job's claims of attempts that were not produced (expired, truncated, …).
func (s *Store) release(ctx context.Context, job string, ids []uuid.UUID, attempts []int32) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM replay_claims c USING unnest($2::uuid[], $3::int[]) AS r(id, a)
		WHERE c.job_id = $1 AND c.request_id = r.id AND c.attempt = r.a`, job, ids, attempts)
	if err != nil {
		return fmt.Errorf("replay job %s: release %d claims: %w", job, len(ids), err)
	}
	return nil
}

// noteError records why owner's run of the job stopped; the job stays running and is taken again when
// its lease expires. A later saved page clears it.
func (s *Store) noteError(ctx context.Context, id, owner, msg string) error {
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	_, err := s.pool.Exec(ctx, `UPDATE replay_jobs SET error = $3, updated_at = now() WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, id, owner, msg)
	if err != nil {
		return fmt.Errorf("replay job %s: note error: %w", id, err)
	}
	return nil
}
