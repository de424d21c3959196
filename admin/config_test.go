package admin

import (
	"math"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	d := Defaults()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if d.AuthFailuresPerMinute != 10 || d.AuthFailureBurst != 10 {
		t.Errorf("default limit = %v/min burst %d; want 10 and 10", d.AuthFailuresPerMinute, d.AuthFailureBurst)
	}
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string // "" = valid
	}{
		{"limit off", func(c *Config) { c.AuthFailuresPerMinute = 0 }, ""},
		{"negative rate", func(c *Config) { c.AuthFailuresPerMinute = -1 }, "auth_failures_per_minute"},
		{"NaN rate", func(c *Config) { c.AuthFailuresPerMinute = math.NaN() }, "auth_failures_per_minute"},
		{"zero burst", func(c *Config) { c.AuthFailureBurst = 0 }, "auth_failure_burst"},
		{"no addresses", func(c *Config) { c.AuthLimiterMaxIPs = 0 }, "auth_limiter_max_ips"},
	} {
		c := Defaults()
		tc.set(&c)
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v; want %q", tc.name, err, tc.want)
		}
	}
}
