package webhook

import (
	"context"
	"errors"
	"testing"

	"github.com/inlet-dev/inlet/internal/domainerr"
)

// TestDraft: a draft is validated as a create or an edit is, names every invalid field, and writes
// nothing; its Hook maps as the saved one would.
func TestDraft(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := seedInput()
	in.Mappings = append(in.Mappings, Mapping{Attribute: "nope", Field: "x"})
	in.Identify.Field = ""
	_, err := f.store.Draft(ctx, f.p1, in)
	wantFields(t, err, "identify.field", "mappings[3].attribute")

	in = seedInput()
	in.SenderHeaders = []string{"X-Shopify-Topic"}
	h, err := f.store.Draft(ctx, f.p1, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Mappings) != 3 || h.Mappings[1].Type != TypePrice || len(h.Headers) != 1 || h.EventName != "CheckoutSuccess" {
		t.Errorf("draft hook %+v; want the seed's three typed mappings, one kept header, CheckoutSuccess", h)
	}
	page, err := f.store.List(ctx, f.p1, ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 0 {
		t.Errorf("%d webhooks after drafts; want 0", page.Total)
	}

	w, _ := f.create(t, "orders")
	ms := []Mapping{{Attribute: "total", Field: `["price"]`, OnError: OnErrorDrop}}
	h, err = f.store.DraftPatch(ctx, f.p1, w.ID, WebhookPatch{Mappings: &ms})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Mappings) != 1 || h.Mappings[0].Field != "price" || h.Mappings[0].OnError != OnErrorDrop || h.Version != w.Version || h.PublicID != w.ID {
		t.Errorf("patched draft %+v; want one mapping from price (drop) at version %d of %s", h, w.Version, w.ID)
	}
	bad := []Mapping{{Attribute: "total", Field: "a..b"}}
	_, err = f.store.DraftPatch(ctx, f.p1, w.ID, WebhookPatch{Mappings: &bad})
	wantFields(t, err, "mappings[0].field")
	if got, err := f.store.Get(ctx, f.p1, w.ID); err != nil || got.Version != w.Version || len(got.Mappings) != 3 {
		t.Errorf("webhook after drafts: %+v, %v; want it unchanged", got, err)
	}
	if _, err := f.store.DraftPatch(ctx, f.p2, w.ID, WebhookPatch{}); !errors.Is(err, domainerr.ErrNotFound) {
		t.Errorf("draft of another project's webhook: %v; want not found", err)
	}
}
