package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// End-to-end tests run the real `inlet` binary against the local stack: these helpers build it, start
// its roles and wait for them, for every package that does (cmd/inlet, pipeline).

var inletBinary struct {
	once sync.Once
	path string
	err  error
}

// BuildInlet builds cmd/inlet once per test binary run and returns its path, in a directory of its own
// under the system's temporary directory: TestMain removes it with RemoveInlet after the last test.
func BuildInlet(t testing.TB) string {
	t.Helper()
	inletBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "inlet-test-bin")
		if err != nil {
			inletBinary.err = err
			return
		}
		inletBinary.path = filepath.Join(dir, "inlet")
		build := exec.Command("go", "build", "-o", inletBinary.path, "./cmd/inlet")
		build.Dir = RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			inletBinary.err = fmt.Errorf("go build ./cmd/inlet: %v\n%s", err, out)
		}
	})
	if inletBinary.err != nil {
		t.Fatal(inletBinary.err)
	}
	return inletBinary.path
}

// RemoveInlet removes the binary BuildInlet built, if it built one. Call it from TestMain after m.Run.
func RemoveInlet() {
	if inletBinary.path != "" {
		_ = os.RemoveAll(filepath.Dir(inletBinary.path))
	}
}

// StartInlet runs `inlet <role>` with this process's environment and env added, killed when the test
// ends; its output goes to the test's stderr with INLET_TEST_LOGS=1.
func StartInlet(t testing.TB, bin, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, role)
	cmd.Env = append(os.Environ(), env...)
	if os.Getenv("INLET_TEST_LOGS") == "1" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// FreeAddr returns a loopback address no one listens on now, for a process the test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitFor polls cond every 50ms until it holds, failing the test after timeout.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}
