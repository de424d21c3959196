package directory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/erasure"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/phone"
)

// Store reads and writes a project's users and devices. It is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	projects PhoneRegions
	cfg      Config
	log      *slog.Logger
	m        storeMetrics
}

type storeMetrics struct {
	importLines   *prometheus.CounterVec // outcome: applied, failed
	importBatches *prometheus.CounterVec // path: batch, fallback
}

// NewStore builds a Store on pool; projects tells it each project's phone region. cfg must be valid (see
// Config.Validate); metrics are registered on reg (nil: not exported).
func NewStore(pool *pgxpool.Pool, projects PhoneRegions, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("directory settings: %w", err)
	}
	m := storeMetrics{
		importLines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_directory_import_lines_total",
			Help: "NDJSON import lines by outcome (applied, failed).",
		}, []string{"outcome"}),
		importBatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_directory_import_batches_total",
			Help: "NDJSON import batches by path: batch (one round trip) or fallback (line by line after a database error).",
		}, []string{"path"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.importLines, m.importBatches} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("directory metrics: %w", err)
			}
		}
	}
	return &Store{pool: pool, projects: projects, cfg: cfg, log: log, m: m}, nil
}

// Statements shared by the single-row API and the import's per-line fallback, so both apply a line
// the same way.
const (
	upsertUserSQL = `
INSERT INTO users (project_id, user_id, email, phone) VALUES ($1, $2, $3, $4)
ON CONFLICT (project_id, user_id) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone, updated_at = now()
RETURNING user_id, email, phone, created_at, updated_at, (xmax = 0)`
	upsertDeviceSQL = `
INSERT INTO devices (project_id, hwid, user_id, platform) VALUES ($1, $2, $3, $4)
ON CONFLICT (project_id, hwid) DO UPDATE SET user_id = EXCLUDED.user_id, platform = EXCLUDED.platform, updated_at = now()
RETURNING hwid, user_id, platform, created_at, updated_at, (xmax = 0)`
)

// UpsertUser creates the user or replaces its email and phone (an empty field clears it). The phone
// is stored in E.164. It returns the stored user and whether it was created. Errors:
// *domainerr.ValidationError, *domainerr.ConflictError when the email or phone belongs to another user,
// domainerr.ErrNotFound when the project does not exist.
func (s *Store) UpsertUser(ctx context.Context, projectID int64, u User) (User, bool, error) {
	region := s.cfg.DefaultRegion
	if u.Phone != "" {
		var err error
		if region, err = s.phoneRegion(ctx, projectID); err != nil {
			return User{}, false, err
		}
	}
	u, err := normalizeUser(u, region)
	if err != nil {
		return User{}, false, err
	}
	var out User
	var created bool
	err = s.pool.QueryRow(ctx, upsertUserSQL, projectID, u.UserID, u.Email, u.Phone).
		Scan(&out.UserID, &out.Email, &out.Phone, &out.CreatedAt, &out.UpdatedAt, &created)
	if err != nil {
		return User{}, false, writeErr(fmt.Sprintf("upsert user %q of project %d", u.UserID, projectID), err)
	}
	return out, created, nil
}

// phoneRegion returns the region that reads the project's phone numbers written without a country
// code: the project's phone region, else Config.DefaultRegion. It is read on every call (admin
// operations are rare; the Resolver caches it). domainerr.ErrNotFound when the project does not exist.
func (s *Store) phoneRegion(ctx context.Context, projectID int64) (string, error) {
	region, err := s.projects.PhoneRegion(ctx, projectID)
	if errors.Is(err, domainerr.ErrNotFound) {
		return "", fmt.Errorf("project %d: %w", projectID, domainerr.ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	return cmp.Or(region, s.cfg.DefaultRegion), nil
}

// GetUser returns one user, or domainerr.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, projectID int64, userID string) (User, error) {
	var u User
	err := s.pool.QueryRow(ctx, `SELECT user_id, email, phone, created_at, updated_at FROM users
WHERE project_id = $1 AND user_id = $2`, projectID, userID).
		Scan(&u.UserID, &u.Email, &u.Phone, &u.CreatedAt, &u.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("user %q: %w", userID, domainerr.ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %q of project %d: %w", userID, projectID, err)
	}
	return u, nil
}

// DeleteUser deletes the user and detaches its devices, which stay as anonymous devices (their hwids
// still resolve), and records in the same transaction the erasure of the user's rows from ClickHouse
// (an erasure.Job, pending; internal/erasure runs it). domainerr.ErrNotFound when there was neither a
// user nor a device with that user id.
func (s *Store) DeleteUser(ctx context.Context, projectID int64, userID string) (erasure.Job, error) {
	var job erasure.Job
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var ids erasure.Identifiers
		err := tx.QueryRow(ctx, `DELETE FROM users WHERE project_id = $1 AND user_id = $2 RETURNING email, phone`,
			projectID, userID).Scan(&ids.Email, &ids.Phone)
		found := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		t2, err := tx.Exec(ctx, `UPDATE devices SET user_id = '', updated_at = now()
WHERE project_id = $1 AND user_id = $2 AND user_id <> ''`, projectID, userID)
		if err != nil {
			return err
		}
		if !found && t2.RowsAffected() == 0 {
			return fmt.Errorf("user %q: %w", userID, domainerr.ErrNotFound)
		}
		job, err = erasure.Record(ctx, tx, projectID, chstore.SubjectUser, userID, ids)
		return err
	})
	if errors.Is(err, domainerr.ErrNotFound) {
		return erasure.Job{}, err
	}
	if err != nil {
		return erasure.Job{}, fmt.Errorf("delete user %q of project %d: %w", userID, projectID, err)
	}
	return job, nil
}

