package alert

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// Sentinel errors, each of a domainerr kind. A refused rule is a *domainerr.ValidationError.
var (
	// ErrRuleNotFound: no such rule in the project. It is domainerr.ErrNotFound.
	ErrRuleNotFound = domainerr.New(domainerr.ErrNotFound, "alert rule not found")
	// ErrDeliveryNotFound: no such notification in the project. It is domainerr.ErrNotFound.
	ErrDeliveryNotFound = domainerr.New(domainerr.ErrNotFound, "notification not found")
)

// Limits of what the store lists.
const (
	// MaxListed bounds a list of alerts or notifications (newest first).
	MaxListed = 200
	// maxReasonLen bounds a rule's reason; reasons are short snake_case words (internal/wire).
	maxReasonLen = 64
	// maxErrorLen bounds a recorded attempt's error.
	maxErrorLen = 500
)

// Store reads and writes rules, alerts, the delivery queue and the projects' signing secrets.
type Store struct {
	db     *pgxpool.Pool
	sealer *secret.Sealer
	cfg    Config
}

// NewStore returns a store on pool; sealer keeps the signing secrets encrypted at rest.
func NewStore(pool *pgxpool.Pool, sealer *secret.Sealer, cfg Config) *Store {
	return &Store{db: pool, sealer: sealer, cfg: cfg}
}

const ruleColumns = `id, name, kind, webhook_id, reason, threshold, window_minutes, min_requests, enabled, created_at, updated_at`

func (r *Rule) fields() []any {
	return []any{&r.ID, &r.Name, &r.Kind, &r.WebhookID, &r.Reason, &r.Threshold, &r.WindowMinutes, &r.MinRequests,
		&r.Enabled, &r.CreatedAt, &r.UpdatedAt}
}

var reasonPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// validate checks a rule as given by a client and returns every invalid field.
func (r *Rule) validate() error {
	var fe []domainerr.FieldError
	bad := func(field, format string, args ...any) {
		fe = append(fe, domainerr.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	r.Name = strings.TrimSpace(r.Name)
	if n := utf8.RuneCountInString(r.Name); n < 1 || n > 100 {
		bad("name", "must be 1..100 characters, got %d", n)
	}
	if r.WindowMinutes < 1 || r.WindowMinutes > 1440 {
		bad("window_minutes", "must be 1..1440, got %d", r.WindowMinutes)
	}
	if r.MinRequests < 0 {
		bad("min_requests", "must be 0 or more, got %d", r.MinRequests)
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		bad("threshold", "must be a number")
	}
	if r.WebhookID != "" && !secret.ValidPublicID(r.WebhookID) {
		bad("webhook_id", "%q is not a webhook id", r.WebhookID)
	}
	switch r.Kind {
	case KindFailureRatio:
		if r.Threshold <= 0 || r.Threshold >= 100 {
			bad("threshold", "a failure_ratio threshold is a percentage above 0 and below 100, got %v", r.Threshold)
		}
		if r.Reason != "" {
			bad("reason", "only a reason_spike rule has a reason")
		}
	case KindReasonSpike:
		if r.Threshold < 1 || r.Threshold > 1e9 || r.Threshold != math.Trunc(r.Threshold) {
			bad("threshold", "a reason_spike threshold is a count of requests, 1..1000000000, got %v", r.Threshold)
		}
		if len(r.Reason) > maxReasonLen || !reasonPattern.MatchString(r.Reason) {
			bad("reason", "must be a failure reason such as user_not_found or auth_rejected")
		}
	case KindSilence:
		if r.Threshold < 1 || r.Threshold > 1e9 || r.Threshold != math.Trunc(r.Threshold) {
			bad("threshold", "a silence threshold is the requests in the hour before the window that make a webhook busy, 1..1000000000, got %v", r.Threshold)
		}
		if r.Reason != "" {
			bad("reason", "only a reason_spike rule has a reason")
		}
	default:
		bad("kind", "must be one of failure_ratio, reason_spike, silence; got %q", r.Kind)
	}
	if len(fe) > 0 {
		return &domainerr.ValidationError{Fields: fe}
	}
	return nil
}

// checkWebhook refuses a webhook id that is not one of the project's live webhooks.
func checkWebhook(ctx context.Context, tx pgx.Tx, projectID int64, webhookID string) error {
	if webhookID == "" {
		return nil
	}
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks WHERE project_id = $1 AND public_id = $2 AND deleted_at IS NULL)`,
		projectID, webhookID).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return domainerr.Invalid("webhook_id", "the project has no webhook %s", webhookID)
	}
	return nil
}

// CreateRule adds a rule to the project, within max_rules_per_project.
func (s *Store) CreateRule(ctx context.Context, projectID int64, r Rule) (Rule, error) {
	if err := r.validate(); err != nil {
		return Rule{}, err
	}
	var out Rule
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// Serialises creations within the project, so that two cannot both pass the count.
		if _, err := tx.Exec(ctx, `SELECT id FROM projects WHERE id = $1 FOR NO KEY UPDATE`, projectID); err != nil {
			return err
		}
		if err := checkWebhook(ctx, tx, projectID, r.WebhookID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM alert_rules WHERE project_id = $1`, projectID).Scan(&n); err != nil {
			return err
		}
		if n >= s.cfg.MaxRulesPerProject {
			return domainerr.New(domainerr.ErrConflict, fmt.Sprintf("the project already has %d alert rules: delete one first", n))
		}
		return tx.QueryRow(ctx, `INSERT INTO alert_rules (project_id, name, kind, webhook_id, reason, threshold, window_minutes, min_requests, enabled)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+ruleColumns,
			projectID, r.Name, r.Kind, r.WebhookID, r.Reason, r.Threshold, r.WindowMinutes, r.MinRequests, r.Enabled).Scan(out.fields()...)
	})
	if err != nil {
		return Rule{}, fmt.Errorf("create alert rule in project %d: %w", projectID, err)
	}
	return out, nil
}

// UpdateRule replaces a rule's settings. Its open alerts are resolved (without a notification) when
// the rule changes, since what fired them no longer applies; the next evaluation judges afresh.
func (s *Store) UpdateRule(ctx context.Context, projectID, id int64, r Rule) (Rule, error) {
	if err := r.validate(); err != nil {
		return Rule{}, err
	}
	var out Rule
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := checkWebhook(ctx, tx, projectID, r.WebhookID); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `UPDATE alert_rules SET name = $3, kind = $4, webhook_id = $5, reason = $6, threshold = $7,
			window_minutes = $8, min_requests = $9, enabled = $10, updated_at = now()
			WHERE project_id = $1 AND id = $2 RETURNING `+ruleColumns,
			projectID, id, r.Name, r.Kind, r.WebhookID, r.Reason, r.Threshold, r.WindowMinutes, r.MinRequests, r.Enabled).Scan(out.fields()...)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrRuleNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE alerts SET resolved_at = now() WHERE rule_id = $1 AND resolved_at IS NULL`, id)
		return err
	})
	if err != nil {
		return Rule{}, fmt.Errorf("update alert rule %d of project %d: %w", id, projectID, err)
	}
	return out, nil
}

// DeleteRule deletes a rule; its open alerts are resolved (without a notification) and its alerts
// stay listed.
func (s *Store) DeleteRule(ctx context.Context, projectID, id int64) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE alerts SET resolved_at = now() WHERE project_id = $1 AND rule_id = $2 AND resolved_at IS NULL`, projectID, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM alert_rules WHERE project_id = $1 AND id = $2`, projectID, id)
		if err == nil && tag.RowsAffected() == 0 {
			return ErrRuleNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete alert rule %d of project %d: %w", id, projectID, err)
	}
	return nil
}

// Rule returns one rule of the project.
func (s *Store) Rule(ctx context.Context, projectID, id int64) (Rule, error) {
	var r Rule
	err := s.db.QueryRow(ctx, `SELECT `+ruleColumns+` FROM alert_rules WHERE project_id = $1 AND id = $2`, projectID, id).Scan(r.fields()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Rule{}, ErrRuleNotFound
	}
	if err != nil {
		return Rule{}, fmt.Errorf("get alert rule %d of project %d: %w", id, projectID, err)
	}
	return r, nil
}

// Rules returns the project's rules, oldest first (at most max_rules_per_project).
func (s *Store) Rules(ctx context.Context, projectID int64) ([]Rule, error) {
	rows, err := s.db.Query(ctx, `SELECT `+ruleColumns+` FROM alert_rules WHERE project_id = $1 ORDER BY id`, projectID)
	if err != nil {
		return nil, fmt.Errorf("list alert rules of project %d: %w", projectID, err)
	}
	rules, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Rule, error) {
		var r Rule
		err := row.Scan(r.fields()...)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list alert rules of project %d: %w", projectID, err)
	}
	return rules, nil
}

