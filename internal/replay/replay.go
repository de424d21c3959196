// Package replay runs earlier requests again. A replay, the release of a held request and the expiry of
// a held request are all "another attempt of an earlier request": the first attempt's record is read
// back from webhooks.requests (by the partition and offset its activity row keeps) and produced again to
// webhooks.requests, with the same key (the webhook id: the attempt joins its webhook's partition and
// order), value and request headers (request id, receive time, …), plus the attempt headers of package
// wire (wire.HeaderAttempt, …). The pipeline takes an attempt as the same request again:
//
//   - same request id, same event ids (wire.ElementEventID for fan-out elements), the webhook's
//     current configuration;
//   - the sender's delivery-key dedup is not applied (it would call the attempt a duplicate of itself);
//     instead the pair (request id, attempt number) is claimed in PostgreSQL (package delivery), the
//     first Kafka position winning, so an attempt produced twice (a caller killed after producing,
//     before recording that it did) runs once: the later copy writes nothing and fires nothing;
//   - the events listed in Attempt.Fired are not fired again (their outcome says an earlier attempt
//     fired them); a request whose single event fired is not run again;
//   - its activity row has the same request id and received_at, attempt = Number, the cause and job,
//     and replaces_status/replaces_reason = the outcome it replaces: the rollup moves the request's
//     count from that outcome to the new one, in the request's own minute;
//   - CauseExpire is carried to the pipeline as is: what it does with it is the hold policy's.
//
// The caller chooses Number and ReplacesStatus/Reason from the request's latest activity row, and makes
// sure only one attempt of a request is in flight (replay jobs claim requests in PostgreSQL).
//
// Replay jobs (Store, in PostgreSQL: replay_jobs, replay_claims) are run by a Runner in every admin
// process: page by page through the matching failed requests in ClickHouse (chstore.Reader
// ReplayCandidates), claiming (request id, attempt) in replay_claims, producing with Producer, and
// saving the position after each acknowledged page under a lease any runner takes over once expired.
// docs/architecture.md says why a job runs each request exactly once under kill -9.
package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Cause is why a request runs again.
type Cause string

// The causes.
const (
	CauseReplay  Cause = "replay"  // a replay job (Attempt.Job set) or a replay of one request
	CauseRelease Cause = "release" // a held request whose user has appeared
	CauseExpire  Cause = "expire"  // a held request whose hold ran out: the pipeline must not hold it again
)

// Valid reports whether c is one of the causes.
func (c Cause) Valid() bool { return c == CauseReplay || c == CauseRelease || c == CauseExpire }

// Attempt names one earlier request to run again through the webhook's current configuration.
type Attempt struct {
	ProjectID int64
	WebhookID string
	// RequestID is the request's id: unchanged on every attempt (so are its event ids).
	RequestID uuid.UUID
	// Partition and Offset are the FIRST attempt's record in webhooks.requests (its body is read there).
	Partition int32
	Offset    int64
	// Number is this attempt's number, 1..wire.MaxAttempt (the first attempt, from the edge, is 0).
	Number int
	Cause  Cause
	Job    string // the replay job's id, for CauseReplay from a job; "" otherwise
	// ReplacesStatus and ReplacesReason are the request's latest outcome so far: the rollup counts the
	// request there -1, and +1 at the attempt's own.
	ReplacesStatus, ReplacesReason string
	// Fired are the fan-out elements fired by earlier attempts (not fired again); -1 for a request's
	// single event, which means the request succeeded and is never run again.
	Fired []int
}

// Result is what became of one attempt.
type Result struct {
	// Err is nil when the attempt was produced and acknowledged; else why not: ErrExpired,
	// ErrTruncated, ErrNotFound, ErrRefused or ErrInvalid (wrapped, with the details).
	Err error
	// Partition and Offset are where the attempt was produced.
	Partition int32
	Offset    int64
}

// The reasons an attempt is not produced. They are the attempt's, never the caller's: the caller
// records them and goes on with the others.
var (
	// ErrExpired: the first attempt's record is past the topic's retention.
	ErrExpired = errors.New("the request's record is past the requests topic's retention")
	// ErrTruncated: the record holds a preview of the body, not all of it; it is never run as whole.
	ErrTruncated = errors.New("the request's stored body is truncated")
	// ErrNotFound: no record at the position, or the record there is another request's (the topic was
	// recreated).
	ErrNotFound = errors.New("the request's record is not at its position")
	// ErrRefused: the edge refused the request (its outcome is not accepted): running it again cannot
	// change that.
	ErrRefused = errors.New("the edge refused the request")
	// ErrInvalid: the attempt itself is malformed (a number out of range, an unknown cause).
	ErrInvalid = errors.New("invalid attempt")
)

