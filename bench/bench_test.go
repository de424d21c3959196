package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/bench/load"
)

// Every scenario file shipped parses, validates, and the suite's default run stays short.
func TestScenarioFiles(t *testing.T) {
	scs, err := LoadScenarios("scenarios")
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	names := map[string]bool{}
	for _, sc := range scs {
		names[sc.Name] = true
		if m := sc.Max; m != nil {
			total += time.Duration(m.Rounds*(1+len(sc.Compare))) * (m.Duration.D() + m.Warmup.D())
		}
		total += time.Duration(len(sc.Levels)*(1+len(sc.Compare))) * sc.LevelDuration.D()
		for _, p := range sc.Phases {
			total += p.Duration.D()
		}
		if !json.Valid(sc.Body.Bytes()) {
			t.Errorf("%s: body is not JSON", sc.Name)
		}
	}
	for _, want := range []string{"seed", "body-1k", "body-64k", "webhooks-10k", "wrong-secrets", "burst", "sustained", "signed-1k"} {
		if !names[want] {
			t.Errorf("scenario %q missing", want)
		}
	}
	if total > 5*time.Minute {
		t.Errorf("default load time %s; want the suite to finish in a few minutes", total)
	}
}

func TestBodySizes(t *testing.T) {
	for _, size := range []int{1024, 65536} {
		b := Body{Size: size}.Bytes()
		if len(b) != size || !json.Valid(b) {
			t.Errorf("size %d: got %d bytes, valid JSON %v", size, len(b), json.Valid(b))
		}
	}
	if got := string(Body{Sample: "seed"}.Bytes()); got != SeedSample {
		t.Errorf("seed body %s", got)
	}
}

func TestScenarioValidation(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown-key": "name: x\nbody: {sample: seed}\nphases: [{load: 0.5, duration: 1s}]\nbogus: 1\n",
		"no-body":     "name: x\nphases: [{load: 0.5, duration: 1s}]\n",
		"two-bodies":  "name: x\nbody: {sample: seed, size: 1024}\nphases: [{load: 0.5, duration: 1s}]\n",
		"nothing":     "name: x\nbody: {sample: seed}\n",
		"levels":      "name: x\nbody: {sample: seed}\nlevels: [0.5]\nphases: [{load: 0.5, duration: 1s}]\n",
		"huge-load":   "name: x\nbody: {sample: seed}\nphases: [{load: 50, duration: 1s}]\n",
		"long":        "name: x\nbody: {sample: seed}\nphases: [{load: 0.5, duration: 2h}]\n",
		"compare":     "name: x\nbody: {sample: seed}\ncompare: [nginx]\nmax: {}\n",
		"sender":      "name: x\nbody: {sample: seed}\nsender: paypal\nmax: {}\n",
		"bearer":      "name: x\nbody: {sample: seed}\ncompare: [bearer]\nmax: {}\n",
	} {
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadScenario(path); err == nil {
			t.Errorf("%s: accepted; want an error", name)
		}
	}
}

// 5 % wrong secrets are exactly 5 of every 100 requests, spread (never five in a row), over every webhook.
func TestInletSource(t *testing.T) {
	hooks := []Hook{{ID: "a", Authorization: "Bearer A"}, {ID: "b", Authorization: "Bearer B"}, {ID: "c", Authorization: "Bearer C"}}
	src := inletSource(hooks, []byte(`{}`), 5)
	wrong, run, longest := 0, 0, 0
	perHook := map[string]int{}
	for i := int64(0); i < 1000; i++ {
		r := src(i)
		perHook[r.Path]++
		if r.Authorization == wrongAuthorization {
			wrong++
			run++
			longest = max(longest, run)
		} else {
			run = 0
			if want := "Bearer " + strings.ToUpper(strings.TrimPrefix(r.Path, "/hooks/")); r.Authorization != want {
				t.Fatalf("request %d: %s with %s", i, r.Path, r.Authorization)
			}
		}
	}
	if wrong != 50 || longest != 1 {
		t.Errorf("wrong %d of 1000 (longest run %d); want 50, 1", wrong, longest)
	}
	if len(perHook) != 3 || perHook["/hooks/a"] < 333 {
		t.Errorf("spread %v; want round-robin", perHook)
	}
	if len(wrongAuthorization) != len("Bearer whsec_")+43 {
		t.Errorf("wrong secret has %d bytes; want the length of a real one", len(wrongAuthorization))
	}
}

