package bench

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
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