// Producer reads each attempt's original record from webhooks.requests and produces it again, with the
// attempt headers, waiting for the acks. It is safe for concurrent use; each Produce reads with a client
// of its own.
type Producer struct {
	cfg  kafka.Config
	prod *kgo.Client
	adm  *kadm.Client
	log  *slog.Logger
	// SeekGap: when the next wanted offset of a partition is more than this many offsets past the
	// reading position, the reader seeks instead of reading through. Default 1000.
	SeekGap int64
	// Now is the clock of wire.Attempt.AtMs (tests set it).
	Now func() time.Time
}

// NewProducer connects a Producer to cfg's cluster.
func NewProducer(cfg kafka.Config, log *slog.Logger) (*Producer, error) {
	cl, err := kafka.NewClient(cfg, "replay", kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &Producer{cfg: cfg, prod: cl, adm: kadm.NewClient(cl), log: log, SeekGap: 1000, Now: time.Now}, nil
}

// Close closes the producer's client.
func (p *Producer) Close() { p.prod.Close() }

// Produce produces attempts (in any order; results are in the same order). The records are read
// partition by partition in offset order, so many attempts read sequentially, and produced as they are
// read, so at most one fetch of records is held at a time. The error is for what stops the whole call
// (Kafka unreachable, ctx ended): then some attempts may have been produced and others not — producing
// them again is safe, the pipeline runs each (request, attempt) once.
func (p *Producer) Produce(ctx context.Context, attempts []Attempt) ([]Result, error) {
	res := make([]Result, len(attempts))
	byPart := map[int32][]int{}
	for i := range attempts {
		if err := attempts[i].validate(); err != nil {
			res[i].Err = err
			continue
		}
		byPart[attempts[i].Partition] = append(byPart[attempts[i].Partition], i)
	}
	if len(byPart) == 0 {
		return res, nil
	}
	parts := make([]int32, 0, len(byPart))
	for x, idx := range byPart {
		parts = append(parts, x)
		slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(attempts[a].Offset, attempts[b].Offset) })
	}
	slices.Sort(parts)
	starts, err := p.adm.ListStartOffsets(ctx, p.cfg.RequestsTopic)
	if err != nil {
		return nil, fmt.Errorf("replay: start offsets of %s: %w", p.cfg.RequestsTopic, err)
	}
	ends, err := p.adm.ListEndOffsets(ctx, p.cfg.RequestsTopic)
	if err != nil {
		return nil, fmt.Errorf("replay: end offsets of %s: %w", p.cfg.RequestsTopic, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var produceErr error
	for _, x := range parts {
		idx := byPart[x]
		start, ok1 := starts.Lookup(p.cfg.RequestsTopic, x)
		end, ok2 := ends.Lookup(p.cfg.RequestsTopic, x)
		if !ok1 || !ok2 || start.Err != nil || end.Err != nil {
			for _, i := range idx {
				res[i].Err = fmt.Errorf("%w: partition %d of %s is not listed", ErrNotFound, x, p.cfg.RequestsTopic)
			}
			continue
		}
		want := idx[:0:0]
		for _, i := range idx {
			switch off := attempts[i].Offset; {
			case off < start.Offset:
				res[i].Err = fmt.Errorf("%w: offset %d of partition %d is before the log start %d", ErrExpired, off, x, start.Offset)
			case off >= end.Offset:
				res[i].Err = fmt.Errorf("%w: offset %d of partition %d is past the log end %d", ErrNotFound, off, x, end.Offset)
			default:
				want = append(want, i)
			}
		}
		if len(want) == 0 {
			continue
		}
		t0 := time.Now()
		err := p.readPartition(ctx, x, attempts, want, func(i int, r *kgo.Record) {
			rec, err := attemptRecord(r, &attempts[i], p.Now().UnixMilli())
			if err != nil {
				res[i].Err = err
				return
			}
			wg.Add(1)
			p.prod.Produce(ctx, rec, func(rec *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					produceErr = cmp.Or(produceErr, fmt.Errorf("replay: produce attempt %d of request %s: %w", attempts[i].Number, attempts[i].RequestID, err))
					mu.Unlock()
					return
				}
				res[i].Partition, res[i].Offset = rec.Partition, rec.Offset
			})
		}, res)
		if err != nil {
			wg.Wait()
			return nil, err
		}
		p.log.Debug("replay: partition read", "partition", x, "attempts", len(want), "took", time.Since(t0))
	}
	t0 := time.Now()
	wg.Wait()
	p.log.Debug("replay: acks", "took", time.Since(t0))
	if produceErr != nil {
		return nil, produceErr
	}
	return res, nil
}

