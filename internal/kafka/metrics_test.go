package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestMetricsAfterProduce: a client built with kafka.Metrics exports kprom's families on the registry,
// named inlet_kafka_* and labelled with the client's id, once it has produced a record; a second client
// of another role shares the registry without a conflict.
func TestMetricsAfterProduce(t *testing.T) {
	cfg, _ := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	cl, err := kafka.NewClient(cfg, "producer", kafka.Metrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	other, err := kafka.NewClient(cfg, "consumer", kafka.Metrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.RequestsTopic, Key: []byte("wh"), Value: []byte(`{"a":1}`)}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	// The batch hooks run after the record's promise: read until they have.
	var got map[string]float64
	testenv.WaitFor(t, "the produce batch metrics", 10*time.Second, func() bool {
		got = producerSeries(t, reg, cfg.ClientID+"-producer")
		return got["inlet_kafka_produce_records_total"] > 0
	})
	for _, name := range []string{
		"inlet_kafka_connects_total",
		"inlet_kafka_write_bytes_total",
		"inlet_kafka_read_bytes_total",
		"inlet_kafka_produce_records_total",
		"inlet_kafka_produce_batches_total",
		"inlet_kafka_produce_uncompressed_bytes_total",
		"inlet_kafka_produce_compressed_bytes_total",
		"inlet_kafka_request_duration_e2e_seconds",
	} {
		if got[name] <= 0 {
			t.Errorf("%s{client_id=%q} = %v; want > 0 after a produce", name, cfg.ClientID+"-producer", got[name])
		}
	}
	if got["inlet_kafka_produce_records_total"] != 1 {
		t.Errorf("inlet_kafka_produce_records_total = %v; want 1", got["inlet_kafka_produce_records_total"])
	}
}

// producerSeries sums each family's series of one client (counters' values, histograms' counts).
func producerSeries(t *testing.T, reg *prometheus.Registry, clientID string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			client := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "client_id" {
					client = l.GetValue()
				}
			}
			if client != clientID {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				got[f.GetName()] += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[f.GetName()] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return got
}
