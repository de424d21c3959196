package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestDemo: `inlet demo` seeds a fresh database with the seed's webhook, enabled, prints a one-line curl
// that `make run` shows, and a second run changes nothing and reuses the same key.
func TestDemo(t *testing.T) {
	pg, pool := testenv.Postgres(t)
	env := []string{"INLET_POSTGRES_DSN=" + pg.DSN}
	state := t.TempDir()
	var out1, out2, stderr bytes.Buffer
	if code := run([]string{"demo", "-state", state}, env, &out1, &stderr); code != exitOK {
		t.Fatalf("demo exit %d: %s", code, stderr.String())
	}
	if code := run([]string{"demo", "-state", state}, env, &out2, &stderr); code != exitOK {
		t.Fatalf("second demo exit %d: %s", code, stderr.String())
	}
	if out1.String() != out2.String() {
		t.Errorf("second run printed something else:\n%s\n---\n%s", out1.String(), out2.String())
	}
	var curl string
	for _, line := range strings.Split(out1.String(), "\n") {
		if strings.HasPrefix(line, "curl ") {
			curl = line
		}
	}
	if !strings.Contains(curl, "Authorization: Bearer whsec_") || !strings.Contains(curl, `"user_id":"12345"`) {
		t.Fatalf("no ready-to-paste curl line in:\n%s", out1.String())
	}
	var webhooks, enabled, users, devices int
	if err := pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE enabled) FROM webhooks`).Scan(&webhooks, &enabled); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM devices)`).Scan(&users, &devices); err != nil {
		t.Fatal(err)
	}
	if webhooks != 1 || enabled != 1 || users == 0 || devices == 0 {
		t.Fatalf("after two runs: %d webhooks (%d enabled), %d users, %d devices; want 1 enabled webhook and some users and devices", webhooks, enabled, users, devices)
	}
}
