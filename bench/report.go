package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Files a run writes into its results directory.
const (
	reportFile  = "REPORT.md"
	resultsFile = "results.json"
)

func newReport(opt Options, dir string) *Report {
	return &Report{Started: time.Now().UTC(), Options: opt, Host: hostInfo(), dir: dir}
}

func hostInfo() Host {
	h := Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		h.Commit = strings.TrimSpace(string(out))
	}
	return h
}

// write renders results.json, REPORT.md and the charts into the run's directory, and copies REPORT.md
// and the charts into latest when set.
func (r *Report) write(latest string) error {
	r.Finished = time.Now().UTC()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("results.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, resultsFile), b, 0o644); err != nil {
		return fmt.Errorf("results.json: %w", err)
	}
	charts, err := writeCharts(r)
	if err != nil {
		return err
	}
	r.Curves = buildCurves(r.Scenarios)
	curveCharts, err := writeCurveCharts(r.dir, r.Curves)
	if err != nil {
		return err
	}
	if len(r.Curves) > 0 { // results.json again, with the curves
		if b, err = json.MarshalIndent(r, "", "  "); err == nil {
			err = os.WriteFile(filepath.Join(r.dir, resultsFile), b, 0o644)
		}
		if err != nil {
			return fmt.Errorf("results.json: %w", err)
		}
	}
	var md bytes.Buffer
	r.markdown(&md, charts, curveCharts)
	if err := os.WriteFile(filepath.Join(r.dir, reportFile), md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("%s: %w", reportFile, err)
	}
	if latest == "" {
		return nil
	}
	if err := os.MkdirAll(latest, 0o755); err != nil {
		return fmt.Errorf("latest report: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(latest, "*.png"))
	svgs, _ := filepath.Glob(filepath.Join(latest, "*.svg"))
	for _, f := range append(old, svgs...) {
		_ = os.Remove(f)
	}
	for _, f := range slices.Concat([]string{reportFile, resultsFile}, charts, curveCharts) {
		b, err := os.ReadFile(filepath.Join(r.dir, f))
		if err != nil {
			return fmt.Errorf("latest report: %w", err)
		}
		if err := os.WriteFile(filepath.Join(latest, f), b, 0o644); err != nil {
			return fmt.Errorf("latest report: %w", err)
		}
	}
	return nil
}

func (r *Report) markdown(w io.Writer, charts, curveCharts []string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("# Inlet bench report")
	p("")
	verdict := "**PASS** — every correctness check matched"
	if !r.OK() {
		verdict = "**FAIL** — see the correctness sections"
	}
	p("%s. Started %s, took %s.", verdict, r.Started.Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Second))
	if r.Error != "" {
		p("")
		p("The run stopped early: `%s`", r.Error)
	}
	p("")
	p("Machine: %d CPUs (%s), Linux %s, %s, commit %s. Durations ×%g. System under test pinned to CPUs: %s.",
		r.Host.CPUs, r.Host.CPUModel, r.Host.Kernel, r.Host.GoVersion, r.Host.Commit, r.Options.Scale, orNone(r.Options.SUTCPUs))
	p("")
	p("Targets: **inlet** = the ingestor (`inlet ingestor`, 202 only after Kafka acks, acks=all) with its own topic and the pipeline behind it; " +
		"**ceiling** = a null fasthttp handler that reads the body and answers 202; **peer** = Telegraf " + TelegrafVersion +
		" `inputs.http_listener_v2` → `outputs.kafka` (acks=all, idempotent), which answers 204 as soon as the body is in its memory buffer, " +
		"*before* Kafka has it, and writes the body as a line-protocol string field rather than untouched. " +
		"All three get the same bodies from the same generator over the same number of keep-alive connections, on the same machine, rounds interleaved.")
	if len(r.SUTSettings) > 0 {
		p("")
		p("inlet's settings that differ from the defaults (environment of the bench's ingestor and pipeline): `%s`.", strings.Join(r.SUTSettings, "` `"))
	}
	if r.PeerNote != "" {
		p("")
		p("**Peer:** %s", r.PeerNote)
	}
	p("")
	p("How to read it: *max* rows are closed loops (N connections as fast as answers come) — their latency hides queueing. " +
		"*level* and *phase* rows are open loops at a fixed rate, latency measured from each request's **scheduled** send time, so queueing counts (no coordinated omission). " +
		"*max* and *level* rows run with inlet's pipeline stopped (the ceiling and the peer have none; it then drains the backlog, which gives its records/s); *phase* rows run with it, and sample the end-to-end time. " +
		"CPU is user+system seconds of the target process from /proc/<pid>/stat over the run, per 1,000 accepted requests; the broker's CPU over the same run is shown apart. " +
		"Ratios are inlet's figure divided by the other target's, one value per round: min / median / max. " +
		"With the load generator, the broker and the target sharing the same cores, absolute figures move between runs by 10–30 %%; compare ratios from the same run.")
	p("")

	if len(charts) > 0 {
		for _, c := range charts {
			p("![%s](%s)", strings.TrimSuffix(c, ".png"), c)
		}
		p("")
	}

	// Summary: ratios and correctness.
	p("## Summary")
	p("")
	p("| scenario | ratio | min | median | max | rounds |")
	p("|---|---|---:|---:|---:|---:|")
	for _, sc := range r.Scenarios {
		for _, ra := range sc.Ratios {
			p("| %s | %s | %.2f | %.2f | %.2f | %d |", sc.Name, ra.Name, ra.Min, ra.Median, ra.Max, len(ra.Values))
		}
	}
	p("")
	p("| scenario | inlet max req/s (median) | pipeline records/s | 202 → ClickHouse p50 / p99 | 2xx answers | in topic | activity rows | correctness |")
	p("|---|---:|---:|---|---:|---:|---:|---|")
	for _, sc := range r.Scenarios {
		c := sc.Correctness
		verdict, ans, topic, act := "not checked", "", "", ""
		if c != nil {
			verdict = "ok"
			if !c.OK {
				verdict = "**FAIL**: " + strings.Join(c.Problems, "; ")
			}
			ans, topic, act = fmt.Sprint(c.Answered2xx), fmt.Sprint(c.TopicAccepted2xx), fmt.Sprint(c.Activity2xx)
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s |", sc.Name, num(sc.MaxMedian[TargetInlet]), pipelineRate(sc.Pipeline, sc.FanOut), e2eText(sc.E2E), ans, topic, act, verdict)
	}
	p("")

	r.curvesMarkdown(w, curveCharts)
	for _, sc := range r.Scenarios {
		r.scenarioMarkdown(w, sc)
	}
}

func (r *Report) scenarioMarkdown(w io.Writer, sc *ScenarioResult) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("## %s — %s", sc.Name, sc.Title)
	p("")
	connected := ""
	if sc.Sender != "" {
		connected = fmt.Sprintf(" connected as %s (every request signed as it signs)", sc.Sender)
	}
	if sc.FanOut > 0 {
		connected = fmt.Sprintf(" whose route fans out over line_items (%d %s events per request, one per item)", sc.FanOut, benchItemEvent)
	}
	p("Body %s (%d bytes), %d webhook(s)%s, %d%% wrong secrets, %d connections (open loops: up to %d).",
		sc.Body, sc.BodyBytes, sc.Webhooks, connected, sc.WrongSecretPercent, sc.Conns, sc.Conns*openConnsFactor)
	if signed, bearer, ra, ok := sc.Signing(); ok {
		verdict := "met"
		if ra.Median < SigningTarget {
			verdict = "**not met**"
		}
		p("")
		p("Signing cost: the ingestor accepted **%s** requests per CPU-second signed as %s and **%s** with Bearer secrets (medians of the max rounds, "+
			"same process, same bodies, rounds interleaved); %s ÷ Bearer = **%.2f** (min %.2f, max %.2f): target ≥ %.2f %s.",
			num(signed), sc.Sender, num(bearer), sc.Sender, ra.Median, ra.Min, ra.Max, SigningTarget, verdict)
	} else if sc.Sender != "" && sc.MaxMedian[TargetBearer] > 0 {
		p("")
		p("Signing cost: **not measured** — the ingestor accepted none of the requests signed as %s (see their other answers), so there is no ratio to Bearer.", sc.Sender)
	}
	for _, n := range sc.Notes {
		p("")
		p("Note: %s", n)
	}
	p("")
	if len(sc.Ratios) > 0 {
		p("| ratio | per round | min | median | max |")
		p("|---|---|---:|---:|---:|")
		for _, ra := range sc.Ratios {
			var v []string
			for _, x := range ra.Values {
				v = append(v, fmt.Sprintf("%.2f", x))
			}
			p("| %s | %s | %.2f | %.2f | %.2f |", ra.Name, strings.Join(v, ", "), ra.Min, ra.Median, ra.Max)
		}
		p("")
	}
	p("| target | phase | load | requested/s | accepted/s | p50 ms | p99 ms | p99.9 ms | max ms | other answers | CPU-s / 1k | broker CPU-s / 1k | RSS MiB | pipeline CPU-s / 1k | pipeline RSS MiB | 202→CH p50 / p99 ms |")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
	for _, run := range sc.Runs {
		phase := run.Phase
		if run.Round > 0 {
			phase = fmt.Sprintf("%s r%d", phase, run.Round)
		}
		lvl, req := "closed", ""
		if run.Mode == "open" {
			lvl, req = fmt.Sprintf("%.0f%%", run.Level*100), num(run.Rate)
		}
		pcpu, prss := "", ""
		if run.PipelineRSSMiB > 0 {
			pcpu, prss = fmt.Sprintf("%.3f", run.PipelineCPUPer1k), fmt.Sprintf("%.0f", run.PipelineRSSMiB)
		}
		e2e := ""
		if run.E2ESamples > 0 {
			e2e = fmt.Sprintf("%.0f / %.0f", run.E2EP50, run.E2EP99)
		}
		p("| %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %s | %.3f | %.3f | %.0f | %s | %s | %s |", run.Target, phase, lvl, req,
			num(run.AcceptedPerSec), run.P50, run.P99, run.P999, run.Max, others(run), run.CPUPer1k, run.BrokerCPUPer1k, run.RSSMiB, pcpu, prss, e2e)
	}
	p("")
	if sc.Pipeline != nil {
		events := ""
		if sc.FanOut > 0 {
			events = fmt.Sprintf(", firing %d events: **%s events/s** into ClickHouse", sc.Pipeline.Events, num(sc.Pipeline.EventsPerSecond))
		}
		p("Pipeline: drained the %d records of the closed-loop rounds and levels (run with it stopped) at **%s records/s** (rows / span of processed_ms)%s, %.3f CPU-seconds per 1,000 records, RSS %.0f MiB after.",
			sc.Pipeline.Records, num(sc.Pipeline.PerSecond), events, sc.Pipeline.CPUPer1k, sc.Pipeline.RSSMiB)
		p("")
	}
	if sc.PhaseBase > 0 {
		if sc.PhaseBasis == BasisPipeline {
			p("Phases: their loads are fractions of **%s req/s**, the pipeline's drain rate for this body, which is below the ingestor's maximum (%s req/s): the most the whole path sustains. Half of the ingestor's maximum would be a backlog growing for the whole phase.",
				num(sc.PhaseBase), num(sc.PhaseIngestorMax))
		} else {
			p("Phases: their loads are fractions of **%s req/s**, the ingestor's maximum for this body.", num(sc.PhaseBase))
		}
		p("")
	}
	if sc.PhasesPipelineCPUPer1k > 0 {
		p("Pipeline over the phases (from their start until it wrote their last record): %.3f CPU-seconds per 1,000 records.", sc.PhasesPipelineCPUPer1k)
		p("")
	}
	if len(sc.Profiles) > 0 {
		var links []string
		for _, f := range sc.Profiles {
			links = append(links, fmt.Sprintf("[%s](%s)", filepath.Base(f), f))
		}
		p("Profiles of the phases (`go tool pprof -top bin/inlet FILE`): %s.", strings.Join(links, ", "))
		p("")
	}
	if e := sc.E2E; e != nil && e.Samples > 0 {
		p("End to end (202 → row visible in ClickHouse, %d sampled requests of the open-loop runs, polled every %s): p50 **%.0f ms**, p99 **%.0f ms**, max %.0f ms.",
			e.Samples, e2ePollEvery, e.P50, e.P99, e.Max)
		p("")
	}
	if c := sc.Correctness; c != nil {
		p("Correctness (inlet):")
		p("")
		p("| check | count |")
		p("|---|---:|")
		p("| request ids answered 2xx | %d |", c.Answered2xx)
		p("| … found in the topic (outcome accepted) | %d |", c.TopicAccepted2xx)
		p("| … found in activity_log | %d |", c.Activity2xx)
		p("| missing in topic / duplicates | %d / %d |", c.MissingInTopic, c.DuplicateInTopic)
		p("| missing in activity_log / duplicates | %d / %d |", c.MissingInActivity, c.DuplicateInActivity)
		p("| accepted records never answered 2xx (allowed up to the %d answered 503 or not at all) | %d |", c.Unanswered, c.ExtraInTopic)
		p("| all records of the scenario in the topic / activity rows from them | %d / %d |", c.TopicRecords, c.ActivityRows)
		p("| topic records by edge outcome | %s |", kv(c.TopicOutcomes))
		p("| activity rows by status | %s |", kv(c.ActivityStatuses))
		if c.EventsPerSuccess > 0 {
			p("| events: %d × successful requests / sum(events_fired) / events rows | %d / %d / %d |",
				c.EventsPerSuccess, int64(c.EventsPerSuccess)*c.Successes, c.EventsFired, c.EventRows)
			p("| events rows: distinct event ids / ids not derived from their request's (all checked) / without an activity row | %d / %d / %d |",
				c.EventIDsUnique, c.EventIDsWrong, c.EventOrphans)
		}
		if c.Peer {
			p("| peer: answered 2xx / records in its topic (informational: Telegraf answers before Kafka has it) | %d / %d |", c.Peer2xx, c.PeerTopicRecords)
		}
		verdict := "ok"
		if !c.OK {
			verdict = "**FAIL**: " + strings.Join(c.Problems, "; ")
		}
		p("| verdict | %s |", verdict)
		p("")
	}
}

func others(r *Run) string {
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(r.Statuses)) {
		if code < 200 || code >= 300 {
			parts = append(parts, fmt.Sprintf("%d×%d", code, r.Statuses[code]))
		}
	}
	if r.Errors > 0 {
		parts = append(parts, fmt.Sprintf("errors×%d", r.Errors))
	}
	if r.Unsent > 0 {
		parts = append(parts, fmt.Sprintf("unsent×%d", r.Unsent))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, " ")
}

