package bench

import (
	"context"
	"fmt"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/inlet-dev/inlet/bench/load"
)

// The fault matrix of the local cluster (deploy/cluster, `make cluster-test`): each case sends a steady
// open-loop load through HAProxy while a script injects one fault with deploy/cluster/ctl, then counts
// as the bench's correctness check does: answered 2xx, in the topic, in activity_log, lost, duplicated.

// MatrixConfig is one run of the matrix.
type MatrixConfig struct {
	Edge          string        // HAProxy, host:port
	Path          string        // the webhook's path, /hooks/<id>
	Authorization string        // its Authorization header
	Brokers       []string      // the cluster's Kafka
	Topic         string        // webhooks.requests
	Replicas      []driver.Conn // one connection to each ClickHouse replica (Inlet's database)
	Ctl           string        // deploy/cluster/ctl
	Rate          float64       // requests per second
	Duration      time.Duration // of each case's load
	Settle        time.Duration // how long rows may take to land after the load
	Dir           string        // where the charts go (SVG)
	Log           func(format string, args ...any)
}

// Step is one action of a case's script, at an offset from the load's start.
type Step struct {
	At   time.Duration
	Args []string // deploy/cluster/ctl arguments; "{leader}" is the node leading partition 0 of the topic, "{follower}" another
}

// Case is one fault.
type Case struct {
	Name  string
	Title string
	Steps []Step
	// Restore are ctl arguments run after the load, so that the next case starts whole.
	Restore [][]string
}

// Cases are the matrix's faults, in the order they run.
func Cases() []Case {
	s := func(at int, args ...string) Step { return Step{At: time.Duration(at) * time.Second, Args: args} }
	return []Case{
		{Name: "baseline", Title: "no fault"},
		{Name: "kafka-broker-kill", Title: "kill -9 a Kafka broker that does not lead partition 0 of webhooks.requests, back after 20 s",
			Steps: []Step{s(10, "kill", "kafka{follower}"), s(30, "start", "kafka{follower}")}, Restore: [][]string{{"start", "kafka"}}},
		{Name: "kafka-leader-kill", Title: "kill -9 the Kafka broker leading partition 0 of webhooks.requests, back after 20 s",
			Steps: []Step{s(10, "kill", "kafka{leader}"), s(30, "start", "kafka{leader}")}, Restore: [][]string{{"start", "kafka"}}},
		{Name: "clickhouse-replica-kill", Title: "kill -9 ClickHouse replica 2 for 30 s",
			Steps: []Step{s(10, "kill", "ch2"), s(40, "start", "ch2")}, Restore: [][]string{{"start", "ch"}}},
		{Name: "zookeeper-stop", Title: "stop ZooKeeper for 30 s",
			Steps: []Step{s(10, "stop", "zk"), s(40, "start", "zk")}, Restore: [][]string{{"start", "zk"}}},
		{Name: "ingestor-kill", Title: "kill -9 ingestor 1 behind HAProxy, back after 15 s",
			Steps: []Step{s(10, "kill", "ingestor1"), s(25, "start", "ingestor1")}, Restore: [][]string{{"start", "ingestors"}}},
		{Name: "ingestor-rolling", Title: "rolling restart of both ingestors (SIGTERM)",
			Steps:   []Step{s(10, "stop", "ingestor1"), s(12, "start", "ingestor1"), s(25, "stop", "ingestor2"), s(27, "start", "ingestor2")},
			Restore: [][]string{{"start", "ingestors"}}},
		{Name: "pipeline-kill", Title: "kill -9 pipeline 1, back after 10 s",
			Steps: []Step{s(10, "kill", "pipeline1"), s(20, "start", "pipeline1")}, Restore: [][]string{{"start", "pipelines"}}},
		{Name: "pipeline-rolling", Title: "rolling restart of both pipelines (SIGTERM)",
			Steps:   []Step{s(10, "stop", "pipeline1"), s(11, "start", "pipeline1"), s(25, "stop", "pipeline2"), s(26, "start", "pipeline2")},
			Restore: [][]string{{"start", "pipelines"}}},
		{Name: "pipeline-freeze", Title: "SIGSTOP pipeline 1 for 25 s (past its 15 s session timeout), then SIGCONT",
			Steps: []Step{s(10, "freeze", "pipeline1"), s(35, "thaw", "pipeline1")}, Restore: [][]string{{"thaw", "pipeline1"}, {"start", "pipelines"}}},
		{Name: "postgres-stop", Title: "stop PostgreSQL for 30 s",
			Steps: []Step{s(10, "stop", "pg"), s(40, "start", "pg")}, Restore: [][]string{{"start", "pg"}}},
	}
}

