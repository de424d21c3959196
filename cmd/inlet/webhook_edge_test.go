package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveInlet() // built by the tests that run the binary
	os.Exit(code)
}

// TestWebhookTestThroughTheEdge runs `inlet webhook test` against the real `inlet ingestor` (and `inlet
// admin`) on the local stack: one webhook per sender of the catalog, each connected with its own
// secret. Every signed test request is answered 202 and its request id is an accepted record in
// Kafka; the same request with another secret is answered 401 and exits 1. One webhook is tested with
// everything read from the admin API. The HMAC senders pass once the edge verifies with each webhook's
// Verifier (internal/webhook's Hook); before that the edge checks Bearer secrets only.
func TestWebhookTestThroughTheEdge(t *testing.T) {
	pg, _ := testenv.Postgres(t)
	kcfg, _ := testenv.Kafka(t)
	chcfg, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	edge, edgeInternal, adminAddr, adminInternal := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := []string{"INLET_POSTGRES_DSN=" + pg.DSN, "INLET_CLICKHOUSE_DATABASE=" + chcfg.Database,
		"INLET_KAFKA_REQUESTS_TOPIC=" + kcfg.RequestsTopic, "INLET_KAFKA_EVENTS_TOPIC=" + kcfg.EventsTopic,
		"INLET_INGESTOR_LISTEN_ADDR=" + edge, "INLET_INGESTOR_INTERNAL_ADDR=" + edgeInternal,
		"INLET_ADMIN_LISTEN_ADDR=" + adminAddr, "INLET_ADMIN_INTERNAL_ADDR=" + adminInternal,
		"INLET_ADMIN_PUBLIC_BASE_URL=http://" + edge}

	// One webhook per sender, through the same stores (and master key) the binaries use.
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	stores, err := compose.OpenStores(ctx, cfg, nil, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Close()
	p, apiKey, err := stores.Projects.Create(ctx, "Edge test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stores.Webhooks.CreateEvent(ctx, p.ID, seed.Event("CheckoutSuccess", "")); err != nil {
		t.Fatal(err)
	}
	type hook struct{ id, sender, secret string }
	var hooks []hook
	for _, snd := range webhook.Senders() {
		in := seed.Webhook("Test "+snd.Name, "CheckoutSuccess", seed.Sample)
		in.Sender = snd.Name
		if snd.Verification.Mode == "hmac" {
			in.Secret = secretFor(snd.Verification)
		}
		wh, sec, err := stores.Webhooks.Create(ctx, p.ID, in)
		if err != nil {
			t.Fatalf("create the %s webhook: %v", snd.Name, err)
		}
		if _, err := stores.Webhooks.SetEnabled(ctx, p.ID, wh.ID, wh.Version, true); err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, hook{wh.ID, snd.Name, sec})
	}

	bin := testenv.BuildInlet(t)
	testenv.StartInlet(t, bin, "ingestor", env...)
	testenv.StartInlet(t, bin, "admin", env...)
	for _, ready := range []string{"http://" + edgeInternal + "/readyz", "http://" + adminInternal + "/readyz"} {
		testenv.WaitFor(t, ready, 60*time.Second, func() bool {
			resp, err := http.Get(ready)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}

	idRe := regexp.MustCompile(`< \{"request_id":"([0-9a-f-]{36})"\}`)
	accepted := map[uuid.UUID]string{} // request id → webhook id
	for _, h := range hooks {
		code, out := inletCmd(t, env, "webhook", "test", "-webhook", h.id, "-sender", h.sender, "-secret", h.secret)
		m := idRe.FindStringSubmatch(out)
		if code != exitOK || m == nil {
			t.Errorf("%s: exit %d; want 0 and a 202 with a request id:\n%s", h.sender, code, out)
		} else {
			accepted[uuid.MustParse(m[1])] = h.id
		}
		// Another secret that fits every mode: whsec_ and base64, as Standard Webhooks' must be.
		wrong := "whsec_" + base64.StdEncoding.EncodeToString([]byte("not this webhook's secret"))
		if code, out := inletCmd(t, env, "webhook", "test", "-webhook", h.id, "-sender", h.sender, "-secret", wrong); code != exitFail ||
			!strings.Contains(out, "< 401 ") {
			t.Errorf("%s with another secret: exit %d; want 1 and a 401:\n%s", h.sender, code, out)
		}
	}

	// Everything from the admin API: sender, verification, sample payload, URL and secret.
	first := hooks[0] // the catalog lists Inlet's Bearer secret first: the admin API shows its secret
	code, out := inletCmd(t, append(env, envAPIKey+"="+apiKey), "webhook", "test", "-webhook", first.id, "-admin-url", "http://"+adminAddr)
	if m := idRe.FindStringSubmatch(out); code != exitOK || m == nil {
		t.Errorf("from the admin API: exit %d:\n%s", code, out)
	} else {
		accepted[uuid.MustParse(m[1])] = first.id
	}

	// Every 202 is an accepted record of its webhook in Kafka.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kcfg.Brokers...), kgo.ConsumeTopics(kcfg.RequestsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pollCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for len(accepted) > 0 && pollCtx.Err() == nil {
		cl.PollFetches(pollCtx).EachRecord(func(r *kgo.Record) {
			var req wire.Request
			wire.DecodeRequest(r, &req)
			if hookID, ok := accepted[req.ID]; ok && req.Outcome == wire.OutcomeAccepted && string(r.Key) == hookID {
				delete(accepted, req.ID)
			}
		})
	}
	for id, hookID := range accepted {
		t.Errorf("request %s of webhook %s was answered 202 but is not an accepted record in %s", id, hookID, kcfg.RequestsTopic)
	}
}
