package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestEnsureTopicsAndRoundTrip(t *testing.T) {
	cfg, cl := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A second run with more partitions grows the topics and is otherwise a no-op.
	cfg.Partitions = 4
	if err := kafka.EnsureTopics(ctx, cl, cfg); err != nil {
		t.Fatalf("second EnsureTopics: %v", err)
	}
	// Metadata catches up with a partition change asynchronously: poll briefly.
	for _, topic := range cfg.Topics() {
		got := 0
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			if got = len(details[topic].Partitions); got == 4 {
				break
			}
		}
		if got != 4 {
			t.Errorf("%s has %d partitions; want 4", topic, got)
		}
	}

	// A record larger than the broker's default message.max.bytes (~1 MiB) fits the topic.
	big, err := kafka.NewClient(cfg, "test-big", kgo.ProducerBatchMaxBytes(int32(cfg.MaxMessageBytes)), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	body := make([]byte, 1<<20+1000)
	if err := big.ProduceSync(ctx, &kgo.Record{Topic: cfg.EventsTopic, Value: body}).FirstErr(); err != nil {
		t.Fatalf("produce a 1 MiB record: %v", err)
	}

	rec := &kgo.Record{Topic: cfg.RequestsTopic, Key: []byte("wh"), Value: []byte(`{"a":1}`)}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	consumer, err := kafka.NewClient(cfg, "test-consumer",
		kgo.ConsumeTopics(cfg.RequestsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("record not consumed: %v", err)
		}
		var got *kgo.Record
		fs.EachRecord(func(r *kgo.Record) { got = r })
		if got != nil {
			if string(got.Value) != `{"a":1}` || string(got.Key) != "wh" {
				t.Fatalf("consumed key/value %q/%q; want wh/{\"a\":1}", got.Key, got.Value)
			}
			return
		}
	}
}
