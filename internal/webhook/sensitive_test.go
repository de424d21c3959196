package webhook

import (
	"context"
	"testing"
)

// TestSensitive: the marked fields and headers are saved canonical, the project gets a masking key
// (one, shared by its webhooks), and the data-path view carries both; bad paths and names are refused.
func TestSensitive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := seedInput()
	in.Sensitive = &Sensitive{Fields: []string{"email_address", `["customer"].phone`}, Headers: []string{"x-client-ip"}}
	w, _, err := f.store.Create(ctx, f.p1, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Sensitive; len(got.Fields) != 2 || got.Fields[1] != "customer.phone" || got.Headers[0] != "X-Client-Ip" {
		t.Fatalf("saved sensitive %+v; want canonical paths and names", got)
	}
	h, err := f.store.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Mask.Active() || len(h.Mask.Key) != MaskKeySize || len(h.Mask.Fields) != 2 || h.Mask.Headers[0] != "X-Client-Ip" {
		t.Fatalf("hook mask %+v; want the fields, the header and a %d-byte key", h.Mask, MaskKeySize)
	}
	// A second webhook of the project shares the key: equal values hash alike across its webhooks.
	in2 := seedInput()
	in2.Name = "second"
	in2.Sensitive = &Sensitive{Fields: []string{"email_address"}}
	w2, _, err := f.store.Create(ctx, f.p1, in2)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := f.store.Hook(ctx, w2.ID)
	if string(h2.Mask.Key) != string(h.Mask.Key) {
		t.Fatal("two webhooks of one project have different masking keys")
	}
	// An edit that leaves sensitive out keeps it; one that empties it unmasks.
	name := "renamed"
	w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Name: &name})
	if err != nil || len(w.Sensitive.Fields) != 2 {
		t.Fatalf("after a rename: %+v, %v; want the fields kept", w.Sensitive, err)
	}
	w, err = f.store.Update(ctx, f.p1, w.ID, 0, WebhookPatch{Sensitive: &Sensitive{}})
	if err != nil || len(w.Sensitive.Fields) != 0 {
		t.Fatalf("after emptying: %+v, %v", w.Sensitive, err)
	}
	if h, _ := f.store.Hook(ctx, w.ID); h.Mask.Active() {
		t.Fatal("an emptied webhook still masks")
	}
	// Unmarked webhooks have no mask; bad input names its field.
	plain, _ := f.create(t, "plain")
	if h, _ := f.store.Hook(ctx, plain.ID); h.Mask.Active() {
		t.Fatal("an unmarked webhook masks")
	}
	bad := seedInput()
	bad.Name = "bad"
	bad.Sensitive = &Sensitive{Fields: []string{"a..b"}, Headers: []string{"bad header"}}
	_, _, err = f.store.Create(ctx, f.p1, bad)
	wantFields(t, err, "sensitive.fields[0]", "sensitive.headers[0]")
	many := seedInput()
	many.Name = "many"
	many.Sensitive = &Sensitive{}
	for range MaxSensitive + 1 {
		many.Sensitive.Fields = append(many.Sensitive.Fields, "email_address")
	}
	_, _, err = f.store.Create(ctx, f.p1, many)
	wantFields(t, err, "sensitive.fields")
}
