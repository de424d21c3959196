package ingestor

import (
	"encoding"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

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
	s      *Server
	rec    kgo.Record
	hdrs   wire.RequestHeaders
	key    []byte
	value  []byte
	detail [160]byte // the detail header's value: a jsonvalid.Error's text fits; longer ones are cut
	ctype  []byte    // a form's Content-Type (wire.HeaderContentType)
	// sender are the kept sender headers, their values copies in senderBuf (at most
	// wire.MaxSenderHeaders × wire.MaxSenderHeaderBytes).
	sender    [wire.MaxSenderHeaders]wire.SenderHeader
	senderBuf []byte
	async     bool // a rejected request's record: nobody waits, the promise releases it
	start     time.Time
	state     atomic.Int32
	done      chan error
	timer     *time.Timer
	promise   func(*kgo.Record, error)
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
	clear(p.sender[:]) // no pointers into a released buffer
	p.async = false
	p.state.Store(stateWaiting)
	s.pool.Put(p)
}

// meta is what a record carries besides its body and outcome.
type meta struct {
	// detail is the edge's reason in words (wire.HeaderEdgeDetail), made once (an auth result); or
	// detailErr, whose text is written into the record's own buffer. Neither: no detail.
	detail    []byte
	detailErr error
	// contentType is a form's Content-Type (wire.HeaderContentType), copied; nil for JSON.
	contentType []byte
	// head is the request's header, to copy the webhook's kept sender headers from; nil: none kept.
	head *fasthttp.RequestHeader
	// trace is the request's span: its context goes into the record, the record's id into it. nil:
	// tracing off.
	trace *edgeTrace
}

// fill lays out the record: key = webhook id, value = body (copied), headers encoded by package wire.
// bodyLen is the size of the body as received, which value may be a prefix of (or empty).
func (p *pending) fill(topic, id string, h *webhook.Hook, res result, value []byte, bodyLen int, received time.Time, m meta) {
	p.key = append(p.key[:0], id...)
	p.value = append(p.value[:0], value...)
	r := wire.Request{ID: newRequestID(), WebhookID: id, ProjectID: h.ProjectID, ReceivedMs: received.UnixMilli(),
		ConfigVersion: h.Version, Outcome: results[res].outcome, EdgeStatus: results[res].status,
		BodyBytes: bodyLen, Truncated: len(value) < bodyLen}
	switch {
	case m.detail != nil:
		r.Detail = m.detail
	case m.detailErr != nil:
		// Written without allocating when the error can append its own text (a *jsonvalid.Error can).
		if a, ok := m.detailErr.(encoding.TextAppender); ok {
			r.Detail, _ = a.AppendText(p.detail[:0])
		} else {
			r.Detail = append(p.detail[:0], m.detailErr.Error()...)
		}
		r.Detail = r.Detail[:min(len(r.Detail), len(p.detail))]
	}
	if m.contentType != nil {
		p.ctype = append(p.ctype[:0], m.contentType...)
		r.ContentType = p.ctype
	}
	if m.head != nil && len(h.Headers) > 0 {
		r.Sender = p.keep(h.Headers, m.head)
	}
	if m.trace != nil {
		r.Trace = m.trace.parent
		m.trace.requestID = r.ID
	}
	p.rec = kgo.Record{
		Topic:     topic,
		Key:       p.key,
		Value:     p.value,
		Headers:   p.hdrs.Encode(&r),
		Timestamp: received,
	}
}

// keep copies the values of the kept headers present in head into the record's own buffer (a
// request's bytes are fasthttp's and are reused once the handler returns), each cut to
// wire.MaxSenderHeaderBytes, and returns them in the webhook's order. Which headers are kept is the
// webhook store's to decide: it refuses credentials, cookies and signature headers.
func (p *pending) keep(kept []webhook.KeptHeader, head *fasthttp.RequestHeader) []wire.SenderHeader {
	var ends [wire.MaxSenderHeaders]int
	buf := p.senderBuf[:0]
	n := 0
	for _, k := range kept {
		if n == wire.MaxSenderHeaders {
			break
		}
		v := head.Peek(k.Name)
		if len(v) == 0 {
			continue
		}
		buf = append(buf, v[:min(len(v), wire.MaxSenderHeaderBytes)]...)
		p.sender[n] = wire.SenderHeader{Key: k.RecordKey}
		ends[n] = len(buf)
		n++
	}
	// The values are sliced once buf has stopped growing.
	from := 0
	for i := range n {
		p.sender[i].Value = buf[from:ends[i]:ends[i]]
		from = ends[i]
	}
	p.senderBuf = buf
	return p.sender[:n]
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
