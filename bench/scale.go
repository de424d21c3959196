package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/inlet-dev/inlet/bench/load"
	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/store"
)

// The scaling scenarios' data: many webhooks spread over many projects (family webhooks), and large
// user directories with a device each (family directory). Both are written with PostgreSQL COPY, not
// one API call per row, so that 100,000 webhooks or 1,000,000 users take seconds to seed; the first
// webhook of each project is created through the store, as a user would, and is the template every
// copied webhook of the project takes its routes, event and connection from.
const (
	// hooksPerProject is how many of a webhooks scenario's webhooks share a project.
	hooksPerProject = 1000
	// scaleProjectPrefix names the webhooks family's projects: "Inlet bench scale 000" and on.
	scaleProjectPrefix = "Inlet bench scale "
	// scaleHookPrefix names their webhooks: bench-scale-p000-000000 and on.
	scaleHookPrefix = "bench-scale-"
	// dirProjectPrefix names a directory scenario's project: "Inlet bench directory 1000000".
	dirProjectPrefix = "Inlet bench directory "
	// dirHook is the one webhook of a directory project.
	dirHook = "bench-dir-000000"
	// maxUsers bounds a directory scenario.
	maxUsers = 10_000_000
)

// Families of scaling scenarios: the report draws each as a curve of cost against size.
const (
	FamilyWebhooks  = "webhooks"
	FamilyDirectory = "directory"
	FamilyBodies    = "bodies"
)

// projectsFor is how many projects n webhooks are spread over: one per hooksPerProject started.
func projectsFor(n int) int { return max(1, (n+hooksPerProject-1)/hooksPerProject) }

// splitEven splits n into parts counts as even as possible, the larger first; their sum is n.
func splitEven(n, parts int) []int {
	out := make([]int, parts)
	for i := range out {
		out[i] = n / parts
		if i < n%parts {
			out[i]++
		}
	}
	return out
}

// scaleHookName is the name of webhook i of project p of the webhooks family.
func scaleHookName(p, i int) string { return fmt.Sprintf("%sp%03d-%06d", scaleHookPrefix, p, i) }

// dirUserID is user i of a directory project; the other dirUser fields derive from it.
func dirUserID(i int) string { return fmt.Sprintf("bu%07d", i) }

// dirUser is user i's row: a user id, an e-mail and a phone, each unique in the project, and one
// device.
func dirUser(i int) (userID, email, phone, hwid string) {
	id := dirUserID(i)
	return id, id + "@bench.example", fmt.Sprintf("+1202%07d", i), fmt.Sprintf("hw-%07d", i)
}

// userBody is the seed payload about user i of a directory project instead of the seed's user.
func userBody(i int) []byte {
	const from = `"user_id":"` + benchUserID + `"`
	b, ok := strings.CutPrefix(SeedSample, "{"+from)
	if !ok {
		panic("bench: the seed sample does not start with its user_id")
	}
	return []byte(`{"user_id":"` + dirUserID(i) + `"` + b)
}

// usersSource spreads requests over users 0..users-1 in order, all to hook: a run's request i is about
// user i mod users, so that a run shorter than users requests sees every user once (cold), and a run
// after it sees the same users again (warm).
func usersSource(h Hook, users int) load.Source {
	path := "/hooks/" + h.ID
	return func(i int64) *load.Request {
		return &load.Request{Path: path, Authorization: h.Authorization, ContentType: "application/json",
			Body: userBody(int(i % int64(users)))}
	}
}

// benchDSN is dsn with database name instead: the bench's own PostgreSQL database, created when it
// does not exist, so that seeding a million users touches nothing of anyone else's and notifies no
// one else's listeners (NOTIFY is per database).
func benchDSN(ctx context.Context, dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("postgres dsn: the bench needs the URL form (postgres://…) to name its own database %s", name)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("postgres: bench database: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", fmt.Errorf("postgres: create bench database %s: %w", name, err)
		}
	}
	u.Path = "/" + name
	return u.String(), nil
}

// scaleState is the webhooks family's state file: every bulk webhook's secret, by id.
type scaleState struct {
	Hooks []Hook `json:"hooks"`
}