// UpsertDevice creates the device or replaces its user id and platform. It returns the stored device
// and whether it was created. Errors: *domainerr.ValidationError, domainerr.ErrNotFound when the project does
// not exist.
func (s *Store) UpsertDevice(ctx context.Context, projectID int64, d Device) (Device, bool, error) {
	if err := validateDevice(d); err != nil {
		return Device{}, false, err
	}
	var out Device
	var created bool
	err := s.pool.QueryRow(ctx, upsertDeviceSQL, projectID, d.HWID, d.UserID, d.Platform).
		Scan(&out.HWID, &out.UserID, &out.Platform, &out.CreatedAt, &out.UpdatedAt, &created)
	if err != nil {
		return Device{}, false, writeErr(fmt.Sprintf("upsert device %q of project %d", d.HWID, projectID), err)
	}
	return out, created, nil
}

// GetDevice returns one device, or domainerr.ErrNotFound.
func (s *Store) GetDevice(ctx context.Context, projectID int64, hwid string) (Device, error) {
	var d Device
	err := s.pool.QueryRow(ctx, `SELECT hwid, user_id, platform, created_at, updated_at FROM devices
WHERE project_id = $1 AND hwid = $2`, projectID, hwid).
		Scan(&d.HWID, &d.UserID, &d.Platform, &d.CreatedAt, &d.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Device{}, fmt.Errorf("device %q: %w", hwid, domainerr.ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("get device %q of project %d: %w", hwid, projectID, err)
	}
	return d, nil
}

// DeleteDevice deletes one device and records in the same transaction the erasure of its rows from
// ClickHouse (as DeleteUser), or answers domainerr.ErrNotFound.
func (s *Store) DeleteDevice(ctx context.Context, projectID int64, hwid string) (erasure.Job, error) {
	var job erasure.Job
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM devices WHERE project_id = $1 AND hwid = $2`, projectID, hwid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("device %q: %w", hwid, domainerr.ErrNotFound)
		}
		job, err = erasure.Record(ctx, tx, projectID, chstore.SubjectDevice, hwid, erasure.Identifiers{})
		return err
	})
	if errors.Is(err, domainerr.ErrNotFound) {
		return erasure.Job{}, err
	}
	if err != nil {
		return erasure.Job{}, fmt.Errorf("delete device %q of project %d: %w", hwid, projectID, err)
	}
	return job, nil
}

// ListDevices returns the devices carrying userID, ordered by hwid, at most Config.MaxHWIDs of them.
// An unknown user has no devices (an empty list, not an error).
func (s *Store) ListDevices(ctx context.Context, projectID int64, userID string) ([]Device, error) {
	if userID == "" {
		return nil, nil // "" marks anonymous devices; they belong to no user
	}
	rows, err := s.pool.Query(ctx, `SELECT hwid, user_id, platform, created_at, updated_at FROM devices
WHERE project_id = $1 AND user_id = $2 ORDER BY hwid LIMIT $3`, projectID, userID, s.cfg.MaxHWIDs)
	if err != nil {
		return nil, fmt.Errorf("list devices of user %q of project %d: %w", userID, projectID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Device, error) {
		var d Device
		err := r.Scan(&d.HWID, &d.UserID, &d.Platform, &d.CreatedAt, &d.UpdatedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list devices of user %q of project %d: %w", userID, projectID, err)
	}
	return out, nil
}

// Profile is what a lookup finds: the user and all its devices' hwids, or, for a hwid lookup, the
// device, its user (if any) and that user's hwids.
type Profile struct {
	// UserID is the matched user; empty for an anonymous device.
	UserID string `json:"user_id"`
	// User is the user's row; nil when the user id is known only from its devices.
	User *User `json:"user,omitempty"`
	// Device is the matched device of a hwid lookup.
	Device *Device `json:"device,omitempty"`
	// HWIDs are the user's devices (most recently updated first, at most Config.MaxHWIDs, the matched
	// device always included), or just the device's own hwid when it has no user.
	HWIDs []string `json:"hwids"`
}

// Lookup finds a subject by one identifier, matched like the Resolver matches it: user_id matches a user or
// any device carrying that user id, email in NFC and case-insensitively, phone after normalisation to E.164, hwid
// exactly. domainerr.ErrNotFound when nothing matches; *domainerr.ValidationError for a phone that cannot be
// normalised or an unknown kind.
func (s *Store) Lookup(ctx context.Context, projectID int64, kind identify.Kind, value string) (Profile, error) {
	var p Profile
	switch kind {
	case identify.ByUserID:
		u, err := s.GetUser(ctx, projectID, value)
		switch {
		case err == nil:
			p.User = &u
		case !errors.Is(err, domainerr.ErrNotFound):
			return Profile{}, err
		}
		p.UserID = value
	case identify.ByEmail, identify.ByPhone:
		q := `SELECT user_id, email, phone, created_at, updated_at FROM users
WHERE project_id = $1 AND lower(email) = lower($2) AND email <> ''`
		if kind == identify.ByEmail {
			value = NormalizeEmail(value)
		}
		if kind == identify.ByPhone {
			region, err := s.phoneRegion(ctx, projectID)
			if err != nil {
				return Profile{}, err
			}
			e164, err := phone.Normalize(value, region)
			if err != nil {
				return Profile{}, domainerr.Invalid("phone", "%v", err)
			}
			value = e164
			q = `SELECT user_id, email, phone, created_at, updated_at FROM users
WHERE project_id = $1 AND phone = $2 AND phone <> ''`
		}
		var u User
		err := s.pool.QueryRow(ctx, q, projectID, value).Scan(&u.UserID, &u.Email, &u.Phone, &u.CreatedAt, &u.UpdatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return Profile{}, fmt.Errorf("user with %s %q: %w", kind, value, domainerr.ErrNotFound)
		}
		if err != nil {
			return Profile{}, fmt.Errorf("look up %s in project %d: %w", kind, projectID, err)
		}
		p.User, p.UserID = &u, u.UserID
	case identify.ByHWID:
		d, err := s.GetDevice(ctx, projectID, value)
		if err != nil {
			return Profile{}, err
		}
		p.Device, p.UserID = &d, d.UserID
		if d.UserID == "" {
			p.HWIDs = []string{d.HWID}
			return p, nil
		}
		u, err := s.GetUser(ctx, projectID, d.UserID)
		switch {
		case err == nil:
			p.User = &u
		case !errors.Is(err, domainerr.ErrNotFound):
			return Profile{}, err
		}
	default:
		return Profile{}, domainerr.Invalid("kind", "%q is not one of user_id, email, phone, hwid", kind)
	}
	rows, err := s.pool.Query(ctx, `SELECT hwid FROM devices WHERE project_id = $1 AND user_id = $2
ORDER BY hwid = $3 DESC, updated_at DESC, hwid LIMIT $4`, projectID, p.UserID, value, s.cfg.MaxHWIDs)
	if err != nil {
		return Profile{}, fmt.Errorf("hwids of user %q of project %d: %w", p.UserID, projectID, err)
	}
	p.HWIDs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return Profile{}, fmt.Errorf("hwids of user %q of project %d: %w", p.UserID, projectID, err)
	}
	if p.User == nil && len(p.HWIDs) == 0 {
		return Profile{}, fmt.Errorf("user %q: %w", value, domainerr.ErrNotFound)
	}
	if p.HWIDs == nil {
		p.HWIDs = []string{}
	}
	return p, nil
}

// writeErr turns PostgreSQL's constraint errors into domainerr's kinds.
func writeErr(what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			switch pe.ConstraintName {
			case "users_email":
				return conflict("email")
			case "users_phone":
				return conflict("phone")
			}
		case "23503": // foreign_key_violation: the only foreign key is the project
			return fmt.Errorf("%s: project: %w", what, domainerr.ErrNotFound)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// conflict says that the value of field (email or phone) already belongs to another user of the project.
func conflict(field string) error {
	return &domainerr.ConflictError{Field: field, Message: "already used by another user"}
}
