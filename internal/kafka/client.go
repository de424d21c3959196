package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// NewClient builds a franz-go client for one role ("ingestor", "pipeline", …). Extra options come after
// the shared ones so a role can override any of them.
func NewClient(cfg Config, role string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID + "-" + role),
		kgo.DialTimeout(cfg.DialTimeout),
		// The topics take batches up to max_message_bytes; the client's own default (~1 MB) would refuse
		// a record the topic takes.
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxMessageBytes)),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %s: %w", role, err)
	}
	return cl, nil
}

// Topics lists the topics Inlet owns, in creation order.
func (c *Config) Topics() []string { return []string{c.RequestsTopic, c.EventsTopic} }

// EnsureTopics creates the topics that do not exist and brings existing ones in line with the settings:
// partitions are grown (Kafka cannot shrink them) and retention is set. Running it twice is a no-op.
func EnsureTopics(ctx context.Context, cl *kgo.Client, cfg Config) error {
	adm := kadm.NewClient(cl)
	retention := strconv.FormatInt(cfg.Retention.Milliseconds(), 10)
	maxMessage := strconv.Itoa(cfg.MaxMessageBytes)
	configs := map[string]*string{
		"retention.ms":        &retention,
		"max.message.bytes":   &maxMessage,
		"min.insync.replicas": kadm.StringPtr(strconv.Itoa(min(cfg.ReplicationFactor, 2))),
	}
	resp, err := adm.CreateTopics(ctx, int32(cfg.Partitions), int16(cfg.ReplicationFactor), configs, cfg.Topics()...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w (%s)", r.Topic, r.Err, r.ErrMessage)
		}
	}
	// Right after CreateTopics the broker may not list a new topic yet (UNKNOWN_TOPIC_OR_PARTITION):
	// describe until it does, within the context.
	var details kadm.TopicDetails
	for {
		details, err = adm.ListTopics(ctx, cfg.Topics()...)
		if err == nil && listed(details, cfg.Topics()) {
			break
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("describe topics %v: %w", cfg.Topics(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, t := range cfg.Topics() {
		d := details[t]
		if len(d.Partitions) < cfg.Partitions {
			if _, err := adm.UpdatePartitions(ctx, cfg.Partitions, t); err != nil {
				return fmt.Errorf("grow topic %s to %d partitions: %w", t, cfg.Partitions, err)
			}
		}
	}
	alter := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: &retention},
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &maxMessage},
	}
	ar, err := adm.AlterTopicConfigs(ctx, alter, cfg.Topics()...)
	if err != nil {
		return fmt.Errorf("set topic configs: %w", err)
	}
	for _, r := range ar {
		if r.Err != nil {
			return fmt.Errorf("set retention/max.message.bytes of %s: %w", r.Name, r.Err)
		}
	}
	return nil
}

func listed(details kadm.TopicDetails, topics []string) bool {
	for _, t := range topics {
		if d, ok := details[t]; !ok || d.Err != nil {
			return false
		}
	}
	return true
}

// Ping checks that a broker answers a metadata request within the context's deadline.
func Ping(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}
