package seed_test

import (
	"context"
	"slices"
	"testing"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
)

func openStores(t *testing.T) *store.Bundle {
	t.Helper()
	pg, _ := testenv.Postgres(t)
	cfg := config.Defaults()
	cfg.Postgres = pg
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := compose.OpenStores(context.Background(), &cfg, nil, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// TestEnsure: a second Ensure with what the first returned creates nothing and returns the same project,
// key and webhooks; a webhook disabled meanwhile is enabled again; a key that no longer authenticates
// is replaced; secrets passed as known are not read back.
func TestEnsure(t *testing.T) {
	ctx := context.Background()
	st := openStores(t)
	spec := seed.Spec{
		Project: "Demo shop", KeyName: "demo",
		Event: "CheckoutSuccess", EventDescription: "A checkout",
		Webhooks: []string{"Shop checkout", "Second"}, Sample: seed.Sample,
		Users:   []directory.User{{UserID: seed.UserID, Email: "jane@example.com"}},
		Devices: []directory.Device{{HWID: "ios-1", UserID: seed.UserID, Platform: "ios"}},
	}
	first, err := seed.Ensure(ctx, st, spec, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if first.APIKey == "" || len(first.Hooks) != 2 || first.Hooks[0].Authorization == "" {
		t.Fatalf("first Ensure = %+v; want a key and two webhooks with secrets", first)
	}
	if _, err := st.Webhooks.SetEnabled(ctx, first.ProjectID, first.Hooks[1].ID, 0, false); err != nil {
		t.Fatal(err)
	}

	spec.APIKey = first.APIKey
	again, err := seed.Ensure(ctx, st, spec, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if again.ProjectID != first.ProjectID || again.APIKey != first.APIKey || !slices.Equal(again.Hooks, first.Hooks) {
		t.Fatalf("second Ensure = %+v; want the first's %+v", again, first)
	}
	page, err := st.Webhooks.List(ctx, first.ProjectID, webhook.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 2 {
		t.Fatalf("%d webhooks after two Ensures; want 2", page.Total)
	}
	for _, w := range page.Webhooks {
		if !w.Enabled {
			t.Errorf("webhook %q is disabled after Ensure", w.Name)
		}
	}
	keys, err := st.Projects.ListKeys(ctx, first.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d API keys after two Ensures with the first's key; want 1", len(keys))
	}

	// A key of nowhere is replaced by a new key of the same project; a known secret is taken as given.
	spec.APIKey = "inl_gone"
	spec.Known = map[string]string{first.Hooks[0].ID: "Bearer known"}
	third, err := seed.Ensure(ctx, st, spec, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if third.ProjectID != first.ProjectID || third.APIKey == first.APIKey || third.APIKey == "" {
		t.Fatalf("Ensure with an unknown key: project %d, key %q; want project %d and a new key", third.ProjectID, third.APIKey, first.ProjectID)
	}
	if c, err := st.Projects.Authenticate(ctx, third.APIKey); err != nil || c.ProjectID != first.ProjectID {
		t.Fatalf("the new key authenticates as %+v, %v; want project %d", c, err, first.ProjectID)
	}
	if got := third.Hooks[0].Authorization; got != "Bearer known" {
		t.Fatalf("known webhook's Authorization = %q; want the one given", got)
	}

	// Without KeyName no key is returned, and the project is found by name.
	spec.KeyName, spec.APIKey = "", ""
	nokey, err := seed.Ensure(ctx, st, spec, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if nokey.ProjectID != first.ProjectID || nokey.APIKey != "" {
		t.Fatalf("Ensure without KeyName: project %d, key %q; want project %d and no key", nokey.ProjectID, nokey.APIKey, first.ProjectID)
	}
}
