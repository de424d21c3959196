package pipeline

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// Span names of the pipeline. A request's edge span (its record's traceparent) is the parent of its
// process span; the batch spans, which serve many requests, link to their sampled requests' edge
// spans instead (at most Deps.MaxTraceLinks each).
const (
	spanProcess = "inlet.process" // one request, child of its edge span: from the poll to its rows
	spanResolve = "inlet.resolve" // a poll's directory lookups
	spanFire    = "inlet.fire"    // a flush's events to webhooks.events
	spanInsert  = "inlet.insert"  // a flush's block of one ClickHouse table
)

// defaultTraceLinks is MaxTraceLinks when Deps leaves it 0 (tracing.Config.MaxLinks' default).
const defaultTraceLinks = 128

// tracer is the pipeline's tracing, nil when it is off: every use is behind a nil check, so that
// nothing of it runs then. Only requests whose edge span was sampled are traced here: a batch span is
// started only when it has one such request to link to, and follows that decision (see
// tracing.NewSampler).
type tracer struct {
	t        trace.Tracer
	maxLinks int
}

func newTracer(t trace.Tracer, maxLinks int) *tracer {
	if t == nil {
		return nil
	}
	if maxLinks <= 0 {
		maxLinks = defaultTraceLinks
	}
	return &tracer{t: t, maxLinks: maxLinks}
}

// link is the link to an item's edge span, with its request id.
func (it *item) link() trace.Link {
	return trace.Link{SpanContext: it.trace.SpanContext(),
		Attributes: []attribute.KeyValue{attribute.String("inlet.request_id", it.requestID.String())}}
}

// traced reports whether the item's edge span was sampled.
func (it *item) traced() bool { return it.trace.IsValid() && it.trace.Flags.IsSampled() }

// pollLinks are the links to the poll's sampled requests, at most maxLinks, and how many were left out.
func (t *tracer) pollLinks(items []item) ([]trace.Link, int) {
	var links []trace.Link
	dropped := 0
	for i := range items {
		if it := &items[i]; it.traced() {
			if len(links) == t.maxLinks {
				dropped++
				continue
			}
			links = append(links, it.link())
		}
	}
	return links, dropped
}

// start starts a batch span linking links; nil when there is no sampled request to link.
func (t *tracer) start(ctx context.Context, name string, links []trace.Link, dropped int, attrs ...attribute.KeyValue) trace.Span {
	if len(links) == 0 {
		return nil
	}
	attrs = append(attrs, attribute.Int("inlet.links_dropped", dropped))
	_, span := t.t.Start(ctx, name, trace.WithLinks(links...), trace.WithAttributes(attrs...))
	return span
}

// end ends span (nil: not started), marking it failed with err.
func end(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// processed records the process span of each of the poll's sampled requests, from start (the poll) to
// now, as a child of its edge span: its webhook, request id, Kafka position and how it ended.
func (t *tracer) processed(ctx context.Context, items []item, start time.Time) {
	now := time.Now()
	for i := range items {
		it := &items[i]
		if !it.traced() {
			continue
		}
		pctx := trace.ContextWithRemoteSpanContext(ctx, it.trace.SpanContext())
		_, span := t.t.Start(pctx, spanProcess, trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindConsumer))
		span.SetAttributes(
			attribute.String("inlet.webhook_id", it.webhookID),
			attribute.String("inlet.request_id", it.requestID.String()),
			attribute.Int("messaging.kafka.partition", int(it.partition)),
			attribute.Int64("messaging.kafka.offset", it.offset),
			attribute.String("inlet.status", it.status),
			attribute.String("inlet.reason", it.reason),
			attribute.Int("inlet.events_fired", it.fired()),
		)
		if it.status == chstore.StatusFailed {
			span.SetStatus(codes.Error, it.reason)
		}
		span.End(trace.WithTimestamp(now))
	}
}

// traceBatch notes an item that went into the batch, for the flush's spans to link to.
func (t *tracer) traceBatch(b *batch, it *item) {
	if !it.traced() {
		return
	}
	if len(b.links) == t.maxLinks {
		b.linksDropped++
		return
	}
	b.links = append(b.links, it.link())
}
