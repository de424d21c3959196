package ingestor

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the edge's Prometheus series. Label values are resolved once here so that the hot path
// only increments.
type metrics struct {
	requests   [numResults]prometheus.Counter
	latency    [numResults]prometheus.Observer
	produce    prometheus.Observer
	rejDropped struct{ rateLimited, backlog, kafka prometheus.Counter }
	rejWritten prometheus.Counter
	linger     lingerMetrics
	conns      connMetrics
}

// connMetrics are the connection limits' series (see connLimiter).
type connMetrics struct {
	refused    [numConnLimits]prometheus.Counter
	idleClosed [numConnLimits]prometheus.Counter // by the limit that made room for a new connection
}

// lingerMetrics are the lingering closes' series (see lingerer).
type lingerMetrics struct {
	outcomes  [numLingerOutcomes]prometheus.Counter
	discarded prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "inlet", Subsystem: "ingestor", Name: "requests_total",
		Help: "Requests answered by the edge, by outcome (accepted, auth_rejected, kafka_timeout, …).",
	}, []string{"outcome"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "inlet", Subsystem: "ingestor", Name: "request_duration_seconds",
		Help:    "Time from the request being read to the answer, by outcome.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"outcome"})
	produce := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "inlet", Subsystem: "ingestor", Name: "produce_duration_seconds",
		Help:    "Time from handing a record to the producer to its ack or failure.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "inlet", Subsystem: "ingestor", Name: "rejected_records_dropped_total",
		Help: "Rejected requests answered but not appended to the activity log: rate_limited (per-webhook log limit), backlog (max_rejected_pending), kafka (producer failed it).",
	}, []string{"reason"})
	written := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "inlet", Subsystem: "ingestor", Name: "rejected_records_written_total",
		Help: "Rejected requests acknowledged by Kafka for the activity log.",
	})
	lingerCloses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "inlet", Subsystem: "ingestor", Name: "linger_closes_total",
		Help: "Connections closed after a request refused unread (413, 431, 400) or refused over a connection limit (503), by how they ended: eof (the sender closed after the answer), timeout (linger_close_timeout), max_bytes (linger_close_bytes), error, over_cap (linger_close_max_conns lingering: closed at once), shutdown.",
	}, []string{"outcome"})
	lingerDiscarded := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "inlet", Subsystem: "ingestor", Name: "linger_discarded_bytes_total",
		Help: "Bytes read and discarded from connections lingering after a refused request.",
	})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "inlet", Subsystem: "ingestor", Name: "connections_refused_total",
		Help: "Connections answered 503 and closed before anything was read from them, by the limit they were over: max_conns, max_conns_per_ip.",
	}, []string{"reason"})
	idleClosed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "inlet", Subsystem: "ingestor", Name: "idle_connections_closed_total",
		Help: "Keep-alive connections idle between requests closed to admit a new connection in their place, by the limit the new one was at: max_conns, max_conns_per_ip.",
	}, []string{"reason"})
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "inlet", Subsystem: "ingestor", Name: "open_connections",
			Help: "Connections open on the public listener, as counted against max_conns (lingering ones excluded).",
		}, func() float64 { return float64(s.conns.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "inlet", Subsystem: "ingestor", Name: "idle_connections",
			Help: "Open connections idle between requests (keep-alive), which a new connection over max_conns or max_conns_per_ip takes the place of.",
		}, func() float64 { return float64(s.conns.idleLen()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "inlet", Subsystem: "ingestor", Name: "in_flight_requests",
			Help: "Requests being handled (mostly waiting for their Kafka ack).",
		}, func() float64 { return float64(s.inFlight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "inlet", Subsystem: "ingestor", Name: "producer_buffered_records",
			Help: "Records buffered in the producer, not yet acknowledged.",
		}, func() float64 { return float64(s.producer.BufferedProduceRecords()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "inlet", Subsystem: "ingestor", Name: "producer_buffered_bytes",
			Help: "Bytes of records buffered in the producer, not yet acknowledged.",
		}, func() float64 { return float64(s.producer.BufferedProduceBytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "inlet", Subsystem: "ingestor", Name: "rejected_records_pending",
			Help: "Rejected-request records waiting for their Kafka ack.",
		}, func() float64 { return float64(s.rejectedPending.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "inlet", Subsystem: "ingestor", Name: "tracked_webhooks",
			Help: "Webhook ids with rate-limit state.",
		}, func() float64 { return float64(s.states.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "inlet", Subsystem: "ingestor", Name: "lingering_connections",
			Help: "Connections being read and discarded before their close, after a request refused unread.",
		}, func() float64 { return float64(s.lingers.len()) }),
	}
	for _, c := range append([]prometheus.Collector{requests, latency, produce, dropped, written, lingerCloses, lingerDiscarded, refused, idleClosed}, gauges...) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register ingestor metrics: %w", err)
		}
	}
	m := &metrics{produce: produce, rejWritten: written}
	for i := range results {
		m.requests[i] = requests.WithLabelValues(results[i].label)
		m.latency[i] = latency.WithLabelValues(results[i].label)
	}
	m.rejDropped.rateLimited = dropped.WithLabelValues("rate_limited")
	m.rejDropped.backlog = dropped.WithLabelValues("backlog")
	m.rejDropped.kafka = dropped.WithLabelValues("kafka")
	for i := range m.linger.outcomes {
		m.linger.outcomes[i] = lingerCloses.WithLabelValues(lingerLabels[i])
	}
	m.linger.discarded = lingerDiscarded
	for i := range m.conns.refused {
		m.conns.refused[i] = refused.WithLabelValues(connLimitLabels[i])
		m.conns.idleClosed[i] = idleClosed.WithLabelValues(connLimitLabels[i])
	}
	return m, nil
}

// throttle lets a hot-path log line through at most once per interval and counts what it held back, so
// that a broker outage at 10k req/s writes one line per interval, not 10k.
type throttle struct {
	every      time.Duration
	next       atomic.Int64 // unix nanos
	suppressed atomic.Int64
}

// log writes the line if the interval has passed, with the number of lines held back since the last one.
func (t *throttle) log(l *slog.Logger, level slog.Level, msg string, args ...any) {
	now := time.Now().UnixNano()
	next := t.next.Load()
	if now < next || !t.next.CompareAndSwap(next, now+int64(t.every)) {
		t.suppressed.Add(1)
		return
	}
	args = append(args, "suppressed", t.suppressed.Swap(0))
	l.Log(context.Background(), level, msg, args...)
}
