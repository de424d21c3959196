package seed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// webhookWorkers reuse or create webhooks concurrently: each creation is two short transactions, and
// the bench asks for 10,000.
const webhookWorkers = 8

// Spec is a project seeded with the worked example: what Ensure makes sure exists.
type Spec struct {
	// Project is the project's name; a project of that name is created when there is none.
	Project string
	// KeyName, when set, asks for an API key of the project: APIKey if it still authenticates (its
	// project is then the one seeded, even if renamed since), else a new key of this name (the
	// project's first key when Ensure creates the project). Unset: no key is made or returned.
	KeyName string
	// APIKey is the key an earlier run returned, if any.
	APIKey string
	// Event is the name of the seed's event (Event) in the project, created with EventDescription when
	// missing.
	Event, EventDescription string
	// Webhooks are the names of the seed's webhooks (Webhook, firing Event, with Sample as sample
	// payload). A live webhook of the project of that name (ignoring case, as names are unique) is kept
	// whatever its settings; a missing one is created. Every one is enabled.
	Webhooks []string
	Sample   string
	// Known are Authorization values returned by an earlier run, by webhook id: a kept webhook found here
	// is not read back (which decrypts its secret).
	Known map[string]string
	// Users and Devices are upserted into the project's directory.
	Users   []directory.User
	Devices []directory.Device
}

// Seeded is what Ensure found or made.
type Seeded struct {
	ProjectID int64
	// APIKey is the project's API key when Spec.KeyName is set.
	APIKey string
	// Hooks are Spec.Webhooks in order.
	Hooks []Hook
}

// Hook is one seeded webhook: its public id and the Authorization value that authenticates it.
type Hook struct {
	ID            string
	Authorization string
}

// Ensure makes sure that what s describes exists, idempotently: a second call with the same Spec (and
// the APIKey and Known values the first returned) creates nothing.
func Ensure(ctx context.Context, st *store.Bundle, s Spec, log *slog.Logger) (Seeded, error) {
	var out Seeded
	var err error
	if out.ProjectID, out.APIKey, err = ensureProject(ctx, st.Projects, s); err != nil {
		return out, err
	}
	pid := out.ProjectID
	if _, err := st.Webhooks.GetEventByName(ctx, pid, s.Event); errors.Is(err, domainerr.ErrNotFound) {
		if _, err := st.Webhooks.CreateEvent(ctx, pid, Event(s.Event, s.EventDescription)); err != nil {
			return out, fmt.Errorf("seed event %q: %w", s.Event, err)
		}
	} else if err != nil {
		return out, err
	}
	for _, u := range s.Users {
		if _, _, err := st.Directory.UpsertUser(ctx, pid, u); err != nil {
			return out, fmt.Errorf("seed user %s: %w", u.UserID, err)
		}
	}
	for _, d := range s.Devices {
		if _, _, err := st.Directory.UpsertDevice(ctx, pid, d); err != nil {
			return out, fmt.Errorf("seed device %s: %w", d.HWID, err)
		}
	}
	out.Hooks, err = ensureWebhooks(ctx, st.Webhooks, pid, s, log)
	return out, err
}

func ensureProject(ctx context.Context, projects *project.Store, s Spec) (int64, string, error) {
	if s.KeyName != "" && s.APIKey != "" {
		if c, err := projects.Authenticate(ctx, s.APIKey); err == nil {
			return c.ProjectID, s.APIKey, nil
		}
	}
	p, err := projects.FindByName(ctx, s.Project)
	switch {
	case errors.Is(err, project.ErrNotFound):
		p, key, err := projects.Create(ctx, s.Project)
		if err != nil {
			return 0, "", fmt.Errorf("seed project: %w", err)
		}
		if s.KeyName == "" {
			key = ""
		}
		return p.ID, key, nil
	case err != nil:
		return 0, "", fmt.Errorf("seed project %q: %w", s.Project, err)
	case s.KeyName == "":
		return p.ID, "", nil
	}
	_, key, err := projects.CreateKey(ctx, p.ID, s.KeyName, project.AllScopes)
	if err != nil {
		return 0, "", fmt.Errorf("seed project %q: api key: %w", s.Project, err)
	}
	return p.ID, key, nil
}

// WebhooksByName reads, a page at a time, every webhook of project pid whose name contains search
// ignoring case ("" for all), by name in lower case: Ensure and the bench look webhooks up by name,
// which is unique ignoring case.
func WebhooksByName(ctx context.Context, hooks *webhook.Store, pid int64, search string) (map[string]webhook.Webhook, error) {
	live := map[string]webhook.Webhook{}
	for off := 0; ; off += webhook.MaxListLimit {
		page, err := hooks.List(ctx, pid, webhook.ListFilter{Search: search, Sort: "created_at", Limit: webhook.MaxListLimit, Offset: off})
		if err != nil {
			return nil, err
		}
		for _, w := range page.Webhooks {
			live[strings.ToLower(w.Name)] = w
		}
		if len(page.Webhooks) < webhook.MaxListLimit {
			return live, nil
		}
	}
}

func ensureWebhooks(ctx context.Context, hooks *webhook.Store, pid int64, s Spec, log *slog.Logger) ([]Hook, error) {
	live, err := WebhooksByName(ctx, hooks, pid, "")
	if err != nil {
		return nil, err
	}
	missing := 0
	for _, name := range s.Webhooks {
		if _, ok := live[strings.ToLower(name)]; !ok {
			missing++
		}
	}
	if missing > 0 {
		log.Info("seed: creating webhooks", "project", s.Project, "count", missing)
	}
	out := make([]Hook, len(s.Webhooks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(webhookWorkers)
	for i, name := range s.Webhooks {
		w, ok := live[strings.ToLower(name)]
		g.Go(func() error {
			var err error
			if ok {
				out[i], err = keepWebhook(gctx, hooks, pid, &w, s.Known)
			} else {
				out[i], err = createWebhook(gctx, hooks, pid, name, s)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// keepWebhook enables w if it is not, and returns it with its Authorization value.
func keepWebhook(ctx context.Context, hooks *webhook.Store, pid int64, w *webhook.Webhook, known map[string]string) (Hook, error) {
	auth, ok := known[w.ID]
	if !ok {
		c, err := hooks.Credentials(ctx, pid, w.ID)
		if err != nil {
			return Hook{}, err
		}
		auth = c.Authorization
	}
	if !w.Enabled {
		if _, err := hooks.SetEnabled(ctx, pid, w.ID, 0, true); err != nil {
			return Hook{}, err
		}
	}
	return Hook{ID: w.ID, Authorization: auth}, nil
}

// createWebhook creates the seed's webhook named name and enables it (webhooks are created disabled).
func createWebhook(ctx context.Context, hooks *webhook.Store, pid int64, name string, s Spec) (Hook, error) {
	w, sec, err := hooks.Create(ctx, pid, Webhook(name, s.Event, s.Sample))
	if err != nil {
		return Hook{}, fmt.Errorf("seed webhook %q: %w", name, err)
	}
	if _, err := hooks.SetEnabled(ctx, pid, w.ID, 0, true); err != nil {
		return Hook{}, err
	}
	return Hook{ID: w.ID, Authorization: secret.Authorization(sec)}, nil
}
