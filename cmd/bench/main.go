// Command bench runs Inlet's bench suite (see bench/ and the README's "Bench suite" section):
//
//	bench [flags]                 run the scenarios of bench/scenarios and write a report
//	bench null -listen ADDR       serve the ceiling (a null fasthttp handler) until SIGTERM
//
// The stack's addresses come from the same settings as every Inlet process (-config, INLET_*).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/inlet-dev/inlet/bench"
	"github.com/inlet-dev/inlet/bench/null"
	"github.com/inlet-dev/inlet/config"
)

// Exit codes: 1 also when a correctness check failed.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && args[0] == "null" {
		return runNull(ctx, args[1:], stderr)
	}

	state := os.Getenv("INLET_STATE_DIR")
	if state == "" {
		state = ".state"
	}
	self, _ := os.Executable()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	cfgPath := fs.String("config", os.Getenv("INLET_CONFIG"), "Inlet settings file for the stack's addresses (Kafka, ClickHouse, PostgreSQL); env INLET_CONFIG; INLET_* variables apply")
	fs.StringVar(&o.Scenarios, "scenarios", "bench/scenarios", "directory of scenario files (*.yaml, run in name order)")
	fs.StringVar(&o.Run, "run", "", "regexp selecting scenarios by name (default: all)")
	fs.Float64Var(&o.Scale, "scale", 1, "multiply every scenario duration by this (e.g. 5 for steadier figures; 0.5 for a quick look)")
	fs.StringVar(&o.Results, "results", "bench/results", "results root: each run writes <results>/<UTC timestamp>/")
	fs.StringVar(&o.Latest, "latest", "bench/results/latest", "directory receiving a copy of the run's REPORT.md, results.json and charts (empty: none)")
	fs.StringVar(&o.StateDir, "state", filepath.Join(state, "bench"), "state directory: bench webhooks' secrets, the Telegraf binary (default $INLET_STATE_DIR/bench)")
	fs.StringVar(&o.InletBin, "inlet", filepath.Join(filepath.Dir(self), "inlet"), "the inlet binary to run as ingestor, pipeline and migrate")
	telegraf := fs.String("telegraf", "", "Telegraf binary for the peer (default <state>/bin/telegraf-"+bench.TelegrafVersion+"; built by bench/peer/build-telegraf)")
	fs.StringVar(&o.SUTCPUs, "sut-cpus", "", "run the targets under `taskset -c LIST` (e.g. 1); pin the generator yourself: taskset -c 0 bin/bench")
	fs.StringVar(&o.InletAddr, "inlet-addr", "127.0.0.1:18480", "listen address of the bench's own ingestor")
	fs.StringVar(&o.NullAddr, "null-addr", "127.0.0.1:18481", "listen address of the null server (the ceiling)")
	fs.StringVar(&o.PeerAddr, "peer-addr", "127.0.0.1:18482", "listen address of Telegraf's http_listener_v2 (the peer)")
	fs.StringVar(&o.BenchTopic, "namespace", "inlet_bench", "prefix of the bench's Kafka topics and name of its ClickHouse database and consumer group")
	fs.DurationVar(&o.CatchUp, "catch-up", 3*time.Minute, "how long to wait for the pipeline to write every record to ClickHouse before checking")
	fs.StringVar(&o.Family, "family", "", "run only the scenarios of this scaling family: webhooks, directory or bodies (with -run, both apply)")
	fs.BoolVar(&o.Profiles, "profiles", false, "save CPU and heap profiles (go tool pprof) of the ingestor and the pipeline over each phase of a scenario, in <run>/profiles/")
	progress := fs.String("progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), on, off")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if o.Scale <= 0 || o.Scale > 100 {
		fmt.Fprintf(stderr, "bench: -scale %g: outside (0, 100]\n", o.Scale)
		return exitUsage
	}
	o.Telegraf = *telegraf
	o.BenchBin = self
	if o.Telegraf == "" {
		o.Telegraf = filepath.Join(o.StateDir, "bin", "telegraf-"+bench.TelegrafVersion)
	}
	switch *progress {
	case "auto":
		o.Progress = bench.IsTerminal(os.Stderr)
	case "on":
		o.Progress = true
	case "off":
	default:
		fmt.Fprintf(stderr, "bench: -progress %q: want auto, on or off\n", *progress)
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	rep, err := bench.New(o, cfg, log).Run(ctx)
	if rep != nil {
		fmt.Fprintf(stdout, "bench: report %s\n", filepath.Join(rep.Dir(), "REPORT.md"))
		if o.Latest != "" {
			fmt.Fprintf(stdout, "bench: copied to %s\n", filepath.Join(o.Latest, "REPORT.md"))
		}
		printSummary(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return exitFail
	}
	if !rep.OK() {
		fmt.Fprintln(stderr, "bench: correctness check FAILED (see the report)")
		return exitFail
	}
	return exitOK
}

func printSummary(w io.Writer, r *bench.Report) {
	for _, sc := range r.Scenarios {
		for _, ra := range sc.Ratios {
			fmt.Fprintf(w, "  %-14s %-62s min %.2f  median %.2f  max %.2f\n", sc.Name, ra.Name, ra.Min, ra.Median, ra.Max)
		}
		if c := sc.Correctness; c != nil {
			verdict := "ok"
			if !c.OK {
				verdict = "FAIL"
			}
			fmt.Fprintf(w, "  %-14s correctness %s: 2xx %d, in topic %d, activity rows %d, events rows %d (distinct ids %d)\n",
				sc.Name, verdict, c.Answered2xx, c.TopicAccepted2xx, c.Activity2xx, c.EventRows, c.EventIDsUnique)
		}
	}
}

// runNull serves the ceiling until a signal.
func runNull(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench null", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen", "127.0.0.1:18481", "listen address")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "bench null:", err)
		return exitFail
	}
	if err := null.New().Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "bench null:", err)
		return exitFail
	}
	return exitOK
}
