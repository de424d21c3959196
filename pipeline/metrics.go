package pipeline

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are declared once and registered on the injected registry.
type metrics struct {
	records       *prometheus.CounterVec   // by outcome: success, duplicate or the failure reason
	skipped       prometheus.Counter       // records at or below a high-water mark (already written)
	fired         prometheus.Counter       // events produced to webhooks.events
	notifications prometheus.Counter       // auth-failure notifications raised
	notifyErrors  prometheus.Counter       // notification POSTs that failed or were dropped
	batchRows     *prometheus.HistogramVec // rows per INSERT, by table
	insertSeconds *prometheus.HistogramVec // INSERT latency, by table
	insertErrors  *prometheus.CounterVec   // failed INSERT attempts, by table
	retries       *prometheus.CounterVec   // retried calls to a dependency, by dependency
	endToEnd      prometheus.Histogram     // received at the edge → inserted into activity_log
	lag           *prometheus.GaugeVec     // records in the partition not yet written
	stalled       prometheus.Gauge         // partitions with lag and no progress for StallAfter
	dropped       prometheus.Counter       // daily partitions dropped by retention
	abandoned     prometheus.Counter       // batches abandoned so that a rebalance could proceed
	panics        prometheus.Counter       // requests failed with processing_error after a panic

	deliveriesDeleted prometheus.Counter     // expired delivery keys deleted
	attempts          *prometheus.CounterVec // later attempts run, by cause
	attemptCopies     prometheus.Counter     // copies of an attempt an earlier position ran (nothing written)
	holdFull          prometheus.Counter     // requests not held because their project's hold was full
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_pipeline_records_total", Help: "Requests processed, by outcome (success, duplicate or the failure reason).",
		}, []string{"outcome"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_pipeline_records_skipped_total", Help: "Records skipped because ClickHouse already has them (redelivery after a crash or rebalance).",
		}),
		fired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_pipeline_events_fired_total", Help: "Events produced to the events topic.",
		}),
		notifications: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_pipeline_notifications_total", Help: "Auth-failure notifications raised.",
		}),
		notifyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_pipeline_notification_errors_total", Help: "Notification POSTs that failed or were dropped.",
		}),
		batchRows: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "inlet_pipeline_batch_rows", Help: "Rows per ClickHouse insert.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}, []string{"table"}),
		insertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "inlet_pipeline_insert_duration_seconds", Help: "ClickHouse insert latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"table"}),
		insertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_pipeline_insert_errors_total", Help: "Failed ClickHouse insert attempts (each is retried).",
		}, []string{"table"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_pipeline_retries_total", Help: "Retried calls to an unavailable dependency.",
		}, []string{"dependency"}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "inlet_pipeline_end_to_end_duration_seconds", Help: "From the edge receiving a request to its activity row being inserted.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inlet_pipeline_lag_records", Help: "Records of the requests topic not yet written to ClickHouse (log end offset minus the first offset not written), per assigned partition.",
		}, []string{"partition"}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "inlet_pipeline_stalled_partitions", Help: "Assigned partitions with records waiting and nothing written for stall_after.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_pipeline_retention_dropped_partitions_total", Help: "Daily partitions dropped by retention.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_pipeline_processing_panics_total", Help: "Requests failed with processing_error because processing them panicked (a defect: each is logged with its stack).",
		}),
		deliveriesDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_pipeline_delivery_keys_deleted_total", Help: "Senders' delivery keys deleted from PostgreSQL after their dedup window (and the grace) ended.",
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_pipeline_attempts_total", Help: "Later attempts of requests run (replays, releases and expiries of held requests), by cause.",
		}, []string{"cause"}),
		attemptCopies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_pipeline_attempt_copies_total", Help: "Copies of a later attempt that an earlier Kafka position already ran: they write and fire nothing.",
		}),
		holdFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_pipeline_hold_full_total", Help: "Requests that would have been held for their user but failed with user_not_found: their project held hold_max_per_project requests already.",
		}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_pipeline_abandoned_batches_total", Help: "In-memory batches abandoned (and redone) so that a consumer-group rebalance could proceed within rebalance_grace.",
		}),
	}
	reg.MustRegister(m.records, m.skipped, m.fired, m.notifications, m.notifyErrors, m.batchRows,
		m.insertSeconds, m.insertErrors, m.retries, m.endToEnd, m.lag, m.stalled, m.dropped, m.abandoned, m.panics,
		m.deliveriesDeleted, m.attempts, m.attemptCopies, m.holdFull)
	return m
}

func partitionLabel(p int32) string { return strconv.Itoa(int(p)) }