func kv(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

func num(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", v)
}

// pipelineRate is the records/s, and the events/s of a fan-out.
func pipelineRate(p *PipelineRate, fanOut int) string {
	if p == nil {
		return "—"
	}
	if fanOut > 0 {
		return fmt.Sprintf("%s (%s events/s)", num(p.PerSecond), num(p.EventsPerSecond))
	}
	return num(p.PerSecond)
}

func e2eText(e *E2E) string {
	if e == nil || e.Samples == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f / %.0f ms", e.P50, e.P99)
}

func orNone(s string) string {
	if s == "" {
		return "not pinned"
	}
	return s
}

// curvesMarkdown is the scaling section: per family, its charts and a table of every point with its
// ratios to the family's first point.
func (r *Report) curvesMarkdown(w io.Writer, charts []string) {
	if len(r.Curves) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("## Scaling")
	p("")
	p("Each family is a curve of cost against size; the ratios (×) divide each point by the family's first (1 webhook, the small " +
		"directory, the seed payload), measured in the same run. Flat is ×1. Ingestor CPU is over the main phase (warm, else the last: " +
		"an open loop at a fraction of the one-webhook maximum for the body, or of the pipeline's drain rate for it when that is lower); pipeline CPU is draining the closed loop's backlog when " +
		"the scenario has one, else over the main phase, from its start until the pipeline wrote its last record (each phase starts " +
		"once the pipeline has written the previous one's); RSS is the peak sampled every 250 ms.")
	if len(r.Seeding) > 0 {
		p("")
		p("Seeded with COPY: %s.", strings.Join(r.Seeding, "; "))
	}
	p("")
	for _, c := range r.Curves {
		p("### %s", c.Family)
		p("")
		for _, ch := range charts {
			if strings.HasPrefix(ch, c.Family+"-") {
				p("![%s](%s)", strings.TrimSuffix(ch, ".svg"), ch)
			}
		}
		p("")
		p("| scenario | %s | accepted/s | ingestor CPU-s/1k (cold) | pipeline CPU-s/1k (cold) | 202→CH p50 / p99 ms (cold p99) | ingestor RSS MiB | pipeline RSS MiB sustained / draining | ratios × | correctness |", sizeLabel(c.Family))
		p("|---|---:|---:|---:|---:|---|---:|---:|---|---|")
		for _, pt := range c.Points {
			var ratios []string
			for _, n := range ratioNames {
				if v, ok := pt.Ratios[n]; ok {
					ratios = append(ratios, fmt.Sprintf("%s %.2f", n, v))
				}
			}
			ok := "ok"
			if !pt.OK {
				ok = "**FAIL**"
			}
			lat := fmt.Sprintf("%.0f / %.0f", pt.P50, pt.P99)
			if pt.ColdP99 > 0 {
				lat += fmt.Sprintf(" (%.0f)", pt.ColdP99)
			}
			p("| %s | %s | %s | %s | %s | %s | %.0f | %.0f / %s | %s | %s |", pt.Scenario, num(pt.Size), num(pt.AcceptedPerSec),
				withCold(pt.IngestorCPUPer1k, pt.ColdIngestorCPUPer1k), withCold(pt.PipelineCPUPer1k, pt.ColdPipelineCPUPer1k),
				lat, pt.IngestorRSSMiB, pt.PipelineRSSMiB, orDash(pt.PipelineDrainRSSMiB), strings.Join(ratios, ", "), ok)
		}
		p("")
	}
}

func withCold(v, cold float64) string {
	if cold > 0 {
		return fmt.Sprintf("%.3f (%.3f)", v, cold)
	}
	return fmt.Sprintf("%.3f", v)
}

func orDash(v float64) string {
	if v > 0 {
		return fmt.Sprintf("%.0f", v)
	}
	return "—"
}