// CaseResult is what one case measured.
type CaseResult struct {
	Case
	Answered2xx  int64   // requests the edge answered 2xx
	Non2xx       int64   // answered otherwise, or not at all
	InTopic      int64   // 2xx requests found accepted in the topic
	InActivity   int64   // 2xx requests with a row in activity_log
	Lost         int64   // 2xx requests with no row
	Duplicated   int64   // extra rows of 2xx requests (rows beyond one per request)
	Rows         int64   // activity_log rows of the case's offsets
	Records      int64   // records the case appended to the topic
	Non2xxSecs   int     // seconds in which the edge answered some request non-2xx
	LastRowAfter float64 // seconds from the end of the load until activity_log held every record
	Landed       bool    // every record landed within Settle
	Replica2Rows int64   // the same rows counted on replica 2 (must equal Rows)
	Events       []string
	Chart        string
	Err          string
}

// OK: nothing answered 2xx was lost or duplicated, and the replicas agree.
func (r *CaseResult) OK() bool {
	return r.Err == "" && r.Lost == 0 && r.Duplicated == 0 && r.Landed && r.Rows == r.Replica2Rows
}

// second is one second of a case's timeline.
type second struct{ ok, bad, rows float64 }

// RunCase runs one case.
func RunCase(ctx context.Context, cfg MatrixConfig, c Case) *CaseResult {
	res := &CaseResult{Case: c}
	if err := runCase(ctx, cfg, c, res); err != nil {
		res.Err = err.Error()
	}
	return res
}

