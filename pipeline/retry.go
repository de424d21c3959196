package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/sethvargo/go-retry"
)

// retrier retries calls to a dependency (ClickHouse, Kafka, the directory, the config cache) that
// failed for a transient reason. Every stage has the same one.
type retrier struct {
	maxBackoff time.Duration
	m          *metrics
	log        *slog.Logger
}

// do calls f until it succeeds, fails permanently (errPermanent) or ctx is done, backing off
// exponentially up to RetryMaxBackoff. Only transient errors come here: whatever one record can cause
// is that record's failure, decided before or classified after the call. about names the records
// waiting on the call (webhook, partition, offset) for the log line; it is asked only once an attempt
// has failed.
func (r *retrier) do(ctx context.Context, dependency string, about logRef, f func(ctx context.Context) error) error {
	// The first attempt needs no backoff state: it is the only one on the hot path.
	err := f(ctx)
	if err == nil || errors.Is(err, errPermanent) {
		return err
	}
	b := retry.WithCappedDuration(r.maxBackoff, retry.WithJitterPercent(20, retry.NewExponential(50*time.Millisecond)))
	attempt := 1
	r.m.retries.WithLabelValues(dependency).Inc()
	warn := func() {
		args := []any{"dependency", dependency, "attempt", attempt, "err", err}
		if about != nil {
			args = append(args, about.about()...)
		}
		r.log.Warn("dependency unavailable, retrying", args...)
	}
	warn()
	return retry.Do(ctx, b, func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		err = f(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, errPermanent) {
			return err
		}
		attempt++
		r.m.retries.WithLabelValues(dependency).Inc()
		if attempt%10 == 0 {
			warn()
		}
		return retry.RetryableError(err)
	})
}

// logRef names what a retried call is for, in its log line: the records waiting on it.
type logRef interface{ about() []any }

type logFunc func() []any

func (f logFunc) about() []any { return f() }

type partitionsRef []int32

func (p partitionsRef) about() []any {
	return []any{"reading", "high-water marks", "partitions", []int32(p)}
}

// errPermanent marks an error retry must not retry.
var errPermanent = errors.New("permanent")
