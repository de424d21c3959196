package prometheus_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/testenv"
)

// snapshotDoc is the page of the dashboards' queries evaluated against live data: the stand-in for
// screenshots, as no registry this project can reach serves a runnable Grafana.
const snapshotDoc = "../../docs/dashboards.md"

// snapshotDashboards, when INLET_PROMETHEUS names a prometheus binary, runs it scraping the processes
// of targets (job → internal address) every second while drive sends traffic for 20 s, then evaluates
// every dashboard query and writes the answers to docs/dashboards.md.
func snapshotDashboards(t *testing.T, targets map[string]string, drive func()) {
	t.Helper()
	bin := os.Getenv("INLET_PROMETHEUS")
	if bin == "" {
		return
	}
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n")
	jobs := make([]string, 0, len(targets))
	for job := range targets {
		jobs = append(jobs, job)
	}
	slices.Sort(jobs)
	for _, job := range jobs {
		fmt.Fprintf(&cfg, "  - job_name: inlet-%s\n    static_configs: [{targets: [%q]}]\n", job, targets[job])
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	if os.Getenv("INLET_TEST_LOGS") == "1" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testenv.WaitFor(t, "prometheus ready", 30*time.Second, func() bool { return get(t, "http://"+addr+"/-/ready", "") == http.StatusOK })
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		drive()
	}

	files, _ := filepath.Glob("../grafana/dashboards/*.json")
	var doc strings.Builder
	doc.WriteString(`# The dashboards against live data

<!-- generated: INLET_PROMETHEUS=path/to/prometheus go test ./deploy/prometheus -run TestQueriesNameExportedMetrics -->

No registry this project can reach serves a runnable Grafana (not Debian's packages; npm has only its
front-end libraries, PyPI a placeholder package, and the Go module github.com/grafana/grafana is AGPL,
which this project does not take), so
instead of screenshots this page shows every panel's queries of
[the dashboards](operations.md#dashboards) evaluated by a real Prometheus (v0.316.0, built from the Go
module proxy) that scraped the real ` + "`inlet ingestor`, `inlet pipeline` and `inlet admin`" + ` every second
for 20 s while a test sent them, one after the other, accepted webhooks, webhooks refused for their
secret and admin API calls (about 8 a second each)
(` + "`$__rate_interval`" + ` = 10s). A query with no answer has no data in that run (an error that did not
happen, for example).
`)
	legendVar := regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
	for _, f := range files {
		var d struct {
			Title  string `json:"title"`
			Panels []struct {
				Title   string `json:"title"`
				Type    string `json:"type"`
				Targets []struct {
					Expr   string `json:"expr"`
					Legend string `json:"legendFormat"`
				} `json:"targets"`
			} `json:"panels"`
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&doc, "\n## %s\n\n[`%s`](../deploy/grafana/dashboards/%s)\n\n| panel | series | value | query |\n|---|---|---|---|\n",
			d.Title, filepath.Base(f), filepath.Base(f))
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			for _, tg := range p.Targets {
				expr := strings.NewReplacer("$__rate_interval", "10s", "$job", ".*").Replace(tg.Expr)
				res := instantQuery(t, addr, expr)
				q := "`" + strings.ReplaceAll(tg.Expr, "|", `\|`) + "`"
				if len(res) == 0 {
					fmt.Fprintf(&doc, "| %s | %s | no data | %s |\n", p.Title, tg.Legend, q)
					continue
				}
				for _, r := range res {
					legend := legendVar.ReplaceAllStringFunc(tg.Legend, func(m string) string {
						return r.Metric[legendVar.FindStringSubmatch(m)[1]]
					})
					fmt.Fprintf(&doc, "| %s | %s | %s | %s |\n", p.Title, strings.ReplaceAll(legend, "|", `\|`), r.value(), q)
				}
			}
		}
	}
	if err := os.WriteFile(snapshotDoc, []byte(doc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) value() string {
	v, _ := s.Value[1].(string)
	var f float64
	if _, err := fmt.Sscan(v, &f); err != nil {
		return v
	}
	return fmt.Sprintf("%.4g", f)
}

// instantQuery evaluates expr now on the Prometheus at addr.
func instantQuery(t *testing.T, addr, expr string) []sample {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Status != "success" {
		t.Fatalf("query %s: %s", expr, out.Error)
	}
	slices.SortFunc(out.Data.Result, func(a, b sample) int { return strings.Compare(fmt.Sprint(a.Metric), fmt.Sprint(b.Metric)) })
	return out.Data.Result
}
