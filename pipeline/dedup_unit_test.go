package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// memDeliveries decides claims as delivery.Store does (position order, one original per window), in
// memory: for the unit tests and the benchmark, which need no PostgreSQL. down fails that many calls
// first, as an unreachable database would.
type memDeliveries struct {
	mu        sync.Mutex
	originals map[string][]memOriginal // by webhook and key, in offset order
	down      int
	calls     int
}

type memOriginal struct {
	offset    int64
	id        uuid.UUID
	expiresMs int64
}

func (m *memDeliveries) Claim(_ context.Context, claims []delivery.Claim, verdicts []delivery.Verdict) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.down > 0 {
		m.down--
		return errors.New("dial tcp 127.0.0.1:15432: connect: connection refused")
	}
	if m.originals == nil {
		m.originals = map[string][]memOriginal{}
	}
	order := make([]int, len(claims))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(claims[a].Offset, claims[b].Offset) })
	for _, i := range order {
		c := &claims[i]
		k := c.WebhookID + string(c.Key[:])
		os := m.originals[k]
		j, found := slices.BinarySearchFunc(os, c.Offset, func(o memOriginal, off int64) int { return cmp.Compare(o.offset, off) })
		if j > 0 && c.ReceivedMs < os[j-1].expiresMs {
			verdicts[i] = delivery.Verdict{DuplicateOf: os[j-1].id}
			continue
		}
		verdicts[i] = delivery.Verdict{}
		if !found {
			m.originals[k] = slices.Insert(os, j, memOriginal{c.Offset, c.RequestID, c.ReceivedMs + c.Window.Milliseconds()})
		}
	}
	return nil
}

func (m *memDeliveries) DeleteExpired(context.Context, time.Time, int) (int, error) { return 0, nil }

// senderRecord is unitRecord with sender headers (name, value, name, value, …) on webhook wh.
func senderRecord(wh string, off int64, body string, receivedMs int64, headers ...string) *kgo.Record {
	req := &wire.Request{ID: uuid.Must(uuid.NewV7()), WebhookID: wh, ProjectID: 1, ReceivedMs: receivedMs,
		ConfigVersion: 1, Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(body)}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Sender = append(req.Sender, wire.SenderHeader{Key: wire.HeaderSenderPrefix + headers[i], Value: []byte(headers[i+1])})
	}
	return &kgo.Record{Topic: "requests", Partition: 0, Offset: off, Key: []byte(wh), Value: []byte(body),
		Headers: new(wire.RequestHeaders).Encode(req)}
}

func shopifyHook() *webhook.Hook {
	h := &webhook.Hook{PublicID: "wh_shop", ProjectID: 1, Version: 1, Enabled: true, EventName: "OrderCreated",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		Dedup:    webhook.Dedup{Key: "header:X-Shopify-Webhook-Id"},
		Mappings: []webhook.TypedMapping{
			{Attribute: "topic", Type: webhook.TypeString, Field: `headers["x-shopify-topic"]`},
			{Attribute: "at", Type: webhook.TypeDate, Field: "headers.X-Shopify-Triggered-At"},
			{Attribute: "shop", Type: webhook.TypeString, Field: "headers.X-Shopify-Shop-Domain"},
			{Attribute: "other", Type: webhook.TypeString, Field: "headers.X-Not-Kept"},
		}}
	for _, n := range []string{"X-Shopify-Topic", "X-Shopify-Webhook-Id", "X-Shopify-Triggered-At", "X-Shopify-Shop-Domain"} {
		h.Headers = append(h.Headers, webhook.NewKeptHeader(n))
	}
	return h
}

