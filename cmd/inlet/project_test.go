package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestProjectKeys: the operator's key commands create, list and revoke keys of a project; a revoked key
// is refused at once, and the last active key is kept.
func TestProjectKeys(t *testing.T) {
	pg, pool := testenv.Postgres(t)
	env := []string{"INLET_POSTGRES_DSN=" + pg.DSN}
	inlet := func(wantCode int, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(args, env, &stdout, &stderr); code != wantCode {
			t.Fatalf("inlet %s: exit %d; want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, stdout.String(), stderr.String())
		}
		return stdout.String() + stderr.String()
	}
	keyRe := regexp.MustCompile(`API key \(shown once, store it now\): (inl_\S+)`)

	out := inlet(exitOK, "project", "create", "Shop")
	first := keyRe.FindStringSubmatch(out)
	pid := regexp.MustCompile(`project (\d+) "Shop" created`).FindStringSubmatch(out)
	if first == nil || pid == nil {
		t.Fatalf("create printed:\n%s", out)
	}
	out = inlet(exitOK, "project", "key-create", pid[1], "CI", "deploys")
	second := keyRe.FindStringSubmatch(out)
	secondID := regexp.MustCompile(`API key (\d+) created`).FindStringSubmatch(out)
	if second == nil || secondID == nil {
		t.Fatalf("key-create printed:\n%s", out)
	}

	store := project.NewStore(pool)
	firstCaller, err := store.Authenticate(t.Context(), first[1])
	if err != nil {
		t.Fatal(err)
	}
	list := inlet(exitOK, "project", "keys", pid[1])
	if !strings.Contains(list, "CI deploys") || !strings.Contains(list, second[1][:12]+"…") || !strings.Contains(list, first[1][:12]+"…") ||
		strings.Contains(list, second[1]) {
		t.Fatalf("keys printed:\n%s\nwant both keys by prefix, the name, and no key in clear", list)
	}

	out = inlet(exitOK, "project", "key-revoke", pid[1], strconv.FormatInt(firstCaller.KeyID, 10))
	if !strings.Contains(out, "revoked") {
		t.Fatalf("key-revoke printed:\n%s", out)
	}
	if _, err := store.Authenticate(t.Context(), first[1]); err == nil {
		t.Fatalf("the first key still authenticates after key-revoke")
	}
	if err := store.Verify(t.Context(), firstCaller); err == nil {
		t.Fatalf("sessions of the revoked key would carry on")
	}
	out = inlet(exitFail, "project", "key-revoke", pid[1], secondID[1])
	if !strings.Contains(out, "last active") {
		t.Fatalf("revoking the last key printed:\n%s", out)
	}
	if _, err := store.Authenticate(t.Context(), second[1]); err != nil {
		t.Fatalf("the last key stopped working: %v", err)
	}
	inlet(exitFail, "project", "key-revoke", "999999", secondID[1]) // another project: not found
	inlet(exitFail, "project", "keys", "999999")

	for _, args := range [][]string{{"project"}, {"project", "keys"}, {"project", "keys", "x"}, {"project", "key-revoke", pid[1]},
		{"project", "key-revoke", pid[1], "0"}, {"project", "rename", "1"}} {
		if out := inlet(exitConfig, args...); !strings.Contains(out, "usage") {
			t.Errorf("inlet %s printed %q; want the usage", strings.Join(args, " "), out)
		}
	}
}
