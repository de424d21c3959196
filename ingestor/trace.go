package ingestor

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/inlet-dev/inlet/internal/wire"
)

// edgeSpanName names the edge's span of a request (HTTP semantic conventions: method and route).
const edgeSpanName = "POST /hooks/{id}"

// edgeTrace is what a traced request's record and its span tell each other: the span's context goes
// into the record (wire.HeaderTraceParent), the record's request id into the span.
type edgeTrace struct {
	// parent is the span's context when it is sampled; zero otherwise, and the record then carries no
	// traceparent: the pipeline traces only what the edge sampled.
	parent    wire.TraceParent
	requestID uuid.UUID // set by fill; zero when no record was made (a refusal not logged)
}

var (
	traceParentKey = []byte(wire.HeaderTraceParent)
	serverKind     = trace.WithSpanKind(trace.SpanKindServer) // made once: an option is an interface
)

// serveTraced is serve inside a span of the request's own. The span is a new root, whatever the
// sender sent: a sender's traceparent is not ours to obey (it would decide what the edge samples, and
// make every request of a sender one trace), so when the request is sampled it is added as a link, for
// a sender that traces its deliveries. The span's attributes are set only when it is sampled.
func (s *Server) serveTraced(ctx *fasthttp.RequestCtx, now time.Time, tooLarge bool) result {
	_, span := s.tracer.Start(context.Background(), edgeSpanName, serverKind, trace.WithTimestamp(now))
	var tr edgeTrace
	if sc := span.SpanContext(); sc.IsSampled() {
		tr.parent = wire.TraceParentOf(sc)
	}
	res := s.serve(ctx, now, tooLarge, &tr)
	if span.IsRecording() {
		info := &results[res]
		span.SetAttributes(
			attribute.String("http.request.method", string(ctx.Method())),
			attribute.String("http.route", "/hooks/{id}"),
			attribute.Int("http.response.status_code", info.status),
			attribute.String("inlet.outcome", info.label),
		)
		if path := ctx.Path(); len(path) > len(hooksPrefix) && validID(path[len(hooksPrefix):]) {
			span.SetAttributes(attribute.String("inlet.webhook_id", string(path[len(hooksPrefix):])))
		}
		if tr.requestID != uuid.Nil {
			span.SetAttributes(attribute.String("inlet.request_id", tr.requestID.String()))
		}
		if info.status >= 500 {
			span.SetStatus(codes.Error, info.label)
		}
		if sender, ok := wire.ParseTraceParent(ctx.Request.Header.PeekBytes(traceParentKey)); ok {
			span.AddLink(trace.Link{SpanContext: sender.SpanContext(),
				Attributes: []attribute.KeyValue{attribute.String("inlet.link", "sender")}})
		}
	}
	span.End()
	return res
}
