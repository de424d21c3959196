package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/identify"
)

// Candidates reads the requests a job replays from ClickHouse (chstore.Reader in production).
type Candidates interface {
	ReplayCandidates(ctx context.Context, q chstore.ReplayQuery) (chstore.ReplayPage, error)
}

// Erased tells whether a request's subject was erased at or after the request was received
// (erasure.Store in production): such a request is refused, never run again.
type Erased interface {
	Erased(ctx context.Context, projectID int64, kind identify.Kind, value string, receivedAt time.Time) (bool, error)
}

// RunnerConfig are a runner's settings.
type RunnerConfig struct {
	// Owner names this runner in the jobs' leases (host and process id by default).
	Owner string
	// Lease is how long a job stays this runner's without a heartbeat: a runner killed mid-job is
	// replaced after it. Default 30 s; shorter takes over sooner, at a heartbeat every Lease/3.
	Lease time.Duration
	// PageSize is how many requests a page reads, claims and produces at once; the cursor is saved
	// after each. Default 500: memory is one page of records (bodies included, at most 1 MiB each by
	// default) at a time.
	PageSize int
	// Poll is how often an idle runner looks for a job. Default 1 s.
	Poll time.Duration
}

func (c *RunnerConfig) defaults() {
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.PageSize <= 0 {
		c.PageSize = 500
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Owner == "" {
		c.Owner = "runner-" + uuid.NewString()[:8]
	}
}

// Runner runs replay jobs: any number of runners (one per admin process) share the jobs through their
// leases. For a job it pages through the matching failed requests in ClickHouse in (received_ms,
// request id) order, claims one attempt of each (replay_claims), produces the attempts (Producer) and,
// once Kafka has acknowledged them, saves the position after the page. Killed at any point, the next
// runner resumes from the last saved position: the page is done again, its requests find this job's
// claims and are produced again with the same attempt numbers, which the pipeline runs once.
type Runner struct {
	cfg  RunnerConfig
	jobs *Store
	src  Candidates
	prod *Producer
	log  *slog.Logger
	// afterProduce, when set (tests), is called after a page is produced and before its position is
	// saved.
	afterProduce func(page int)
	// erased, when set, refuses requests whose subject was erased since (SetErased).
	erased Erased
}

// SetErased makes the runner refuse (count as skipped, never produce) every request whose identifier
// erased says was erased at or after the request's receive time.
func (r *Runner) SetErased(e Erased) { r.erased = e }

// NewRunner builds a runner.
func NewRunner(cfg RunnerConfig, jobs *Store, src Candidates, prod *Producer, log *slog.Logger) *Runner {
	cfg.defaults()
	return &Runner{cfg: cfg, jobs: jobs, src: src, prod: prod, log: log}
}

// SetAfterProduce sets a hook called after each page is produced, before its position is saved (tests).
func (r *Runner) SetAfterProduce(f func(page int)) { r.afterProduce = f }

// Run runs jobs until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	for {
		job, err := r.jobs.acquire(ctx, r.cfg.Owner, r.cfg.Lease)
		if err != nil {
			r.log.Warn("replay runner: no job acquired", "error", err)
		}
		if job != nil {
			r.log.Info("replay job started", "job", job.ID, "webhook_id", job.WebhookID, "total", job.Total, "produced", job.Produced)
			if err := r.run(ctx, job); err != nil && ctx.Err() == nil {
				// Kept running: the job is taken again once its lease expires (by this runner or
				// another), from its last saved page; the error is shown on the job meanwhile.
				r.log.Warn("replay job interrupted; it is resumed when its lease expires", "job", job.ID, "error", err)
				if err := r.jobs.noteError(ctx, job.ID, r.cfg.Owner, err.Error()); err != nil {
					r.log.Warn("replay job: error not recorded", "job", job.ID, "error", err)
				}
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.cfg.Poll):
		}
	}
}

