// Package kafka builds the franz-go clients every Inlet process uses and owns the topic layout: names,
// partition counts, replication and retention come from settings and are applied with kadm.
package kafka

import (
	"errors"
	"fmt"
	"time"
)

// Config is the Kafka connection and topic layout shared by the ingestor, the pipeline and the migrate
// command.
type Config struct {
	// Brokers to bootstrap from. Default ["127.0.0.1:19092"] (the local stack).
	Brokers []string `yaml:"brokers"`
	// ClientID sent to the brokers; each process appends its role. Default "inlet".
	ClientID string `yaml:"client_id"`
	// RequestsTopic receives one record per logged webhook request (key = webhook id, value = raw body).
	// Default "webhooks.requests".
	RequestsTopic string `yaml:"requests_topic"`
	// EventsTopic receives one record per fired event. Default "webhooks.events".
	EventsTopic string `yaml:"events_topic"`
	// Partitions of each topic when the migrate command creates it. Default 6. More partitions allow more
	// pipeline consumers in parallel but cost broker memory and open files; existing topics are grown,
	// never shrunk.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor of created topics. Default 1 (single local broker); use 3 in production.
	ReplicationFactor int `yaml:"replication_factor"`
	// Retention of both topics. Default 168h (7 days): the pipeline can be down this long without losing
	// accepted requests. Raising it costs broker disk.
	Retention time.Duration `yaml:"retention"`
	// MaxMessageBytes is the topics' max.message.bytes: the largest record batch the broker accepts. It
	// must exceed the ingestor's max_body_bytes plus headers (checked). Default 2 MiB; the broker's own
	// default (~1 MiB) would refuse a 1 MiB body.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// DialTimeout bounds each broker connection attempt. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		Brokers:           []string{"127.0.0.1:19092"},
		ClientID:          "inlet",
		RequestsTopic:     "webhooks.requests",
		EventsTopic:       "webhooks.events",
		Partitions:        6,
		ReplicationFactor: 1,
		Retention:         168 * time.Hour,
		MaxMessageBytes:   2 << 20,
		DialTimeout:       5 * time.Second,
	}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c *Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("brokers: must list at least one host:port")
	case c.ClientID == "":
		return errors.New("client_id: must not be empty")
	case c.RequestsTopic == "" || c.EventsTopic == "":
		return errors.New("requests_topic/events_topic: must not be empty")
	case c.RequestsTopic == c.EventsTopic:
		return fmt.Errorf("events_topic: %q is also the requests topic", c.EventsTopic)
	case c.Partitions < 1 || c.Partitions > 1000:
		return fmt.Errorf("partitions: %d is outside 1..1000", c.Partitions)
	case c.ReplicationFactor < 1:
		return fmt.Errorf("replication_factor: %d must be at least 1", c.ReplicationFactor)
	case c.Retention < time.Hour:
		return fmt.Errorf("retention: %s is shorter than 1h", c.Retention)
	case c.MaxMessageBytes < 64<<10 || c.MaxMessageBytes > 100<<20:
		return fmt.Errorf("max_message_bytes: %d is outside 64 KiB..100 MiB", c.MaxMessageBytes)
	case c.DialTimeout <= 0:
		return fmt.Errorf("dial_timeout: %s must be positive", c.DialTimeout)
	}
	return nil
}
