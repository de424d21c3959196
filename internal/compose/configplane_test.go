package compose

import (
	"context"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// TestConfigPlaneVerifiers: the ingestor's config plane caches webhooks with their verifiers, the
// pipeline's without (it never verifies a request), for the same HMAC webhook.
func TestConfigPlaneVerifiers(t *testing.T) {
	pg, pool := testenv.Postgres(t)
	cfg := config.Defaults()
	cfg.Postgres = pg
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var pid int64
	if err := pool.QueryRow(ctx, `INSERT INTO projects (name) VALUES ('planes') RETURNING id`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	ingest, err := openConfigPlane(ctx, &cfg, nil, testenv.Logger(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ingest.close)
	pipe, err := openConfigPlane(ctx, &cfg, nil, testenv.Logger(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pipe.close)
	if _, err := ingest.stores.Webhooks.CreateEvent(ctx, pid, webhook.EventInput{Name: "OrderPaid",
		Attributes: []webhook.Attribute{{Name: "total", Type: webhook.TypePrice}}}); err != nil {
		t.Fatal(err)
	}
	w, _, err := ingest.stores.Webhooks.Create(ctx, pid, webhook.WebhookInput{Name: "shop", Sender: "shopify", Secret: "shpss_planes",
		EventName: "OrderPaid", Identify: webhook.Identify{Kind: identify.ByEmail, Field: "email"},
		Mappings: []webhook.Mapping{{Attribute: "total", Field: "total_price"}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name      string
		plane     *configPlane
		verifiers bool
	}{{"ingestor", ingest, true}, {"pipeline", pipe, false}} {
		h, err := tc.plane.hooks.Get(ctx, w.ID)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := h.Verifier(now) != nil; got != tc.verifiers {
			t.Errorf("%s's cached webhook has a verifier: %v; want %v", tc.name, got, tc.verifiers)
		}
		if h.Verification.Mode != verify.ModeHMAC || len(h.Routes) != 1 {
			t.Errorf("%s's cached webhook: verification %q, %d routes; want hmac, 1", tc.name, h.Verification.Mode, len(h.Routes))
		}
	}
}
