package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/fieldpath"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// maskedHook is the unit processor's webhook with email_address, customer.phone and the X-Client-Ip
// header sensitive; an expression mapping reads the phone.
func maskedHook(kind identify.Kind, field string) *webhook.Hook {
	return &webhook.Hook{PublicID: "wh_1", ProjectID: 1, Version: 2, Enabled: true, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: kind, Field: field},
		Headers:  []webhook.KeptHeader{webhook.NewKeptHeader("X-Client-Ip"), webhook.NewKeptHeader("X-Topic")},
		Mappings: []webhook.TypedMapping{
			{Attribute: "email", Type: webhook.TypeString, Field: "email_address"},
			{Attribute: "total", Type: webhook.TypePrice, Field: "price"},
			{Attribute: "phone_cc", Type: webhook.TypeString, Expr: `body.customer.phone.substring(0, 3)`},
			{Attribute: "ip", Type: webhook.TypeString, Field: "headers.X-Client-Ip"},
		},
		Mask: webhook.Mask{Key: []byte("0123456789abcdef0123456789abcdef"), Headers: []string{"X-Client-Ip"},
			Fields: []fieldpath.Path{fieldpath.MustParse("email_address"), fieldpath.MustParse("customer.phone")}},
	}
}

func maskedRecord(off int64, body string) *kgo.Record {
	req := &wire.Request{ID: uuid.Must(uuid.NewV7()), WebhookID: "wh_1", ProjectID: 1, ReceivedMs: time.Now().UnixMilli(),
		ConfigVersion: 2, Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(body),
		Sender: []wire.SenderHeader{{Key: wire.HeaderSenderPrefix + "X-Client-Ip", Value: []byte("203.0.113.9")},
			{Key: wire.HeaderSenderPrefix + "X-Topic", Value: []byte("orders/paid")}}}
	return &kgo.Record{Topic: "requests", Partition: 0, Offset: off, Key: []byte("wh_1"), Value: []byte(body),
		Headers: new(wire.RequestHeaders).Encode(req)}
}

// TestProcessorMasking: sensitive fields, headers and what is mapped from them never reach the rows in
// clear — payload, headers, attributes, event history, identifier, detail — equal values hash alike,
// and the fired event carries the values.
func TestProcessorMasking(t *testing.T) {
	p, _ := unitProcessor(t)
	p.hooks.(mapHooks)["wh_1"] = maskedHook(identify.ByUserID, "user_id")
	secrets := []string{"jane@example.com", "+447700900123", "203.0.113.9", "+44"}
	body := `{"user_id":"12345","email_address":"jane@example.com","price":99.99,"customer":{"phone":"+447700900123","name":"Jane"},"big":12345678901234567890}`
	if err := p.handle(context.Background(), fetches(maskedRecord(0, body), maskedRecord(1, body))); err != nil {
		t.Fatal(err)
	}
	if len(p.b.activity) != 2 || len(p.b.events) != 2 || len(p.b.fire) != 2 {
		t.Fatalf("%d activity rows, %d events rows, %d fired; want 2 each", len(p.b.activity), len(p.b.events), len(p.b.fire))
	}
	r := p.b.activity[0]
	stored := r.Payload + r.Headers + r.Attributes + r.Detail + r.IdentifierValue + p.b.events[0].Attributes
	for _, s := range secrets {
		if strings.Contains(stored, s) {
			t.Errorf("%q is stored in clear: %s", s, stored)
		}
	}
	for _, s := range []string{`"name":"Jane"`, `"big":12345678901234567890`, `"price":99.99`} {
		if !strings.Contains(r.Payload, s) {
			t.Errorf("payload %s lost %s", r.Payload, s)
		}
	}
	if !strings.Contains(r.Headers, `"X-Topic":"orders/paid"`) || !strings.Contains(r.Headers, `"X-Client-Ip":"hmac-sha256:`) {
		t.Errorf("headers %s; want X-Topic in clear and X-Client-Ip hashed", r.Headers)
	}
	if !strings.Contains(r.Attributes, `"total":"99.99"`) && !strings.Contains(r.Attributes, `"total":99.99`) {
		t.Errorf("attributes %s; want total in clear", r.Attributes)
	}
	// Equal values hash alike: across requests, and between the payload and the attribute mapped from it.
	hashOf := func(s, key string) string {
		i := strings.Index(s, `"`+key+`":"hmac-sha256:`)
		if i < 0 {
			t.Fatalf("%s has no hashed %s", s, key)
		}
		return s[i+len(key)+3 : i+len(key)+3+len("hmac-sha256:")+32]
	}
	if a, b, c := hashOf(r.Payload, "email_address"), hashOf(p.b.activity[1].Payload, "email_address"), hashOf(r.Attributes, "email"); a != b || a != c {
		t.Errorf("hashes of one email: %s, %s, %s; want equal", a, b, c)
	}
	ev, err := wire.DecodeEvent(p.b.fire[0].rec)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Attributes["email"] != "jane@example.com" || ev.Attributes["phone_cc"] != "+44" || ev.Attributes["ip"] != "203.0.113.9" {
		t.Errorf("fired attributes %v; want the values in clear", ev.Attributes)
	}
}