// ensureScaleHooks makes sure the webhooks family has n enabled Bearer webhooks spread over
// projectsFor(n) projects (bench-scale-pPPP-IIIIII) and returns them, project by project. The first
// webhook of each project is made by seed.Ensure; the others are copied from it with COPY, each with a
// secret of its own, kept in statePath. A webhook whose secret the state file lost is deleted and made
// again.
func ensureScaleHooks(ctx context.Context, cfg *config.Config, n int, statePath string, log *slog.Logger) ([]Hook, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	stores, err := compose.OpenStores(ctx, cfg, nil, log)
	if err != nil {
		return nil, err
	}
	defer stores.Close()
	sealer, err := secret.NewSealer(cfg.Secrets.Key(), cfg.Secrets.PreviousKeys()...)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	var st scaleState
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	known := map[string]string{}
	for _, h := range st.Hooks {
		known[h.ID] = h.Authorization
	}

	var out []Hook
	for p, count := range splitEven(n, projectsFor(n)) {
		seeded, err := seed.Ensure(ctx, stores, seed.Spec{
			Project: fmt.Sprintf("%s%03d", scaleProjectPrefix, p),
			Event:   benchEvent, EventDescription: "Bench suite load (the seed's CheckoutSuccess)",
			Webhooks: []string{scaleHookName(p, 0)}, Sample: SeedSample, Known: known,
			Users: []directory.User{{UserID: benchUserID, Email: "jane@example.com", Phone: "+15551234567"}},
		}, log)
		if err != nil {
			return nil, fmt.Errorf("bench scale project %d: %w", p, err)
		}
		tmpl := seeded.Hooks[0]
		hooks, err := copyHooks(ctx, stores, sealer, seeded.ProjectID, tmpl.ID, p, count, known)
		if err != nil {
			return nil, fmt.Errorf("bench scale project %d: %w", p, err)
		}
		out = append(out, Hook{ID: tmpl.ID, Authorization: tmpl.Authorization})
		out = append(out, hooks...)
	}

	// Keep what was known beyond these n, for a later run with more.
	all := map[string]string{}
	for id, a := range known {
		all[id] = a
	}
	st = scaleState{Hooks: slices.Clone(out)}
	for _, h := range out {
		delete(all, h.ID)
	}
	for id, a := range all {
		st.Hooks = append(st.Hooks, Hook{ID: id, Authorization: a})
	}
	return out, writeState(statePath, st)
}

func writeState(path string, v any) error {
	b, _ := json.Marshal(v)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("bench state: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("bench state: %w", err)
	}
	return nil
}

// templateExcluded are the webhooks columns a copied webhook does not take from its template.
var templateExcluded = []string{"id", "public_id", "name", "enabled", "secret_digest", "secret_ciphertext",
	"prev_secret_digest", "prev_secret_expires_at", "prev_secret_ciphertext", "secret_rotated_at", "version",
	"created_at", "updated_at", "deleted_at"}

// newHookRow is one webhook to copy: its public id, name and sealed secret.
type newHookRow struct {
	id, name, auth string
	digest         [32]byte
	sealed         []byte
}

// newHookRows makes the rows of webhooks names, each with a fresh public id and secret; a Bearer
// webhook's digest is that of its whole Authorization value, as webhook.Store.Create stores it.
func newHookRows(sealer *secret.Sealer, names []string) []newHookRow {
	rows := make([]newHookRow, len(names))
	for i, name := range names {
		id, sec := secret.NewPublicID(), secret.NewWebhookSecret()
		auth := secret.Authorization(sec)
		rows[i] = newHookRow{id: id, name: name, auth: auth, digest: secret.Digest([]byte(auth)),
			sealed: sealer.Seal([]byte(sec), []byte(id))}
	}
	return rows
}