func TestCorrectnessCheck(t *testing.T) {
	ok := Correctness{Answered2xx: 10, TopicAccepted2xx: 10, Activity2xx: 10, TopicRecords: 12, ActivityRows: 12}
	ok.check()
	if !ok.OK {
		t.Errorf("clean counts fail: %v", ok.Problems)
	}
	for name, c := range map[string]Correctness{
		"lost":            {MissingInTopic: 1},
		"dup topic":       {DuplicateInTopic: 1},
		"no row":          {MissingInActivity: 1},
		"dup row":         {DuplicateInActivity: 1},
		"rows != records": {TopicRecords: 3, ActivityRows: 2},
		"extra":           {ExtraInTopic: 2, Unanswered: 1},
	} {
		c.check()
		if c.OK {
			t.Errorf("%s: passes; want a failure", name)
		}
	}
	extra := Correctness{ExtraInTopic: 2, Unanswered: 2}
	extra.check()
	if !extra.OK {
		t.Errorf("records of 503-answered requests fail: %v", extra.Problems)
	}
}

func TestRatiosPerRound(t *testing.T) {
	sc := &ScenarioResult{}
	for round, v := range [][3]float64{{100, 200, 50}, {120, 200, 60}, {90, 300, 45}} {
		for i, tg := range []string{TargetInlet, TargetCeiling, TargetPeer} {
			r := &Run{Target: tg, Phase: "max", Round: round + 1, AcceptedPerSec: v[i], Accepted: int64(v[i] * 10), CPUSeconds: 1, BrokerCPUSeconds: 1}
			r.finish()
			sc.Runs = append(sc.Runs, r)
		}
	}
	sc.summarizeMax()
	if sc.MaxMedian[TargetInlet] != 100 || sc.MaxMedian[TargetCeiling] != 200 {
		t.Errorf("medians %v", sc.MaxMedian)
	}
	got := map[string]Ratio{}
	for _, r := range sc.Ratios {
		got[r.Name] = r
	}
	c := got["accepted req/s, inlet / ceiling"]
	if c.Min != 0.3 || c.Median != 0.5 || c.Max != 0.6 {
		t.Errorf("inlet/ceiling %+v; want 0.3/0.5/0.6", c)
	}
	if p := got["accepted req/s, inlet / peer"]; p.Median != 2 || len(p.Values) != 3 {
		t.Errorf("inlet/peer %+v; want median 2 over 3 rounds", p)
	}
}

// A report renders to Markdown, JSON and PNG charts from results alone (no services).
func TestReportWrite(t *testing.T) {
	dir, latest := t.TempDir(), filepath.Join(t.TempDir(), "latest")
	r := newReport(Options{Scale: 1}, dir)
	h := load.NewHistogram()
	_ = h.RecordValues(1500, 100)
	res := &load.Result{Mode: load.Closed, Elapsed: time.Second, Sent: 100, Statuses: map[int]int64{202: 99, 503: 1}, Latency: h}
	sc := &ScenarioResult{Name: "seed", Title: "t", Body: "seed"}
	for _, tg := range []string{TargetInlet, TargetCeiling} {
		run := newRun(tg, res)
		run.Phase, run.Round, run.CPUSeconds = "max", 1, 0.5
		run.finish()
		sc.Runs = append(sc.Runs, run)
		lv := newRun(tg, &load.Result{Mode: load.Open, Rate: 50, Elapsed: time.Second, Sent: 50, Statuses: map[int]int64{202: 50}, Latency: h})
		lv.Phase, lv.Level = "level", 0.5
		sc.Runs = append(sc.Runs, lv)
	}
	sc.summarizeMax()
	sc.E2E = &E2E{Samples: 10, P50: 500, P99: 900, Max: 950}
	sc.Correctness = &Correctness{Answered2xx: 99, TopicAccepted2xx: 99, Activity2xx: 99, TopicRecords: 99, ActivityRows: 99}
	sc.Correctness.check()
	r.Scenarios = append(r.Scenarios, sc)
	if err := r.write(latest); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(latest, reportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**PASS**", "accepted req/s, inlet / ceiling | 1.00 | 1.00 | 1.00", "503×1", "![throughput](throughput.png)", "p50 **500 ms**"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("REPORT.md lacks %q", want)
		}
	}
	for _, f := range []string{"throughput.png", "latency.png", "end-to-end.png", resultsFile} {
		if st, err := os.Stat(filepath.Join(latest, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
