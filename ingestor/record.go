package ingestor

import (
	"encoding"
	"strconv"
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
	hdrs    [10]kgo.RecordHeader // the last one only for a detail
	key     []byte
	value   []byte
	scratch [512]byte // header values; ids have secret.PublicIDLen bytes so they always fit
	detail  [160]byte // the detail header's value: a jsonvalid.Error's text fits
	reqID   [36]byte
	async   bool // a rejected request's record: nobody waits, the promise releases it
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

// fill lays out the record: key = webhook id, value = body (copied), headers per package wire.
// bodyLen is the size of the body as received, which value may be a prefix of (or empty).
func (p *pending) fill(topic, id string, h *webhook.Hook, res result, value []byte, bodyLen int, received time.Time) {
	newRequestID(&p.reqID)
	p.key = append(p.key[:0], id...)
	p.value = append(p.value[:0], value...)

	b := p.scratch[:0]
	var at [9]int
	b = append(b, p.reqID[:]...)
	at[0] = len(b)
	b = append(b, id...)
	at[1] = len(b)
	b = strconv.AppendInt(b, h.ProjectID, 10)
	at[2] = len(b)
	b = strconv.AppendInt(b, received.UnixMilli(), 10)
	at[3] = len(b)
	b = strconv.AppendInt(b, h.Version, 10)
	at[4] = len(b)
	b = append(b, results[res].outcome...)
	at[5] = len(b)
	b = strconv.AppendInt(b, int64(results[res].status), 10)
	at[6] = len(b)
	b = strconv.AppendInt(b, int64(bodyLen), 10)
	at[7] = len(b)
	if len(value) < bodyLen {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	at[8] = len(b)

	keys := [9]string{
		wire.HeaderRequestID, wire.HeaderWebhookID, wire.HeaderProjectID, wire.HeaderReceivedAt,
		wire.HeaderConfigVersion, wire.HeaderEdgeOutcome, wire.HeaderEdgeStatus, wire.HeaderBodyBytes,
		wire.HeaderTruncated,
	}
	from := 0
	for i, k := range keys {
		p.hdrs[i] = kgo.RecordHeader{Key: k, Value: b[from:at[i]:at[i]]}
		from = at[i]
	}
	p.rec = kgo.Record{
		Topic:     topic,
		Key:       p.key,
		Value:     p.value,
		Headers:   p.hdrs[:len(keys)],
		Timestamp: received,
	}
}

// setDetail adds the wire.HeaderEdgeDetail header to a filled record: err's text, written without
// allocating when err is an encoding.TextAppender (a *jsonvalid.Error is).
func (p *pending) setDetail(err error) {
	var v []byte
	if a, ok := err.(encoding.TextAppender); ok {
		v, _ = a.AppendText(p.detail[:0])
	} else {
		v = append(p.detail[:0], err.Error()...)
	}
	p.hdrs[len(p.rec.Headers)] = kgo.RecordHeader{Key: wire.HeaderEdgeDetail, Value: v}
	p.rec.Headers = p.hdrs[:len(p.rec.Headers)+1]
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

// newRequestID writes a fresh UUIDv7 (time-sortable) in its text form. uuid.EnableRandPool keeps it
// allocation-free; without it NewV7 allocates 16 bytes.
func newRequestID(dst *[36]byte) {
	u, err := uuid.NewV7()
	if err != nil {
		// crypto/rand failing is not recoverable; a random-less id would break dedupe.
		panic("ingestor: uuid: " + err.Error())
	}
	const hex = "0123456789abcdef"
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j], dst[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
}
