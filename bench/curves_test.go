package bench

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

func scaleResult(name, family string, size float64, ingCold, ingWarm, pipe, p99, rss float64) *ScenarioResult {
	return &ScenarioResult{Name: name, Family: family, Size: size,
		Runs: []*Run{
			{Target: TargetInlet, Phase: "probe", CPUPer1k: 9, RSSMiB: rss},
			{Target: TargetInlet, Phase: "cold", CPUPer1k: ingCold, PipelineCPUPer1k: 2 * pipe, RSSMiB: rss, PipelineRSSMiB: 2 * rss},
			{Target: TargetInlet, Phase: "warm", CPUPer1k: ingWarm, AcceptedPerSec: 1000, RSSMiB: rss / 2, PipelineRSSMiB: rss},
		},
		PhasesPipelineCPUPer1k: pipe, E2E: &E2E{P50: p99 / 2, P99: p99}, Correctness: &Correctness{OK: true}}
}

// Curves group by family in size order and divide by the family's smallest point; cold and warm
// phases are told apart; a drained backlog's pipeline cost wins over the phases'.
func TestBuildCurves(t *testing.T) {
	drained := scaleResult("bodies-64k", FamilyBodies, 65536, 0, 0, 0.5, 800, 200)
	drained.Runs = []*Run{{Target: TargetInlet, Phase: "max", CPUPer1k: 0.1, RSSMiB: 250}, {Target: TargetInlet, Phase: "phase 1", CPUPer1k: 0.2, AcceptedPerSec: 500, RSSMiB: 100, PipelineRSSMiB: 90}}
	drained.MaxMedian = map[string]float64{TargetInlet: 4000}
	drained.Pipeline = &PipelineRate{CPUPer1k: 0.3, PeakRSSMiB: 300}
	scs := []*ScenarioResult{
		{Name: "seed"}, // no family: left out
		scaleResult("webhooks-100k", FamilyWebhooks, 100_000, 0.3, 0.15, 0.02, 900, 120),
		drained,
		scaleResult("webhooks-1", FamilyWebhooks, 1, 0.2, 0.1, 0.01, 300, 60),
		scaleResult("webhooks-1k", FamilyWebhooks, 1000, 0.2, 0.1, 0.01, 300, 60),
		scaleResult("bodies-172b", FamilyBodies, 172, 0.1, 0.1, 0.1, 400, 100),
	}
	scs[5].MaxMedian = map[string]float64{TargetInlet: 20000}
	curves := buildCurves(scs)
	if len(curves) != 2 || curves[0].Family != FamilyWebhooks || curves[1].Family != FamilyBodies {
		t.Fatalf("curves %+v", curves)
	}
	var order []string
	for _, p := range curves[0].Points {
		order = append(order, p.Scenario)
	}
	if !slices.Equal(order, []string{"webhooks-1", "webhooks-1k", "webhooks-100k"}) {
		t.Errorf("order %v", order)
	}
	big := curves[0].Points[2]
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(big.IngestorCPUPer1k, 0.15) || !near(big.ColdIngestorCPUPer1k, 0.3) || !near(big.PipelineCPUPer1k, 0.02) ||
		!near(big.ColdPipelineCPUPer1k, 0.04) || big.AcceptedPerSec != 1000 || big.IngestorRSSMiB != 120 || big.PipelineRSSMiB != 240 || !big.OK {
		t.Errorf("point %+v", big)
	}
	for name, want := range map[string]float64{"ingestor CPU/1k": 1.5, "pipeline CPU/1k": 2, "p99": 3, "ingestor RSS": 2, "pipeline RSS": 2} {
		if got := big.Ratios[name]; !near(got, want) {
			t.Errorf("ratio %s = %g, want %g", name, got, want)
		}
	}
	if r := curves[0].Points[0].Ratios["p99"]; r != 1 {
		t.Errorf("the base's own ratio %g", r)
	}
	b := curves[1].Points[1]
	if b.Scenario != "bodies-64k" || b.AcceptedPerSec != 4000 || b.IngestorCPUPer1k != 0.2 || b.PipelineCPUPer1k != 0.3 ||
		b.PipelineDrainRSSMiB != 300 || b.IngestorRSSMiB != 250 || !near(b.Ratios["pipeline CPU/1k"], 3) {
		t.Errorf("bodies point %+v", b)
	}
}

