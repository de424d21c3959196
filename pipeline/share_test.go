package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// recordFor is maskedRecord for webhook id.
func recordFor(id string, off int64, body string) *kgo.Record {
	req := &wire.Request{ID: uuid.Must(uuid.NewV7()), WebhookID: id, ProjectID: 1, ReceivedMs: time.Now().UnixMilli(),
		ConfigVersion: 2, Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(body),
		Sender: []wire.SenderHeader{{Key: wire.HeaderSenderPrefix + "X-Client-Ip", Value: []byte("203.0.113.9")},
			{Key: wire.HeaderSenderPrefix + "X-Topic", Value: []byte("orders/paid")}}}
	return &kgo.Record{Topic: "requests", Partition: 0, Offset: off, Key: []byte(id), Value: []byte(body),
		Headers: new(wire.RequestHeaders).Encode(req)}
}

// TestSharedRoutesStayPerWebhook: two webhooks with equal routes and kept headers share one compiled
// route set, yet each event carries its own webhook's id and only the webhook that marks fields
// sensitive masks them.
func TestSharedRoutesStayPerWebhook(t *testing.T) {
	p, _ := unitProcessor(t)
	masked := maskedHook(identify.ByUserID, "user_id")
	plain := maskedHook(identify.ByUserID, "user_id")
	plain.PublicID, plain.Mask = "wh_2", webhook.Mask{}
	p.hooks = mapHooks{"wh_1": masked, "wh_2": plain}
	body := `{"user_id":"12345","email_address":"jane@example.com","price":99.99,"customer":{"phone":"+447700900123"}}`
	if err := p.handle(context.Background(), fetches(recordFor("wh_1", 0, body), recordFor("wh_2", 1, body))); err != nil {
		t.Fatal(err)
	}
	c1, c2 := p.compiled["wh_1"], p.compiled["wh_2"]
	if c1 == nil || c2 == nil || c1.set == nil || c1.set != c2.set || &c1.routes[0] != &c2.routes[0] {
		t.Fatalf("compiled %p and %p with route sets %p and %p; want one set shared", c1, c2, c1.set, c2.set)
	}
	if len(p.routeSets) != 1 || c1.set.refs != 2 {
		t.Fatalf("%d route sets, the shared one held %d times; want 1, held twice", len(p.routeSets), c1.set.refs)
	}
	if len(p.b.activity) != 2 || len(p.b.fire) != 2 {
		t.Fatalf("%d activity rows, %d fired; want 2 each", len(p.b.activity), len(p.b.fire))
	}
	for i, want := range []string{"wh_1", "wh_2"} {
		ev, err := wire.DecodeEvent(p.b.fire[i].rec)
		if err != nil {
			t.Fatal(err)
		}
		if ev.WebhookID != want || ev.Attributes["__webhook"] != want {
			t.Errorf("event %d is of webhook %q (attributes %v); want %s", i, ev.WebhookID, ev.Attributes, want)
		}
		hashed := strings.Contains(p.b.activity[i].Attributes, `"email":"hmac-sha256:`)
		if clear := strings.Contains(p.b.activity[i].Attributes, "jane@example.com"); hashed == clear || hashed != (want == "wh_1") {
			t.Errorf("%s's stored attributes %s; want the e-mail hashed only for wh_1", want, p.b.activity[i].Attributes)
		}
	}
}

// TestRouteSetFreed: a shared route set goes, with its CEL programs' count, when the last config that
// holds it is replaced or dropped.
func TestRouteSetFreed(t *testing.T) {
	p, _ := unitProcessor(t)
	a, b := maskedHook(identify.ByUserID, "user_id"), maskedHook(identify.ByUserID, "user_id")
	b.PublicID = "wh_2"
	p.hooks = mapHooks{"wh_1": a, "wh_2": b}
	ctx := context.Background()
	for _, id := range []string{"wh_1", "wh_2"} {
		if _, err := p.hook(ctx, &item{webhookID: id, configVersion: 2}, webhook.Cached{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(p.routeSets) != 1 || p.compiledExprs != 1 {
		t.Fatalf("%d route sets with %d CEL programs; want 1 with 1 (the shared expression counted once)", len(p.routeSets), p.compiledExprs)
	}
	changed := maskedHook(identify.ByUserID, "user_id")
	changed.Version = 3
	changed.Mappings = changed.Mappings[:2] // no expression
	p.hooks.(mapHooks)["wh_1"] = changed
	if _, err := p.hook(ctx, &item{webhookID: "wh_1", configVersion: 3}, webhook.Cached{}); err != nil {
		t.Fatal(err)
	}
	if len(p.routeSets) != 2 || p.compiled["wh_2"].set.refs != 1 || p.compiledExprs != 1 {
		t.Fatalf("after wh_1 changed: %d route sets, wh_2's held %d times, %d CEL programs; want 2, once, 1",
			len(p.routeSets), p.compiled["wh_2"].set.refs, p.compiledExprs)
	}
	p.dropCompiled("wh_2", p.compiled["wh_2"])
	if len(p.routeSets) != 1 || p.compiledExprs != 0 {
		t.Fatalf("after wh_2 went: %d route sets, %d CEL programs; want 1, 0", len(p.routeSets), p.compiledExprs)
	}
	p.evictCompiled()
	if len(p.compiled) != 0 || len(p.routeSets) != 0 || p.compiledExprs != 0 {
		t.Errorf("after eviction: %d configs, %d route sets, %d CEL programs; want none", len(p.compiled), len(p.routeSets), p.compiledExprs)
	}
}

// TestRouteSetDigestCollision: a route set whose digest matches a config it was not compiled from is
// not shared with it: that config is compiled alone.
func TestRouteSetDigestCollision(t *testing.T) {
	p, _ := unitProcessor(t)
	h, other := benchHook(), maskedHook(identify.ByEmail, "email_address")
	key := routeSetKey(h)
	s := compileRoutes(other)
	s.key, s.refs = key, 1
	p.routeSets = map[[32]byte]*routeSet{key: s}
	c := p.compile(h)
	if c.set != nil || c.routes[0].r.Identify != h.Identify || len(c.routes[0].mappings) != len(h.Mappings) {
		t.Fatalf("compiled with set %p, identifier %v, %d mappings; want alone, as %v with %d", c.set, c.routes[0].r.Identify,
			len(c.routes[0].mappings), h.Identify, len(h.Mappings))
	}
	p.compiled[h.PublicID] = c
	p.dropCompiled(h.PublicID, c)
	if s.refs != 1 || len(p.routeSets) != 1 || p.compiledExprs != 0 {
		t.Errorf("after dropping it: the other set held %d times, %d sets, %d CEL programs; want 1, 1, 0", s.refs, len(p.routeSets), p.compiledExprs)
	}
}
