package prometheus_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveInlet() // built by TestQueriesNameExportedMetrics
	os.Exit(code)
}

// query is one PromQL expression and where it is written.
type query struct{ where, expr string }

// dashboardVars are the values Grafana gives the variables our dashboards use, for parsing.
var dashboardVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$job", ".*")

// queries returns every expression of alerts.yml and of the dashboards' targets.
func queries(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"alerts.yml " + r.Alert + r.Record, r.Expr})
		}
	}
	files, err := filepath.Glob("../grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboard in ../grafana/dashboards (%v)", err)
	}
	type panel struct {
		Title   string  `json:"title"`
		Panels  []panel `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	for _, f := range files {
		var d struct {
			Panels []panel `json:"panels"`
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				for _, tg := range p.Targets {
					qs = append(qs, query{filepath.Base(f) + " " + p.Title, dashboardVars.Replace(tg.Expr)})
				}
			}
		}
		walk(d.Panels)
	}
	return qs
}

// probe is the label matcher promtool adds to every selector, so that its output shows each selector's
// metric name next to it.
const probe = `inlet_probe="1"`

var selectorName = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{[^{}]*` + regexp.QuoteMeta(probe))

// metricNames parses expr with Prometheus's parser (promtool) and returns the metric names its selectors
// read. promtool's label-matchers command parses the expression, adds a matcher to every vector and
// matrix selector and prints the expression back.
func metricNames(t *testing.T, q query) ([]string, error) {
	t.Helper()
	out, ok := runPromtool(t, "--experimental", "promql", "label-matchers", "set", q.expr, "inlet_probe", "1")
	if !ok {
		return nil, fmt.Errorf("%s: %s does not parse: %s", q.where, q.expr, out)
	}
	var names []string
	for _, m := range selectorName.FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 || len(names) != strings.Count(out, probe) {
		return nil, fmt.Errorf("%s: %s: every selector must name its metric (promtool printed %s)", q.where, q.expr, out)
	}
	return names, nil
}

