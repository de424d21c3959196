// Package admin serves the admin REST API and the web console: projects' webhooks, events catalog, user
// directory and activity, every query scoped to the calling project.
package admin

import (
	"fmt"
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
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		ListenAddr:    "127.0.0.1:8081",
		InternalAddr:  "127.0.0.1:9103",
		PublicBaseURL: "http://127.0.0.1:8080",
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
	return nil
}
