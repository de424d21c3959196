package pipeline_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// TestInletPipelineProcess runs the real `inlet pipeline` binary against the real PostgreSQL (webhook
// store and cache, user directory), Kafka and ClickHouse: the wiring of cmd/inlet/pipeline.go.
func TestInletPipelineProcess(t *testing.T) {
	pgcfg, pool, p, ws := configPlane(t)
	e := newEnv(t)
	ctx := context.Background()
	ev, err := ws.CreateEvent(ctx, p.ID, webhook.EventInput{Name: "CheckoutSuccess", Attributes: []webhook.Attribute{
		{Name: "total", Type: webhook.TypePrice}, {Name: "order_id", Type: webhook.TypeString}}})
	if err != nil {
		t.Fatal(err)
	}
	wh, _, err := ws.Create(ctx, p.ID, webhook.WebhookInput{Name: "shopify", EventID: ev.ID,
		Identify: webhook.Identify{Kind: identify.ByEmail, Field: "email_address"},
		Mappings: []webhook.Mapping{{Attribute: "total", Field: "price"}, {Attribute: "order_id", Field: "order_number"}}})
	if err != nil {
		t.Fatal(err)
	}
	addUser(t, pool, p.ID, directory.User{UserID: "12345", Email: "Jane@Example.com"})

	cmd := testenv.StartInlet(t, testenv.BuildInlet(t), "pipeline", append(e.inletEnv(pgcfg), "INLET_PIPELINE_GROUP="+e.group,
		"INLET_PIPELINE_INTERNAL_ADDR=127.0.0.1:0", "INLET_PIPELINE_FLUSH_INTERVAL=200ms")...)

	ok := newReq(wh.ID, wire.OutcomeAccepted, seedPayload)
	missing := newReq(wh.ID, wire.OutcomeAccepted, `{"email_address":"nobody@example.com"}`)
	recs := []req{ok, missing}
	for i := range recs {
		r := recs[i].record(e.kcfg.RequestsTopic)
		for j := range r.Headers {
			if r.Headers[j].Key == wire.HeaderProjectID {
				r.Headers[j].Value = []byte(strconv.FormatInt(p.ID, 10))
			}
		}
		if err := e.kcl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.waitCount(t, "SELECT count() FROM activity_log", 2, 60*time.Second)
	e.waitCount(t, "SELECT count() FROM events", 1, 10*time.Second) // inserted right after activity_log
	var status, reason, subject, attrs string
	if err := e.conn.QueryRow(ctx, "SELECT toString(status), reason FROM activity_log WHERE request_id = toUUID(?)", missing.id.String()).Scan(&status, &reason); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || reason != wire.ReasonUserNotFound {
		t.Errorf("unknown email: %s/%s; want failed/user_not_found", status, reason)
	}
	if err := e.conn.QueryRow(ctx, "SELECT subject, attributes FROM events WHERE event_id = toUUID(?)", ok.id.String()).Scan(&subject, &attrs); err != nil {
		var detail string
		_ = e.conn.QueryRow(ctx, "SELECT concat(toString(status), ' ', reason, ' ', detail) FROM activity_log WHERE request_id = toUUID(?)", ok.id.String()).Scan(&detail)
		t.Fatalf("events row of the seed request: %v (activity: %s)", err, detail)
	}
	want := `{"total":"99.99","order_id":"ORD-001","__webhook":"` + wh.ID + `"}`
	if subject != "12345" || attrs != want {
		t.Errorf("event on %q with %s; want on 12345 with %s", subject, attrs, want)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if st := waitExit(t, cmd, 60*time.Second); !st.Success() {
		t.Errorf("inlet pipeline ended with %v; want a clean exit after SIGTERM", st)
	}
}