// copyHooks makes sure project pid has webhooks scaleHookName(p, 1..count-1), enabled, and returns
// them: those found with a known secret are kept, the others (re)made as copies of template.
func copyHooks(ctx context.Context, st *store.Bundle, sealer *secret.Sealer, pid int64, template string, p, count int, known map[string]string) ([]Hook, error) {
	live := map[string]string{} // name → public id
	rows, err := st.Pool.Query(ctx, `SELECT name, public_id FROM webhooks
		WHERE project_id = $1 AND name LIKE $2 AND deleted_at IS NULL AND enabled`, pid, scaleHookPrefix+"%")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name, id string
		if err := rows.Scan(&name, &id); err != nil {
			return nil, err
		}
		live[name] = id
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	out := make([]Hook, 0, max(0, count-1))
	var missing []string // not live, or live with a secret the state file lost
	for i := 1; i < count; i++ {
		name := scaleHookName(p, i)
		id, ok := live[name]
		if a, found := known[id]; ok && found {
			out = append(out, Hook{ID: id, Authorization: a})
			continue
		}
		missing = append(missing, name)
	}
	if len(missing) == 0 {
		return out, nil
	}
	made := newHookRows(sealer, missing)
	err = pgx.BeginFunc(ctx, st.Pool, func(tx pgx.Tx) error {
		// Old rows in the way of a name: a live one whose secret is lost, or a disabled one.
		if _, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE project_id = $1 AND name = ANY($2)`, pid, missing); err != nil {
			return err
		}
		var cols []string
		r, err := tx.Query(ctx, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = 'webhooks' AND NOT (column_name = ANY($1))
			ORDER BY ordinal_position`, templateExcluded)
		if err != nil {
			return err
		}
		for r.Next() {
			var c string
			if err := r.Scan(&c); err != nil {
				return err
			}
			cols = append(cols, pgx.Identifier{c}.Sanitize())
		}
		if err := r.Err(); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE bench_new_hooks (public_id text, name text,
			secret_digest bytea, secret_ciphertext bytea) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"bench_new_hooks"},
			[]string{"public_id", "name", "secret_digest", "secret_ciphertext"},
			pgx.CopyFromSlice(len(made), func(i int) ([]any, error) {
				return []any{made[i].id, made[i].name, made[i].digest[:], made[i].sealed}, nil
			})); err != nil {
			return fmt.Errorf("copy webhooks: %w", err)
		}
		tcols := make([]string, len(cols))
		for i, c := range cols {
			tcols[i] = "t." + c
		}
		_, err = tx.Exec(ctx, `INSERT INTO webhooks (public_id, name, secret_digest, secret_ciphertext, enabled, `+
			strings.Join(cols, ", ")+`)
			SELECT n.public_id, n.name, n.secret_digest, n.secret_ciphertext, true, `+strings.Join(tcols, ", ")+`
			FROM bench_new_hooks n CROSS JOIN (SELECT * FROM webhooks WHERE public_id = $1) t`, template)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, m := range made {
		out = append(out, Hook{ID: m.id, Authorization: m.auth})
		known[m.id] = m.auth
	}
	return out, nil
}

// ensureDirectory makes sure the directory project of users users has them, each with one device
// (dirUser), and its webhook, and returns that webhook. The users and devices are written with COPY,
// after deleting the project's directory when it does not hold exactly users bench users.
func ensureDirectory(ctx context.Context, cfg *config.Config, users int, statePath string, log *slog.Logger) (Hook, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	stores, err := compose.OpenStores(ctx, cfg, nil, log)
	if err != nil {
		return Hook{}, err
	}
	defer stores.Close()
	var st signedState
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	known := map[string]string{}
	for _, h := range st.Hooks {
		known[h.ID] = h.Authorization
	}
	seeded, err := seed.Ensure(ctx, stores, seed.Spec{
		Project: fmt.Sprintf("%s%d", dirProjectPrefix, users),
		Event:   benchEvent, EventDescription: "Bench suite load (the seed's CheckoutSuccess)",
		Webhooks: []string{dirHook}, Sample: SeedSample, Known: known,
	}, log)
	if err != nil {
		return Hook{}, fmt.Errorf("bench directory of %d users: %w", users, err)
	}
	pid := seeded.ProjectID
	h := Hook{ID: seeded.Hooks[0].ID, Authorization: seeded.Hooks[0].Authorization}
	if err := writeState(statePath, signedState{ProjectID: pid, Hooks: []Hook{h}}); err != nil {
		return Hook{}, err
	}
	if err := copyUsers(ctx, stores, pid, users); err != nil {
		return Hook{}, fmt.Errorf("bench directory of %d users: %w", users, err)
	}
	return h, nil
}

// copyUsers makes project pid's directory exactly users dirUser rows and their devices, unless it
// already is.
func copyUsers(ctx context.Context, st *store.Bundle, pid int64, users int) error {
	var have, devices int
	if err := st.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users WHERE project_id = $1),
		(SELECT count(*) FROM devices WHERE project_id = $1)`, pid).Scan(&have, &devices); err != nil {
		return err
	}
	if have == users && devices == users {
		return nil
	}
	return pgx.BeginFunc(ctx, st.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM devices WHERE project_id = $1`, pid); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE project_id = $1`, pid); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"project_id", "user_id", "email", "phone"},
			pgx.CopyFromFunc(userRows(pid, users, false))); err != nil {
			return fmt.Errorf("copy users: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"devices"}, []string{"project_id", "hwid", "user_id", "platform"},
			pgx.CopyFromFunc(userRows(pid, users, true))); err != nil {
			return fmt.Errorf("copy devices: %w", err)
		}
		return nil
	})
}

// userRows yields the COPY rows of users 0..n-1 of project pid: (project_id, user_id, email, phone),
// or with devices (project_id, hwid, user_id, platform).
func userRows(pid int64, n int, devices bool) func() ([]any, error) {
	i := 0
	return func() ([]any, error) {
		if i >= n {
			return nil, nil
		}
		id, email, phone, hwid := dirUser(i)
		i++
		if devices {
			return []any{pid, hwid, id, "ios"}, nil
		}
		return []any{pid, id, email, phone}, nil
	}
}