// TestProcessorMaskingIdentifier: an identifier read from a sensitive field is hashed in the row and in
// the detail that quotes it; a body that cannot be parsed is not stored when anything is sensitive.
func TestProcessorMaskingIdentifier(t *testing.T) {
	p, _ := unitProcessor(t)
	p.hooks.(mapHooks)["wh_1"] = maskedHook(identify.ByEmail, "email_address")
	body := `{"email_address":"nobody@example.com","price":1}`
	if err := p.handle(context.Background(), fetches(maskedRecord(0, body))); err != nil {
		t.Fatal(err)
	}
	r := p.b.activity[0]
	if r.Reason != wire.ReasonUserNotFound {
		t.Fatalf("reason %s; want user_not_found", r.Reason)
	}
	if strings.Contains(r.Payload+r.Detail+r.IdentifierValue, "nobody@example.com") || !strings.HasPrefix(r.IdentifierValue, "hmac-sha256:") ||
		!strings.Contains(r.Detail, r.IdentifierValue) {
		t.Errorf("identifier %q, detail %q, payload %s; want the email hashed everywhere", r.IdentifierValue, r.Detail, r.Payload)
	}

	k := masking{m: compileMask(&maskedHook(identify.ByEmail, "email_address").Mask)}
	if out, err := k.payload([]byte(`{"email_address":"a@b.c", "trunc`)); err == nil || out != "" {
		t.Errorf("a truncated body: %q, %v; want nothing stored and an error", out, err)
	}
}

// TestMaskedWebhookOnly: a webhook that marks nothing compiles no mask (its requests pay nothing).
func TestMaskedWebhookOnly(t *testing.T) {
	if c := compileHook(benchHook()); c.mask != nil {
		t.Fatal("an unmasked webhook has a mask")
	}
	if c := compileHook(maskedHook(identify.ByUserID, "user_id")); c.mask == nil || !c.masked[0].attrs["email"] ||
		!c.masked[0].attrs["phone_cc"] || !c.masked[0].attrs["ip"] || c.masked[0].attrs["total"] || c.masked[0].ident {
		t.Fatalf("masked attributes %v, identifier %v; want email, phone_cc, ip only", c.masked[0].attrs, c.masked[0].ident)
	}
}

// TestMaskingInClickHouse: the masked rows written to the real ClickHouse hold no sensitive value in
// any column (the table read whole, as text).
func TestMaskingInClickHouse(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	_, conn := testenv.ClickHouse(t)
	p, _ := unitProcessor(t)
	p.hooks.(mapHooks)["wh_1"] = maskedHook(identify.ByUserID, "user_id")
	body := `{"user_id":"12345","email_address":"jane@example.com","price":99.99,"customer":{"phone":"+447700900123"}}`
	if err := p.handle(context.Background(), fetches(maskedRecord(0, body))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := chstore.NewWriter(conn)
	if err := w.InsertActivity(ctx, p.b.activity); err != nil {
		t.Fatal(err)
	}
	if err := w.InsertEvents(ctx, p.b.events); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"activity_log", "events"} {
		rows, err := conn.Query(ctx, "SELECT toString(tuple(*)) FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			n++
			for _, secret := range []string{"jane@example.com", "+447700900123", "203.0.113.9"} {
				if strings.Contains(s, secret) {
					t.Errorf("%s holds %q in clear: %s", table, secret, s)
				}
			}
			if !strings.Contains(s, "hmac-sha256:") {
				t.Errorf("%s row has no masked value: %s", table, s)
			}
		}
		rows.Close()
		if n != 1 {
			t.Errorf("%s has %d rows; want 1", table, n)
		}
	}
}
