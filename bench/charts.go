package bench

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart size and bar width.
const (
	chartWidth  = 8 * vg.Inch
	chartHeight = 4.5 * vg.Inch
	chartBar    = 14 * vg.Millimeter / 4
)

var targetColors = map[string]color.Color{
	TargetInlet:   color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	TargetCeiling: color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
	TargetPeer:    color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	TargetBearer:  color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

var allTargets = []string{TargetInlet, TargetCeiling, TargetPeer, TargetBearer}

// writeCharts draws the PNG charts and returns their file names.
func writeCharts(r *Report) ([]string, error) {
	var out []string
	for _, c := range []struct {
		name string
		draw func(*Report) (*plot.Plot, error)
	}{
		{"throughput.png", throughputChart},
		{"latency.png", latencyChart},
		{"end-to-end.png", e2eChart},
	} {
		p, err := c.draw(r)
		if err != nil {
			return out, fmt.Errorf("chart %s: %w", c.name, err)
		}
		if p == nil {
			continue
		}
		if err := p.Save(chartWidth, chartHeight, filepath.Join(r.dir, c.name)); err != nil {
			return out, fmt.Errorf("chart %s: %w", c.name, err)
		}
		out = append(out, c.name)
	}
	return out, nil
}

// throughputChart: median maximum accepted req/s per scenario and target.
func throughputChart(r *Report) (*plot.Plot, error) {
	var names []string
	var scs []*ScenarioResult
	for _, sc := range r.Scenarios {
		if len(sc.MaxMedian) > 0 {
			names = append(names, sc.Name)
			scs = append(scs, sc)
		}
	}
	if len(scs) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Maximum accepted requests/s (closed loop, median of rounds)"
	p.Y.Label.Text = "req/s"
	p.Legend.Top = true
	i := 0
	for _, t := range allTargets {
		vals := make(plotter.Values, len(scs))
		any := false
		for j, sc := range scs {
			vals[j] = sc.MaxMedian[t]
			any = any || vals[j] > 0
		}
		if !any {
			continue
		}
		b, err := plotter.NewBarChart(vals, chartBar)
		if err != nil {
			return nil, err
		}
		b.Color = targetColors[t]
		b.LineStyle.Width = 0
		b.Offset = vg.Length(i-1) * chartBar
		p.Add(b)
		p.Legend.Add(t, b)
		i++
	}
	p.NominalX(names...)
	return p, nil
}

// latencyChart: open-loop p50/p99/p99.9 against the load level, per target, for the first scenario
// with levels (log scale).
func latencyChart(r *Report) (*plot.Plot, error) {
	var sc *ScenarioResult
	for _, s := range r.Scenarios {
		for _, run := range s.Runs {
			if run.Phase == "level" {
				sc = s
				break
			}
		}
		if sc != nil {
			break
		}
	}
	if sc == nil {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Open-loop latency from the scheduled send (%s)", sc.Name)
	p.X.Label.Text = "load, % of the target's maximum"
	p.Y.Label.Text = "ms (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	// The levels are at most 100 %: the right-hand side is left free for the legend.
	p.X.Min, p.X.Max = 0, 140
	dashes := map[string][]vg.Length{"p50": nil, "p99": {vg.Points(6), vg.Points(3)}, "p99.9": {vg.Points(2), vg.Points(2)}}
	for _, t := range allTargets {
		for _, q := range []string{"p50", "p99", "p99.9"} {
			var pts plotter.XYs
			for _, run := range sc.Runs {
				if run.Target != t || run.Phase != "level" {
					continue
				}
				v := map[string]float64{"p50": run.P50, "p99": run.P99, "p99.9": run.P999}[q]
				pts = append(pts, plotter.XY{X: run.Level * 100, Y: max(v, 0.01)})
			}
			if len(pts) == 0 {
				continue
			}
			l, s, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, err
			}
			l.Color, s.Color = targetColors[t], targetColors[t]
			l.Dashes = dashes[q]
			s.Shape = draw.CircleGlyph{}
			p.Add(l, s)
			p.Legend.Add(t+" "+q, l, s)
		}
	}
	return p, nil
}

// e2eChart: 202 → ClickHouse p50 and p99 per scenario.
func e2eChart(r *Report) (*plot.Plot, error) {
	var names []string
	var p50, p99 plotter.Values
	for _, sc := range r.Scenarios {
		if sc.E2E == nil || sc.E2E.Samples == 0 {
			continue
		}
		names = append(names, sc.Name)
		p50 = append(p50, sc.E2E.P50)
		p99 = append(p99, sc.E2E.P99)
	}
	if len(names) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "End to end: 202 → row visible in ClickHouse activity_log"
	p.Y.Label.Text = "ms"
	p.Legend.Top = true
	for i, s := range []struct {
		name string
		v    plotter.Values
	}{{"p50", p50}, {"p99", p99}} {
		b, err := plotter.NewBarChart(s.v, chartBar)
		if err != nil {
			return nil, err
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = vg.Length(2*i-1) * chartBar / 2
		p.Add(b)
		p.Legend.Add(s.name, b)
	}
	p.NominalX(names...)
	return p, nil
}
