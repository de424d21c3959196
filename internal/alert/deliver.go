package alert

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/sethvargo/go-retry"
	"golang.org/x/sync/errgroup"
)

// claimed is a notification the worker has taken for one attempt.
type claimed struct {
	id        uuid.UUID
	projectID int64
	payload   []byte
	attempt   int
}

// claim takes up to n due notifications, pushing their next attempt past what this attempt can take,
// so that if this process dies mid-POST another one retries them after that lease.
func (s *Store) claim(ctx context.Context, n int, lease time.Duration) ([]claimed, error) {
	rows, err := s.db.Query(ctx, `UPDATE notification_deliveries d
		SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
		WHERE d.id IN (SELECT id FROM notification_deliveries WHERE state = 'pending' AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING d.id, d.project_id, d.payload::text, d.attempts`, n, lease.Seconds())
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (claimed, error) {
		var c claimed
		var payload string
		err := row.Scan(&c.id, &c.projectID, &payload, &c.attempt)
		c.payload = []byte(payload)
		return c, err
	})
}

// target is where and how a project's notifications go.
type target struct {
	url, format, secret string
}

func (s *Store) target(ctx context.Context, projectID int64) (target, error) {
	var t target
	if err := s.db.QueryRow(ctx, `SELECT notification_url, notification_format FROM projects WHERE id = $1`, projectID).
		Scan(&t.url, &t.format); err != nil {
		return t, fmt.Errorf("notification target of project %d: %w", projectID, err)
	}
	if t.url == "" {
		return t, nil
	}
	var err error
	t.secret, err = s.SigningSecret(ctx, projectID)
	return t, err
}

// record writes an attempt and what follows from it: delivered, failed for good, or the next attempt
// after backoff.
func (s *Store) record(ctx context.Context, c claimed, url string, res Result, next time.Duration, final bool) error {
	errText := ""
	if res.Err != nil {
		errText = res.Err.Error()
		if len(errText) > maxErrorLen {
			errText = errText[:maxErrorLen]
		}
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO notification_attempts (delivery_id, attempt, url, status_code, error, duration_ms)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			c.id, c.attempt, url, res.StatusCode, errText, res.Duration.Milliseconds()); err != nil {
			return err
		}
		var err error
		switch {
		case res.Err == nil:
			_, err = tx.Exec(ctx, `UPDATE notification_deliveries SET state = 'delivered', last_error = '', finished_at = now() WHERE id = $1`, c.id)
		case final:
			_, err = tx.Exec(ctx, `UPDATE notification_deliveries SET state = 'failed', last_error = $2, finished_at = now() WHERE id = $1`, c.id, errText)
		default:
			_, err = tx.Exec(ctx, `UPDATE notification_deliveries SET last_error = $2, next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1`,
				c.id, errText, next.Seconds())
		}
		return err
	})
}

// skip finishes a notification that cannot be sent (the project's URL was removed).
func (s *Store) skip(ctx context.Context, id uuid.UUID, why string) error {
	_, err := s.db.Exec(ctx, `UPDATE notification_deliveries SET state = 'skipped', last_error = $2, finished_at = now() WHERE id = $1`, id, why)
	return err
}

// forget deletes finished notifications older than keep_days, a batch at a time.
func (s *Store) forget(ctx context.Context) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM notification_deliveries WHERE id IN (SELECT id FROM notification_deliveries
		WHERE state <> 'pending' AND created_at < now() - make_interval(days => $1) LIMIT 1000)`, s.cfg.KeepDays)
	return tag.RowsAffected(), err
}

// backoff is the wait after the attempt-th failed attempt (1-based): backoff_base doubled for each
// further failure, at most backoff_max, less up to 20% jitter so that the retries of one burst spread.
func (c *Config) backoff(attempt int) time.Duration {
	b := retry.WithCappedDuration(c.BackoffMax, retry.NewExponential(c.BackoffBase))
	var d time.Duration
	for range max(attempt, 1) {
		d, _ = b.Next()
	}
	return d - time.Duration(rand.Float64()*0.2*float64(d))
}

// DeliverDue makes one attempt at each of up to alerts.concurrency due notifications, at once, and
// returns how many it attempted.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	cs, err := s.store.claim(ctx, s.cfg.Concurrency, 2*s.cfg.DeliveryTimeout+5*time.Second)
	if err != nil {
		return 0, err
	}
	var g errgroup.Group
	for _, c := range cs {
		g.Go(func() error { return s.deliver(ctx, c) })
	}
	return len(cs), g.Wait()
}

func (s *Service) deliver(ctx context.Context, c claimed) error {
	t, err := s.store.target(ctx, c.projectID)
	if err != nil {
		return err
	}
	if t.url == "" {
		return s.store.skip(ctx, c.id, "the project's notification URL was removed")
	}
	key, err := signingKey(t.secret)
	if err != nil {
		return fmt.Errorf("signing key of project %d: %w", c.projectID, err)
	}
	body, err := Body(t.format, c.payload)
	if err != nil {
		return err
	}
	res := s.sender.Send(ctx, t.url, c.id.String(), key, time.Now(), body)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: the lease runs out and another attempt is made
	}
	final := c.attempt >= s.cfg.MaxAttempts || errors.Is(res.Err, ErrRefusedTarget)
	switch {
	case res.Err == nil:
		s.m.delivered.Inc()
	case final:
		s.m.failed.Inc()
		s.log.Warn("notification failed for good", "project_id", c.projectID, "notification_id", c.id, "attempts", c.attempt, "err", res.Err)
	default:
		s.m.retried.Inc()
	}
	return s.store.record(ctx, c, t.url, res, s.cfg.backoff(c.attempt), final)
}