// TestQueriesParse: every expression of the rules and the dashboards parses with Prometheus's parser and
// names its metrics.
func TestQueriesParse(t *testing.T) {
	qs := queries(t)
	for _, q := range qs {
		if _, err := metricNames(t, q); err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d expressions parsed", len(qs))
}

// TestQueriesNameExportedMetrics runs the real `inlet ingestor`, `inlet pipeline` and `inlet admin` on
// the local stack (their own databases and topics), sends them a few requests — accepted, refused for
// their secret, admin calls with a good and a wrong key — and scrapes each process's /metrics: every
// metric an expression of the rules or dashboards reads must be a family some process exports. The last
// step drops the pipeline's activity_log table so that inserts fail and their error and retry series
// exist too.
func TestQueriesNameExportedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack")
	}
	want := map[string][]string{} // family → where it is read
	for _, q := range queries(t) {
		names, err := metricNames(t, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			want[family(n)] = append(want[family(n)], q.where)
		}
	}

	pg, _ := testenv.Postgres(t)
	kcfg, _ := testenv.Kafka(t)
	chcfg, ch := testenv.ClickHouse(t)
	ctx := context.Background()
	edge, edgeInternal, adminAddr, adminInternal, pipelineInternal := testenv.FreeAddr(t), testenv.FreeAddr(t),
		testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := []string{"INLET_POSTGRES_DSN=" + pg.DSN, "INLET_CLICKHOUSE_DATABASE=" + chcfg.Database,
		"INLET_KAFKA_REQUESTS_TOPIC=" + kcfg.RequestsTopic, "INLET_KAFKA_EVENTS_TOPIC=" + kcfg.EventsTopic,
		"INLET_INGESTOR_LISTEN_ADDR=" + edge, "INLET_INGESTOR_INTERNAL_ADDR=" + edgeInternal,
		"INLET_ADMIN_LISTEN_ADDR=" + adminAddr, "INLET_ADMIN_INTERNAL_ADDR=" + adminInternal,
		"INLET_ADMIN_PUBLIC_BASE_URL=http://" + edge,
		"INLET_PIPELINE_GROUP=" + testenv.Name("g"), "INLET_PIPELINE_INTERNAL_ADDR=" + pipelineInternal,
		"INLET_PIPELINE_FLUSH_INTERVAL=200ms"}
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	stores, err := compose.OpenStores(ctx, cfg, nil, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Close()
	p, apiKey, err := stores.Projects.Create(ctx, "Metrics")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stores.Webhooks.CreateEvent(ctx, p.ID, seed.Event("CheckoutSuccess", "")); err != nil {
		t.Fatal(err)
	}
	wh, sec, err := stores.Webhooks.Create(ctx, p.ID, seed.Webhook("Shop", "CheckoutSuccess", seed.Sample))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stores.Webhooks.SetEnabled(ctx, p.ID, wh.ID, wh.Version, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := stores.Directory.UpsertUser(ctx, p.ID, directory.User{UserID: "12345"}); err != nil {
		t.Fatal(err)
	}

	bin := testenv.BuildInlet(t)
	for _, role := range []string{"ingestor", "pipeline", "admin"} {
		testenv.StartInlet(t, bin, role, env...)
	}
	internal := map[string]string{"ingestor": edgeInternal, "pipeline": pipelineInternal, "admin": adminInternal}
	for role, addr := range internal {
		testenv.WaitFor(t, role+" ready", 60*time.Second, func() bool {
			return get(t, "http://"+addr+"/readyz", "") == http.StatusOK
		})
	}

	client := &http.Client{Timeout: 10 * time.Second}
	post := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+edge+"/hooks/"+wh.ID, strings.NewReader(seed.Sample))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 5 {
		if code := post("Bearer " + sec); code != http.StatusAccepted {
			t.Fatalf("POST with the webhook's secret: %d; want 202", code)
		}
		if code := post("Bearer whsec_wrong"); code != http.StatusUnauthorized {
			t.Fatalf("POST with a wrong secret: %d; want 401", code)
		}
	}
	if code := get(t, "http://"+adminAddr+"/api/v1/webhooks", apiKey); code != http.StatusOK {
		t.Fatalf("GET /api/v1/webhooks: %d; want 200", code)
	}
	// Wrong keys until the failed-authentication limit answers 429, for the throttled series.
	for i := 0; get(t, "http://"+adminAddr+"/api/v1/webhooks", "inl_wrong") != http.StatusTooManyRequests; i++ {
		if i == 100 {
			t.Fatal("100 wrong admin keys and no 429")
		}
	}
	// An unlabelled histogram is exported from the start; these vectors only once the pipeline has
	// written the requests (and reported its partitions' lag).
	var missing []string
	defer func() {
		if t.Failed() && len(missing) > 0 {
			t.Logf("the pipeline had not exported %s", strings.Join(missing, ", "))
		}
	}()
	testenv.WaitFor(t, "the pipeline to write the requests", 120*time.Second, func() bool {
		fams := scrape(t, pipelineInternal)
		missing = missing[:0]
		for _, f := range []string{"inlet_pipeline_records_total", "inlet_pipeline_batch_rows", "inlet_pipeline_insert_duration_seconds", "inlet_pipeline_lag_records"} {
			if !fams[f] {
				missing = append(missing, f)
			}
		}
		return len(missing) == 0
	})

	snapshotDashboards(t, internal, func() {
		post("Bearer " + sec)
		post("Bearer whsec_wrong")
		get(t, "http://"+adminAddr+"/api/v1/webhooks", apiKey)
	})

	// Inserts into a table that is gone fail and are retried: the error and retry series appear.
	if err := ch.Exec(ctx, "DROP TABLE activity_log"); err != nil {
		t.Fatal(err)
	}
	if code := post("Bearer " + sec); code != http.StatusAccepted {
		t.Fatalf("POST with the webhook's secret: %d; want 202", code)
	}
	testenv.WaitFor(t, "a failed insert", 60*time.Second, func() bool {
		return scrape(t, pipelineInternal)["inlet_pipeline_insert_errors_total"]
	})

	exported, types := map[string]bool{}, map[string]string{}
	for _, addr := range internal {
		for f, typ := range scrapeTypes(t, addr) {
			exported[f], types[f] = true, typ
		}
	}
	for f, where := range want {
		if !exported[f] {
			slices.Sort(where)
			t.Errorf("%s, read by %s, is exported by no inlet process", f, strings.Join(slices.Compact(where), "; "))
		}
	}
	t.Logf("%d metric families read by the rules and dashboards, all exported", len(want))
	// One naming rule for durations: a histogram of seconds is a *_duration_seconds. The Kafka clients'
	// families (inlet_kafka_*) are named by franz-go's kprom, not here.
	for f, typ := range types {
		if strings.HasPrefix(f, "inlet_") && !strings.HasPrefix(f, kafka.MetricsNamespace+"_") && typ == "histogram" && strings.HasSuffix(f, "_seconds") && !strings.HasSuffix(f, "_duration_seconds") {
			t.Errorf("%s: a duration in seconds; want its name to end in _duration_seconds", f)
		}
	}
}

// family is the metric family a series name belongs to: a histogram's or summary's _bucket, _sum and
// _count series belong to the histogram.
func family(name string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if n, ok := strings.CutSuffix(name, s); ok {
			return n
		}
	}
	return name
}

// scrape returns the families with at least one series on addr's /metrics (a vector without any label
// value used yet is not printed, so it counts as not exported).
func scrape(t *testing.T, addr string) map[string]bool {
	t.Helper()
	fams := map[string]bool{}
	for f := range scrapeTypes(t, addr) {
		fams[f] = true
	}
	return fams
}

// scrapeTypes returns the families on addr's /metrics and their types (counter, gauge, histogram, …).
func scrapeTypes(t *testing.T, addr string) map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	fams := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if f, ok := strings.CutPrefix(sc.Text(), "# TYPE "); ok {
			if fs := strings.Fields(f); len(fs) == 2 {
				fams[fs[0]] = fs[1]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return fams
}

// get sends GET url with key as a Bearer key (none if empty) and returns the status.
func get(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
