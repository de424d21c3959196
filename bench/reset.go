package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chdb"
)

// resetWait bounds the wait for Kafka to finish deleting the bench's topics.
const resetWait = time.Minute

// resetNamespace empties the bench's own Kafka topics, consumer group and ClickHouse database before
// migrate creates them again, so that every run starts from nothing: the end-to-end probe and the
// checks query activity_log, and rows left by earlier runs (tens of millions after a day of runs,
// gigabytes with the large bodies) made each of the probe's polls scan them all, which took ClickHouse
// hundreds of milliseconds and CPU the measured processes then lacked, and added that wait to every
// 202 → ClickHouse sample. The bench's PostgreSQL database (webhooks, directories) is kept: it does not
// grow from run to run. A namespace that names the stack's own topics or database is refused.
func (s *Suite) resetNamespace(ctx context.Context) error {
	topics := []string{s.requestsTopic(), s.eventsTopic()}
	if s.database() == s.cfg.ClickHouse.Database || slices.Contains(topics, s.cfg.Kafka.RequestsTopic) ||
		slices.Contains(topics, s.cfg.Kafka.EventsTopic) {
		return fmt.Errorf("namespace %q names the stack's own topics or ClickHouse database: the bench empties its namespace at start, choose another", s.opt.BenchTopic)
	}
	ch, err := chdb.OpenServer(ctx, s.cfg.ClickHouse)
	if err != nil {
		return err
	}
	err = ch.Exec(ctx, "DROP DATABASE IF EXISTS `"+s.database()+"`")
	_ = ch.Close()
	if err != nil {
		return fmt.Errorf("drop the bench's ClickHouse database: %w", err)
	}

	// A client of its own, closed here: one that saw the topics deleted would answer from that
	// metadata after migrate made them again (the suite's is made after migrate).
	kcl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Kafka.Brokers...), kgo.ClientID("inlet-bench-reset"))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer kcl.Close()
	adm := kadm.NewClient(kcl)
	groups, err := adm.DeleteGroups(ctx, s.group())
	if err != nil {
		return fmt.Errorf("delete the bench's consumer group: %w", err)
	}
	for _, g := range groups {
		if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
			return fmt.Errorf("delete consumer group %s: %w", g.Group, g.Err)
		}
	}
	deleted, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("delete the bench's topics: %w", err)
	}
	for _, t := range deleted {
		if t.Err != nil && !errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("delete topic %s: %w", t.Topic, t.Err)
		}
	}
	// Deletion is asynchronous: migrate could not create a topic still being deleted.
	deadline := time.Now().Add(resetWait)
	for {
		listed, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return fmt.Errorf("list the bench's topics: %w", err)
		}
		left := 0
		for _, d := range listed {
			if d.Err == nil {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafka still lists %d of the bench's topics %s after %s", left, resetWait, topics)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
