package ingestor

import (
	"encoding"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Handoff states between a waiting handler and the producer's promise.
const (
	stateWaiting   int32 = iota
	stateAcked           // the promise ran first: the handler reads the result from done
	stateAbandoned       // the handler timed out first: the promise releases the record
)

// maxPooledValue is the largest value buffer kept in the pool; bigger ones (rare near-limit bodies) go to
// the GC so that the pool does not pin MaxInFlight × MaxBodyBytes.
const maxPooledValue = 256 << 10

// pending is one record on its way to Kafka with everything it points at, pooled. Key and value are
// copies because fasthttp reuses the request's buffers when the handler returns, and a record whose
// request timed out outlives it.
type pending struct {
	s       *Server
	rec     kgo.Record
	hdrs    wire.RequestHeaders
	key     []byte
	value   []byte
	detail  [160]byte // the detail header's value: a jsonvalid.Error's text fits
	async   bool      // a rejected request's record: nobody waits, the promise releases it
	start   time.Time
	state   atomic.Int32
	done    chan error
	timer   *time.Timer
	promise func(*kgo.Record, error)
}

func newPending(s *Server) *pending {
	p := &pending{s: s, done: make(chan error, 1), timer: time.NewTimer(time.Hour)}
	p.timer.Stop()
	p.promise = p.onAck
	return p
}

func (s *Server) getPending() *pending {
	if v := s.pool.Get(); v != nil {
		return v.(*pending)
	}
	return newPending(s)
}

func (s *Server) release(p *pending) {
	p.rec = kgo.Record{}
	if cap(p.value) > maxPooledValue {
		p.value = nil
	}
	p.async = false
	p.state.Store(stateWaiting)
	s.pool.Put(p)
}

// fill lays out the record: key = webhook id, value = body (copied), headers encoded by package wire.
// bodyLen is the size of the body as received, which value may be a prefix of (or empty); detail, when
// not nil, is the edge's reason in words (wire.HeaderEdgeDetail).
func (p *pending) fill(topic, id string, h *webhook.Hook, res result, value []byte, bodyLen int, received time.Time, detail error) {
	p.key = append(p.key[:0], id...)
	p.value = append(p.value[:0], value...)
	r := wire.Request{ID: newRequestID(), WebhookID: id, ProjectID: h.ProjectID, ReceivedMs: received.UnixMilli(),
		ConfigVersion: h.Version, Outcome: results[res].outcome, EdgeStatus: results[res].status,
		BodyBytes: bodyLen, Truncated: len(value) < bodyLen}
	if detail != nil {
		// Written without allocating when err can append its own text (a *jsonvalid.Error can).
		if a, ok := detail.(encoding.TextAppender); ok {
			r.Detail, _ = a.AppendText(p.detail[:0])
		} else {
			r.Detail = append(p.detail[:0], detail.Error()...)
		}
	}
	p.rec = kgo.Record{
		Topic:     topic,
		Key:       p.key,
		Value:     p.value,
		Headers:   p.hdrs.Encode(&r),
		Timestamp: received,
	}
}

// onAck is the producer's promise. franz-go calls promises serially, so it must not block: done has room
// for the one result.
func (p *pending) onAck(_ *kgo.Record, err error) {
	s := p.s
	s.metrics.produce.Observe(time.Since(p.start).Seconds())
	if p.async {
		s.rejectedPending.Add(-1)
		if err != nil {
			s.metrics.rejDropped.kafka.Inc()
		} else {
			s.metrics.rejWritten.Inc()
		}
		s.release(p)
		return
	}
	if p.state.Swap(stateAcked) == stateAbandoned {
		s.release(p)
		return
	}
	p.done <- err
}

// wait blocks until the record is acknowledged or failed, or until timeout. It reports whether the
// caller still owns p (false: the promise will release it).
func (p *pending) wait(timeout time.Duration) (error, bool) {
	p.timer.Reset(timeout)
	select {
	case err := <-p.done:
		p.timer.Stop()
		return err, true
	case <-p.timer.C:
		if p.state.Swap(stateAbandoned) == stateAcked {
			return <-p.done, true // the promise won the race by a hair
		}
		return errAckTimeout, false
	}
}

// newRequestID returns a fresh UUIDv7 (time-sortable). uuid.EnableRandPool keeps it allocation-free;
// without it NewV7 allocates 16 bytes.
func newRequestID() uuid.UUID {
	u, err := uuid.NewV7()
	if err != nil {
		// crypto/rand failing is not recoverable; a random-less id would break dedupe.
		panic("ingestor: uuid: " + err.Error())
	}
	return u
}
