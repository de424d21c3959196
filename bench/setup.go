package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// The bench project in PostgreSQL: its own project, event and webhooks, never the demo's.
const (
	benchProject = "Inlet bench"
	benchEvent   = "BenchCheckout"
	benchUserID  = seed.UserID // the seed payload's user_id: requests resolve and fire
	// setupWorkers create webhooks concurrently: each creation is two short transactions.
	setupWorkers = 8
	setupTimeout = 10 * time.Minute
)

// Hook is one bench webhook: its public id and the Authorization value that authenticates it.
type Hook struct {
	ID            string `json:"id"`
	Authorization string `json:"authorization"`
}

// hookState is kept in the state directory so that later runs reuse the webhooks (secrets are only
// shown on creation; reading them back decrypts each one).
type hookState struct {
	ProjectID int64  `json:"project_id"`
	Hooks     []Hook `json:"hooks"`
}

// ensureHooks makes sure the bench project has at least n enabled webhooks and returns n of them with
// their secrets. Creating 10,000 takes a minute or so once; later runs read them from statePath.
func ensureHooks(ctx context.Context, cfg *config.Config, n int, statePath string, log *slog.Logger) (int64, []Hook, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	pool, err := pgdb.Open(ctx, cfg.Postgres)
	if err != nil {
		return 0, nil, err
	}
	defer pool.Close()
	sealer, err := secret.NewSealer(cfg.Secrets.Key())
	if err != nil {
		return 0, nil, fmt.Errorf("secrets: %w", err)
	}
	projects := project.NewStore(pool)
	hooks := webhook.NewStore(pool, sealer)
	dir, err := directory.NewStore(pool, projects, cfg.Directory, nil, log)
	if err != nil {
		return 0, nil, err
	}

	p, err := projects.FindByName(ctx, benchProject)
	if errors.Is(err, project.ErrNotFound) {
		p, _, err = projects.Create(ctx, benchProject)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("bench project: %w", err)
	}
	if _, err := hooks.GetEventByName(ctx, p.ID, benchEvent); errors.Is(err, domainerr.ErrNotFound) {
		_, err = hooks.CreateEvent(ctx, p.ID, seed.Event(benchEvent, "Bench suite load (the seed's CheckoutSuccess)"))
		if err != nil {
			return 0, nil, fmt.Errorf("bench event: %w", err)
		}
	} else if err != nil {
		return 0, nil, err
	}
	if _, _, err := dir.UpsertUser(ctx, p.ID, directory.User{UserID: benchUserID, Email: "jane@example.com", Phone: "+15551234567"}); err != nil {
		return 0, nil, fmt.Errorf("bench user: %w", err)
	}

	// What exists: the live webhooks of the project, with secrets from the state file when it has them.
	var st hookState
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	known := map[string]string{}
	if st.ProjectID == p.ID {
		for _, h := range st.Hooks {
			known[h.ID] = h.Authorization
		}
	}
	var live []webhook.Webhook
	for off := 0; ; off += webhook.MaxListLimit {
		page, err := hooks.List(ctx, p.ID, webhook.ListFilter{Sort: "created_at", Limit: webhook.MaxListLimit, Offset: off})
		if err != nil {
			return 0, nil, err
		}
		live = append(live, page.Webhooks...)
		if len(page.Webhooks) < webhook.MaxListLimit {
			break
		}
	}
	if len(live) > n {
		live = live[:n]
	}
	out := make([]Hook, n)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(setupWorkers)
	for i := range live {
		w := live[i]
		g.Go(func() error {
			auth, ok := known[w.ID]
			if !ok {
				c, err := hooks.Credentials(gctx, p.ID, w.ID)
				if err != nil {
					return err
				}
				auth = c.Authorization
			}
			if !w.Enabled {
				if _, err := hooks.SetEnabled(gctx, p.ID, w.ID, 0, true); err != nil {
					return err
				}
			}
			mu.Lock()
			out[i] = Hook{ID: w.ID, Authorization: auth}
			mu.Unlock()
			return nil
		})
	}
	if missing := n - len(live); missing > 0 {
		log.Info("bench: creating webhooks", "count", missing)
	}
	for i := len(live); i < n; i++ {
		g.Go(func() error {
			w, sec, err := hooks.Create(gctx, p.ID, seed.Webhook(fmt.Sprintf("bench-%06d", i), benchEvent, SeedSample))
			if errors.Is(err, domainerr.ErrConflict) {
				// A name left by an interrupted earlier run beyond what List returned: use a fresh one.
				// Same mappings as the seed's, or the scenario would measure a webhook mapping nothing.
				w, sec, err = hooks.Create(gctx, p.ID, seed.Webhook(fmt.Sprintf("bench-%06d-%d", i, time.Now().UnixNano()), benchEvent, SeedSample))
			}
			if err != nil {
				return fmt.Errorf("bench webhook %d: %w", i, err)
			}
			if _, err := hooks.SetEnabled(gctx, p.ID, w.ID, 0, true); err != nil {
				return err
			}
			mu.Lock()
			out[i] = Hook{ID: w.ID, Authorization: secret.Authorization(sec)}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, nil, err
	}
	// Keep every known secret, not only the n returned, for the next run.
	all := map[string]string{}
	for id, a := range known {
		all[id] = a
	}
	for _, h := range out {
		all[h.ID] = h.Authorization
	}
	st = hookState{ProjectID: p.ID}
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
	return p.ID, out, nil
}
