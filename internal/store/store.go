// Package store names Inlet's store bundle: the PostgreSQL pool and the stores built on it — projects
// and their API keys, webhooks and the events catalog, the user directory. internal/compose opens it from
// the settings (compose.OpenStores), once per process; it is a package of its own, below the composition
// root, so that packages the components' tests import, such as internal/seed, can take a bundle.
package store

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// Bundle is the PostgreSQL pool and every store on it. Close it when done; the stores must not be used
// afterwards.
type Bundle struct {
	Pool      *pgxpool.Pool
	Projects  *project.Store
	Webhooks  *webhook.Store // seals webhook secrets with the settings' master key
	Directory *directory.Store
	// Alerts holds alert rules, alerts, the notification queue and the projects' signing secrets
	// (sealed with the settings' master key).
	Alerts *alert.Store
}

// Close closes the pool.
func (b *Bundle) Close() { b.Pool.Close() }
