package bench

import (
	"fmt"
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Curve is one family of scaling scenarios: its points in order of size, each also divided by the
// first (the smallest: 1 webhook, the small directory, the seed payload) of the same run.
type Curve struct {
	Family string       `json:"family"`
	Points []CurvePoint `json:"points"`
}

// CurvePoint is one scenario's costs. Zero is "not measured".
type CurvePoint struct {
	Scenario string  `json:"scenario"`
	Size     float64 `json:"size"`
	// AcceptedPerSec: the closed-loop maximum when the scenario has one, else the main phase's.
	AcceptedPerSec float64 `json:"accepted_per_s"`
	// IngestorCPUPer1k is the ingestor's CPU-seconds per 1,000 accepted over the main phase (the one
	// named warm, else the last); ColdIngestorCPUPer1k over the phase named cold.
	IngestorCPUPer1k     float64 `json:"ingestor_cpu_s_per_1k"`
	ColdIngestorCPUPer1k float64 `json:"cold_ingestor_cpu_s_per_1k,omitempty"`
	// PipelineCPUPer1k is the pipeline's per 1,000 records draining the closed loop's backlog when
	// the scenario has one, else over the main phase until its last record was written (else over all
	// the phases); ColdPipelineCPUPer1k over the cold phase's.
	PipelineCPUPer1k     float64 `json:"pipeline_cpu_s_per_1k"`
	ColdPipelineCPUPer1k float64 `json:"cold_pipeline_cpu_s_per_1k,omitempty"`
	// P50 and P99 are 202 → ClickHouse over the main phase (as the CPU figures: warm, else the last
	// phase) when it has its own samples, else over the scenario; ColdP99 over the cold phase.
	P50                 float64 `json:"e2e_p50_ms"`
	P99                 float64 `json:"e2e_p99_ms"`
	ColdP99             float64 `json:"cold_e2e_p99_ms,omitempty"`
	IngestorRSSMiB      float64 `json:"ingestor_rss_mib"`       // peak over the scenario's runs
	PipelineRSSMiB      float64 `json:"pipeline_rss_mib"`       // peak over the phases (sustained load)
	PipelineDrainRSSMiB float64 `json:"pipeline_drain_rss_mib"` // peak while draining a backlog
	// Ratios are the point's figures over the first point's, by the names of ratioNames.
	Ratios map[string]float64 `json:"ratios"`
	OK     bool               `json:"ok"` // the scenario's correctness check passed
}

// ratioNames are the figures divided by the family's first point, in the report's order.
var ratioNames = []string{"ingestor CPU/1k", "pipeline CPU/1k", "p99", "ingestor RSS", "pipeline RSS"}

func (p *CurvePoint) ratioInputs() []float64 {
	return []float64{p.IngestorCPUPer1k, p.PipelineCPUPer1k, p.P99, p.IngestorRSSMiB, p.PipelineRSSMiB}
}

// familyOrder is the report's order of the families.
var familyOrder = []string{FamilyWebhooks, FamilyDirectory, FamilyBodies}

// buildCurves groups the scenarios of a family into its curve, by size, and divides each point by
// the family's first. Scenarios of no family are left out.
func buildCurves(scs []*ScenarioResult) []Curve {
	byFamily := map[string][]CurvePoint{}
	for _, sc := range scs {
		if sc.Family == "" {
			continue
		}
		byFamily[sc.Family] = append(byFamily[sc.Family], curvePoint(sc))
	}
	var out []Curve
	for _, f := range familyOrder {
		pts := byFamily[f]
		if len(pts) == 0 {
			continue
		}
		slices.SortStableFunc(pts, func(a, b CurvePoint) int {
			switch {
			case a.Size < b.Size:
				return -1
			case a.Size > b.Size:
				return 1
			}
			return 0
		})
		base := pts[0].ratioInputs()
		for i := range pts {
			pts[i].Ratios = map[string]float64{}
			for j, v := range pts[i].ratioInputs() {
				if base[j] > 0 && v > 0 {
					pts[i].Ratios[ratioNames[j]] = v / base[j]
				}
			}
		}
		out = append(out, Curve{Family: f, Points: pts})
	}
	return out
}

// curvePoint reads a scenario's costs (see CurvePoint).
func curvePoint(sc *ScenarioResult) CurvePoint {
	p := CurvePoint{Scenario: sc.Name, Size: sc.Size, OK: sc.Correctness != nil && sc.Correctness.OK}
	var main, cold *Run
	for _, r := range sc.Runs {
		if r.Target != TargetInlet {
			continue
		}
		p.IngestorRSSMiB = max(p.IngestorRSSMiB, r.RSSMiB)
		p.PipelineRSSMiB = max(p.PipelineRSSMiB, r.PipelineRSSMiB)
		switch {
		case r.Phase == "cold":
			cold = r
		case r.Phase == "warm":
			main = r
		case r.Phase != "max" && r.Phase != "probe" && r.Phase != "level" && (main == nil || main.Phase != "warm"):
			main = r
		}
	}
	if main != nil {
		p.AcceptedPerSec = main.AcceptedPerSec
		p.IngestorCPUPer1k = main.CPUPer1k
	}
	if cold != nil {
		p.ColdIngestorCPUPer1k = cold.CPUPer1k
		p.ColdPipelineCPUPer1k = cold.PipelineCPUPer1k
	}
	if v, ok := sc.MaxMedian[TargetInlet]; ok {
		p.AcceptedPerSec = v
	}
	p.PipelineCPUPer1k = sc.PhasesPipelineCPUPer1k
	if main != nil && main.PipelineCPUPer1k > 0 {
		p.PipelineCPUPer1k = main.PipelineCPUPer1k
	}
	if sc.Pipeline != nil && sc.Pipeline.CPUPer1k > 0 {
		p.PipelineCPUPer1k = sc.Pipeline.CPUPer1k
		p.PipelineDrainRSSMiB = sc.Pipeline.PeakRSSMiB
	}
	if sc.E2E != nil {
		p.P50, p.P99 = sc.E2E.P50, sc.E2E.P99
	}
	if main != nil && main.E2ESamples > 0 {
		p.P50, p.P99 = main.E2EP50, main.E2EP99
	}
	if cold != nil && cold.E2ESamples > 0 {
		p.ColdP99 = cold.E2EP99
	}
	return p
}

// sizeLabel names a family's size for the charts' X axis.
func sizeLabel(family string) string {
	switch family {
	case FamilyWebhooks:
		return "webhooks"
	case FamilyDirectory:
		return "users in the directory"
	}
	return "body bytes"
}

// curveSeries is one line of a curve chart.
type curveSeries struct {
	name string
	y    func(CurvePoint) float64
}

// curveCharts are the charts drawn per family: file suffix, title, unit, lines.
var curveCharts = []struct {
	suffix, title, unit string
	series              []curveSeries
}{
	{"cpu", "CPU-seconds per 1,000 requests", "CPU-s / 1,000", []curveSeries{
		{"ingestor", func(p CurvePoint) float64 { return p.IngestorCPUPer1k }},
		{"pipeline", func(p CurvePoint) float64 { return p.PipelineCPUPer1k }},
	}},
	{"latency", "202 → ClickHouse", "ms", []curveSeries{
		{"p50", func(p CurvePoint) float64 { return p.P50 }},
		{"p99", func(p CurvePoint) float64 { return p.P99 }},
	}},
	{"rss", "Peak RSS", "MiB", []curveSeries{
		{"ingestor", func(p CurvePoint) float64 { return p.IngestorRSSMiB }},
		{"pipeline (sustained)", func(p CurvePoint) float64 { return p.PipelineRSSMiB }},
		{"pipeline (draining)", func(p CurvePoint) float64 { return p.PipelineDrainRSSMiB }},
	}},
}

var seriesColors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// writeCurveCharts draws, per family, its cost against its size (log scale) as SVG files
// <family>-cpu.svg, -latency.svg and -rss.svg, and returns their names.
func writeCurveCharts(dir string, curves []Curve) ([]string, error) {
	var out []string
	for _, c := range curves {
		for _, ch := range curveCharts {
			p := plot.New()
			p.Title.Text = fmt.Sprintf("%s: %s", c.Family, ch.title)
			p.X.Label.Text = sizeLabel(c.Family) + " (log scale)"
			p.Y.Label.Text = ch.unit
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: -1}
			p.Y.Min = 0
			p.Legend.Top = true
			drawn := false
			for i, s := range ch.series {
				var xys plotter.XYs
				for _, pt := range c.Points {
					if v := s.y(pt); v > 0 && pt.Size > 0 {
						xys = append(xys, plotter.XY{X: pt.Size, Y: v})
					}
				}
				if len(xys) == 0 {
					continue
				}
				l, pts, err := plotter.NewLinePoints(xys)
				if err != nil {
					return out, err
				}
				l.Color = seriesColors[i%len(seriesColors)]
				pts.Color = l.Color
				pts.Shape = draw.CircleGlyph{}
				p.Add(l, pts)
				p.Legend.Add(s.name, l, pts)
				drawn = true
			}
			if !drawn {
				continue
			}
			if p.X.Min >= p.X.Max { // one size: a log axis needs a range
				p.X.Min, p.X.Max = p.X.Min/2, p.X.Max*2
			}
			name := fmt.Sprintf("%s-%s.svg", c.Family, ch.suffix)
			if err := p.Save(6*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, name)); err != nil {
				return out, fmt.Errorf("chart %s: %w", name, err)
			}
			out = append(out, name)
		}
	}
	return out, nil
}
