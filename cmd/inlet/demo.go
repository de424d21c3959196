package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/inlet-dev/inlet/admin"
	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/webhook"
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
// users and devices — idempotently, then prints how to use them.
func demo(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	stateDir := fs.String("state", os.Getenv("INLET_STATE_DIR"), "directory keeping the demo API key between runs (default $INLET_STATE_DIR)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	pool, err := pgdb.Open(ctx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	sealer, err := secret.NewSealer(cfg.Secrets.Key())
	if err != nil {
		return err
	}
	projects := project.NewStore(pool)
	hooks := webhook.NewStore(pool, sealer)
	dir, err := directory.NewStore(pool, projects, cfg.Directory, nil, log)
	if err != nil {
		return err
	}

	// Project and API key.
	var state demoState
	statePath := ""
	if *stateDir != "" {
		statePath = filepath.Join(*stateDir, "inlet", "demo.json")
		if b, err := os.ReadFile(statePath); err == nil {
			_ = json.Unmarshal(b, &state)
		}
	}
	var pid int64
	if state.APIKey != "" {
		if c, err := projects.Authenticate(ctx, state.APIKey); err == nil {
			pid = c.ProjectID
		}
	}
	if pid == 0 {
		p, err := projects.FindByName(ctx, demoProject)
		switch {
		case errors.Is(err, project.ErrNotFound):
			p, state.APIKey, err = projects.Create(ctx, demoProject)
			if err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if _, state.APIKey, err = projects.CreateKey(ctx, p.ID, "demo"); err != nil {
				return err
			}
		}
		pid = p.ID
		if statePath != "" {
			b, _ := json.Marshal(state)
			if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(statePath, b, 0o600); err != nil {
				return err
			}
		}
	}

	// Event.
	if _, err := hooks.GetEventByName(ctx, pid, demoEvent); errors.Is(err, domainerr.ErrNotFound) {
		_, err = hooks.CreateEvent(ctx, pid, seed.Event(demoEvent, "A checkout completed in the web shop"))
		if err != nil {
			return fmt.Errorf("demo event: %w", err)
		}
	} else if err != nil {
		return err
	}

	// Webhook, enabled.
	page, err := hooks.List(ctx, pid, webhook.ListFilter{Search: demoWebhook, Limit: 10})
	if err != nil {
		return err
	}
	var id string
	for _, w := range page.Webhooks {
		if w.Name == demoWebhook {
			id = w.ID
		}
	}
	if id == "" {
		w, _, err := hooks.Create(ctx, pid, seed.Webhook(demoWebhook, demoEvent, demoSample))
		if err != nil {
			return fmt.Errorf("demo webhook: %w", err)
		}
		id = w.ID
	}
	if _, err := hooks.SetEnabled(ctx, pid, id, 0, true); err != nil {
		return err
	}

	// A few users and devices.
	for _, u := range []directory.User{
		{UserID: seed.UserID, Email: "jane@example.com", Phone: "+15551234567"},
		{UserID: "67890", Email: "sam@example.com", Phone: "+442071838750"},
	} {
		if _, _, err := dir.UpsertUser(ctx, pid, u); err != nil {
			return fmt.Errorf("demo user %s: %w", u.UserID, err)
		}
	}
	for _, d := range []directory.Device{
		{HWID: "demo-ios-5f2c", UserID: "12345", Platform: "ios"},
		{HWID: "demo-web-9a1e", UserID: "12345", Platform: "web"},
		{HWID: "demo-android-77b0", UserID: "67890", Platform: "android"},
	} {
		if _, _, err := dir.UpsertDevice(ctx, pid, d); err != nil {
			return fmt.Errorf("demo device %s: %w", d.HWID, err)
		}
	}

	creds, err := hooks.Credentials(ctx, pid, id)
	if err != nil {
		return err
	}
	url := cfg.Admin.PublicBaseURL + "/hooks/" + id
	fmt.Fprintf(stdout, "Demo project %q is ready.\n", demoProject)
	fmt.Fprintf(stdout, "  Console:      http://%s/\n", cfg.Admin.ListenAddr)
	fmt.Fprintf(stdout, "  Admin API key: %s\n", state.APIKey)
	fmt.Fprintf(stdout, "  Webhook URL:  %s\n", url)
	fmt.Fprintf(stdout, "  Secret:       %s\n", creds.Authorization)
	fmt.Fprintln(stdout, "Send the seed's sample payload:")
	fmt.Fprintln(stdout, admin.ExampleCurl(url, creds.Authorization, demoSample))
	return nil
}
