package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// MetricsNamespace prefixes the franz-go client's own metrics (kprom), so that they sort with the
// process's: inlet_kafka_produce_uncompressed_bytes_total, inlet_kafka_request_duration_e2e_seconds, …
// The names after the prefix are kprom's.
const MetricsNamespace = "inlet_kafka"

// Metrics returns the option that exports a client's own metrics on reg through franz-go's kprom
// plugin: connections, bytes and errors per broker, produced and fetched bytes, batches and records per
// topic, buffered records, and the request round-trip histogram. Every series carries the const label
// client_id (the settings' client_id + "-" + role), so that each client of a process has its own
// series: two clients with one client id on one registry panic at NewClient, like any duplicate
// metric. A nil reg exports nothing.
func Metrics(reg prometheus.Registerer) kgo.Opt {
	if reg == nil {
		return kgo.WithHooks()
	}
	return kgo.WithHooks(kprom.NewMetrics(MetricsNamespace,
		kprom.Registerer(reg),
		kprom.WithClientLabel(),
		kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Batches, kprom.Records,
			kprom.CompressedBytes, kprom.UncompressedBytes, kprom.ConsistentNaming),
		// One histogram, the broker round trip (write to response read): what a slow produce or fetch
		// looks like from the client. The read/write wait and time histograms split it further and
		// cost four more histograms per broker.
		kprom.Histograms(kprom.RequestDurationE2E),
	))
}