// TestProcessorDuplicates: a repeat of a delivery is logged as a duplicate of the first request and
// fires nothing, whatever else would have become of it; sender headers are kept on every row, mapped
// like payload strings when a mapping names a kept header, and read from the payload otherwise.
func TestProcessorDuplicates(t *testing.T) {
	p, _ := unitProcessor(t)
	p.hooks = mapHooks{"wh_shop": shopifyHook()}
	store := &memDeliveries{}
	p.deliveries = store
	now := time.Now().UnixMilli()
	body := `{"user_id":"12345","headers":{"X-Not-Kept":"from the payload"}}`
	hs := func(id string) []string {
		return []string{"X-Shopify-Topic", "orders/create", "X-Shopify-Webhook-Id", id, "X-Shopify-Triggered-At", "2025-06-01T12:00:00Z"}
	}
	recs := []*kgo.Record{
		senderRecord("wh_shop", 0, body, now, hs("d-1")...),
		senderRecord("wh_shop", 1, body, now+1, hs("d-1")...),
		senderRecord("wh_shop", 2, `{"user_id":"nobody"}`, now+2, hs("d-2")...),
		senderRecord("wh_shop", 3, `{"user_id":"nobody"}`, now+3, hs("d-2")...), // a repeat of a failure is a duplicate too
		senderRecord("wh_shop", 4, body, now+4, "X-Shopify-Topic", "orders/paid"),
		senderRecord("wh_shop", 5, `{}`, now+5, hs("d-1")...), // would miss its identifier: still a duplicate
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	first := p.b.activity[0].RequestID.String()
	want := []struct {
		status, reason, dupOf, detail string
	}{
		{chstore.StatusSuccess, "", "", "attribute shop omitted: header X-Shopify-Shop-Domain is absent"},
		{chstore.StatusDuplicate, "", first, "duplicate of request " + first + ": the same X-Shopify-Webhook-Id header within 24h; no event fired"},
		{chstore.StatusFailed, wire.ReasonUserNotFound, "", ""},
		{chstore.StatusDuplicate, "", p.b.activity[2].RequestID.String(), "duplicate of"},
		{chstore.StatusSuccess, "", "", "not de-duplicated: header X-Shopify-Webhook-Id is absent"},
		{chstore.StatusDuplicate, "", first, "duplicate of"},
	}
	if len(p.b.activity) != len(want) {
		t.Fatalf("%d activity rows; want %d", len(p.b.activity), len(want))
	}
	for i, w := range want {
		r := p.b.activity[i]
		if r.Status != w.status || r.Reason != w.reason || r.DuplicateOf != w.dupOf || !strings.Contains(r.Detail, w.detail) {
			t.Errorf("row %d: %s/%q duplicate of %q, detail %q; want %s/%q duplicate of %q, detail containing %q",
				i, r.Status, r.Reason, r.DuplicateOf, r.Detail, w.status, w.reason, w.dupOf, w.detail)
		}
	}
	if h := p.b.activity[0].Headers; h != `{"X-Shopify-Topic":"orders/create","X-Shopify-Webhook-Id":"d-1","X-Shopify-Triggered-At":"2025-06-01T12:00:00Z"}` {
		t.Errorf("headers %s; want the three sent, in order", h)
	}
	if len(p.b.fire) != 2 || len(p.b.events) != 2 {
		t.Fatalf("%d events to fire, %d events rows; want 2 (offsets 0 and 4)", len(p.b.fire), len(p.b.events))
	}
	var attrs map[string]any
	if err := json.Unmarshal([]byte(p.b.events[0].Attributes), &attrs); err != nil {
		t.Fatal(err)
	}
	if attrs["topic"] != "orders/create" || attrs["at"] != "2025-06-01T12:00:00Z" || attrs["other"] != "from the payload" {
		t.Errorf("attributes %v; want topic and at from the headers, other from the payload (X-Not-Kept is not kept)", attrs)
	}
	if store.calls != 1 {
		t.Errorf("%d claim calls for one poll; want 1", store.calls)
	}

	// The same records again (a replay after a crash): the same verdicts.
	p.b.reset()
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if r := p.b.activity[i]; r.Status != w.status || r.DuplicateOf != w.dupOf {
			t.Errorf("replayed row %d: %s duplicate of %q; want %s duplicate of %q", i, r.Status, r.DuplicateOf, w.status, w.dupOf)
		}
	}
}