// run runs one job while it is this runner's.
func (r *Runner) run(ctx context.Context, job *Job) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go r.heartbeat(ctx, cancel, job.ID)
	q := chstore.ReplayQuery{ProjectID: job.ProjectID, WebhookID: job.WebhookID, SinceMs: job.Since.UnixMilli(),
		UntilMs: job.Until.UnixMilli(), Reason: job.Reason, AfterMs: job.cursorMs, AfterID: job.cursorID, Limit: r.cfg.PageSize}
	if job.RequestID != nil {
		q.RequestID = *job.RequestID
	}
	for page := 1; ; page++ {
		t0 := time.Now()
		pg, err := r.src.ReplayCandidates(ctx, q)
		if err != nil {
			return err
		}
		cands := pg.Candidates
		t1 := time.Now()
		if pg.Scanned == 0 {
			r.log.Info("replay job done", "job", job.ID)
			return r.jobs.finish(ctx, job.ID, r.cfg.Owner, StateDone, "")
		}
		done, err := r.page(ctx, job, cands)
		if err != nil {
			return err
		}
		t2 := time.Now()
		if r.afterProduce != nil {
			r.afterProduce(page)
		}
		done.cursorMs, done.cursorID = pg.LastMs, pg.LastID
		ok, err := r.jobs.savePage(ctx, job.ID, r.cfg.Owner, done, r.cfg.Lease)
		if err != nil {
			return err
		}
		if !ok {
			r.log.Info("replay job stopped: cancelled, or taken over by another runner", "job", job.ID)
			return nil
		}
		r.log.Debug("replay page", "job", job.ID, "page", page, "scanned", pg.Scanned, "requests", len(cands), "read", t1.Sub(t0), "produce", t2.Sub(t1), "save", time.Since(t2))
		q.AfterMs, q.AfterID = done.cursorMs, done.cursorID
	}
}

// page claims and produces one page's attempts and counts what was not produced.
func (r *Runner) page(ctx context.Context, job *Job, cands []chstore.Candidate) (pageDone, error) {
	var done pageDone
	want := make(map[uuid.UUID]int, len(cands))
	for i := range cands {
		want[cands[i].RequestID] = int(cands[i].LatestAttempt) + 1
	}
	claims, err := r.jobs.claim(ctx, job.ID, want)
	if err != nil {
		return done, err
	}
	attempts := make([]Attempt, 0, len(cands))
	for i := range cands {
		c := &cands[i]
		cl := claims[c.RequestID]
		switch {
		case !cl.ok && cl.mine:
			continue // this job produced it before the page was done again, and it ran: counted in produced
		case !cl.ok:
			done.skipped++ // another attempt of it is in flight
			continue
		case r.erased != nil && c.IdentifierValue != "":
			gone, err := r.erased.Erased(ctx, job.ProjectID, identify.Kind(c.IdentifierKind), c.IdentifierValue, time.UnixMilli(c.ReceivedMs))
			if err != nil {
				return done, err
			}
			if gone {
				done.skipped++
				r.log.Info("replay: request refused, its subject was erased", "job", job.ID, "request_id", c.RequestID)
				if err := r.jobs.release(ctx, job.ID, []uuid.UUID{c.RequestID}, []int32{int32(cl.attempt)}); err != nil {
					return done, err
				}
				continue
			}
			if c.Truncated {
				done.truncated++
				if err := r.jobs.release(ctx, job.ID, []uuid.UUID{c.RequestID}, []int32{int32(cl.attempt)}); err != nil {
					return done, err
				}
				continue
			}
		case c.Truncated:
			// The pipeline logged a preview, not the body: never run as whole. (The Producer would say
			// so too, reading the record; this spares the read.)
			done.truncated++
			if err := r.jobs.release(ctx, job.ID, []uuid.UUID{c.RequestID}, []int32{int32(cl.attempt)}); err != nil {
				return done, err
			}
			continue
		}
		attempts = append(attempts, Attempt{ProjectID: job.ProjectID, WebhookID: job.WebhookID, RequestID: c.RequestID,
			Partition: c.Partition, Offset: c.Offset, Number: cl.attempt, Cause: CauseReplay, Job: job.ID,
			ReplacesStatus: c.LatestStatus, ReplacesReason: c.LatestReason, Fired: c.Fired})
	}
	res, err := r.prod.Produce(ctx, attempts)
	if err != nil {
		return done, err
	}
	var ids []uuid.UUID
	var nums []int32
	for i, x := range res {
		if x.Err == nil {
			continue
		}
		switch {
		case errors.Is(x.Err, ErrExpired):
			done.expired++
		case errors.Is(x.Err, ErrTruncated):
			done.truncated++
		default:
			done.skipped++
			r.log.Info("replay: request not produced", "job", job.ID, "request_id", attempts[i].RequestID, "why", x.Err)
		}
		ids, nums = append(ids, attempts[i].RequestID), append(nums, int32(attempts[i].Number))
	}
	if err := r.jobs.release(ctx, job.ID, ids, nums); err != nil {
		return done, fmt.Errorf("replay job %s: %w", job.ID, err)
	}
	return done, nil
}

// heartbeat extends the job's lease every Lease/3; when the job is no longer this runner's (cancelled,
// or taken over) it cancels the job's context.
func (r *Runner) heartbeat(ctx context.Context, cancel context.CancelFunc, id string) {
	t := time.NewTicker(r.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := r.jobs.heartbeat(ctx, id, r.cfg.Owner, r.cfg.Lease)
		if err != nil {
			r.log.Warn("replay job heartbeat failed", "job", id, "error", err)
			continue
		}
		if !ok {
			cancel()
			return
		}
	}
}
