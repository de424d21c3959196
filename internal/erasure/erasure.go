// Package erasure tracks the erasure of a user's or a device's personal data. Deleting a user or a
// device from the directory records a job in the same transaction (Record, called by
// internal/directory); a Runner then deletes the subject's rows from ClickHouse (chstore.Eraser) and
// marks the job done. Jobs live in PostgreSQL (erasures, migration 00013), so that any admin process
// (or `inlet erase run`) can take one up after a crash: a job is leased, and a lease that ran out is
// taken again.
//
// What an erasure does not touch: the rollup counts (activity_minute) stay, they hold no personal
// data; requests received after the erasure are not affected (the mutations are bounded by the job's
// requested_at); and the subject's requests are still in the Kafka topic webhooks.requests until its
// retention removes them. A replay of a request from the topic must ask Erased first and refuse a
// request whose identifier was erased after it was received: identifier_digests keep a SHA-256 of each
// erased identifier ("kind:value") for that, while the values themselves (identifiers) are emptied
// when the job is done.
package erasure

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
)

// Statuses of a job.
const (
	StatusPending = "pending" // waiting for a runner (or for its next attempt)
	StatusRunning = "running" // a runner holds its lease
	StatusDone    = "done"    // the subject's rows are gone from ClickHouse
	StatusFailed  = "failed"  // MaxAttempts attempts failed; Error says why
)

// Bounds of a job's run.
const (
	// MaxAttempts bounds a job's attempts; the last failure leaves it failed.
	MaxAttempts = 5
	// Lease is how long a runner holds a job: past it, another runner takes the job again. It bounds
	// one attempt (the mutations' wait included).
	Lease = 15 * time.Minute
	// retryAfter is the wait before a failed attempt's job is taken again.
	retryAfter = 30 * time.Second
	// poll is how often an idle Runner looks for jobs recorded by other processes.
	poll = 5 * time.Second
	// maxListed bounds List.
	maxListed = 200
)

// Job is an erasure as the API shows it; the identifiers it matches are never shown.
type Job struct {
	ID          int64      `json:"id"`
	SubjectKind string     `json:"subject_kind"`
	Subject     string     `json:"subject"`
	Status      string     `json:"status"`
	Attempts    int        `json:"attempts"`
	Error       string     `json:"error"`
	RequestedAt time.Time  `json:"requested_at"`
	FinishedAt  *time.Time `json:"finished_at"`
}

const jobColumns = `id, subject_kind, subject, status, attempts, error, requested_at, finished_at`

func (j *Job) fields() []any {
	return []any{&j.ID, &j.SubjectKind, &j.Subject, &j.Status, &j.Attempts, &j.Error, &j.RequestedAt, &j.FinishedAt}
}

// Identifiers are the other values a user was known by (as the directory stores them: email as given,
// phone in E.164), matched in ClickHouse while the job runs.
type Identifiers struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Digest is the SHA-256 of an identifier as Erased matches it: "kind:value", an email lower-cased.
func Digest(kind identify.Kind, value string) []byte {
	if kind == identify.ByEmail {
		value = strings.ToLower(value)
	}
	d := sha256.Sum256([]byte(string(kind) + ":" + value))
	return d[:]
}

// Record adds a pending job for the subject in tx, the transaction that deletes it from the
// directory. kind is "user" (subject a user id) or "device" (a hwid).
func Record(ctx context.Context, tx pgx.Tx, projectID int64, kind chstore.SubjectKind, subject string, ids Identifiers) (Job, error) {
	var digests [][]byte
	switch kind {
	case chstore.SubjectUser:
		digests = append(digests, Digest(identify.ByUserID, subject))
		if ids.Email != "" {
			digests = append(digests, Digest(identify.ByEmail, ids.Email))
		}
		if ids.Phone != "" {
			digests = append(digests, Digest(identify.ByPhone, ids.Phone))
		}
	case chstore.SubjectDevice:
		digests = append(digests, Digest(identify.ByHWID, subject))
	default:
		return Job{}, fmt.Errorf("record erasure: unknown subject kind %q", kind)
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return Job{}, err
	}
	var j Job
	err = tx.QueryRow(ctx, `INSERT INTO erasures (project_id, subject_kind, subject, identifiers, identifier_digests)
VALUES ($1, $2, $3, $4, $5) RETURNING `+jobColumns, projectID, string(kind), subject, b, digests).Scan(j.fields()...)
	if err != nil {
		return Job{}, fmt.Errorf("record erasure of %s %q in project %d: %w", kind, subject, projectID, err)
	}
	return j, nil
}

// ErrNotFound: no such erasure job in the project. It is domainerr.ErrNotFound.
var ErrNotFound = domainerr.New(domainerr.ErrNotFound, "erasure not found")

// Store reads jobs.
type Store struct{ db *pgxpool.Pool }

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{db: pool} }

// Get returns one job of the project.
func (s *Store) Get(ctx context.Context, projectID, id int64) (Job, error) {
	var j Job
	err := s.db.QueryRow(ctx, `SELECT `+jobColumns+` FROM erasures WHERE project_id = $1 AND id = $2`, projectID, id).Scan(j.fields()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, ErrNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("get erasure %d of project %d: %w", id, projectID, err)
	}
	return j, nil
}

