package tracing

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"http endpoint", func(c *Config) { c.Endpoint = "http://otel-collector:4318" }, ""},
		{"https endpoint with path", func(c *Config) { c.Endpoint = "https://otel.example.com/otlp/v1/traces" }, ""},
		{"no scheme", func(c *Config) { c.Endpoint = "otel-collector:4318" }, "endpoint"},
		{"grpc scheme", func(c *Config) { c.Endpoint = "grpc://otel:4317" }, "endpoint"},
		{"no host", func(c *Config) { c.Endpoint = "http:///v1/traces" }, "endpoint"},
		{"query", func(c *Config) { c.Endpoint = "http://otel:4318?x=1" }, "endpoint"},
		{"ratio below 0", func(c *Config) { c.SampleRatio = -0.1 }, "sample_ratio"},
		{"ratio above 1", func(c *Config) { c.SampleRatio = 1.5 }, "sample_ratio"},
		{"no links", func(c *Config) { c.MaxLinks = 0 }, "max_links"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.set(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v; want %q", err, tc.want)
			}
		})
	}
}

func TestEndpointURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://otel:4318":           "http://otel:4318/v1/traces",
		"http://otel:4318/":          "http://otel:4318/v1/traces",
		"https://otel/custom/traces": "https://otel/custom/traces",
	} {
		if got := endpointURL(in); got != want {
			t.Errorf("endpointURL(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestOffByDefault: without an endpoint there is no provider, and its tracer is nil (the components'
// "off").
func TestOffByDefault(t *testing.T) {
	p, err := New(Defaults(), "ingestor", Options{})
	if p != nil || err != nil {
		t.Fatalf("New(defaults) = %v, %v; want nil, nil", p, err)
	}
	if p.Tracer("x") != nil || p.Shutdown(context.Background()) != nil {
		t.Errorf("a nil provider's tracer or shutdown is not a no-op")
	}
}

// TestSampler: a child follows its parent; a root linking a sampled span is sampled; other roots by
// ratio.
func TestSampler(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(NewSampler(0)), sdktrace.WithSyncer(exp))
	tr := tp.Tracer("test")
	sampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true})
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{2}, SpanID: trace.SpanID{2}, Remote: true})
	for _, tc := range []struct {
		name string
		ctx  context.Context
		opts []trace.SpanStartOption
		want bool
	}{
		{"root at ratio 0", context.Background(), nil, false},
		{"child of sampled", trace.ContextWithRemoteSpanContext(context.Background(), sampled), nil, true},
		{"child of unsampled", trace.ContextWithRemoteSpanContext(context.Background(), unsampled), nil, false},
		{"root linking sampled", context.Background(), []trace.SpanStartOption{trace.WithLinks(trace.Link{SpanContext: unsampled}, trace.Link{SpanContext: sampled})}, true},
		{"root linking unsampled", context.Background(), []trace.SpanStartOption{trace.WithLinks(trace.Link{SpanContext: unsampled})}, false},
	} {
		_, span := tr.Start(tc.ctx, tc.name, tc.opts...)
		if got := span.SpanContext().IsSampled(); got != tc.want {
			t.Errorf("%s: sampled %v; want %v", tc.name, got, tc.want)
		}
		span.End()
	}
	all := sdktrace.NewTracerProvider(sdktrace.WithSampler(NewSampler(1))).Tracer("test")
	if _, span := all.Start(context.Background(), "root"); !span.SpanContext().IsSampled() {
		t.Errorf("root at ratio 1 not sampled")
	}
}

// TestUnreachableEndpoint: a collector that cannot be reached neither blocks ending spans (the queue
// drops what does not fit) nor holds shutdown past its deadline.
func TestUnreachableEndpoint(t *testing.T) {
	c := Defaults()
	c.Endpoint, c.SampleRatio = "http://127.0.0.1:1", 1 // nothing listens on port 1
	p, err := New(c, "ingestor", Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Tracer("test")
	start := time.Now()
	for range 20_000 { // ten times the queue
		_, span := tr.Start(context.Background(), "request")
		span.End()
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("20000 spans took %s with the collector unreachable; want no waiting", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	_ = p.Shutdown(ctx) // may fail: the spans cannot be sent
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Shutdown took %s; want it bounded by its context (1s)", took)
	}
}
