// Package admin serves the admin REST API and the web console: projects' webhooks, events catalog, user
// directory and activity, every query scoped to the calling project.
package admin

import (
	"fmt"
	"math"
	"net"
	"net/url"
)

// Config is the admin process's settings.
type Config struct {
	// ListenAddr serves the REST API and the console. Default "127.0.0.1:8081".
	ListenAddr string `yaml:"listen_addr"`
	// InternalAddr serves /metrics, /healthz and /readyz. Default "127.0.0.1:9103".
	InternalAddr string `yaml:"internal_addr"`
	// PublicBaseURL is where senders reach the ingestor; webhook URLs are {public_base_url}/hooks/{id}.
	// Default "http://127.0.0.1:8080".
	PublicBaseURL string `yaml:"public_base_url"`
	// AuthFailuresPerMinute is how many failed authentications — a refused key on the console's sign-in
	// form or in an API request's Authorization header — one client IP may make per minute on average
	// (IPv6 clients are counted per /64). Beyond its burst, every key that address presents is answered
	// 429 with Retry-After, without being checked, until its bucket refills; successful sign-ins and
	// requests cost nothing. Raising it speeds up key guessing and PostgreSQL lookups from one address;
	// 0 turns the limit off. Default 10.
	AuthFailuresPerMinute float64 `yaml:"auth_failures_per_minute"`
	// AuthFailureBurst is how many failures in a row an address may make before the limit applies.
	// Default 10.
	AuthFailureBurst int `yaml:"auth_failure_burst"`
	// AuthLimiterMaxIPs bounds the limiter's PostgreSQL table, auth_failures (~100 bytes per address with
	// its index), shared by every admin process. Addresses whose bucket has refilled are deleted by later
	// failures; beyond this many, each admin process deletes every few seconds the addresses whose last
	// failure is oldest (their next failure starts from a full bucket). Default 100000.
	AuthLimiterMaxIPs int `yaml:"auth_limiter_max_ips"`
	// TrustForwardedFor says the admin listener is reached only through one reverse proxy that appends
	// the client's address to X-Forwarded-For: the limiter then counts the last address of that header
	// instead of the connection's (the proxy's). Leave it false when clients connect directly, or any
	// client could choose the address it is counted as. Default false.
	TrustForwardedFor bool `yaml:"trust_forwarded_for"`
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		ListenAddr:    "127.0.0.1:8081",
		InternalAddr:  "127.0.0.1:9103",
		PublicBaseURL: "http://127.0.0.1:8080",

		AuthFailuresPerMinute: 10,
		AuthFailureBurst:      10,
		AuthLimiterMaxIPs:     100_000,
	}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return fmt.Errorf("listen_addr: %q is not host:port", c.ListenAddr)
	}
	if _, _, err := net.SplitHostPort(c.InternalAddr); err != nil {
		return fmt.Errorf("internal_addr: %q is not host:port", c.InternalAddr)
	}
	u, err := url.Parse(c.PublicBaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("public_base_url: %q is not an http(s) base URL", c.PublicBaseURL)
	}
	if c.AuthFailuresPerMinute < 0 || math.IsNaN(c.AuthFailuresPerMinute) || math.IsInf(c.AuthFailuresPerMinute, 0) {
		return fmt.Errorf("auth_failures_per_minute: %v must be 0 (no limit) or more", c.AuthFailuresPerMinute)
	}
	if c.AuthFailureBurst < 1 || c.AuthFailureBurst > 1_000_000 {
		return fmt.Errorf("auth_failure_burst: %d is not in 1..1000000", c.AuthFailureBurst)
	}
	if c.AuthLimiterMaxIPs < 1 || c.AuthLimiterMaxIPs > 10_000_000 {
		return fmt.Errorf("auth_limiter_max_ips: %d is not in 1..10000000", c.AuthLimiterMaxIPs)
	}
	return nil
}