// TestProcessorIdentifyByHeader: the identifier may come from a kept header.
func TestProcessorIdentifyByHeader(t *testing.T) {
	p, _ := unitProcessor(t)
	h := &webhook.Hook{PublicID: "wh_hdr", ProjectID: 1, Version: 1, Enabled: true, EventName: "Ping",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: `headers["X-User-Id"]`},
		Headers:  []webhook.KeptHeader{webhook.NewKeptHeader("x-user-id")}}
	p.hooks = mapHooks{"wh_hdr": h}
	now := time.Now().UnixMilli()
	recs := []*kgo.Record{
		senderRecord("wh_hdr", 0, `{}`, now, "x-user-id", " 12345 "),
		senderRecord("wh_hdr", 1, `{"headers":{"X-User-Id":"12345"}}`, now),
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	if r := p.b.activity[0]; r.Status != chstore.StatusSuccess || r.IdentifierValue != "12345" || r.UserID != "12345" {
		t.Errorf("row 0: %s %q (detail %q); want success for 12345", r.Status, r.IdentifierValue, r.Detail)
	}
	if r := p.b.activity[1]; r.Reason != wire.ReasonIdentifierMissing || !strings.Contains(r.Detail, "header x-user-id is absent") {
		t.Errorf("row 1: %s %q; want identifier_missing, the header absent (the payload is not read)", r.Reason, r.Detail)
	}
}

