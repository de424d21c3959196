package pipeline

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// evalCase is one request, processed by the pipeline and evaluated by the dry run.
type evalCase struct {
	name, contentType, body string
	headers                 map[string]string
}

var evalCases = []evalCase{
	{name: "seed", body: unitSeed},
	{name: "user not found", body: `{"user_id":"nobody","price":1}`},
	{name: "identifier missing", body: `{"email_address":"x"}`},
	{name: "identifier an object", body: `{"user_id":{"a":1}}`},
	{name: "number out of range", body: `{"user_id":"12345","price":1e10000}`},
	{name: "attribute too large", body: `{"user_id":"12345","email_address":"` + strings.Repeat("x", 70_000) + `"}`},
	{name: "type mismatch", body: `{"user_id":"12345","price":"n/a","purchase_date":"2024-03-15"}`},
	{name: "dropped date", body: `{"user_id":"12345","purchase_date":"someday","price":2}`},
	{name: "null and absent", body: `{"user_id":12345,"email_address":null}`},
	{name: "invalid json", body: `{"user_id":"12345",}`},
	{name: "form", contentType: "application/x-www-form-urlencoded", body: "user_id=12345&price=99.99&email_address=jane%40example.com"},
	{name: "invalid form", contentType: "application/x-www-form-urlencoded", body: "user_id=%zz"},
	{name: "header", body: unitSeed, headers: map[string]string{"x-shopify-topic": "orders/create", "Authorization": "secret"}},
	{name: "header absent", body: unitSeed},
}

// evalHook is the unit processor's webhook with a dropped date, a kept header mapped and a list.
func evalHook() *webhook.Hook {
	return &webhook.Hook{PublicID: "wh_1", ProjectID: 1, Version: 1, Enabled: true, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		Headers:  []webhook.KeptHeader{webhook.NewKeptHeader("X-Shopify-Topic")},
		Mappings: []webhook.TypedMapping{
			{Attribute: "email", Type: webhook.TypeString, Field: "email_address"},
			{Attribute: "total", Type: webhook.TypePrice, Field: "price"},
			{Attribute: "purchase_date", Type: webhook.TypeDate, Field: "purchase_date", OnError: webhook.OnErrorDrop},
			{Attribute: "topic", Type: webhook.TypeString, Field: "headers.X-Shopify-Topic"},
		}}
}

// TestEvaluateIsThePipeline: for every case, the dry run's status, reason, detail and event are those
// the processor gives the same request: its activity row and its webhooks.events value.
func TestEvaluateIsThePipeline(t *testing.T) {
	p, _ := unitProcessor(t)
	hook := evalHook()
	p.hooks = mapHooks{"wh_1": hook}
	now := time.Now().UnixMilli()
	var recs []*kgo.Record
	var reqs []Request
	for i, c := range evalCases {
		id := uuid.Must(uuid.NewV7())
		r := &wire.Request{ID: id, WebhookID: "wh_1", ProjectID: 1, ReceivedMs: now, ConfigVersion: 1,
			Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(c.body)}
		if c.contentType != "" {
			r.ContentType = []byte(c.contentType)
		}
		// What the edge keeps of the headers.
		r.Sender = keptHeaders(hook.Headers, c.headers)
		recs = append(recs, &kgo.Record{Topic: "requests", Partition: 0, Offset: int64(i), Key: []byte("wh_1"),
			Value: []byte(c.body), Headers: new(wire.RequestHeaders).Encode(r)})
		reqs = append(reqs, Request{ID: id, ReceivedMs: now, Body: []byte(c.body), ContentType: c.contentType, Headers: c.headers})
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	evs, err := NewEvaluator(p.lim, p.resolver, nil).Evaluate(context.Background(), hook, reqs)
	if err != nil {
		t.Fatal(err)
	}
	fired := map[int]*kgo.Record{}
	for _, f := range p.b.fire {
		fired[f.activity] = f.rec
	}
	for i, c := range evalCases {
		row, ev := p.b.activity[i], evs[i]
		if ev.Status != row.Status || ev.Reason != row.Reason || ev.Detail != row.Detail {
			t.Errorf("%s: dry run %s/%s %q; want the pipeline's %s/%s %q", c.name, ev.Status, ev.Reason, ev.Detail, row.Status, row.Reason, row.Detail)
		}
		if ev.Identification.Value != row.IdentifierValue || ev.Identification.UserID != row.UserID {
			t.Errorf("%s: dry run identified %q as %q; want %q as %q", c.name, ev.Identification.Value, ev.Identification.UserID, row.IdentifierValue, row.UserID)
		}
		var want []byte
		if rec := fired[i]; rec != nil {
			want = rec.Value
		}
		if !bytes.Equal(ev.Event, want) {
			t.Errorf("%s: dry run event %s; want the fired %s", c.name, ev.Event, want)
		}
	}
}

// TestEvaluateShowsEveryAttribute: the dry run tells each attribute's outcome, those after a failing
// one and those of a request whose user is not found too, without changing the request's outcome.
func TestEvaluateShowsEveryAttribute(t *testing.T) {
	p, _ := unitProcessor(t)
	evs, err := NewEvaluator(p.lim, p.resolver, nil).Evaluate(context.Background(), evalHook(), []Request{
		{Body: []byte(`{"user_id":"12345","email_address":"a@b.c","price":"n/a","purchase_date":"2024-03-15"}`)},
		{Body: []byte(`{"user_id":"nobody","price":"12.5","purchase_date":"never"}`), Headers: map[string]string{"X-Shopify-Topic": "orders/paid"}},
		{Body: []byte(`{"user_id":"12345"`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := func(ev Evaluation) string {
		var s []string
		for _, a := range ev.Attributes {
			s = append(s, a.Attribute+"="+a.Outcome+":"+string(a.Value)+a.Reason)
		}
		return strings.Join(s, " ")
	}
	for i, want := range []struct{ status, reason, attrs string }{
		{chstore.StatusFailed, wire.ReasonAttributeTypeMismatch, `email=mapped:"a@b.c" total=failed:attribute_type_mismatch purchase_date=mapped:"2024-03-15T00:00:00Z" topic=omitted:`},
		{chstore.StatusFailed, wire.ReasonUserNotFound, `email=omitted: total=mapped:"12.5" purchase_date=dropped: topic=mapped:"orders/paid"`},
		{chstore.StatusFailed, wire.ReasonInvalidJSON, ``},
	} {
		ev := evs[i]
		if ev.Status != want.status || ev.Reason != want.reason || outcomes(ev) != want.attrs || ev.Event != nil {
			t.Errorf("request %d: %s/%s with %s (event %s); want %s/%s with %s and no event", i, ev.Status, ev.Reason, outcomes(ev), ev.Event, want.status, want.reason, want.attrs)
		}
	}
	if d := evs[1].Detail; strings.Contains(d, "attribute") {
		t.Errorf("detail of a user not found %q; want nothing of the attributes, which the pipeline never maps", d)
	}
}
