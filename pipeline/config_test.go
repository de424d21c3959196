package pipeline

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	def := Defaults()
	if err := def.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		field  string
		mutate func(*Config)
	}{
		{"internal_addr", func(c *Config) { c.InternalAddr = "nope" }},
		{"group", func(c *Config) { c.Group = "" }},
		{"instance_id", func(c *Config) { c.InstanceID = "two words" }},
		{"session_timeout", func(c *Config) { c.SessionTimeout = time.Second }},
		{"batch_rows", func(c *Config) { c.BatchRows = 0 }},
		{"batch_bytes", func(c *Config) { c.BatchBytes = 1000 }},
		{"flush_interval", func(c *Config) { c.FlushInterval = time.Hour }},
		{"flush_linger", func(c *Config) { c.FlushLinger = 9 * time.Millisecond }},
		{"retention_days", func(c *Config) { c.RetentionDays = 0 }},
		{"high_water_lookback", func(c *Config) { c.HighWaterLookback = time.Minute }},
		{"insert_timeout", func(c *Config) { c.InsertTimeout = 0 }},
		{"auth_failure_streak", func(c *Config) { c.AuthFailureStreak = 0 }},
		{"fetch_max_bytes", func(c *Config) { c.FetchMaxBytes = 1024 }},
		{"rebalance_grace", func(c *Config) { c.RebalanceGrace = time.Minute }},
		{"rebalance_grace", func(c *Config) { c.RebalanceGrace = 0 }},
		{"max_event_bytes", func(c *Config) { c.MaxEventBytes = 1000 }},
		{"max_attribute_bytes", func(c *Config) { c.MaxAttributeBytes = c.MaxEventBytes + 1 }},
		{"max_number_digits", func(c *Config) { c.MaxNumberDigits = 18 }},
		{"max_number_digits", func(c *Config) { c.MaxNumberDigits = 1001 }},
		{"max_identifier_bytes", func(c *Config) { c.MaxIdentifierBytes = 10 }},
		{"stall_after", func(c *Config) { c.StallAfter = 0 }},
	}
	for _, tt := range tests {
		c := Defaults()
		tt.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.field+":") {
			t.Errorf("%s: Validate() = %v; want an error naming %s", tt.field, err, tt.field)
		}
	}
}
