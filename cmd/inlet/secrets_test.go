package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestSecretsReseal walks a master key rotation against PostgreSQL: secrets sealed under the old key —
// a current and a previous (rotation grace) Bearer secret, a Shopify signing secret, and one stored in
// the form from before ciphertexts carried a key id — all open once the new key is current and the old
// one previous; `inlet secrets reseal` rewrites them, in batches, and a second run finds nothing to do;
// with the old key removed everything still opens. A secret sealed under a key nobody configured is
// reported by name (exit 1), not a crash, and the other webhooks are resealed.
func TestSecretsReseal(t *testing.T) {
	pg, pool := testenv.Postgres(t)
	ctx := context.Background()
	oldKey, newKey, lostKey := config.NewMasterKey(), config.NewMasterKey(), config.NewMasterKey()
	env := func(current string, previous ...string) []string {
		return []string{"INLET_POSTGRES_DSN=" + pg.DSN, "INLET_SECRETS_MASTER_KEY=" + current,
			"INLET_SECRETS_PREVIOUS_MASTER_KEYS=" + strings.Join(previous, ",")}
	}
	open := func(environ []string) *store.Bundle {
		t.Helper()
		cfg, err := config.Load("", environ)
		if err != nil {
			t.Fatal(err)
		}
		stores, err := compose.OpenStores(ctx, cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stores.Close)
		return stores
	}

	// Under the old key: three webhooks, one rotated with a grace period (a previous secret too).
	old := open(env(oldKey))
	p, _, err := old.Projects.Create(ctx, "Rotation")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Webhooks.CreateEvent(ctx, p.ID, seed.Event("CheckoutSuccess", "")); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // public id → its current secret
	for _, name := range []string{"Bearer", "Rotated", "Legacy"} {
		wh, sec, err := old.Webhooks.Create(ctx, p.ID, seed.Webhook(name, "CheckoutSuccess", seed.Sample))
		if err != nil {
			t.Fatal(err)
		}
		want[wh.ID] = sec
		switch name {
		case "Rotated":
			if want[wh.ID], err = old.Webhooks.RotateSecret(ctx, p.ID, wh.ID, time.Hour, ""); err != nil {
				t.Fatal(err)
			}
		case "Legacy":
			// As stored before ciphertexts carried their key's id.
			if _, err := pool.Exec(ctx, `UPDATE webhooks SET secret_ciphertext = $2 WHERE public_id = $1`,
				wh.ID, legacySeal(t, oldKey, sec, wh.ID)); err != nil {
				t.Fatal(err)
			}
		}
	}
	in := seed.Webhook("Shopify", "CheckoutSuccess", seed.Sample)
	in.Sender, in.Secret = "shopify", "shopify-signing-secret"
	shop, _, err := old.Webhooks.Create(ctx, p.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	want[shop.ID] = in.Secret

	// everythingOpens: the console's credentials show each secret, and the data path loads each webhook
	// (a Shopify webhook's verifier, and a rotated one's previous secret, are opened from their
	// ciphertexts).
	everythingOpens := func(stage string, b *store.Bundle) {
		t.Helper()
		for id, sec := range want {
			c, err := b.Webhooks.Credentials(ctx, p.ID, id)
			if err != nil {
				t.Fatalf("%s: credentials of %s: %v", stage, id, err)
			}
			if c.Secret != sec {
				t.Fatalf("%s: credentials of %s = %q; want %q", stage, id, c.Secret, sec)
			}
			if _, err := b.Webhooks.Hook(ctx, id); err != nil {
				t.Fatalf("%s: load %s for the data path: %v", stage, id, err)
			}
		}
	}
	everythingOpens("old key", old)
	if _, err := open(env(newKey)).Webhooks.Credentials(ctx, p.ID, shop.ID); err == nil {
		t.Fatal("the new key alone opens a secret sealed under the old one before the reseal")
	}
	everythingOpens("new key, old key previous", open(env(newKey, oldKey)))

	inlet := func(wantCode int, environ []string, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(args, environ, &stdout, &stderr); code != wantCode {
			t.Fatalf("inlet %s: exit %d; want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, stdout.String(), stderr.String())
		}
		return stdout.String() + stderr.String()
	}
	summary := regexp.MustCompile(`(\d+) webhooks: (\d+) secrets resealed, (\d+) already under the current key, (\d+) not opened`)
	out := inlet(exitOK, env(newKey, oldKey), "secrets", "reseal", "-batch", "2")
	// Four webhooks: four current secrets and the rotated one's previous secret.
	if m := summary.FindStringSubmatch(out); m == nil || m[1] != "4" || m[2] != "5" || m[3] != "0" || m[4] != "0" {
		t.Fatalf("first reseal printed:\n%s\nwant 4 webhooks, 5 resealed", out)
	}
	if !strings.Contains(out, keyID(mustKey(t, newKey))) || !strings.Contains(out, keyID(mustKey(t, oldKey))) {
		t.Errorf("first reseal printed:\n%s\nwant the ids of both keys", out)
	}
	out = inlet(exitOK, env(newKey, oldKey), "secrets", "reseal")
	if m := summary.FindStringSubmatch(out); m == nil || m[2] != "0" || m[3] != "5" {
		t.Fatalf("second reseal printed:\n%s\nwant nothing resealed, 5 already current", out)
	}
	everythingOpens("new key alone, after the reseal", open(env(newKey)))

	// A secret sealed under a key that is not configured: reported, the rest done.
	lost, err := secret.NewSealer(mustKey(t, lostKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE webhooks SET secret_ciphertext = $2 WHERE public_id = $1`,
		shop.ID, lost.Seal([]byte(in.Secret), []byte(shop.ID))); err != nil {
		t.Fatal(err)
	}
	out = inlet(exitFail, env(newKey), "secrets", "reseal")
	if m := summary.FindStringSubmatch(out); m == nil || m[3] != "4" || m[4] != "1" ||
		!strings.Contains(out, "not opened: webhook "+shop.ID+" secret_ciphertext: sealed under a key that is not configured") {
		t.Fatalf("reseal with an unknown key printed:\n%s\nwant 4 current, webhook %s not opened, named", out, shop.ID)
	}
}

func mustKey(t *testing.T, b64 string) []byte {
	t.Helper()
	cfg, err := config.Load("", []string{"INLET_SECRETS_MASTER_KEY=" + b64})
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Secrets.Key()
}

// legacySeal seals as Inlet did before ciphertexts carried a key id: nonce, ciphertext, tag.
func legacySeal(t *testing.T, b64, plaintext, aad string) []byte {
	t.Helper()
	block, err := aes.NewCipher(mustKey(t, b64))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
}
