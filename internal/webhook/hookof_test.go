package webhook

import (
	"context"
	"reflect"
	"testing"
)

// TestHookOfAsLoaded: HookOf makes, without PostgreSQL, the Hook that Store.Hook reads for the same
// config (routes, sender, sensitive fields), so that what is measured with it is what a process holds.
// Only what comes of the secrets differs (the digests, the verifiers' keys and the masking key), and
// when the secret was made.
func TestHookOfAsLoaded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := shopifyRoutes(f, t)
	in.Sensitive = &Sensitive{Fields: []string{"email"}, Headers: []string{"X-Shopify-Shop-Domain"}}
	in.TimeZone = "Europe/Berlin"
	w, _, err := f.store.Create(ctx, f.p1, in)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := f.store.Hook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	var evs []*Event
	for _, r := range w.Routes {
		ev, err := f.store.GetEventByName(ctx, f.p1, r.EventName)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	made, err := f.store.HookOf(w.ID, f.p1, loaded.Version, in, evs)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.verifier == nil || made.verifier == nil {
		t.Fatalf("verifiers: loaded %v, made %v; want both (an HMAC sender)", loaded.verifier, made.verifier)
	}
	if len(loaded.Mask.Key) == 0 || len(made.Mask.Key) != len(loaded.Mask.Key) {
		t.Fatalf("masking keys of %d and %d bytes; want both", len(loaded.Mask.Key), len(made.Mask.Key))
	}
	made.Enabled, made.SecretDigest, made.verifier, made.verifierPrev = loaded.Enabled, loaded.SecretDigest, loaded.verifier, loaded.verifierPrev
	made.Mask.Key, made.SecretRotatedAt = loaded.Mask.Key, loaded.SecretRotatedAt
	if !reflect.DeepEqual(made, loaded) {
		t.Errorf("HookOf = %+v\nwant as loaded %+v", made, loaded)
	}
}