// The charts are SVG files, one family with a single point included.
func TestWriteCurveCharts(t *testing.T) {
	dir := t.TempDir()
	curves := buildCurves([]*ScenarioResult{
		scaleResult("webhooks-1", FamilyWebhooks, 1, 0.2, 0.1, 0.01, 300, 60),
		scaleResult("webhooks-1k", FamilyWebhooks, 1000, 0.2, 0.1, 0.01, 300, 60),
		scaleResult("directory-10k", FamilyDirectory, 10000, 0.2, 0.1, 0.01, 300, 60),
	})
	files, err := writeCurveCharts(dir, curves)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"webhooks-cpu.svg", "webhooks-latency.svg", "webhooks-rss.svg", "directory-cpu.svg", "directory-latency.svg", "directory-rss.svg"}
	if !slices.Equal(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || len(b) < 100 || string(b[:5]) != "<?xml" {
			t.Errorf("%s: %d bytes, %v", f, len(b), err)
		}
	}
}

// A scenario whose phases have end-to-end samples and pipeline costs of their own: the curve's
// p50/p99 and pipeline CPU are the warm phase's (as the ingestor's CPU is), the cold phase's p99 is kept beside them, and the ratio divides
// the warm p99s.
func TestCurvePhaseLatency(t *testing.T) {
	withPhases := func(name string, size, cold, warm float64) *ScenarioResult {
		sc := scaleResult(name, FamilyWebhooks, size, 0.2, 0.1, 0.01, 5000, 60) // scenario-wide p99 5 s
		sc.Runs[1].E2ESamples, sc.Runs[1].E2EP50, sc.Runs[1].E2EP99 = 10, cold/2, cold
		sc.Runs[2].E2ESamples, sc.Runs[2].E2EP50, sc.Runs[2].E2EP99 = 10, warm/2, warm
		sc.Runs[2].PipelineCPUPer1k = warm / 10000 // the warm phase's own, not the phases' (0.01)
		return sc
	}
	curves := buildCurves([]*ScenarioResult{withPhases("webhooks-1", 1, 400, 300), withPhases("webhooks-100k", 100_000, 3000, 600)})
	big := curves[0].Points[1]
	if big.P99 != 600 || big.P50 != 300 || big.ColdP99 != 3000 {
		t.Errorf("p50 %g, p99 %g, cold p99 %g; want the warm phase's 300 and 600, the cold's 3000", big.P50, big.P99, big.ColdP99)
	}
	if big.PipelineCPUPer1k != 0.06 {
		t.Errorf("pipeline CPU/1k %g; want the warm phase's 0.06", big.PipelineCPUPer1k)
	}
	if r := big.Ratios["p99"]; r != 2 {
		t.Errorf("p99 ratio %g; want 600/300 = 2", r)
	}
}

// The probe labels each sample with the phase it was taken in, and a phase's summary counts its own.
func TestE2EPhases(t *testing.T) {
	e := newE2EProbe(nil)
	e.interval = 0
	t0 := time.Now()
	ids := make([]uuid.UUID, 3)
	for i, phase := range []string{"cold", "cold", "warm"} {
		ids[i] = uuid.Must(uuid.NewV7())
		e.setPhase(phase)
		e.pending[ids[i]] = e2ePending{at: t0.Add(time.Duration(i) * time.Millisecond), phase: e.phase}
	}
	e.seen = []e2eSample{{d: 100 * time.Millisecond, phase: "cold"}, {d: 300 * time.Millisecond, phase: "cold"}, {d: 2 * time.Second, phase: "warm"}}
	if got := e.pending[ids[2]].phase; got != "warm" {
		t.Errorf("third sample labelled %q; want warm", got)
	}
	cold, warm := summarizePhaseE2E(e.seen, "cold"), summarizePhaseE2E(e.seen, "warm")
	if cold == nil || cold.Samples != 2 || cold.Max < 299 || cold.Max > 301 {
		t.Errorf("cold %+v; want 2 samples, max 300 ms", cold)
	}
	if warm == nil || warm.Samples != 1 || warm.P99 < 1990 || warm.P99 > 2010 {
		t.Errorf("warm %+v; want 1 sample, p99 2000 ms", warm)
	}
	if summarizePhaseE2E(e.seen, "other") != nil {
		t.Errorf("a phase without samples has a summary")
	}
	if all := summarizeE2E(e.seen, e); all.Samples != 3 {
		t.Errorf("all %+v; want 3 samples", all)
	}
}
