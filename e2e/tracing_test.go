package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/wire"
)

// senderTraceParent is a traceparent the sender sends: the edge links it, never takes it as parent.
const senderTraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// TestTracing sends a request through the real edge and pipeline with tracing on, every span going to
// an in-memory exporter. Sampled (ratio 1): the edge's span names the request, the record carries its
// context as traceparent, the pipeline's process span is its child and the resolve, fire and insert
// spans link to it. Not sampled (ratio 0): nothing is exported and the record carries no traceparent.
func TestTracing(t *testing.T) {
	t.Run("sampled", func(t *testing.T) {
		exp, s, rid := tracedRequest(t, 1)
		edge := waitSpan(t, exp, func(sp tracetest.SpanStub) bool {
			return sp.Name == "POST /hooks/{id}" && attr(sp, "inlet.request_id") == rid.String()
		})
		if got := attr(edge, "http.response.status_code"); got != "202" {
			t.Errorf("edge span status code %s; want 202", got)
		}
		if edge.Parent.IsValid() {
			t.Errorf("edge span has parent %v; want a root (the sender's traceparent is a link)", edge.Parent)
		}
		if len(edge.Links) != 1 || edge.Links[0].SpanContext.TraceID().String() != senderTraceParent[3:35] {
			t.Errorf("edge span links %+v; want the sender's traceparent", edge.Links)
		}
		rec := requestRecord(t, s.kafka, rid)
		want := wire.TraceParentOf(edge.SpanContext)
		if rec.Trace != want || !rec.Trace.Flags.IsSampled() {
			t.Errorf("record traceparent %+v; want the edge span's %+v, sampled", rec.Trace, want)
		}
		proc := waitSpan(t, exp, func(sp tracetest.SpanStub) bool {
			return sp.Name == "inlet.process" && attr(sp, "inlet.request_id") == rid.String()
		})
		if proc.Parent.SpanID() != edge.SpanContext.SpanID() || proc.SpanContext.TraceID() != edge.SpanContext.TraceID() {
			t.Errorf("process span parent %v; want the edge span %v", proc.Parent, edge.SpanContext)
		}
		if got := attr(proc, "inlet.status"); got != "success" {
			t.Errorf("process span status %q; want success", got)
		}
		linked := func(name, table string) func(sp tracetest.SpanStub) bool {
			return func(sp tracetest.SpanStub) bool {
				if sp.Name != name || table != "" && attr(sp, "db.collection.name") != table {
					return false
				}
				for _, l := range sp.Links {
					if l.SpanContext.TraceID() == edge.SpanContext.TraceID() && l.SpanContext.SpanID() == edge.SpanContext.SpanID() {
						return true
					}
				}
				return false
			}
		}
		waitSpan(t, exp, linked("inlet.resolve", ""))
		waitSpan(t, exp, linked("inlet.fire", ""))
		waitSpan(t, exp, linked("inlet.insert", "activity_log"))
		waitSpan(t, exp, linked("inlet.insert", "events"))
	})
	t.Run("not sampled", func(t *testing.T) {
		exp, s, rid := tracedRequest(t, 0)
		rec := requestRecord(t, s.kafka, rid)
		if rec.Trace.IsValid() {
			t.Errorf("record traceparent %+v; want none", rec.Trace)
		}
		waitActivity(t, s, rid)
		if spans := exp.GetSpans(); len(spans) > 0 {
			t.Errorf("%d spans exported (first %q); want none", len(spans), spans[0].Name)
		}
	})
}

// tracedRequest starts the system with tracing at ratio, spans to the returned exporter, and sends one
// request that fires an event; it returns the request's id.
func tracedRequest(t *testing.T, ratio float64) (*tracetest.InMemoryExporter, *system, uuid.UUID) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	s := start(t, [2]string{"A", "B"}, true, func(cfg *config.Config) {
		cfg.Pipeline.Group = testenv.Name("tracing")
		cfg.Pipeline.FlushInterval = 200 * time.Millisecond
		cfg.Tracing.SampleRatio = ratio
	}, compose.Deps{SpanExporter: exp})
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "Paid", "attributes": []map[string]string{
		{"name": "total", "type": "price"}}}, 201)
	var wh struct {
		ID          string
		Credentials struct{ Secret string }
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, map[string]any{
		"name": "Payments", "event": "Paid", "identify": map[string]string{"kind": "user_id", "field": "user_id"},
		"mappings": []map[string]string{{"attribute": "total", "field": "price"}},
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+wh.ID+"/enable", s.keyA, nil, 200)
	s.want("PUT", "/api/v1/users/12345", s.keyA, map[string]any{"email": "jane@example.com"}, 201)

	deadline := time.Now().Add(patience)
	for {
		req, err := http.NewRequest("POST", s.ingestURL+"/hooks/"+wh.ID, strings.NewReader(`{"user_id":"12345","price":9.5}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", wh.Credentials.Secret)
		req.Header.Set("traceparent", senderTraceParent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			var ans struct {
				RequestID uuid.UUID `json:"request_id"`
			}
			if err := json.Unmarshal(b, &ans); err != nil {
				t.Fatalf("the edge's 202 %s: %v", b, err)
			}
			return exp, s, ans.RequestID
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge still answered %d %s after %s; want 202", resp.StatusCode, b, patience)
		}
		time.Sleep(50 * time.Millisecond) // pacing only
	}
}

// attr is the span's attribute key as text, "" when it has none.
func attr(sp tracetest.SpanStub, key string) string {
	for _, kv := range sp.Attributes {
		if kv.Key == attribute.Key(key) {
			return kv.Value.String()
		}
	}
	return ""
}

// waitSpan waits for a span that match accepts among those exported.
func waitSpan(t *testing.T, exp *tracetest.InMemoryExporter, match func(tracetest.SpanStub) bool) tracetest.SpanStub {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		spans := exp.GetSpans()
		for _, sp := range spans {
			if match(sp) {
				return sp
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, sp := range spans {
				names = append(names, sp.Name)
			}
			t.Fatalf("no matching span after %s among %v", patience, names)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
	}
}

// requestRecord reads the webhooks.requests record of request rid.
func requestRecord(t *testing.T, cfg kafka.Config, rid uuid.UUID) wire.Request {
	t.Helper()
	cl, err := kafka.NewClient(cfg, "test", kgo.ConsumeTopics(cfg.RequestsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for ctx.Err() == nil {
		for _, rec := range cl.PollFetches(ctx).Records() {
			var r wire.Request
			if wire.DecodeRequest(rec, &r); r.ID == rid {
				r.Sender = nil // the record's bytes are not kept past the client
				return r
			}
		}
	}
	t.Fatalf("no record of request %s in %s after %s", rid, cfg.RequestsTopic, patience)
	return wire.Request{}
}

// waitActivity waits for the request's activity entry: the pipeline is done with it.
func waitActivity(t *testing.T, s *system, rid uuid.UUID) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		var page struct {
			Entries []struct {
				RequestID string `json:"request_id"`
			}
		}
		var whs struct{ Webhooks []struct{ ID string } }
		if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks", s.keyA, nil, 200), &whs); err != nil {
			t.Fatal(err)
		}
		for _, w := range whs.Webhooks {
			if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks/"+w.ID+"/activity", s.keyA, nil, 200), &page); err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Entries {
				if e.RequestID == rid.String() {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no activity entry of request %s after %s", rid, patience)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
	}
}
