// Package prometheus_test checks Inlet's monitoring artefacts with Prometheus's own tool: the alert rules
// of alerts.yml (promtool check rules, promtool test rules alerts_test.yml), and every PromQL expression
// of the rules and of the Grafana dashboards in ../grafana/dashboards — it parses, and every metric it
// names is exported by the real inlet processes, scraped while they run against the local stack.
//
// promtool is built from the Go module proxy once (go install -tags remove_all_sd
// …/cmd/promtool@promtoolVersion) into $INLET_STATE_DIR/bin and reused. remove_all_sd leaves out the
// service discoveries (AWS, Azure, GCE, Kubernetes, …) that checking rules and queries never uses: a
// cold build took 6 min here with it, 15 without. Keeping Prometheus out of go.mod keeps its
// dependencies out of every other build.
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

// promtoolVersion is the Prometheus release whose promtool checks the rules and parses the queries.
const promtoolVersion = "v0.316.0"

var (
	promtoolOnce sync.Once
	promtoolPath string
	promtoolErr  string
)

// promtool returns the path of a promtool binary, building it on first use. Under -short (`make
// test-unit`, no network) the test is skipped unless the binary was built before.
func promtool(t *testing.T) string {
	t.Helper()
	promtoolOnce.Do(func() {
		state := os.Getenv("INLET_STATE_DIR")
		if state == "" {
			state = filepath.Join(testenv.RepoRoot(), ".state")
		}
		dir := filepath.Join(state, "bin")
		path := filepath.Join(dir, "promtool-"+promtoolVersion+"-nosd")
		if _, err := os.Stat(path); err == nil {
			promtoolPath = path
			return
		}
		if testing.Short() {
			promtoolErr = "skip"
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			promtoolErr = err.Error()
			return
		}
		tmp, err := os.MkdirTemp(dir, "promtool-build-")
		if err != nil {
			promtoolErr = err.Error()
			return
		}
		defer os.RemoveAll(tmp)
		cmd := exec.Command("go", "install", "-tags", "remove_all_sd", "github.com/prometheus/prometheus/cmd/promtool@"+promtoolVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-modcacherw")
		cmd.Dir = tmp // outside the module: go install pkg@version ignores it anyway
		if out, err := cmd.CombinedOutput(); err != nil {
			promtoolErr = "build promtool " + promtoolVersion + ": " + err.Error() + "\n" + string(out)
			return
		}
		// Renamed into place only once complete, so that a killed build never leaves half a binary.
		if err := os.Rename(filepath.Join(tmp, "promtool"), path); err != nil {
			promtoolErr = err.Error()
			return
		}
		promtoolPath = path
	})
	switch {
	case promtoolErr == "skip":
		t.Skip("promtool " + promtoolVersion + " is not built yet and -short promises no network")
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
