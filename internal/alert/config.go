package alert

import (
	"fmt"
	"time"
)

// Config is the alerts section: how rules are evaluated and how notifications are delivered. The
// admin process runs both loops.
type Config struct {
	// EvaluateInterval is how often the rules are evaluated (by one admin process at a time). An alert
	// fires or resolves within one interval of the minute the rollup shows it. Default 30s; lowering it
	// costs one ClickHouse rollup query per enabled rule per interval.
	EvaluateInterval time.Duration `yaml:"evaluate_interval"`
	// DeliveryInterval is how often the delivery worker looks for due notifications when none is
	// pending. Default 1s.
	DeliveryInterval time.Duration `yaml:"delivery_interval"`
	// DeliveryTimeout bounds one POST (connect, TLS, answer). Default 5s.
	DeliveryTimeout time.Duration `yaml:"delivery_timeout"`
	// MaxAttempts is how many times a notification is POSTed before it is marked failed. Default 8.
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffBase is the wait after the first failed attempt; each further failure doubles it (with up
	// to 20% jitter), up to BackoffMax. Default 5s.
	BackoffBase time.Duration `yaml:"backoff_base"`
	// BackoffMax caps the wait between attempts. Default 10m.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// Concurrency is how many notifications one admin process POSTs at once; a slow receiver holds one
	// for at most delivery_timeout. Default 4.
	Concurrency int `yaml:"concurrency"`
	// MaxPending bounds a project's undelivered notifications: beyond it new ones are recorded as
	// skipped (their alert is still listed), so a dead receiver cannot grow the queue without bound.
	// Default 1000.
	MaxPending int `yaml:"max_pending"`
	// KeepDays is how long delivered, failed and skipped notifications (and their attempts) are kept
	// for the console and the API. Default 30.
	KeepDays int `yaml:"keep_days"`
	// AllowPrivateTargets lets notifications go to addresses that are private (RFC 1918, fc00::/7),
	// loopback, link-local, unspecified or otherwise not globally routable. Off, such a target is
	// refused when the connection is made (whatever the host name resolved to), so that a project
	// cannot make the server probe its own network (SSRF). Turn it on only where every project is
	// trusted (a developer machine, tests). Default false.
	AllowPrivateTargets bool `yaml:"allow_private_targets"`
	// MaxRulesPerProject bounds a project's alert rules. Default 50.
	MaxRulesPerProject int `yaml:"max_rules_per_project"`
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		EvaluateInterval:   30 * time.Second,
		DeliveryInterval:   time.Second,
		DeliveryTimeout:    5 * time.Second,
		MaxAttempts:        8,
		BackoffBase:        5 * time.Second,
		BackoffMax:         10 * time.Minute,
		Concurrency:        4,
		MaxPending:         1000,
		KeepDays:           30,
		MaxRulesPerProject: 50,
	}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c *Config) Validate() error {
	switch {
	case c.EvaluateInterval < time.Second:
		return fmt.Errorf("evaluate_interval: %s is shorter than 1s", c.EvaluateInterval)
	case c.DeliveryInterval < 10*time.Millisecond:
		return fmt.Errorf("delivery_interval: %s is shorter than 10ms", c.DeliveryInterval)
	case c.DeliveryTimeout < 100*time.Millisecond || c.DeliveryTimeout > time.Minute:
		return fmt.Errorf("delivery_timeout: %s is not in 100ms..1m", c.DeliveryTimeout)
	case c.MaxAttempts < 1 || c.MaxAttempts > 50:
		return fmt.Errorf("max_attempts: %d is not in 1..50", c.MaxAttempts)
	case c.BackoffBase < 10*time.Millisecond:
		return fmt.Errorf("backoff_base: %s is shorter than 10ms", c.BackoffBase)
	case c.BackoffMax < c.BackoffBase || c.BackoffMax > 24*time.Hour:
		return fmt.Errorf("backoff_max: %s is not in backoff_base (%s)..24h", c.BackoffMax, c.BackoffBase)
	case c.Concurrency < 1 || c.Concurrency > 64:
		return fmt.Errorf("concurrency: %d is not in 1..64", c.Concurrency)
	case c.MaxPending < 1 || c.MaxPending > 1_000_000:
		return fmt.Errorf("max_pending: %d is not in 1..1000000", c.MaxPending)
	case c.KeepDays < 1 || c.KeepDays > 3650:
		return fmt.Errorf("keep_days: %d is not in 1..3650", c.KeepDays)
	case c.MaxRulesPerProject < 1 || c.MaxRulesPerProject > 1000:
		return fmt.Errorf("max_rules_per_project: %d is not in 1..1000", c.MaxRulesPerProject)
	}
	return nil
}
