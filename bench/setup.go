package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// The bench project in PostgreSQL: its own project, event and webhooks, never the demo's.
const (
	benchProject = "Inlet bench"
	benchEvent   = "BenchCheckout"
	benchUserID  = seed.UserID // the seed payload's user_id: requests resolve and fire
	// benchItemEvent is what the fan-out webhooks fire, once per line item of an order.
	benchItemEvent = "ItemOrdered"
	// fanOutPrefix names the fan-out webhooks: bench-fanout-000000 and on.
	fanOutPrefix = "bench-fanout-"
	setupTimeout = 10 * time.Minute
)

// Hook is one bench webhook: its public id and how its requests authenticate: the Authorization value
// of a Bearer webhook, or the sender and secret of one connected as another sender.
type Hook struct {
	ID            string `json:"id"`
	Authorization string `json:"authorization,omitempty"`
	Sender        string `json:"sender,omitempty"`
	Secret        string `json:"secret,omitempty"`
}

// hookState is kept in the state directory so that later runs reuse the webhooks (secrets are only
// shown on creation; reading them back decrypts each one).
type hookState struct {
	ProjectID int64  `json:"project_id"`
	Hooks     []Hook `json:"hooks"`
}

// ensureHooks makes sure the bench project has n enabled webhooks, bench-000000 and on, and returns them
// with their secrets. Creating 10,000 takes a minute or so once; later runs read the secrets from
// statePath.
func ensureHooks(ctx context.Context, cfg *config.Config, n int, statePath string, log *slog.Logger) (int64, []Hook, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	stores, err := compose.OpenStores(ctx, cfg, nil, log)
	if err != nil {
		return 0, nil, err
	}
	defer stores.Close()

	// Secrets from the state file, when it has them.
	var st hookState
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	known := map[string]string{}
	for _, h := range st.Hooks {
		known[h.ID] = h.Authorization
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%06d", i)
	}
	seeded, err := seed.Ensure(ctx, stores, seed.Spec{
		Project: benchProject,
		Event:   benchEvent, EventDescription: "Bench suite load (the seed's CheckoutSuccess)",
		Webhooks: names, Sample: SeedSample, Known: known,
		Users: []directory.User{{UserID: benchUserID, Email: "jane@example.com", Phone: "+15551234567"}},
	}, log)
	if err != nil {
		return 0, nil, fmt.Errorf("bench project: %w", err)
	}
	out := make([]Hook, len(seeded.Hooks))
	for i, h := range seeded.Hooks {
		out[i] = Hook{ID: h.ID, Authorization: h.Authorization}
	}

	// Keep every known secret of the project, not only the n returned, for the next run.
	all := map[string]string{}
	if st.ProjectID == seeded.ProjectID {
		for id, a := range known {
			all[id] = a
		}
	}
	st = hookState{ProjectID: seeded.ProjectID}
	for _, h := range out {
		st.Hooks = append(st.Hooks, h)
		delete(all, h.ID)
	}
	for id, a := range all {
		st.Hooks = append(st.Hooks, Hook{ID: id, Authorization: a})
	}
	b, _ := json.Marshal(st)
	if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
		return 0, nil, fmt.Errorf("bench state: %w", err)
	}
	if err := os.WriteFile(statePath, b, 0o600); err != nil {
		return 0, nil, fmt.Errorf("bench state: %w", err)
	}
	return seeded.ProjectID, out, nil
}

// signedState is the state file of a sender's bench webhooks (webhooks-<sender>.json).
type signedState struct {
	ProjectID int64  `json:"project_id"`
	Hooks     []Hook `json:"hooks"`
}

// ensureSignedHooks makes sure the bench project has n enabled webhooks connected as sender,
// bench-<sender>-000000 and on, and returns them with their secrets: one the bench makes for an HMAC
// sender (as a user pastes the provider's), one Inlet makes otherwise. The secrets are kept in
// statePath; a webhook missing from it is read back through Credentials.
func ensureSignedHooks(ctx context.Context, cfg *config.Config, projectID int64, sender string, n int, statePath string, log *slog.Logger) ([]Hook, error) {
	snd, ok := webhook.LookupSender(sender)
	if !ok {
		return nil, fmt.Errorf("bench sender %q: not in the catalog", sender)
	}
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	stores, err := compose.OpenStores(ctx, cfg, nil, log)
	if err != nil {
		return nil, err
	}
	defer stores.Close()
	hooks := stores.Webhooks

	var st signedState
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	known := map[string]string{}
	if st.ProjectID == projectID {
		for _, h := range st.Hooks {
			known[h.ID] = h.Secret
		}
	}
	prefix := "bench-" + sender + "-"
	live, err := seed.WebhooksByName(ctx, hooks, projectID, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]Hook, n)
	for i := range out {
		name := fmt.Sprintf("%s%06d", prefix, i)
		w, ok := live[strings.ToLower(name)]
		switch {
		case ok && w.Sender != sender:
			return nil, fmt.Errorf("bench webhook %s is connected as %s, not %s", name, w.Sender, sender)
		case ok:
			sec, found := known[w.ID]
			if !found {
				c, err := hooks.Credentials(ctx, projectID, w.ID)
				if err != nil {
					return nil, err
				}
				sec = c.Secret
			}
			if !w.Enabled {
				if _, err := hooks.SetEnabled(ctx, projectID, w.ID, 0, true); err != nil {
					return nil, err
				}
			}
			out[i] = Hook{ID: w.ID, Sender: sender, Secret: sec}
		default:
			in := seed.Webhook(name, benchEvent, SeedSample)
			in.Sender = sender
			if snd.Verification.Mode == verify.ModeHMAC {
				// whsec_ and base64: the shape every preset takes (Standard Webhooks decodes it).
				in.Secret = newSigningSecret()
			}
			created, sec, err := hooks.Create(ctx, projectID, in)
			if err != nil {
				return nil, fmt.Errorf("bench webhook %s: %w", name, err)
			}
			if _, err := hooks.SetEnabled(ctx, projectID, created.ID, 0, true); err != nil {
				return nil, err
			}
			out[i] = Hook{ID: created.ID, Sender: sender, Secret: sec}
		}
	}
	b, _ := json.Marshal(signedState{ProjectID: projectID, Hooks: out})
	if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
		return nil, fmt.Errorf("bench state: %w", err)
	}
	if err := os.WriteFile(statePath, b, 0o600); err != nil {
		return nil, fmt.Errorf("bench state: %w", err)
	}
	return out, nil
}

