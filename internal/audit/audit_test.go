package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/inlet-dev/inlet/internal/audit"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestAppendOnly: the log refuses UPDATE, DELETE and TRUNCATE, whoever asks (the tests connect as a
// superuser).
func TestAppendOnly(t *testing.T) {
	_, pool := testenv.Postgres(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Via: "cli", KeyName: "ops"})
	if _, err := pool.Exec(ctx, `INSERT INTO projects (name) VALUES ('p')`); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`UPDATE audit_log SET key_name = 'someone else'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`} {
		_, err := pool.Exec(context.Background(), sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, "append-only") {
			t.Errorf("%s: %v; want refused as append-only (42501)", sql, err)
		}
	}
	page, err := audit.NewStore(pool).List(context.Background(), audit.Query{ProjectID: 1})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].KeyName != "ops" || page.Entries[0].Via != "cli" {
		t.Fatalf("log after the refused changes = %+v, %v; want the one entry, unchanged", page.Entries, err)
	}
}

// TestSameTransaction: a change and its entry commit or roll back together; the actor is the
// context's, per connection acquisition (a later acquisition without one is the system's, and changes
// to users and devices without an actor — the pipeline creating unknown users — are not recorded).
func TestSameTransaction(t *testing.T) {
	_, pool := testenv.Postgres(t)
	store := audit.NewStore(pool)
	bg := context.Background()
	api := audit.WithActor(bg, audit.Actor{Via: "api", KeyID: 7, KeyName: "ci"})
	if _, err := pool.Exec(api, `INSERT INTO projects (name) VALUES ('p')`); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := pgx.BeginFunc(api, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(api, `UPDATE projects SET name = 'renamed' WHERE id = 1`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	page, err := store.List(bg, audit.Query{ProjectID: 1})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Action != "create" {
		t.Fatalf("after a rolled-back rename: %+v, %v; want only the create", page.Entries, err)
	}
	// Without an actor: the system's on config tables, nothing on the directory.
	if _, err := pool.Exec(bg, `UPDATE projects SET name = 'by migration' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(bg, `INSERT INTO users (project_id, user_id, email) VALUES (1, 'auto', 'a@example.com')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(api, `UPDATE users SET phone = '+15551234567' WHERE user_id = 'auto'`); err != nil {
		t.Fatal(err)
	}
	page, err = store.List(bg, audit.Query{ProjectID: 1})
	if err != nil || len(page.Entries) != 3 {
		t.Fatalf("entries = %+v, %v; want 3", page.Entries, err)
	}
	sys, user, created := page.Entries[1], page.Entries[0], page.Entries[2]
	if sys.Via != "system" || sys.KeyID != nil || string(sys.After) != `{"name": "by migration"}` {
		t.Errorf("change without an actor = %+v; want the system's rename", sys)
	}
	if user.Target != "user" || user.TargetID != "auto" || user.KeyID == nil || *user.KeyID != 7 ||
		string(user.Before) != `{"phone": ""}` || string(user.After) != `{"phone": "(redacted)"}` {
		t.Errorf("user change = %+v (before %s, after %s); want the phone change, redacted, by key 7", user, user.Before, user.After)
	}
	if created.Via != "api" || created.KeyName != "ci" {
		t.Errorf("first entry = %+v", created)
	}
}

// TestSecretColumnsByName: a column whose name says it holds a secret is never recorded, even one
// added after the audit triggers (as a later feature's signing secret would be); its time is.
func TestSecretColumnsByName(t *testing.T) {
	_, pool := testenv.Postgres(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Via: "api", KeyID: 1})
	if _, err := pool.Exec(context.Background(), `ALTER TABLE projects ADD COLUMN partner_secret text NOT NULL DEFAULT '',
ADD COLUMN partner_secret_rotated_at timestamptz`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO projects (name, partner_secret) VALUES ('p', 'whsec_first_one')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE projects SET partner_secret = 'whsec_second_one', partner_secret_rotated_at = now()`); err != nil {
		t.Fatal(err)
	}
	page, err := audit.NewStore(pool).List(context.Background(), audit.Query{ProjectID: 1})
	if err != nil || len(page.Entries) != 2 {
		t.Fatalf("entries %+v, %v; want 2", page.Entries, err)
	}
	for _, en := range page.Entries {
		if strings.Contains(string(en.Before)+string(en.After), "whsec_") {
			t.Errorf("entry %s shows the secret: %s → %s", en.Action, en.Before, en.After)
		}
	}
	if !strings.Contains(string(page.Entries[0].After), "partner_secret_rotated_at") {
		t.Errorf("the rotation time is not recorded: %s", page.Entries[0].After)
	}
}

// TestNotificationSecrets: the project's notification signing secret and masking key (migration 00014)
// never reach the log; a rotation is recorded by its time, and a change of a ciphertext alone (the
// secret's first use, the mask key's creation, a reseal) leaves no entry.
func TestNotificationSecrets(t *testing.T) {
	_, pool := testenv.Postgres(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Via: "api", KeyID: 1})
	if _, err := pool.Exec(ctx, `INSERT INTO projects (name) VALUES ('p')`); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE projects SET signing_secret_ciphertext = 'sealed-signing', mask_key_ciphertext = 'sealed-mask'`,
		`UPDATE projects SET signing_secret_ciphertext = 'sealed-rotated', signing_secret_rotated_at = now()`,
		`UPDATE projects SET notification_format = 'slack', payload_retention_days = 3`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	page, err := audit.NewStore(pool).List(context.Background(), audit.Query{ProjectID: 1})
	if err != nil || len(page.Entries) != 3 {
		t.Fatalf("entries %+v, %v; want the create, the rotation and the settings", page.Entries, err)
	}
	for _, en := range page.Entries {
		if b := string(en.Before) + string(en.After); strings.Contains(b, "ciphertext") || strings.Contains(b, "sealed") ||
			strings.Contains(b, "\\x") {
			t.Errorf("entry %s shows a secret column: %s → %s", en.Action, en.Before, en.After)
		}
	}
	if !strings.Contains(string(page.Entries[1].After), "signing_secret_rotated_at") {
		t.Errorf("the rotation is not recorded: %s", page.Entries[1].After)
	}
	if got := string(page.Entries[0].After); got != `{"notification_format": "slack", "payload_retention_days": 3}` {
		t.Errorf("settings entry = %s", got)
	}
}

// TestReplayJobs: a replay job's creation and cancellation are recorded; the runner's lease, progress
// and end are not.
func TestReplayJobs(t *testing.T) {
	_, pool := testenv.Postgres(t)
	api := audit.WithActor(context.Background(), audit.Actor{Via: "api", KeyID: 1, KeyName: "ops"})
	bg := context.Background()
	if _, err := pool.Exec(api, `INSERT INTO projects (name) VALUES ('p')`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ctx context.Context
		sql string
	}{
		{api, `INSERT INTO replay_jobs (id, project_id, webhook_id, since_ms, until_ms, total) VALUES ('rj_1', 1, 'wh', 0, 10, 5), ('rj_2', 1, 'wh', 0, 10, 5)`},
		{bg, `UPDATE replay_jobs SET state = 'running', lease_owner = 'me', lease_until = now()`},
		{bg, `UPDATE replay_jobs SET cursor_ms = 5, produced = 2, skipped = 1`},
		{bg, `UPDATE replay_jobs SET state = 'done', finished_at = now() WHERE id = 'rj_2'`},
		{api, `UPDATE replay_jobs SET state = 'cancelled', finished_at = now(), lease_owner = '' WHERE id = 'rj_1'`},
		{bg, `UPDATE replay_jobs SET error = 'late', state = 'cancelled' WHERE id = 'rj_1'`},
	} {
		if _, err := pool.Exec(c.ctx, c.sql); err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
	}
	page, err := audit.NewStore(pool).List(bg, audit.Query{ProjectID: 1, Target: "replay_job"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range page.Entries {
		got = append(got, en.TargetID+" "+en.Action+" "+en.Via)
	}
	if strings.Join(got, ", ") != "rj_1 update api, rj_2 create api, rj_1 create api" {
		t.Fatalf("replay job entries = %v; want the two creations and rj_1's cancellation", got)
	}
	if a := string(page.Entries[0].After); !strings.Contains(a, `"state": "cancelled"`) || strings.Contains(a, "cursor") {
		t.Errorf("cancellation entry = %s", a)
	}
}