// List returns the project's most recent jobs, newest first, at most 200.
func (s *Store) List(ctx context.Context, projectID int64) ([]Job, error) {
	rows, err := s.db.Query(ctx, `SELECT `+jobColumns+` FROM erasures WHERE project_id = $1 ORDER BY id DESC LIMIT $2`, projectID, maxListed)
	if err != nil {
		return nil, fmt.Errorf("list erasures of project %d: %w", projectID, err)
	}
	jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Job, error) {
		var j Job
		return j, row.Scan(j.fields()...)
	})
	if err != nil {
		return nil, fmt.Errorf("list erasures of project %d: %w", projectID, err)
	}
	if jobs == nil {
		jobs = []Job{}
	}
	return jobs, nil
}

// Erased tells whether the identifier (a request's, as the webhook identifies its subject) was erased
// in the project after receivedAt: a replay of that request must then be refused, its subject asked to
// be forgotten after it was sent. An identifier erased before the request was received is not: the
// request is a new one, like any request arriving after an erasure.
func (s *Store) Erased(ctx context.Context, projectID int64, kind identify.Kind, value string, receivedAt time.Time) (bool, error) {
	var found bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM erasures WHERE project_id = $1
AND identifier_digests && ARRAY[$2::bytea] AND requested_at >= $3)`, projectID, Digest(kind, value), receivedAt).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("look up erasures of project %d: %w", projectID, err)
	}
	return found, nil
}

// Eraser deletes a subject's rows (chstore.Eraser).
type Eraser interface {
	Erase(ctx context.Context, s chstore.Subject) error
}

// Runner runs the jobs: any number of runners (one per admin process) share the table.
type Runner struct {
	db     *pgxpool.Pool
	eraser Eraser
	log    *slog.Logger
	wake   chan struct{}
}

// NewRunner returns a runner of the jobs in pool, erasing with eraser.
func NewRunner(pool *pgxpool.Pool, eraser Eraser, log *slog.Logger) *Runner {
	return &Runner{db: pool, eraser: eraser, log: log, wake: make(chan struct{}, 1)}
}

// Wake makes an idle Run look for jobs now (a job was just recorded), rather than at its next poll.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run runs jobs until ctx is done; it returns nil then.
func (r *Runner) Run(ctx context.Context) error {
	for {
		for {
			ran, err := r.RunOne(ctx)
			if err != nil && ctx.Err() == nil {
				r.log.Warn("erasure runner", "err", err)
			}
			if !ran || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-time.After(poll):
		}
	}
}

// RunOne takes the oldest job that is due (pending, or running with a lease that ran out), runs it and
// records the result. ran is false when no job was due. A failed attempt is the job's (its Error and
// status), not an error of RunOne.
func (r *Runner) RunOne(ctx context.Context) (ran bool, err error) {
	var (
		id, projectID int64
		kind, subject string
		idsJSON       []byte
		requestedAt   time.Time
		attempts      int
	)
	err = r.db.QueryRow(ctx, `UPDATE erasures SET status = 'running', attempts = attempts + 1,
	lease_until = now() + make_interval(secs => $1)
WHERE id = (SELECT id FROM erasures WHERE (status = 'pending' AND (lease_until IS NULL OR lease_until < now()))
	OR (status = 'running' AND lease_until < now()) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, project_id, subject_kind, subject, identifiers, requested_at, attempts`, Lease.Seconds()).
		Scan(&id, &projectID, &kind, &subject, &idsJSON, &requestedAt, &attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take an erasure job: %w", err)
	}
	var ids Identifiers
	if err := json.Unmarshal(idsJSON, &ids); err != nil {
		return true, fmt.Errorf("erasure %d: identifiers: %w", id, err)
	}
	actx, cancel := context.WithTimeout(ctx, Lease)
	runErr := r.eraser.Erase(actx, chstore.Subject{
		ProjectID: projectID, Kind: chstore.SubjectKind(kind), ID: subject,
		Email: ids.Email, Phone: ids.Phone, Before: requestedAt, Tag: "inlet-erasure-" + strconv.FormatInt(id, 10),
	})
	cancel()
	if ctx.Err() != nil {
		// Shutting down: hand the job back so that another runner takes it at once rather than when
		// the lease runs out (which is what happens if this write fails too). The attempt is not
		// counted against the job.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = r.db.Exec(hctx, `UPDATE erasures SET status = 'pending', attempts = attempts - 1, lease_until = NULL
WHERE id = $1 AND status = 'running'`, id)
		return true, ctx.Err()
	}
	if runErr == nil {
		_, err = r.db.Exec(ctx, `UPDATE erasures SET status = 'done', identifiers = '{}', error = '', lease_until = NULL,
	finished_at = now() WHERE id = $1`, id)
		if err == nil {
			r.log.Info("erasure done", "erasure", id, "project", projectID, "kind", kind)
		}
		return true, err
	}
	status := StatusPending
	if attempts >= MaxAttempts {
		status = StatusFailed
	}
	r.log.Warn("erasure attempt failed", "erasure", id, "project", projectID, "attempt", attempts, "status", status, "err", runErr)
	_, err = r.db.Exec(ctx, `UPDATE erasures SET status = $2, error = $3,
	lease_until = now() + make_interval(secs => $4), finished_at = CASE WHEN $2 = 'failed' THEN now() END WHERE id = $1`,
		id, status, runErr.Error(), retryAfter.Seconds())
	return true, err
}