// TestProcessorBodyKeys: a key in a body field (Stripe's id) and a key hashed from the body and
// headers; the detail says why a request could not be de-duplicated.
func TestProcessorBodyKeys(t *testing.T) {
	p, _ := unitProcessor(t)
	stripe := &webhook.Hook{PublicID: "wh_stripe", ProjectID: 1, Version: 1, Enabled: true, EventName: "Paid",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"}, Dedup: webhook.Dedup{Key: "body:id"}}
	hashed := &webhook.Hook{PublicID: "wh_hash", ProjectID: 1, Version: 1, Enabled: true, EventName: "Paid",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		Dedup:    webhook.Dedup{Key: webhook.DedupBodyHash, HashHeaders: []string{"X-Topic"}},
		Headers:  []webhook.KeptHeader{webhook.NewKeptHeader("X-Topic")}}
	p.hooks = mapHooks{"wh_stripe": stripe, "wh_hash": hashed}
	p.deliveries = &memDeliveries{}
	now := time.Now().UnixMilli()
	recs := []*kgo.Record{
		senderRecord("wh_stripe", 0, `{"id":"evt_1","user_id":"12345"}`, now),
		senderRecord("wh_stripe", 1, `{"user_id":"12345","id":"evt_1","livemode":false}`, now), // the same id, another body
		senderRecord("wh_stripe", 2, `{"id":17,"user_id":"12345"}`, now),
		senderRecord("wh_stripe", 3, `{"id":{"a":1},"user_id":"12345"}`, now),
		senderRecord("wh_stripe", 4, `{"user_id":"12345"}`, now),
		senderRecord("wh_hash", 5, `{"user_id":"12345"}`, now, "X-Topic", "a"),
		senderRecord("wh_hash", 6, `{"user_id":"12345"}`, now, "X-Topic", "a"),
		senderRecord("wh_hash", 7, `{"user_id":"12345"}`, now, "X-Topic", "b"),
		senderRecord("wh_hash", 8, `{"user_id":"12345"}`, now),
		senderRecord("wh_hash", 9, `{"user_id": "12345"}`, now, "X-Topic", "a"), // another body
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	want := []struct{ status, detail string }{
		{chstore.StatusSuccess, ""}, {chstore.StatusDuplicate, "the same field id within 24h"}, {chstore.StatusSuccess, ""},
		{chstore.StatusSuccess, "not de-duplicated: field id is an object, not a delivery id"},
		{chstore.StatusSuccess, "not de-duplicated: field id is absent"},
		{chstore.StatusSuccess, ""}, {chstore.StatusDuplicate, "the same body and X-Topic header within 10m"},
		{chstore.StatusSuccess, ""}, {chstore.StatusSuccess, ""}, {chstore.StatusSuccess, ""},
	}
	for i, w := range want {
		if r := p.b.activity[i]; r.Status != w.status || !strings.Contains(r.Detail, w.detail) {
			t.Errorf("row %d: %s %q; want %s with detail containing %q", i, r.Status, r.Detail, w.status, w.detail)
		}
	}
}

// TestProcessorClaimRetried: while the delivery store cannot answer, the poll waits (nothing is
// decided); once it answers, the verdicts are right.
func TestProcessorClaimRetried(t *testing.T) {
	p, _ := unitProcessor(t)
	p.hooks = mapHooks{"wh_shop": shopifyHook()}
	store := &memDeliveries{down: 3}
	p.deliveries = store
	now := time.Now().UnixMilli()
	recs := []*kgo.Record{
		senderRecord("wh_shop", 0, unitSeed, now, "X-Shopify-Webhook-Id", "d-1"),
		senderRecord("wh_shop", 1, unitSeed, now, "X-Shopify-Webhook-Id", "d-1"),
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	if store.calls != 4 {
		t.Errorf("%d claim calls; want 4 (3 failed, then the answer)", store.calls)
	}
	if a := p.b.activity; len(a) != 2 || a[0].Status != chstore.StatusSuccess || a[1].Status != chstore.StatusDuplicate {
		t.Errorf("rows %+v; want a success and its duplicate", a)
	}

	// A context that ends while the store is down: an error, no rows.
	p.b.reset()
	store.down = 1 << 30
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.handle(ctx, fetches(senderRecord("wh_shop", 2, unitSeed, now, "X-Shopify-Webhook-Id", "d-2"))); err == nil {
		t.Fatal("handle returned nil while the store was down; want the context's error")
	}
	if len(p.b.activity) != 0 {
		t.Errorf("%d rows written while the store was down; want 0", len(p.b.activity))
	}
}

// TestProcessorWithoutDeliveryStore: a webhook with dedup on a pipeline without a delivery store is
// processed as before, and its entries say they were not de-duplicated.
func TestProcessorWithoutDeliveryStore(t *testing.T) {
	p, _ := unitProcessor(t)
	p.hooks = mapHooks{"wh_shop": shopifyHook()}
	now := time.Now().UnixMilli()
	recs := []*kgo.Record{
		senderRecord("wh_shop", 0, unitSeed, now, "X-Shopify-Webhook-Id", "d-1"),
		senderRecord("wh_shop", 1, unitSeed, now, "X-Shopify-Webhook-Id", "d-1"),
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	for i, r := range p.b.activity {
		if r.Status != chstore.StatusSuccess || !strings.Contains(r.Detail, "no delivery store") {
			t.Errorf("row %d: %s %q; want success, not de-duplicated", i, r.Status, r.Detail)
		}
	}
}

// TestProcessorDuplicateEndsAStreak: a duplicate is an authenticated, accepted request: it ends an
// auth-failure streak as any accepted request does (and ClickHouse's streak state, read on assignment,
// counts it so: its reason is not auth_rejected).
func TestProcessorDuplicateEndsAStreak(t *testing.T) {
	p, _ := unitProcessor(t)
	p.hooks = mapHooks{"wh_shop": shopifyHook()}
	p.deliveries = &memDeliveries{}
	now := time.Now().UnixMilli()
	rejected := func(off int64) *kgo.Record {
		r := senderRecord("wh_shop", off, "", now)
		var req wire.Request
		wire.DecodeRequest(r, &req)
		req.Outcome, req.EdgeStatus = wire.OutcomeAuthRejected, 401
		r.Headers = new(wire.RequestHeaders).Encode(&req)
		return r
	}
	recs := []*kgo.Record{senderRecord("wh_shop", 0, unitSeed, now, "X-Shopify-Webhook-Id", "d-1")}
	for off := int64(1); off <= 4; off++ {
		recs = append(recs, rejected(off))
	}
	recs = append(recs, senderRecord("wh_shop", 5, unitSeed, now, "X-Shopify-Webhook-Id", "d-1"))
	for off := int64(6); off <= 9; off++ {
		recs = append(recs, rejected(off))
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	if r := p.b.activity[5]; r.Status != chstore.StatusDuplicate {
		t.Fatalf("row 5: %s; want the duplicate", r.Status)
	}
	if len(p.b.notes) != 0 {
		t.Errorf("%d notifications; want none (the duplicate ended the first run of four)", len(p.b.notes))
	}
}
