package webhook

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/verify"
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

// TestWithoutVerifiers: a store view WithoutVerifiers reads an HMAC webhook without its verifiers, and
// such a Hook refuses every request rather than verify without them.
func TestWithoutVerifiers(t *testing.T) {
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	in, evs := shareInput("email")
	in.Sender, in.Secret = "shopify", "shpss_test"
	full := NewStore(nil, sealer)
	with, err := full.HookOf("wh_v", 1, 1, in, evs)
	if err != nil {
		t.Fatal(err)
	}
	without, err := full.WithoutVerifiers().HookOf("wh_v", 1, 1, in, evs)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if with.Verifier(now) == nil || without.Verifier(now) != nil {
		t.Fatalf("verifiers: %v with, %v without; want one, none", with.Verifier(now), without.Verifier(now))
	}
	req := shopifySigned("shpss_test", `{"id":1}`)
	if res := with.Verify(req, now); res != verify.OK {
		t.Errorf("Verify with verifiers = %v; want %v", res, verify.OK)
	}
	if res := without.Verify(req, now); res != verify.CredentialsMismatch {
		t.Errorf("Verify without verifiers = %v; want %v", res, verify.CredentialsMismatch)
	}
	if c, cw := cost(&entry{hook: with}), cost(&entry{hook: without}); cw >= c {
		t.Errorf("estimated cost %d without verifiers, %d with; want less", cw, c)
	}
}