// itemEvent is the ItemOrdered event: one line item of an order.
func itemEvent() webhook.EventInput {
	return webhook.EventInput{Name: benchItemEvent, Description: "Bench suite fan-out: one line item of an order",
		Attributes: []webhook.Attribute{
			{Name: "sku", Type: webhook.TypeString},
			{Name: "quantity", Type: webhook.TypeInteger},
			{Name: "price", Type: webhook.TypePrice},
			{Name: "order_id", Type: webhook.TypeString},
		}}
}

// fanOutRoutes is the fan-out webhooks' single route: one ItemOrdered per element of line_items, the
// order's user for each, the item's fields and the order's number.
func fanOutRoutes() []webhook.Route {
	return []webhook.Route{{Name: "items", ForEach: "line_items", EventName: benchItemEvent,
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "$.user_id"},
		Mappings: []webhook.Mapping{
			{Attribute: "sku", Field: "sku"},
			{Attribute: "quantity", Field: "quantity"},
			{Attribute: "price", Field: "price"},
			{Attribute: "order_id", Field: "$.order_number"},
		}}}
}

// ensureFanOutHooks makes sure the bench project has the ItemOrdered event and n enabled Bearer
// webhooks, bench-fanout-000000 and on, whose single route is fanOutRoutes (a kept webhook's routes
// are set again when they differ), and returns them with their secrets, kept in statePath (the
// project's seed users are ensureHooks').
func ensureFanOutHooks(ctx context.Context, cfg *config.Config, projectID int64, n int, statePath string, log *slog.Logger) ([]Hook, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	stores, err := compose.OpenStores(ctx, cfg, nil, log)
	if err != nil {
		return nil, err
	}
	defer stores.Close()
	hooks := stores.Webhooks
	if _, err := hooks.GetEventByName(ctx, projectID, benchItemEvent); errors.Is(err, domainerr.ErrNotFound) {
		if _, err := hooks.CreateEvent(ctx, projectID, itemEvent()); err != nil {
			return nil, fmt.Errorf("bench event %s: %w", benchItemEvent, err)
		}
	} else if err != nil {
		return nil, err
	}

	var st signedState
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	known := map[string]string{}
	if st.ProjectID == projectID {
		for _, h := range st.Hooks {
			known[h.ID] = h.Authorization
		}
	}
	live, err := seed.WebhooksByName(ctx, hooks, projectID, fanOutPrefix)
	if err != nil {
		return nil, err
	}
	routes := fanOutRoutes()
	out := make([]Hook, n)
	for i := range out {
		name := fmt.Sprintf("%s%06d", fanOutPrefix, i)
		w, ok := live[strings.ToLower(name)]
		if !ok {
			in := webhook.WebhookInput{Name: name, Routes: routes, SamplePayload: string(OrderSample(3))}
			created, sec, err := hooks.Create(ctx, projectID, in)
			if err != nil {
				return nil, fmt.Errorf("bench webhook %s: %w", name, err)
			}
			if _, err := hooks.SetEnabled(ctx, projectID, created.ID, 0, true); err != nil {
				return nil, err
			}
			out[i] = Hook{ID: created.ID, Authorization: secret.Authorization(sec)}
			continue
		}
		if w.Sender != webhook.SenderInlet {
			return nil, fmt.Errorf("bench webhook %s is connected as %s, not %s", name, w.Sender, webhook.SenderInlet)
		}
		if !sameRoutes(w.Routes, routes) {
			if _, err := hooks.Update(ctx, projectID, w.ID, 0, webhook.WebhookPatch{Routes: &routes}); err != nil {
				return nil, fmt.Errorf("bench webhook %s: routes: %w", name, err)
			}
		}
		if !w.Enabled {
			if _, err := hooks.SetEnabled(ctx, projectID, w.ID, 0, true); err != nil {
				return nil, err
			}
		}
		auth, found := known[w.ID]
		if !found {
			c, err := hooks.Credentials(ctx, projectID, w.ID)
			if err != nil {
				return nil, err
			}
			auth = c.Authorization
		}
		out[i] = Hook{ID: w.ID, Authorization: auth}
	}
	b, _ := json.Marshal(signedState{ProjectID: projectID, Hooks: out})
	if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
		return nil, fmt.Errorf("bench state: %w", err)
	}
	if err := os.WriteFile(statePath, b, 0o600); err != nil {
		return nil, fmt.Errorf("bench state: %w", err)
	}
	return out, nil
}

// sameRoutes compares what fanOutRoutes sets (the stored routes carry the event's id besides its name).
func sameRoutes(got, want []webhook.Route) bool {
	return slices.EqualFunc(got, want, func(a, b webhook.Route) bool {
		return a.Name == b.Name && a.When == b.When && a.ForEach == b.ForEach && a.EventName == b.EventName &&
			a.Identify == b.Identify && slices.Equal(a.Mappings, b.Mappings)
	})
}

// newSigningSecret is a provider-like signing secret: whsec_ and standard base64 of 32 random bytes.
func newSigningSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}
