// Package tracing is Inlet's OpenTelemetry tracing: the settings every process shares (the tracing
// section), the tracer provider a process exports its spans through (OTLP over HTTP, batched), and the
// sampler that makes the pipeline follow the edge's decision. It is off by default: with no endpoint,
// New returns no provider and the components are given no tracer, so nothing of tracing runs on their
// paths.
//
// The edge starts one span per request and carries its context to the pipeline in the request's
// record (the W3C traceparent header, package wire); the pipeline's spans are children of it (one per
// request) or link to it (one per batch: resolve, fire, insert). Spans are named and their attributes
// listed in docs/operations.md.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config is the tracing section, shared by every process.
type Config struct {
	// Endpoint is the OTLP/HTTP traces URL of the collector, such as "http://otel-collector:4318"
	// (a URL without a path is sent to /v1/traces, the standard path; https uses TLS). Default "":
	// tracing off, at no cost on the request path. An endpoint that cannot be reached never slows or
	// fails a request: spans wait in a bounded queue (2048) and are dropped when it is full.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of requests the edge traces, decided per request at the edge (by trace
	// id); the pipeline follows the edge's decision. Default 0.01: one request in a hundred, enough to
	// see where time goes at thousands of requests per second. 1 traces every request (its cost is in
	// docs/operations.md); 0 none.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name of the process's spans. Default "": inlet-<process>
	// (inlet-ingestor, inlet-pipeline), so that one settings file serves every process; set it per
	// process (INLET_TRACING_SERVICE_NAME) to tell deployments apart.
	ServiceName string `yaml:"service_name"`
	// MaxLinks bounds the links a pipeline batch span (resolve, fire, insert) carries to the edge spans
	// of its sampled requests; the links past it are dropped and counted in the span's
	// inlet.links_dropped attribute. Default 128 (the SDK's own limit per span). Raising it costs memory
	// per batch span and bytes per export.
	MaxLinks int `yaml:"max_links"`
}

// Defaults returns the settings used when the file says nothing: tracing off.
func Defaults() Config { return Config{SampleRatio: 0.01, MaxLinks: 128} }

// Validate reports the first invalid field, named as in the YAML file.
func (c *Config) Validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil:
			return fmt.Errorf("endpoint: %w", err)
		case u.Scheme != "http" && u.Scheme != "https":
			return fmt.Errorf("endpoint: %q is not an http:// or https:// URL", c.Endpoint)
		case u.Host == "":
			return fmt.Errorf("endpoint: %q has no host", c.Endpoint)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			return fmt.Errorf("endpoint: %q may not have a query, fragment or user", c.Endpoint)
		}
	}
	if !(c.SampleRatio >= 0 && c.SampleRatio <= 1) {
		return fmt.Errorf("sample_ratio: %v is outside 0..1", c.SampleRatio)
	}
	if c.MaxLinks < 1 || c.MaxLinks > 1024 {
		return fmt.Errorf("max_links: %d is outside 1..1024", c.MaxLinks)
	}
	return nil
}

// Provider is a process's tracer provider. Shut it down once the process has stopped serving: that
// exports what is still queued.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// Options are what New is given besides the settings.
type Options struct {
	// Exporter, if set, receives the spans synchronously instead of an OTLP exporter, whatever
	// Endpoint says (tests: tracetest.InMemoryExporter).
	Exporter sdktrace.SpanExporter
}

// New builds the provider of process ("ingestor", "pipeline") from c, validated. It returns nil, and
// no error, when tracing is off (no endpoint, no exporter). Nothing is sent until a span ends: New
// does not reach the collector.
func New(c Config, process string, o Options) (*Provider, error) {
	if c.Endpoint == "" && o.Exporter == nil {
		return nil, nil
	}
	name := c.ServiceName
	if name == "" {
		name = "inlet-" + process
	}
	res := resource.NewSchemaless(attribute.String("service.name", name), attribute.String("inlet.process", process))
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(NewSampler(c.SampleRatio)),
		sdktrace.WithRawSpanLimits(spanLimits(c.MaxLinks)),
	}
	if o.Exporter != nil {
		opts = append(opts, sdktrace.WithSyncer(o.Exporter))
	} else {
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpointURL(c.Endpoint)),
			otlptracehttp.WithTimeout(exportTimeout), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		if err != nil {
			return nil, fmt.Errorf("tracing.endpoint: %w", err)
		}
		// The batcher's queue is bounded and never blocks a span's End: when the collector is slow or
		// gone, spans past the queue are dropped, never the requests.
		opts = append(opts, sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(2048), sdktrace.WithExportTimeout(exportTimeout)))
	}
	return &Provider{tp: sdktrace.NewTracerProvider(opts...)}, nil
}

// exportTimeout bounds one export; a collector that does not answer costs the exporting goroutine
// this long, never a request. No retries: a lost batch of spans is not worth a backlog.
const exportTimeout = 5 * time.Second

func spanLimits(maxLinks int) sdktrace.SpanLimits {
	l := sdktrace.NewSpanLimits()
	l.LinkCountLimit = maxLinks
	return l
}

// endpointURL is the endpoint with the standard traces path when it has none.
func endpointURL(endpoint string) string {
	u, _ := url.Parse(endpoint) // Validate parsed it
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String()
}

// Tracer returns the tracer of component (the instrumentation scope: "github.com/inlet-dev/inlet/
// ingestor"); nil for a nil provider, which the components read as tracing off.
func (p *Provider) Tracer(component string) trace.Tracer {
	if p == nil {
		return nil
	}
	return p.tp.Tracer(component)
}

// Shutdown exports the spans still queued and stops the exporter, within ctx. A nil provider has
// nothing to do.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	if err := p.tp.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing: export queued spans: %w", err)
	}
	return nil
}

// NewSampler is the sampler of every Inlet process: a span with a parent follows its parent's decision
// (a pipeline span whose edge span was sampled is sampled, and only then); a root span is sampled when
// one of its links is (a pipeline batch span linking sampled requests), else with probability ratio,
// by trace id (the edge's spans).
func NewSampler(ratio float64) sdktrace.Sampler {
	return sdktrace.ParentBased(linkedOrRatio{ratio: sdktrace.TraceIDRatioBased(ratio)})
}

// linkedOrRatio samples a root span that links a sampled span, and others by ratio.
type linkedOrRatio struct{ ratio sdktrace.Sampler }

func (s linkedOrRatio) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	for _, l := range p.Links {
		if l.SpanContext.IsSampled() {
			return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample,
				Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
		}
	}
	return s.ratio.ShouldSample(p)
}

func (s linkedOrRatio) Description() string {
	return "LinkedOrRatio{" + s.ratio.Description() + "}"
}
