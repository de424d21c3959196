package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	"github.com/inlet-dev/inlet/internal/verify"
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
// secret, and some whose verification is not their sender's (a custom HMAC, another preset, a
// tolerance, a Basic user, a token parameter, another mode). For each, the test command the admin API
// prints, run by sh with the built binary, is answered 202, as is, for the catalog's, the command with
// -sender and -secret alone; every request id answered is an accepted record in Kafka; the same request
// with another secret is answered 401 and exits 1. One webhook is tested with everything read from the
// admin API. The HMAC senders pass once the edge verifies with each webhook's
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
	// One webhook per sender, then some whose verification is not their sender's: the test command the
	// admin API prints must carry it.
	type hook struct {
		name, id, sender, secret string
		ownVerification          bool // not the sender's: only the printed command can sign for it
	}
	var hooks []hook
	create := func(name, sender string, v *verify.Config) {
		in := seed.Webhook("Test "+name, "CheckoutSuccess", seed.Sample)
		in.Sender, in.Verification = sender, v
		snd, _ := webhook.LookupSender(sender)
		if v == nil {
			v = &snd.Verification
		}
		if v.Mode == verify.ModeHMAC {
			in.Secret = secretFor(*v)
		}
		wh, sec, err := stores.Webhooks.Create(ctx, p.ID, in)
		if err != nil {
			t.Fatalf("create the %s webhook: %v", name, err)
		}
		if _, err := stores.Webhooks.SetEnabled(ctx, p.ID, wh.ID, wh.Version, true); err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, hook{name, wh.ID, sender, sec, in.Verification != nil})
	}
	for _, snd := range webhook.Senders() {
		create(snd.Name, snd.Name, nil)
	}
	create("custom HMAC", "hmac", &verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Header: "X-Sig", Algorithm: verify.SHA512,
		Encoding: verify.Base64, TimestampHeader: "X-Ts", TimestampUnit: verify.Milliseconds, Signed: "{timestamp}.{method}.{uri}.{body}"}})
	create("shopify as github", "shopify", &verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Preset: "github"}})
	create("stripe, 10m", "stripe", &verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Preset: "stripe", Tolerance: 10 * time.Minute}})
	create("basic user", "basic", &verify.Config{Mode: verify.ModeBasic, Username: "shop"})
	create("token parameter", "token", &verify.Config{Mode: verify.ModeToken, QueryParam: "key"})
	create("inlet in basic mode", webhook.SenderInlet, &verify.Config{Mode: verify.ModeBasic, Username: "inlet"})

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
		// The test command the admin API prints, run by a shell as a user would.
		line := printedTestCommand(t, "http://"+adminAddr, apiKey, h.id)
		code, out := runLine(t, bin, env, line)
		if m := idRe.FindStringSubmatch(out); code != exitOK || m == nil {
			t.Errorf("%s: printed test command %s: exit %d; want 0 and a 202 with a request id:\n%s", h.name, line, code, out)
		} else {
			accepted[uuid.MustParse(m[1])] = h.id
		}
		if h.ownVerification {
			continue
		}
		code, out = inletCmd(t, env, "webhook", "test", "-webhook", h.id, "-sender", h.sender, "-secret", h.secret)
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

// printedTestCommand is the test command the admin API at base gives for webhook id.
func printedTestCommand(t *testing.T, base, apiKey, id string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/webhooks/"+id+"/credentials", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		TestCommand string `json:"test_command"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK || c.TestCommand == "" {
		t.Fatalf("credentials of webhook %s: %s, %v; want a test command", id, resp.Status, err)
	}
	return c.TestCommand
}

// runLine runs a command line with sh, the inlet binary bin first on its PATH, and returns its exit
// code and output.
func runLine(t *testing.T, bin string, env []string, line string) (int, string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", line)
	cmd.Env = append(append(os.Environ(), env...), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("sh -c %s: %v", line, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}