const alertColumns = `id, rule_id, kind, webhook_id, message, value, fired_at, resolved_at`

func scanAlert(row pgx.CollectableRow) (Alert, error) {
	var a Alert
	if err := row.Scan(&a.ID, &a.RuleID, &a.Kind, &a.WebhookID, &a.Message, &a.Value, &a.FiredAt, &a.ResolvedAt); err != nil {
		return a, err
	}
	switch {
	case a.ResolvedAt != nil:
		a.State = "resolved"
	default:
		a.State = "firing"
	}
	return a, nil
}

// Alerts returns the project's alerts, newest first, at most limit (1..MaxListed); open only lists
// the firing ones.
func (s *Store) Alerts(ctx context.Context, projectID int64, open bool, limit int) ([]Alert, error) {
	limit = min(max(limit, 1), MaxListed)
	q := `SELECT ` + alertColumns + ` FROM alerts WHERE project_id = $1`
	if open {
		q += ` AND resolved_at IS NULL`
	}
	rows, err := s.db.Query(ctx, q+` ORDER BY id DESC LIMIT $2`, projectID, limit)
	if err != nil {
		return nil, fmt.Errorf("list alerts of project %d: %w", projectID, err)
	}
	as, err := pgx.CollectRows(rows, scanAlert)
	if err != nil {
		return nil, fmt.Errorf("list alerts of project %d: %w", projectID, err)
	}
	return as, nil
}

