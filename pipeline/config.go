// Package pipeline consumes webhooks.requests, identifies and resolves the subscriber, maps the payload
// to a typed event, fires it, and writes the activity log and event history to ClickHouse exactly once.
package pipeline

import (
	"fmt"
	"net"
	"time"
)

// Config is the pipeline's settings.
type Config struct {
	// InternalAddr serves /metrics, /healthz and /readyz. Default "127.0.0.1:9102".
	InternalAddr string `yaml:"internal_addr"`
	// Group is the Kafka consumer group. Default "inlet-pipeline".
	Group string `yaml:"group"`
	// BatchRows flushes a partition's batch to ClickHouse at this many rows. Default 10000. Larger batches
	// insert more efficiently but hold more memory per partition.
	BatchRows int `yaml:"batch_rows"`
	// FlushInterval flushes a non-empty batch at least this often. Default 1s; it bounds the delay from
	// the 202 to the row being visible.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// RetentionDays keeps activity and events this many days; older daily partitions are dropped.
	// Default 30.
	RetentionDays int `yaml:"retention_days"`
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		InternalAddr:  "127.0.0.1:9102",
		Group:         "inlet-pipeline",
		BatchRows:     10000,
		FlushInterval: time.Second,
		RetentionDays: 30,
	}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.InternalAddr); err != nil {
		return fmt.Errorf("internal_addr: %q is not host:port", c.InternalAddr)
	}
	switch {
	case c.Group == "":
		return fmt.Errorf("group: must not be empty")
	case c.BatchRows < 1 || c.BatchRows > 1_000_000:
		return fmt.Errorf("batch_rows: %d is outside 1..1000000", c.BatchRows)
	case c.FlushInterval < 10*time.Millisecond || c.FlushInterval > time.Minute:
		return fmt.Errorf("flush_interval: %s is outside 10ms..1m", c.FlushInterval)
	case c.RetentionDays < 1:
		return fmt.Errorf("retention_days: %d must be at least 1", c.RetentionDays)
	}
	return nil
}
