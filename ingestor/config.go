// Package ingestor is the fasthttp edge: it routes POST /hooks/{id}, authenticates against the cached
// webhook config, enforces every limit and answers 2xx only after Kafka has acknowledged the request.
package ingestor

import (
	"fmt"
	"net"
	"time"
)

// Config is the edge's settings.
type Config struct {
	// ListenAddr is the public edge. Default "127.0.0.1:8080".
	ListenAddr string `yaml:"listen_addr"`
	// InternalAddr serves /metrics, /healthz and /readyz, never the public. Default "127.0.0.1:9101".
	InternalAddr string `yaml:"internal_addr"`
	// MaxBodyBytes rejects larger bodies with 413 without reading past the limit. Default 1 MiB. Raising it
	// raises per-connection memory and the size of Kafka records (the broker's message.max.bytes must
	// follow).
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// ShutdownTimeout bounds the drain of in-flight requests and the producer flush. Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		ListenAddr:      "127.0.0.1:8080",
		InternalAddr:    "127.0.0.1:9101",
		MaxBodyBytes:    1 << 20,
		ShutdownTimeout: 15 * time.Second,
	}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c *Config) Validate() error {
	if err := validAddr(c.ListenAddr); err != nil {
		return fmt.Errorf("listen_addr: %w", err)
	}
	if err := validAddr(c.InternalAddr); err != nil {
		return fmt.Errorf("internal_addr: %w", err)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		return fmt.Errorf("max_body_bytes: %d is outside 1 KiB..64 MiB", c.MaxBodyBytes)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("shutdown_timeout: %s must be positive", c.ShutdownTimeout)
	}
	return nil
}

func validAddr(a string) error {
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("%q is not host:port", a)
	}
	return nil
}