func runCase(ctx context.Context, cfg MatrixConfig, c Case, res *CaseResult) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	from, err := endOffsets(ctx, adm, cfg.Topic)
	if err != nil {
		return err
	}
	received := time.Now().Add(-time.Minute)
	leader := ""
	if out, err := exec.CommandContext(ctx, cfg.Ctl, "leader", cfg.Topic, "0").Output(); err == nil {
		leader = strings.TrimSpace(string(out))
	}
	if leader == "" {
		leader = "1"
	}
	follower := "3"
	if leader == "3" {
		follower = "2"
	}

	start := time.Now()
	var mu sync.Mutex
	event := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		e := fmt.Sprintf("%5.1f s  ", time.Since(start).Seconds()) + fmt.Sprintf(format, args...)
		res.Events = append(res.Events, e)
		cfg.Log("  %s: %s", c.Name, e)
	}
	ctl := func(args []string) {
		a := make([]string, len(args))
		for i, x := range args {
			a[i] = strings.NewReplacer("{leader}", leader, "{follower}", follower).Replace(x)
		}
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, cfg.Ctl, a...).CombinedOutput()
		if err != nil {
			event("ctl %s FAILED after %.1f s: %v %s", strings.Join(a, " "), time.Since(t0).Seconds(), err, strings.TrimSpace(string(out)))
			return
		}
		event("ctl %s (took %.1f s)", strings.Join(a, " "), time.Since(t0).Seconds())
	}

	prog := &load.Progress{}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timeline []second
	sampled := make(chan struct{})
	go func() { // one sample a second: answers, and rows in activity_log (replica 1, then 2)
		defer close(sampled)
		var lastOK, lastBad int64
		lastRows := int64(-1)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
			ok, bad := prog.Accepted(), prog.Failed()
			s := second{ok: float64(ok - lastOK), bad: float64(bad - lastBad)}
			lastOK, lastBad = ok, bad
			if n, err := spanRows(lctx, cfg.Replicas, cfg.Topic, from, received); err == nil {
				if lastRows >= 0 {
					s.rows = float64(n - lastRows)
				}
				lastRows = n
			}
			mu.Lock()
			timeline = append(timeline, s)
			mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	for _, st := range c.Steps {
		wg.Add(1)
		go func(st Step) {
			defer wg.Done()
			select {
			case <-time.After(time.Until(start.Add(st.At))):
				ctl(st.Args)
			case <-ctx.Done():
			}
		}(st)
	}
	body := func(n int64) []byte {
		return fmt.Appendf(nil, `{"user_id":"u%d","email_address":"u%d@example.com","order_number":"MATRIX-%s-%d","price":%d.5,"payment_state":"success","purchase_date":"2024-03-15"}`,
			n%500, n%500, c.Name, n, n%100)
	}
	lr, err := load.Run(ctx, load.Config{
		Addr: cfg.Edge, Mode: load.Open, Conns: 64, Rate: cfg.Rate, Duration: cfg.Duration,
		Timeout: 10 * time.Second, Drain: 15 * time.Second, CollectIDs: true,
	}, func(n int64) *load.Request {
		return &load.Request{Path: cfg.Path, Authorization: cfg.Authorization, ContentType: "application/json", Body: body(n)}
	}, prog)
	loadEnd := time.Now()
	wg.Wait()
	event("load ended")
	for _, r := range c.Restore {
		ctl(r)
	}
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	res.Answered2xx = lr.Accepted()
	res.Non2xx = lr.Sent + lr.Unsent - res.Answered2xx
	var other []string
	for st, n := range lr.Statuses {
		if st < 200 || st >= 300 {
			other = append(other, fmt.Sprintf("%d × %d", n, st))
		}
	}
	if lr.Errors > 0 {
		other = append(other, fmt.Sprintf("%d transport errors or timeouts", lr.Errors))
	}
	if lr.Unsent > 0 {
		other = append(other, fmt.Sprintf("%d not sent in time", lr.Unsent))
	}
	sort.Strings(other)
	if len(other) > 0 {
		event("answers other than 2xx: %s", strings.Join(other, ", "))
	}

	to, err := endOffsets(ctx, adm, cfg.Topic)
	if err != nil {
		return err
	}
	sp := span{topic: cfg.Topic, from: from, to: to}
	res.Records = sp.records()
	// Wait until activity_log holds a row per record (or the settle time ends).
	deadline := time.Now().Add(cfg.Settle)
	for {
		n, err := spanRows(ctx, cfg.Replicas, cfg.Topic, from, received)
		if err == nil && n >= res.Records {
			res.Landed = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	res.LastRowAfter = time.Since(loadEnd).Seconds()
	cancel()
	<-sampled
	event("rows landed: %v", res.Landed)

	tc, err := countTopic(ctx, cfg.Brokers, sp)
	if err != nil {
		return err
	}
	for i, r := range cfg.Replicas {
		sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
		err := r.Exec(sctx, "SYSTEM SYNC REPLICA activity_log")
		scancel()
		if err != nil {
			return fmt.Errorf("replica %d: SYSTEM SYNC REPLICA activity_log: %w", i+1, err)
		}
	}
	ac, err := countActivity(ctx, cfg.Replicas[0], sp, received)
	if err != nil {
		return err
	}
	res.Rows = ac.Rows
	if len(cfg.Replicas) > 1 {
		ac2, err := countActivity(ctx, cfg.Replicas[1], sp, received)
		if err != nil {
			return err
		}
		res.Replica2Rows = ac2.Rows
	} else {
		res.Replica2Rows = ac.Rows
	}
	for _, id := range lr.IDs {
		if tc.Accepted[id] > 0 {
			res.InTopic++
		}
		switch n := ac.ByID[id]; {
		case n == 0:
			res.Lost++
		default:
			res.InActivity++
			res.Duplicated += int64(n - 1)
		}
	}
	for _, s := range timeline {
		if s.bad > 0 {
			res.Non2xxSecs++
		}
	}
	res.Chart, err = matrixChart(cfg.Dir, c, timeline)
	return err
}

// spanRows counts activity_log rows at or above the case's first offsets, on the first replica that
// answers.
func spanRows(ctx context.Context, replicas []driver.Conn, topic string, from offsets, received time.Time) (int64, error) {
	var conds []string
	for p, o := range from {
		conds = append(conds, fmt.Sprintf("(src_partition = %d AND src_offset >= %d)", p, o))
	}
	sort.Strings(conds)
	q := fmt.Sprintf("SELECT count() FROM activity_log WHERE received_at >= toDateTime(%d) AND (%s)", received.Unix(), strings.Join(conds, " OR "))
	var last error
	for _, r := range replicas {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var n uint64
		err := r.QueryRow(qctx, q).Scan(&n)
		cancel()
		if err == nil {
			return int64(n), nil
		}
		last = err
	}
	return 0, last
}

// matrixChart draws a case's timeline: 2xx and non-2xx answers and activity_log rows landed per second,
// with the fault's steps as vertical lines; it returns the SVG's file name.
func matrixChart(dir string, c Case, tl []second) (string, error) {
	p := plot.New()
	p.Title.Text = c.Name + ": " + c.Title
	p.X.Label.Text = "seconds since the load started"
	p.Y.Label.Text = "per second"
	p.Legend.Top = true
	series := []struct {
		name string
		get  func(second) float64
		col  color.Color
	}{
		{"answered 2xx", func(s second) float64 { return s.ok }, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
		{"non-2xx or no answer", func(s second) float64 { return s.bad }, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}},
		{"rows landed in activity_log", func(s second) float64 { return s.rows }, color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}},
	}
	ymax := 1.0
	for _, s := range series {
		pts := make(plotter.XYs, len(tl))
		for i, x := range tl {
			pts[i].X = float64(i + 1)
			pts[i].Y = s.get(x)
			ymax = max(ymax, pts[i].Y)
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return "", err
		}
		l.Color = s.col
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	for _, st := range c.Steps {
		l, err := plotter.NewLine(plotter.XYs{{X: st.At.Seconds(), Y: 0}, {X: st.At.Seconds(), Y: ymax}})
		if err != nil {
			return "", err
		}
		l.Color = color.Gray{Y: 0x80}
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(l)
		lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: st.At.Seconds(), Y: ymax}}, Labels: []string{strings.Join(st.Args, " ")}})
		if err == nil {
			lbl.TextStyle[0].Rotation = 0
			lbl.TextStyle[0].XAlign = draw.XLeft
			p.Add(lbl)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := c.Name + ".svg"
	if err := p.Save(8*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, name)); err != nil {
		return "", err
	}
	return name, nil
}

