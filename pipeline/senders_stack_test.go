package pipeline_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	stripewebhook "github.com/stripe/stripe-go/v82/webhook"
	twilioclient "github.com/twilio/twilio-go/client"

	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// TestSendersThroughTheStack is issue 11's acceptance through the real `inlet ingestor` and `inlet
// pipeline` processes on the real PostgreSQL, Kafka and ClickHouse. Webhooks are connected as Shopify,
// Stripe, Standard Webhooks and Twilio senders and requests are signed as those providers sign them
// (Stripe's and Standard Webhooks' own libraries, twilio-go checking ours; Shopify's documented scheme).
// A signed request gets 202 and a Success row, with Shopify's topic header mapped to an attribute; a
// one-byte change to the body, a wrong secret, a stale timestamp and a missing header each get the same
// 401 and their own detail in the activity log; a Twilio form maps like JSON; and the same Shopify delivery
// sent three times, with a kill -9 of the pipeline between the second and the third, fires one event and
// logs two duplicates pointing at the first request.
func TestSendersThroughTheStack(t *testing.T) {
	pgcfg, pool, p, ws := configPlane(t)
	e := newEnv(t)
	ctx := context.Background()
	ev, err := ws.CreateEvent(ctx, p.ID, webhook.EventInput{Name: "Order", Attributes: []webhook.Attribute{
		{Name: "email", Type: webhook.TypeString}, {Name: "total", Type: webhook.TypePrice}, {Name: "topic", Type: webhook.TypeString}}})
	if err != nil {
		t.Fatal(err)
	}
	connect := func(sender, secret string, mappings ...webhook.Mapping) string {
		t.Helper()
		wh, _, err := ws.Create(ctx, p.ID, webhook.WebhookInput{Name: sender, EventID: ev.ID, Sender: sender, Secret: secret,
			Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"}, Mappings: mappings})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ws.SetEnabled(ctx, p.ID, wh.ID, wh.Version, true); err != nil {
			t.Fatal(err)
		}
		return wh.ID
	}
	const (
		shopifySecret = "shpss_5f1d0c0ffee"
		stripeSecret  = "whsec_test_0123456789"
		swSecret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	)
	shopID := connect("shopify", shopifySecret, webhook.Mapping{Attribute: "email", Field: "email"},
		webhook.Mapping{Attribute: "total", Field: "total_price"}, webhook.Mapping{Attribute: "topic", Field: `headers["X-Shopify-Topic"]`})
	stripeID := connect("stripe", stripeSecret, webhook.Mapping{Attribute: "topic", Field: "type"})
	swID := connect("standard_webhooks", swSecret, webhook.Mapping{Attribute: "topic", Field: "type"})
	const twilioToken = "twilio-auth-token-0123456789"
	twilioID := connect("twilio", twilioToken, webhook.Mapping{Attribute: "topic", Field: "Body"})
	addUser(t, pool, p.ID, directory.User{UserID: "12345"})

	bin := testenv.BuildInlet(t)
	edge := testenv.FreeAddr(t)
	common := e.inletEnv(pgcfg)
	testenv.StartInlet(t, bin, "ingestor", append(common, "INLET_INGESTOR_LISTEN_ADDR="+edge, "INLET_INGESTOR_INTERNAL_ADDR=127.0.0.1:0")...)
	pipelineEnv := append(common, "INLET_PIPELINE_GROUP="+e.group, "INLET_PIPELINE_INTERNAL_ADDR=127.0.0.1:0",
		"INLET_PIPELINE_FLUSH_INTERVAL=200ms")
	firstPipeline := testenv.StartInlet(t, bin, "pipeline", pipelineEnv...)

	client := &http.Client{Timeout: 30 * time.Second}
	post := func(id, body string, headers ...string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+edge+"/hooks/"+id, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	requestID := func(b []byte) string {
		_, after, _ := bytes.Cut(b, []byte(`"request_id":"`))
		id, _, _ := bytes.Cut(after, []byte(`"`))
		return string(id)
	}
	shopify := func(secret, body, deliveryID string) []string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body))
		return []string{"X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(m.Sum(nil)),
			"X-Shopify-Topic", "orders/create", "X-Shopify-Webhook-Id", deliveryID, "X-Shopify-Shop-Domain", "shop.example.com"}
	}
	order := `{"user_id":"12345","email":"jane@example.com","total_price":"199.65"}`

	// The edge is up once a signed request is accepted; that one is an original of its own.
	var warm []byte
	testenv.WaitFor(t, "the edge to accept a signed request", 60*time.Second, func() bool {
		code, b := post(shopID, order, shopify(shopifySecret, order, "warm-"+strconv.FormatInt(time.Now().UnixNano(), 10))...)
		warm = b
		return code == http.StatusAccepted
	})
	logged := 1 // rows expected for the Shopify webhook

	// Rejections: one answer for all, the reason in the log.
	stale := time.Now().Add(-10 * time.Minute)
	staleStripe := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: []byte(order), Secret: stripeSecret, Timestamp: stale})
	tampered := strings.Replace(order, "199.65", "199.66", 1)
	rejections := []struct {
		id, body string
		headers  []string
		detail   string
	}{
		{shopID, tampered, shopify(shopifySecret, order, "d-tampered"), "signature_mismatch"},
		{shopID, order, shopify("shpss_wrong", order, "d-wrong"), "signature_mismatch"},
		{stripeID, order, []string{"Stripe-Signature", staleStripe.Header}, "timestamp_outside_tolerance"},
		{shopID, order, []string{"X-Shopify-Topic", "orders/create"}, "signature_header_missing"},
	}
	var first401 []byte
	for i, r := range rejections {
		code, b := post(r.id, r.body, r.headers...)
		if code != http.StatusUnauthorized {
			t.Fatalf("rejection %d (%s): %d %s; want 401", i, r.detail, code, b)
		}
		if first401 == nil {
			first401 = b
		} else if !bytes.Equal(b, first401) {
			t.Errorf("rejection %d answers %q; want the same body as the others, %q", i, b, first401)
		}
	}
	logged += 3

	// Accepted: each provider's own signature.
	now := time.Now()
	signedStripe := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{
		Payload: []byte(`{"id":"evt_1","type":"charge.succeeded","user_id":"12345"}`), Secret: stripeSecret, Timestamp: now})
	if code, b := post(stripeID, string(signedStripe.Payload), "Stripe-Signature", signedStripe.Header); code != http.StatusAccepted {
		t.Fatalf("stripe: %d %s", code, b)
	}
	sw, err := standardwebhooks.NewWebhook(swSecret)
	if err != nil {
		t.Fatal(err)
	}
	swBody := `{"type":"invoice.paid","user_id":"12345"}`
	sig, err := sw.Sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now, []byte(swBody))
	if err != nil {
		t.Fatal(err)
	}
	if code, b := post(swID, swBody, "webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
		"webhook-timestamp", strconv.FormatInt(now.Unix(), 10), "webhook-signature", sig); code != http.StatusAccepted {
		t.Fatalf("standard webhooks: %d %s", code, b)
	}

	// Twilio posts a form, signed over the URL it calls and its sorted parameters; it maps like JSON.
	twilioURL := "http://" + edge + "/hooks/" + twilioID
	twilioBody := "user_id=12345&From=%2B14158675309&Body=Hello+there%21"
	signer, err := verify.NewSigner(verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Preset: "twilio"}}, []byte(twilioToken))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.Sign(verify.Message{URL: twilioURL, Body: []byte(twilioBody)})
	if err != nil {
		t.Fatal(err)
	}
	validator := twilioclient.NewRequestValidator(twilioToken)
	if !validator.ValidateBody(twilioURL, []byte(twilioBody), signed.Get("X-Twilio-Signature")) {
		t.Fatal("twilio-go refuses the signature")
	}
	{
		req, _ := http.NewRequest(http.MethodPost, twilioURL, strings.NewReader(twilioBody))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", signed.Get("X-Twilio-Signature"))
		req.Header.Set("I-Twilio-Idempotency-Token", "idem-1")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("twilio: %d %s", resp.StatusCode, b)
		}
	}

	// The same Shopify delivery twice, then the pipeline is killed, then the third.
	delivery := "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
	var ids []string
	for range 2 {
		code, b := post(shopID, order, shopify(shopifySecret, order, delivery)...)
		if code != http.StatusAccepted {
			t.Fatalf("delivery: %d %s", code, b)
		}
		ids = append(ids, requestID(b))
	}
	logged += 2
	q := fmt.Sprintf("SELECT count() FROM activity_log WHERE webhook_id = '%s'", shopID)
	e.waitCount(t, q, uint64(logged), 120*time.Second)
	if err := firstPipeline.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = firstPipeline.Wait()
	code, b := post(shopID, order, shopify(shopifySecret, order, delivery)...)
	if code != http.StatusAccepted {
		t.Fatalf("third delivery: %d %s", code, b)
	}
	ids = append(ids, requestID(b))
	logged++
	testenv.StartInlet(t, bin, "pipeline", pipelineEnv...)
	e.waitCount(t, q, uint64(logged), 120*time.Second)

	rows := e.activity(t, shopID)
	if r := rows[ids[0]]; r.status != "success" || !strings.Contains(r.headers, `"X-Shopify-Topic":"orders/create"`) {
		t.Errorf("first delivery: %+v; want success with its headers", r)
	}
	for _, id := range ids[1:] {
		if r := rows[id]; r.status != "duplicate" || r.duplicateOf != ids[0] {
			t.Errorf("repeat %s: %+v; want a duplicate of %s", id, r, ids[0])
		}
	}
	if r := rows[requestID(warm)]; r.status != "success" {
		t.Errorf("the first request: %+v; want success", r)
	}
	details := map[string]int{}
	for _, r := range rows {
		if r.reason == "auth_rejected" {
			details[r.detail]++
		}
	}
	if details["signature_mismatch"] != 2 || details["signature_header_missing"] != 1 {
		t.Errorf("auth_rejected details %v; want 2 signature_mismatch, 1 signature_header_missing", details)
	}
	e.waitCount(t, fmt.Sprintf("SELECT count() FROM activity_log WHERE webhook_id = '%s'", stripeID), 2, 60*time.Second)
	stripeRows := e.activity(t, stripeID)
	var stripeDetails []string
	for _, r := range stripeRows {
		stripeDetails = append(stripeDetails, r.status+"/"+r.detail)
	}
	if !strings.Contains(strings.Join(stripeDetails, ","), "failed/timestamp_outside_tolerance") ||
		!strings.Contains(strings.Join(stripeDetails, ","), "success/") {
		t.Errorf("stripe rows %v; want one stale rejection and one success", stripeDetails)
	}
	e.waitCount(t, fmt.Sprintf("SELECT count() FROM activity_log WHERE webhook_id = '%s' AND status = 'success'", swID), 1, 60*time.Second)

	e.waitCount(t, fmt.Sprintf("SELECT count() FROM activity_log WHERE webhook_id = '%s' AND status = 'success'", twilioID), 1, 60*time.Second)
	// The events row is written after the activity row: wait for it too.
	e.waitCount(t, fmt.Sprintf("SELECT count() FROM events WHERE webhook_id = '%s' AND attributes LIKE '%%Hello there!%%'", twilioID), 1, 60*time.Second)

	// One event per original: the warm-up request, the delivery, Stripe's, Standard Webhooks' and Twilio's.
	e.waitCount(t, "SELECT count() FROM events", 5, 60*time.Second)
	if n := e.count(t, fmt.Sprintf("SELECT count() FROM events WHERE attributes LIKE '%%orders/create%%' AND webhook_id = '%s'", shopID)); n != 2 {
		t.Errorf("%d Shopify events carry the mapped topic header; want 2", n)
	}
	if evs := e.events(t, 5, 30*time.Second); len(evs) != 5 {
		t.Errorf("the events topic has %d events; want 5", len(evs))
	}
}