// validate checks what the pipeline relies on.
func (a *Attempt) validate() error {
	switch {
	case a.Number < 1 || a.Number > wire.MaxAttempt:
		return fmt.Errorf("%w: number %d is outside 1..%d", ErrInvalid, a.Number, wire.MaxAttempt)
	case !a.Cause.Valid():
		return fmt.Errorf("%w: cause %q is not replay, release or expire", ErrInvalid, a.Cause)
	case a.RequestID == uuid.Nil:
		return fmt.Errorf("%w: no request id", ErrInvalid)
	case a.Partition < 0 || a.Offset < 0:
		return fmt.Errorf("%w: position %d/%d", ErrInvalid, a.Partition, a.Offset)
	case len(a.Job) > 128:
		return fmt.Errorf("%w: job id is %d bytes, over 128", ErrInvalid, len(a.Job))
	}
	return nil
}

// attemptRecord checks that r is a's first attempt and returns the record of the attempt: r's key,
// value and request headers, with a's attempt headers.
func attemptRecord(r *kgo.Record, a *Attempt, atMs int64) (*kgo.Record, error) {
	var req wire.Request
	if bad := wire.DecodeRequest(r, &req); len(bad) > 0 {
		return nil, fmt.Errorf("%w: the record at %d/%d breaks the wire contract (%v)", ErrNotFound, r.Partition, r.Offset, bad)
	}
	switch {
	case req.ID != a.RequestID:
		return nil, fmt.Errorf("%w: the record at %d/%d is request %s, not %s", ErrNotFound, r.Partition, r.Offset, req.ID, a.RequestID)
	case req.Attempt.Number != 0:
		return nil, fmt.Errorf("%w: the record at %d/%d is attempt %d, not the first", ErrNotFound, r.Partition, r.Offset, req.Attempt.Number)
	case req.Outcome != wire.OutcomeAccepted:
		return nil, fmt.Errorf("%w: %s", ErrRefused, req.Outcome)
	case req.Truncated:
		return nil, fmt.Errorf("%w: %d of %d bytes kept", ErrTruncated, len(r.Value), req.BodyBytes)
	}
	hdrs := make([]kgo.RecordHeader, 0, len(r.Headers)+8)
	for _, h := range r.Headers {
		if !wire.IsAttemptHeader(h.Key) {
			hdrs = append(hdrs, h)
		}
	}
	hdrs = wire.AppendAttemptHeaders(hdrs, &wire.Attempt{Number: a.Number, Cause: string(a.Cause), Job: a.Job, AtMs: atMs,
		OriginPartition: r.Partition, OriginOffset: r.Offset, ReplacesStatus: a.ReplacesStatus, ReplacesReason: a.ReplacesReason,
		Fired: wire.FormatFired(a.Fired)})
	return &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: hdrs}, nil
}

// readPartition reads partition x from the first wanted offset on, handing each wanted record to found
// (want: indices into attempts, sorted by offset), seeking forward over gaps wider than SeekGap. An
// offset the log no longer has (retention moved its start past it while reading) gets ErrExpired in res.
func (p *Producer) readPartition(ctx context.Context, x int32, attempts []Attempt, want []int, found func(i int, r *kgo.Record), res []Result) error {
	topic := p.cfg.RequestsTopic
	// A fetch returns at least one record batch however large (KIP-74): 1 MiB per fetch is enough for
	// any record and keeps a page's read to what it needs, not megabytes of records past it.
	const fetch = 1 << 20
	cl, err := kafka.NewClient(p.cfg, "replay-reader",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {x: kgo.NewOffset().At(attempts[want[0]].Offset)}}),
		// An offset retention has just deleted: start again at the log start, where the first record
		// is past the wanted one (ErrExpired).
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(fetch), kgo.FetchMaxPartitionBytes(fetch))
	if err != nil {
		return err
	}
	defer cl.Close()
	next := 0 // index into want
	for next < len(want) {
		fs := cl.PollRecords(ctx, 1000)
		if err := ctx.Err(); err != nil {
			return err
		}
		var fatal error
		fs.EachError(func(_ string, _ int32, err error) {
			p.log.Warn("replay: reading the requests topic", "partition", x, "error", err)
			if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
				fatal = err
			}
		})
		if fatal != nil {
			return fatal
		}
		var last int64 = -1
		fs.EachRecord(func(r *kgo.Record) {
			if r.Partition != x {
				return
			}
			last = max(last, r.Offset)
			for next < len(want) && attempts[want[next]].Offset < r.Offset {
				i := want[next]
				if res[i].Err == nil {
					res[i].Err = fmt.Errorf("%w: offset %d of partition %d is gone (the next record is %d)", ErrExpired, attempts[i].Offset, x, r.Offset)
				}
				next++
			}
			for next < len(want) && attempts[want[next]].Offset == r.Offset {
				found(want[next], r) // the same request may be wanted twice (two attempts): both get it
				next++
			}
		})
		if next < len(want) && last >= 0 && attempts[want[next]].Offset-last > p.SeekGap {
			cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: {x: {Epoch: -1, Offset: attempts[want[next]].Offset}}})
		}
	}
	return nil
}
