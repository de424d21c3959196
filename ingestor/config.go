// Package ingestor is the fasthttp edge: it routes POST /hooks/{id}, authenticates against the cached
// webhook config, enforces every limit and answers 2xx only after Kafka has acknowledged the request.
//
// Every input is bounded by a setting below (body, header, timeouts, connections, JSON depth, per-webhook
// rate, requests in flight, records waiting for Kafka) so that no sender, honest or not, can make the edge
// use unbounded memory or acknowledge what it has not made durable.
package ingestor

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/jsonvalid"
)

// Config is the edge's settings.
type Config struct {
	// ListenAddr is the public edge. Default "127.0.0.1:8080".
	ListenAddr string `yaml:"listen_addr"`
	// InternalAddr serves /metrics, /healthz and /readyz, never the public. Default "127.0.0.1:9101".
	InternalAddr string `yaml:"internal_addr"`
	// PublicURL is the edge's base URL as senders call it, such as "https://hooks.example.com" (an
	// optional path prefix is kept; no query): the senders that sign the URL they called (HubSpot v3,
	// Twilio) signed this, followed by the request's path and query as received, and behind TLS
	// termination or a proxy the edge cannot see the scheme and host they used. Default "": "http://"
	// + the request's Host header, right only when senders reach the edge directly over plain HTTP;
	// set it wherever HubSpot or Twilio webhooks are connected.
	PublicURL string `yaml:"public_url"`
	// MaxBodyBytes rejects larger bodies with 413 without reading past the limit. Default 1 MiB. Raising it
	// raises per-connection memory and the size of Kafka records (the broker's message.max.bytes must
	// follow).
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// ShutdownTimeout bounds the drain of in-flight requests and the producer flush. Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	// MaxHeaderBytes bounds the request line plus headers (fasthttp's read buffer); larger requests get
	// 431. Default 8 KiB. It is allocated per connection, so raising it costs memory × connections.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// ReadTimeout bounds reading one whole request (headers and body) from its first byte (on a new
	// connection: from its opening); a client dribbling bytes (slowloris) is disconnected when it
	// expires. Default 10s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// FirstByteTimeout closes a new connection on which no byte has arrived this long after its opening
	// (with a 408, as ReadTimeout does), so that connections opened and left idle hold their place under
	// MaxConns for this long rather than for ReadTimeout. Once the first byte is in, ReadTimeout bounds
	// the request as before; keep-alive connections wait IdleTimeout for their next request. Default
	// 2s: a sender writes its request as soon as it has connected, so its first byte follows within a
	// round trip. Raising it lets a flood of idle connections keep the edge full longer; values above
	// ReadTimeout act as ReadTimeout.
	FirstByteTimeout time.Duration `yaml:"first_byte_timeout"`
	// WriteTimeout bounds writing one response. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections with no request for this long. Default 60s. Raising it
	// keeps more idle connections (and their buffers) around.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConns bounds connections open at once. A new connection over it takes the place of the
	// longest-idle keep-alive connection (one between requests), which is closed (counted in
	// inlet_ingestor_idle_connections_closed_total{reason="max_conns"}); only when none is idle is it
	// answered at once with 503, the edge's JSON error body, Retry-After and Connection: close, and
	// closed (inlet_ingestor_connections_refused_total{reason="max_conns"}). Default 10000. Each connection costs
	// about two buffers of MaxHeaderBytes plus its body, and one more while a chunked body is read (the
	// edge keeps a copy of the request's head to log a 413, see chunkedHeads).
	MaxConns int `yaml:"max_conns"`
	// MaxConnsPerIP bounds connections open at once from one client address (IPv6: one /64, which one
	// client usually holds whole), so that one address cannot take every place under MaxConns; more are
	// handled like those over MaxConns, the longest-idle connection of the same address giving its
	// place (reason="max_conns_per_ip"). 0 means no per-address limit.
	// Default 1000, a tenth of MaxConns: it takes ten addresses to fill the edge, while a large sender
	// (Shopify, a CRM), which delivers many customers' webhooks from few addresses, still has room: at
	// the edge's usual few milliseconds per answer, 1000 connections carry over 100,000 requests a
	// second, and 500 a second even when every answer waits the whole AckTimeout. Raising it lets fewer
	// addresses fill the edge. Behind a proxy every connection comes from the proxy's address: set it
	// to 0 (or to MaxConns) there.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// LingerCloseTimeout bounds how long a connection closed after a refused request that was not read
	// whole (a body over MaxBodyBytes, 431, 400) lingers: the edge half-closes it after the answer and
	// reads and discards what the sender still sends until the sender closes, so that a sender still
	// uploading gets the answer and then an orderly end of stream, not a connection reset (which makes
	// it retry a payload that cannot fit). Default 2s. 0 closes such connections at once. Raising it
	// keeps refused connections (a socket and a goroutine each, no request buffers) open longer.
	LingerCloseTimeout time.Duration `yaml:"linger_close_timeout"`
	// LingerCloseBytes bounds what is read from one lingering connection; a sender still sending past
	// it is reset. Default 16 MiB: more than a sender that stops at the answer has in flight when the
	// answer reaches it (Linux lets a socket buffer 4 MiB unsent and several MiB unread on our side; in
	// the loopback tests a sender had often sent all of an 8 MiB body by then), and enough for a sender
	// that writes a body of a few MiB whole before it reads the answer. Raising it lets senders that
	// never stop cost more bandwidth; LingerCloseTimeout bounds them too.
	LingerCloseBytes int `yaml:"linger_close_bytes"`
	// LingerCloseMaxConns bounds connections lingering at once, on top of MaxConns (they are no longer
	// served); more are closed at once. Default 1024. 0 turns lingering off. Raising it costs a socket
	// and a goroutine per connection during floods of refused requests.
	LingerCloseMaxConns int `yaml:"linger_close_max_conns"`
	// MaxInFlight bounds requests being handled at once (mostly waiting for their Kafka ack); more are
	// answered 503 with Retry-After instead of queueing. Default 4096. Memory is bounded by
	// MaxInFlight × MaxBodyBytes for the copies handed to Kafka.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxJSONDepth rejects bodies nesting objects/arrays deeper than this with 400 invalid_json, so that
	// no later parser recurses without bound. Default 64 (jsonvalid.DefaultDepth, which the admin API's
	// sample-fields uses too), at most jsonvalid.MaxDepth. The rest of what a body must be to be
	// accepted is package jsonvalid's rule.
	MaxJSONDepth int `yaml:"max_json_depth"`

	// AckTimeout is how long a request waits for Kafka to acknowledge its record before it is answered
	// 503 with Retry-After. Default 2s: well under the 5 s senders such as Shopify allow. A record that
	// timed out may still be written later; the sender retries and the request id lets consumers dedupe.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// RetryAfter is the Retry-After sent with 503 answers. Default 1s (sent in whole seconds, at least 1).
	RetryAfter time.Duration `yaml:"retry_after"`

	// RatePerWebhook is the sustained requests per second one webhook may send before 429; a token
	// bucket of RateBurst tokens absorbs bursts. Default 1000/s with a burst of 2000.
	RatePerWebhook float64 `yaml:"rate_per_webhook"`
	// RateBurst is the token bucket size of RatePerWebhook. Default 2000.
	RateBurst int `yaml:"rate_burst"`
	// RejectedLogRate bounds, per webhook, how many rejected requests per second (auth_rejected,
	// webhook_disabled, invalid_json, payload_too_large) are appended to Kafka for the activity log; more
	// are answered the same but only counted. Default 10/s with a burst of RejectedLogBurst.
	RejectedLogRate float64 `yaml:"rejected_log_rate"`
	// RejectedLogBurst is the token bucket size of RejectedLogRate. Default 50.
	RejectedLogBurst int `yaml:"rejected_log_burst"`
	// MaxRejectedPending bounds rejected-request records waiting for Kafka across all webhooks, so that
	// many webhooks flooded with bad requests at once cannot crowd accepted requests out of the producer
	// buffer. Default 1024.
	MaxRejectedPending int `yaml:"max_rejected_pending"`
	// AuthPreviewBytes is how much of an auth_rejected body is kept as a preview. Default 256.
	AuthPreviewBytes int `yaml:"auth_preview_bytes"`
	// MaxTrackedWebhooks bounds the per-webhook rate-limit state; when full it is reset (buckets start
	// full again), which errs on the side of accepting. Default 100000 (about 200 B each).
	MaxTrackedWebhooks int `yaml:"max_tracked_webhooks"`

	// Linger is how long the producer waits for more records before sending a batch: concurrent
	// requests share one produce request. Default 5ms; raising it saves broker and CPU work per request
	// but adds to every request's latency.
	Linger time.Duration `yaml:"linger"`
	// Compression of produced batches: none, gzip, snappy, lz4 or zstd. Default lz4 (cheap on CPU).
	Compression string `yaml:"compression"`
	// MaxBufferedRecords bounds records waiting in the producer; when full, requests are answered 503 at
	// once. Default 20000.
	MaxBufferedRecords int `yaml:"max_buffered_records"`
	// MaxBufferedBytes bounds the bytes of records waiting in the producer, as MaxBufferedRecords.
	// Default 256 MiB.
	MaxBufferedBytes int `yaml:"max_buffered_bytes"`
	// DeliveryTimeout fails a record the producer could not deliver for this long (its request has long
	// been answered 503). Default 30s; it must be at least AckTimeout.
	DeliveryTimeout time.Duration `yaml:"delivery_timeout"`
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		ListenAddr:         "127.0.0.1:8080",
		InternalAddr:       "127.0.0.1:9101",
		MaxBodyBytes:       1 << 20,
		ShutdownTimeout:    15 * time.Second,
		MaxHeaderBytes:     8 << 10,
		ReadTimeout:        10 * time.Second,
		FirstByteTimeout:   2 * time.Second,
		WriteTimeout:       10 * time.Second,
		IdleTimeout:        60 * time.Second,
		MaxConns:           10000,
		MaxConnsPerIP:      1000,
		MaxInFlight:        4096,
		MaxJSONDepth:       jsonvalid.DefaultDepth,
		AckTimeout:         2 * time.Second,
		RetryAfter:         time.Second,
		RatePerWebhook:     1000,
		RateBurst:          2000,
		RejectedLogRate:    10,
		RejectedLogBurst:   50,
		MaxRejectedPending: 1024,
		AuthPreviewBytes:   256,
		MaxTrackedWebhooks: 100000,
		Linger:             5 * time.Millisecond,
		Compression:        "lz4",
		MaxBufferedRecords: 20000,
		MaxBufferedBytes:   256 << 20,
		DeliveryTimeout:    30 * time.Second,

		LingerCloseTimeout:  2 * time.Second,
		LingerCloseBytes:    16 << 20,
		LingerCloseMaxConns: 1024,
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
	if err := validPublicURL(c.PublicURL); err != nil {
		return fmt.Errorf("public_url: %w", err)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"shutdown_timeout", c.ShutdownTimeout}, {"read_timeout", c.ReadTimeout},
		{"first_byte_timeout", c.FirstByteTimeout},
		{"write_timeout", c.WriteTimeout}, {"idle_timeout", c.IdleTimeout}, {"ack_timeout", c.AckTimeout},
		{"retry_after", c.RetryAfter}, {"delivery_timeout", c.DeliveryTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return fmt.Errorf("%s: %s must be positive", p.name, p.d)
		}
	}
	ranges := []struct {
		name     string
		v        int
		min, max int
	}{
		{"max_body_bytes", c.MaxBodyBytes, 1024, 64 << 20},
		{"max_header_bytes", c.MaxHeaderBytes, 1024, 1 << 20},
		{"max_conns", c.MaxConns, 1, 1 << 20},
		{"max_conns_per_ip", c.MaxConnsPerIP, 0, 1 << 20},
		{"linger_close_bytes", c.LingerCloseBytes, 64 << 10, 1 << 30},
		{"linger_close_max_conns", c.LingerCloseMaxConns, 0, 1 << 20},
		{"max_in_flight", c.MaxInFlight, 1, 1 << 20},
		{"max_json_depth", c.MaxJSONDepth, 1, jsonvalid.MaxDepth},
		{"rate_burst", c.RateBurst, 1, 1 << 30},
		{"rejected_log_burst", c.RejectedLogBurst, 1, 1 << 30},
		{"max_rejected_pending", c.MaxRejectedPending, 1, 1 << 20},
		{"auth_preview_bytes", c.AuthPreviewBytes, 0, 64 << 10},
		{"max_tracked_webhooks", c.MaxTrackedWebhooks, 1, 1 << 24},
		{"max_buffered_records", c.MaxBufferedRecords, 1, 1 << 24},
		{"max_buffered_bytes", c.MaxBufferedBytes, 1 << 20, 1 << 34},
	}
	for _, r := range ranges {
		if r.v < r.min || r.v > r.max {
			return fmt.Errorf("%s: %d is outside %d..%d", r.name, r.v, r.min, r.max)
		}
	}
	switch {
	case c.AckTimeout > 30*time.Second:
		return fmt.Errorf("ack_timeout: %s is longer than 30s (senders give up long before)", c.AckTimeout)
	case c.DeliveryTimeout < c.AckTimeout:
		return fmt.Errorf("delivery_timeout: %s is shorter than ack_timeout %s", c.DeliveryTimeout, c.AckTimeout)
	case !(c.RatePerWebhook > 0):
		return fmt.Errorf("rate_per_webhook: %v must be positive", c.RatePerWebhook)
	case !(c.RejectedLogRate > 0):
		return fmt.Errorf("rejected_log_rate: %v must be positive", c.RejectedLogRate)
	case c.LingerCloseTimeout < 0 || c.LingerCloseTimeout > 30*time.Second:
		return fmt.Errorf("linger_close_timeout: %s is outside 0..30s", c.LingerCloseTimeout)
	case c.Linger < 0 || c.Linger > time.Second:
		return fmt.Errorf("linger: %s is outside 0..1s", c.Linger)
	case c.MaxBufferedBytes < c.MaxBodyBytes:
		return fmt.Errorf("max_buffered_bytes: %d cannot hold one max_body_bytes (%d) record", c.MaxBufferedBytes, c.MaxBodyBytes)
	}
	if _, err := compressionCodec(c.Compression); err != nil {
		return fmt.Errorf("compression: %w", err)
	}
	return nil
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("%q is not none, gzip, snappy, lz4 or zstd", name)
}

// validPublicURL accepts "" or an absolute http(s) URL with a host and no user, query or fragment.
func validPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: %w", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: want an http:// or https:// URL", s)
	case u.Host == "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("%q: want scheme, host and at most a path prefix (no user, query or fragment)", s)
	case len(s) > 1024:
		return fmt.Errorf("longer than 1024 bytes")
	}
	return nil
}

func validAddr(a string) error {
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("%q is not host:port", a)
	}
	return nil
}
