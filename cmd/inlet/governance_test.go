package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestAuditAndEraseCommands: a key made with -scopes has those; the CLI's changes are in the audit log
// as the operator's; `inlet erase user` deletes the user and runs its erasure against the real
// ClickHouse to done; `inlet erase status` shows it.
func TestAuditAndEraseCommands(t *testing.T) {
	pg, pool := testenv.Postgres(t)
	chcfg, ch := testenv.ClickHouse(t)
	env := []string{"INLET_POSTGRES_DSN=" + pg.DSN, "INLET_CLICKHOUSE_DATABASE=" + chcfg.Database,
		"INLET_CLICKHOUSE_ADDRS=" + strings.Join(chcfg.Addrs, ",")}
	inlet := func(wantCode int, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(args, env, &stdout, &stderr); code != wantCode {
			t.Fatalf("inlet %s: exit %d; want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, stdout.String(), stderr.String())
		}
		return stdout.String() + stderr.String()
	}
	out := inlet(exitOK, "project", "create", "Shop")
	pid := regexp.MustCompile(`project (\d+) "Shop" created`).FindStringSubmatch(out)[1]
	out = inlet(exitOK, "project", "key-create", pid, "-scopes", "read,admin", "reporting")
	if !strings.Contains(out, "with scopes read,admin") {
		t.Errorf("key-create -scopes printed:\n%s", out)
	}
	inlet(exitFail, "project", "key-create", pid, "-scopes", "everything")
	if list := inlet(exitOK, "project", "keys", pid); !strings.Contains(list, "read,admin") {
		t.Errorf("keys printed:\n%s", list)
	}
	log := inlet(exitOK, "audit", pid, "-target", "api_key")
	if !strings.Contains(log, "reporting") || !strings.Contains(log, "cli") || strings.Count(log, "  create  ") != 2 {
		t.Errorf("audit printed:\n%s\nwant the two keys' creation by the cli", log)
	}
	inlet(exitConfig, "audit", "x")
	inlet(exitFail, "audit", pid, "-target", "nothing")

	// A user with a row in ClickHouse, erased by the CLI.
	ctx := context.Background()
	now := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	if err := chstore.NewWriter(ch).InsertActivity(ctx, []chstore.ActivityRow{{ProjectID: uint64(parseID(pid)), WebhookID: "w", RequestID: uuid.New(),
		ReceivedAt: now, ReceivedMs: uint64(now.UnixMilli()), Status: chstore.StatusSuccess, IdentifierKind: "user_id",
		IdentifierValue: "u1", UserID: "u1", Payload: `{"user_id":"u1"}`}}); err != nil {
		t.Fatal(err)
	}
	inlet(exitFail, "erase", "user", pid, "u1") // not in the directory
	stores := []string{"erase", "user", pid, "u1"}
	if _, err := pool.Exec(ctx, `INSERT INTO users (project_id, user_id) VALUES ($1, 'u1')`, pid); err != nil {
		t.Fatal(err)
	}
	out = inlet(exitOK, stores...)
	if !strings.Contains(out, "erasure 1 recorded") || !strings.Contains(out, "erasure 1 done") {
		t.Errorf("erase printed:\n%s", out)
	}
	var n uint64
	if err := ch.QueryRow(ctx, "SELECT count() FROM activity_log WHERE user_id = 'u1'").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows of u1 left after inlet erase, %v", n, err)
	}
	if st := inlet(exitOK, "erase", "status", pid); !strings.Contains(st, "user u1") || !strings.Contains(st, "done") {
		t.Errorf("erase status printed:\n%s", st)
	}
	if log := inlet(exitOK, "audit", pid, "-target", "user", "-json"); !strings.Contains(log, `"action":"delete"`) || !strings.Contains(log, `"via":"cli"`) {
		t.Errorf("audit -json printed:\n%s", log)
	}
	inlet(exitConfig, "erase", "person", pid, "u1")
}
