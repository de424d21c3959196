package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/seed"
)

// The bench project in PostgreSQL: its own project, event and webhooks, never the demo's.
const (
	benchProject = "Inlet bench"
	benchEvent   = "BenchCheckout"
	benchUserID  = seed.UserID // the seed payload's user_id: requests resolve and fire
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
		out[i] = Hook(h)
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
