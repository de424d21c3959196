package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Chaos tests stop or kill a real service of the shared local stack, which would break every other test
// running at the same time. They are named TestChaos… and run only when INLET_CHAOS=1: `make test` runs
// them in a stage of their own, one package at a time (go test -p 1 -run Chaos), before the main suite.
func RequireChaos(t testing.TB) {
	t.Helper()
	if os.Getenv("INLET_CHAOS") != "1" {
		t.Skip("stops a shared service: runs in the chaos stage of `make test` (INLET_CHAOS=1)")
	}
}

// RepoRoot is the module root, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// StopService stops one service of the local stack ("kafka", "clickhouse" or "postgres") with
// deploy/local/down and makes sure it is started again when the test ends. Chaos tests only.
func StopService(t testing.TB, name string) {
	t.Helper()
	RequireChaos(t)
	stack(t, "down", name)
	t.Cleanup(func() { StartService(t, name) })
}

// StartService starts one service with deploy/local/up and waits until it is ready; a no-op when it is
// already running.
func StartService(t testing.TB, name string) {
	t.Helper()
	stack(t, "up", name)
}

func stack(t testing.TB, verb, name string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(filepath.Join(RepoRoot(), "deploy", "local", verb), name)
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy/local/%s %s: %v\n%s", verb, name, err, out)
	}
	t.Logf("deploy/local/%s %s took %s", verb, name, time.Since(start).Round(time.Millisecond))
}
