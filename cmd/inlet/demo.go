package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/inlet-dev/inlet/admin"
	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/seed"
)

// The demo: the seed's sample payload, event and webhook.
const (
	demoProject = "Demo shop"
	demoEvent   = "CheckoutSuccess"
	demoWebhook = "Shop checkout"
	demoSample  = `{
  "user_id": "12345",
  "email_address": "jane@example.com",
  "mobile": "+15551234567",
  "purchase_date": "2024-03-15",
  "order_number": "ORD-001",
  "price": 99.99,
  "payment_state": "success"
}`
)

// demoState is kept in the state directory so that a second `make run` reuses the same API key (only
// its digest is in PostgreSQL).
type demoState struct {
	APIKey string `json:"api_key"`
}

// demo seeds the demo project — the seed's CheckoutSuccess event, its sample webhook (enabled) and a few
// users and devices — idempotently (seed.Ensure), then prints how to use them.
func demo(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	stateDir := fs.String("state", os.Getenv("INLET_STATE_DIR"), "directory keeping the demo API key between runs (default $INLET_STATE_DIR)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	stores, err := compose.OpenStores(ctx, cfg, nil, log)
	if err != nil {
		return err
	}
	defer stores.Close()

	var state demoState
	statePath := ""
	if *stateDir != "" {
		statePath = filepath.Join(*stateDir, "inlet", "demo.json")
		if b, err := os.ReadFile(statePath); err == nil {
			_ = json.Unmarshal(b, &state)
		}
	}
	seeded, err := seed.Ensure(ctx, stores, seed.Spec{
		Project: demoProject, KeyName: "demo", APIKey: state.APIKey,
		Event: demoEvent, EventDescription: "A checkout completed in the web shop",
		Webhooks: []string{demoWebhook}, Sample: demoSample,
		Users: []directory.User{
			{UserID: seed.UserID, Email: "jane@example.com", Phone: "+15551234567"},
			{UserID: "67890", Email: "sam@example.com", Phone: "+442071838750"},
		},
		Devices: []directory.Device{
			{HWID: "demo-ios-5f2c", UserID: "12345", Platform: "ios"},
			{HWID: "demo-web-9a1e", UserID: "12345", Platform: "web"},
			{HWID: "demo-android-77b0", UserID: "67890", Platform: "android"},
		},
	}, log)
	if err != nil {
		return err
	}
	if seeded.APIKey != state.APIKey && statePath != "" {
		state.APIKey = seeded.APIKey
		b, _ := json.Marshal(state)
		if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(statePath, b, 0o600); err != nil {
			return err
		}
	}

	hook := seeded.Hooks[0]
	url := cfg.Admin.PublicBaseURL + "/hooks/" + hook.ID
	fmt.Fprintf(stdout, "Demo project %q is ready.\n", demoProject)
	fmt.Fprintf(stdout, "  Console:      http://%s/\n", cfg.Admin.ListenAddr)
	fmt.Fprintf(stdout, "  Admin API key: %s\n", seeded.APIKey)
	fmt.Fprintf(stdout, "  Webhook URL:  %s\n", url)
	fmt.Fprintf(stdout, "  Secret:       %s\n", hook.Authorization)
	fmt.Fprintln(stdout, "Send the seed's sample payload:")
	fmt.Fprintln(stdout, admin.ExampleCurl(url, hook.Authorization, demoSample))
	return nil
}