// Deliveries returns the project's notifications, newest first, at most limit (1..MaxListed), each
// with its attempts.
func (s *Store) Deliveries(ctx context.Context, projectID int64, limit int) ([]Delivery, error) {
	limit = min(max(limit, 1), MaxListed)
	rows, err := s.db.Query(ctx, `SELECT id, alert_id, event, payload, state, attempts, next_attempt_at, last_error, created_at, finished_at
		FROM notification_deliveries WHERE project_id = $1 ORDER BY created_at DESC, id LIMIT $2`, projectID, limit)
	if err != nil {
		return nil, fmt.Errorf("list notifications of project %d: %w", projectID, err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		var next time.Time
		err := row.Scan(&d.ID, &d.AlertID, &d.Event, &d.Payload, &d.State, &d.Attempts, &next, &d.LastError, &d.CreatedAt, &d.FinishedAt)
		if d.State == "pending" {
			d.NextAttemptAt = &next
		}
		d.AttemptLog = []Attempt{}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list notifications of project %d: %w", projectID, err)
	}
	if len(ds) == 0 {
		return ds, nil
	}
	ids := make([]uuid.UUID, len(ds))
	at := make(map[uuid.UUID]int, len(ds))
	for i := range ds {
		ids[i] = ds[i].ID
		at[ds[i].ID] = i
	}
	rows, err = s.db.Query(ctx, `SELECT delivery_id, attempt, at, url, status_code, error, duration_ms
		FROM notification_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt`, ids)
	if err != nil {
		return nil, fmt.Errorf("list notification attempts of project %d: %w", projectID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var a Attempt
		if err := rows.Scan(&id, &a.Attempt, &a.At, &a.URL, &a.StatusCode, &a.Error, &a.DurationMs); err != nil {
			return nil, fmt.Errorf("list notification attempts of project %d: %w", projectID, err)
		}
		d := &ds[at[id]]
		d.AttemptLog = append(d.AttemptLog, a)
	}
	return ds, rows.Err()
}

// Delivery returns one of the project's notifications with its attempts.
func (s *Store) Delivery(ctx context.Context, projectID int64, id uuid.UUID) (Delivery, error) {
	ds, err := s.Deliveries(ctx, projectID, MaxListed)
	if err != nil {
		return Delivery{}, err
	}
	for _, d := range ds {
		if d.ID == id {
			return d, nil
		}
	}
	var exists bool
	if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM notification_deliveries WHERE project_id = $1 AND id = $2)`,
		projectID, id).Scan(&exists); err != nil {
		return Delivery{}, fmt.Errorf("get notification %s of project %d: %w", id, projectID, err)
	}
	if exists {
		return Delivery{}, domainerr.New(domainerr.ErrNotFound, "notification "+id.String()+" is older than the newest "+strconv.Itoa(MaxListed))
	}
	return Delivery{}, ErrDeliveryNotFound
}

// signingSecretPrefix starts a Standard Webhooks secret: the rest is the key in standard base64.
const signingSecretPrefix = "whsec_"

func newSigningSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return signingSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// signingKey returns the HMAC key of a Standard Webhooks secret.
func signingKey(sec string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, signingSecretPrefix))
}

func signingAAD(projectID int64) []byte { return []byte("project:" + strconv.FormatInt(projectID, 10)) }

// SigningSecret returns the project's notification signing secret ("whsec_" + base64 key, as the
// Standard Webhooks libraries take it), creating it on first use.
func (s *Store) SigningSecret(ctx context.Context, projectID int64) (string, error) {
	var sealed []byte
	err := s.db.QueryRow(ctx, `SELECT signing_secret_ciphertext FROM projects WHERE id = $1`, projectID).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", domainerr.New(domainerr.ErrNotFound, "project not found")
	}
	if err != nil {
		return "", fmt.Errorf("read signing secret of project %d: %w", projectID, err)
	}
	if sealed == nil {
		// Two first uses may race: the first write wins and both read it back.
		if _, err := s.db.Exec(ctx, `UPDATE projects SET signing_secret_ciphertext = $2 WHERE id = $1 AND signing_secret_ciphertext IS NULL`,
			projectID, s.sealer.Seal([]byte(newSigningSecret()), signingAAD(projectID))); err != nil {
			return "", fmt.Errorf("create signing secret of project %d: %w", projectID, err)
		}
		return s.SigningSecret(ctx, projectID)
	}
	pt, err := s.sealer.Open(sealed, signingAAD(projectID))
	if err != nil {
		return "", fmt.Errorf("open signing secret of project %d: %w", projectID, err)
	}
	return string(pt), nil
}

// RotateSigningSecret replaces the project's signing secret and returns the new one; notifications
// sent from then on are signed with it. The rotation's time (signing_secret_rotated_at) is what the
// audit log records of it; the secret never is.
func (s *Store) RotateSigningSecret(ctx context.Context, projectID int64) (string, error) {
	sec := newSigningSecret()
	tag, err := s.db.Exec(ctx, `UPDATE projects SET signing_secret_ciphertext = $2, signing_secret_rotated_at = now() WHERE id = $1`,
		projectID, s.sealer.Seal([]byte(sec), signingAAD(projectID)))
	if err != nil {
		return "", fmt.Errorf("rotate signing secret of project %d: %w", projectID, err)
	}
	if tag.RowsAffected() == 0 {
		return "", domainerr.New(domainerr.ErrNotFound, "project not found")
	}
	return sec, nil
}

// querier is what both a pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// enqueue queues p's notification for the project's URL, in db's transaction: skipped (and said why)
// when the project has no URL or already max_pending undelivered notifications. A notification id
// queued before is left as it is (a replay of the pipeline's notification).
func (s *Store) enqueue(ctx context.Context, db querier, p Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	var url string
	var pending int
	if err := db.QueryRow(ctx, `SELECT notification_url,
		(SELECT count(*) FROM notification_deliveries WHERE project_id = $1 AND state = 'pending')
		FROM projects WHERE id = $1`, p.ProjectID).Scan(&url, &pending); err != nil {
		return fmt.Errorf("queue notification %s of project %d: %w", p.ID, p.ProjectID, err)
	}
	state, why := "pending", ""
	switch {
	case url == "":
		state, why = "skipped", "the project has no notification URL"
	case pending >= s.cfg.MaxPending:
		state, why = "skipped", fmt.Sprintf("the project already has %d notifications waiting (alerts.max_pending)", pending)
	}
	var alertID *int64
	if p.AlertID != 0 {
		alertID = &p.AlertID
	}
	if _, err := db.Exec(ctx, `INSERT INTO notification_deliveries (id, project_id, alert_id, event, payload, state, last_error, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $6 = 'pending' THEN NULL ELSE now() END) ON CONFLICT (id) DO NOTHING`,
		p.ID, p.ProjectID, alertID, p.Type, body, state, why); err != nil {
		return fmt.Errorf("queue notification %s of project %d: %w", p.ID, p.ProjectID, err)
	}
	return nil
}

// Streak is the pipeline's five-failures notification, as RecordStreak takes it.
type Streak struct {
	ProjectID int64
	WebhookID string
	// ID is the notification's id, stable for the streak (the request that completed it names it).
	ID        uuid.UUID
	CreatedAt time.Time
	Message   string
}

// RecordStreak records the pipeline's five-failures notification as an alert and queues its
// notification, once per notification id (a replay changes nothing).
func (s *Store) RecordStreak(ctx context.Context, n Streak) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO alerts (project_id, source_id, kind, webhook_id, message, fired_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source_id) DO NOTHING RETURNING id`,
			n.ProjectID, n.ID, KindAuthFailures, n.WebhookID, n.Message, n.CreatedAt).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // recorded before
		}
		if err != nil {
			return err
		}
		return s.enqueue(ctx, tx, Payload{ProjectID: n.ProjectID, WebhookID: n.WebhookID, ID: n.ID, Kind: KindAuthFailures,
			CreatedAt: n.CreatedAt.UTC(), Message: n.Message, Type: EventFired, AlertID: id})
	})
	if err != nil {
		return fmt.Errorf("record auth-failure notification %s of project %d: %w", n.ID, n.ProjectID, err)
	}
	return nil
}

