// Package prometheus_test checks Inlet's monitoring artefacts with Prometheus's own tool: the alert rules
// of alerts.yml (promtool check rules, promtool test rules alerts_test.yml), and every PromQL expression
// of the rules and of the Grafana dashboards in ../grafana/dashboards — it parses, and every metric it
// names is exported by the real inlet processes, scraped while they run against the local stack.
//
// promtool is built by deploy/local/promtool (once, from the Go module proxy, without the service
// discoveries; see the script for why), which `make tools` runs before the tests.
package prometheus_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/inlet-dev/inlet/internal/testenv"
)

var (
	promtoolOnce sync.Once
	promtoolPath string
	promtoolErr  string
)

// promtool returns the path of the promtool binary that deploy/local/promtool builds (once, into
// $INLET_STATE_DIR/bin; `make tools` has run it before the tests). Under -short (`make test-unit`, no
// network) the test is skipped unless the binary was built before.
func promtool(t *testing.T) string {
	t.Helper()
	promtoolOnce.Do(func() {
		script := filepath.Join(testenv.RepoRoot(), "deploy", "local", "promtool")
		if testing.Short() {
			// Only look: a build would need the network.
			state := os.Getenv("INLET_STATE_DIR")
			if state == "" {
				state = filepath.Join(testenv.RepoRoot(), ".state")
			}
			matches, _ := filepath.Glob(filepath.Join(state, "bin", "promtool-*-nosd"))
			if len(matches) == 0 {
				promtoolErr = "skip"
				return
			}
		}
		var stderr bytes.Buffer
		cmd := exec.Command(script)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			promtoolErr = script + ": " + err.Error() + "\n" + stderr.String()
			return
		}
		promtoolPath = strings.TrimSpace(string(out))
	})
	switch {
	case promtoolErr == "skip":
		t.Skip("promtool is not built yet (deploy/local/promtool) and -short promises no network")
	case promtoolErr != "":
		t.Fatal(promtoolErr)
	}
	return promtoolPath
}

// runPromtool runs promtool with args in this package's directory and returns its output; a non-zero
// exit is returned as ok false.
func runPromtool(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(promtool(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err == nil
}