// MatrixMarkdown renders the results as the report's table and per-case sections; chartDir is the
// charts' directory relative to the report.
func MatrixMarkdown(results []*CaseResult, chartDir string, rate float64, dur time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| case | answered 2xx | in topic | in activity_log | lost | duplicated | non-2xx answers | seconds with non-2xx | last row landed (s after the load) | replicas agree | verdict |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range results {
		verdict := "ok"
		if !r.OK() {
			verdict = "**DEFECT**"
		}
		landed := fmt.Sprintf("%.1f", r.LastRowAfter)
		if !r.Landed {
			landed = "not all (" + landed + ")"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %v (%d / %d rows) | %s |\n", r.Name, r.Answered2xx, r.InTopic,
			r.InActivity, r.Lost, r.Duplicated, r.Non2xx, r.Non2xxSecs, landed, r.Rows == r.Replica2Rows, r.Rows, r.Replica2Rows, verdict)
	}
	for _, r := range results {
		fmt.Fprintf(&b, "\n### %s\n\n%s. Load: %.0f req/s open loop for %s through HAProxy.\n\n", r.Name, r.Title, rate, dur)
		if r.Err != "" {
			fmt.Fprintf(&b, "Error: `%s`\n\n", r.Err)
		}
		fmt.Fprintf(&b, "Records appended to the topic: %d; activity_log rows for them: %d.\n\n```\n%s\n```\n\n", r.Records, r.Rows, strings.Join(r.Events, "\n"))
		if r.Chart != "" {
			fmt.Fprintf(&b, "![%s](%s/%s)\n", r.Name, chartDir, r.Chart)
		}
	}
	return b.String()
}