// ResealReport is what ResealProjectSecrets did: the projects' signing secrets and masking keys.
type ResealReport struct {
	Resealed, Current, Failed int
	// Failures names the first 100 keys no configured master key opens ("project 3 signing secret").
	Failures []string
}

// ResealProjectSecrets rewrites every project's signing secret and masking key under the current
// master key, as webhook.Store.ResealSecrets does for webhook secrets, so that previous master keys
// can be removed from the settings. The project rows are locked while they are rewritten.
func (s *Store) ResealProjectSecrets(ctx context.Context) (ResealReport, error) {
	var r ResealReport
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		r = ResealReport{}
		rows, err := tx.Query(ctx, `SELECT id, signing_secret_ciphertext, mask_key_ciphertext FROM projects
			WHERE signing_secret_ciphertext IS NOT NULL OR mask_key_ciphertext IS NOT NULL ORDER BY id FOR UPDATE`)
		if err != nil {
			return err
		}
		type row struct {
			id         int64
			sign, mask []byte
		}
		var todo []row
		for rows.Next() {
			var x row
			if err := rows.Scan(&x.id, &x.sign, &x.mask); err != nil {
				rows.Close()
				return err
			}
			todo = append(todo, x)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, x := range todo {
			reseal := func(what string, in, aad []byte) []byte {
				if in == nil {
					return nil
				}
				out, changed, err := s.sealer.Reseal(in, aad)
				switch {
				case err != nil:
					r.Failed++
					if len(r.Failures) < 100 {
						r.Failures = append(r.Failures, fmt.Sprintf("project %d %s", x.id, what))
					}
					return in
				case changed:
					r.Resealed++
				default:
					r.Current++
				}
				return out
			}
			sign := reseal("signing secret", x.sign, signingAAD(x.id))
			mask := reseal("masking key", x.mask, webhook.MaskAAD(x.id))
			if _, err := tx.Exec(ctx, `UPDATE projects SET signing_secret_ciphertext = $2, mask_key_ciphertext = $3 WHERE id = $1`,
				x.id, sign, mask); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("reseal project secrets: %w", err)
	}
	return r, nil
}

// ResolveStreak resolves the webhook's open five-failures alerts (an authenticated request arrived
// again; n is the pipeline's KindStreakEnded notification) and queues one notification for each. When
// none is open (resolved before: a replay) it does nothing.
func (s *Store) ResolveStreak(ctx context.Context, n Streak) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE alerts SET resolved_at = $3 WHERE project_id = $1 AND webhook_id = $2
			AND kind = $4 AND rule_id IS NULL AND resolved_at IS NULL RETURNING id`,
			n.ProjectID, n.WebhookID, n.CreatedAt, KindAuthFailures)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for i, id := range ids {
			nid := n.ID
			if i > 0 {
				nid = uuid.NewSHA1(n.ID, []byte(strconv.FormatInt(id, 10)))
			}
			if err := s.enqueue(ctx, tx, Payload{ProjectID: n.ProjectID, WebhookID: n.WebhookID, ID: nid, Kind: KindAuthFailures,
				CreatedAt: n.CreatedAt.UTC(), Message: n.Message, Type: EventResolved, AlertID: id}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("resolve auth-failure alerts of webhook %s: %w", n.WebhookID, err)
	}
	return nil
}
