// Command clustermatrix runs the fault matrix of the local cluster (deploy/cluster; `make cluster-test`
// runs it through deploy/cluster/matrix) and writes its report:
//
//	clustermatrix -path /hooks/ID -auth 'Bearer …' [-rate 100] [-duration 60s] [-cases a,b] [-out docs/cluster-report.md]
//
// The cluster's addresses come from the environment deploy/cluster/with-env sets. Exit status 1 when a
// case lost or duplicated a request answered 2xx.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/inlet-dev/inlet/bench"
	"github.com/inlet-dev/inlet/internal/chdb"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("clustermatrix", flag.ContinueOnError)
	path := fs.String("path", "", "the webhook's path, /hooks/<id>")
	auth := fs.String("auth", "", "its Authorization header")
	edge := fs.String("edge", "127.0.0.1:28080", "HAProxy's address")
	rate := fs.Float64("rate", 100, "requests per second")
	dur := fs.Duration("duration", 60*time.Second, "load per case")
	settle := fs.Duration("settle", 3*time.Minute, "how long rows may take to land after the load")
	only := fs.String("cases", "", "comma-separated case names (default: all)")
	out := fs.String("out", "docs/cluster-report.md", "the report")
	ctl := fs.String("ctl", "deploy/cluster/ctl", "deploy/cluster/ctl")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *path == "" || *auth == "" {
		fmt.Fprintln(os.Stderr, "clustermatrix: -path and -auth are required (deploy/cluster/matrix passes the demo webhook's)")
		return 2
	}
	ch := chdb.Defaults()
	ch.Addrs = strings.Split(os.Getenv("INLET_CLICKHOUSE_ADDRS"), ",")
	ch.Cluster = os.Getenv("INLET_CLICKHOUSE_CLUSTER")
	replicas, err := chdb.OpenReplicas(ctx, ch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustermatrix:", err)
		return 1
	}
	chartDir := strings.TrimSuffix(filepath.Base(*out), ".md")
	cfg := bench.MatrixConfig{
		Edge: *edge, Path: *path, Authorization: *auth,
		Brokers: strings.Split(os.Getenv("INLET_KAFKA_BROKERS"), ","), Topic: "webhooks.requests",
		Replicas: replicas, Ctl: *ctl, Rate: *rate, Duration: *dur, Settle: *settle,
		Dir: filepath.Join(filepath.Dir(*out), chartDir),
		Log: func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
	}
	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n != "" {
			want[n] = true
		}
	}
	var results []*bench.CaseResult
	failed := false
	started := time.Now()
	for _, c := range bench.Cases() {
		if len(want) > 0 && !want[c.Name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "case %s: %s\n", c.Name, c.Title)
		r := bench.RunCase(ctx, cfg, c)
		fmt.Fprintf(os.Stderr, "case %s: 2xx %d, in topic %d, in activity_log %d, lost %d, duplicated %d, non-2xx %d (%d s), last row %.1f s after the load, err %q\n",
			c.Name, r.Answered2xx, r.InTopic, r.InActivity, r.Lost, r.Duplicated, r.Non2xx, r.Non2xxSecs, r.LastRowAfter, r.Err)
		failed = failed || !r.OK()
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
		// Write as it goes: a run cut short still leaves the cases done.
		if err := writeReport(*out, results, chartDir, *rate, *dur, started); err != nil {
			fmt.Fprintln(os.Stderr, "clustermatrix:", err)
			return 1
		}
	}
	if failed {
		return 1
	}
	return 0
}

func writeReport(out string, results []*bench.CaseResult, chartDir string, rate float64, dur time.Duration, started time.Time) error {
	var b strings.Builder
	b.WriteString("# Cluster fault matrix\n\n")
	b.WriteString("Written by `make cluster-test` (deploy/cluster/matrix → cmd/clustermatrix) on the local cluster of\n")
	b.WriteString("[cluster.md](cluster.md): three Kafka brokers (RF 3, min.insync.replicas 2), ZooKeeper, two ClickHouse\n")
	b.WriteString("replicas, two ingestors behind HAProxy, two pipelines, PostgreSQL. Each case sends a steady open-loop load\n")
	b.WriteString("of the demo webhook through HAProxy while deploy/cluster/ctl injects the fault, then counts the requests\n")
	b.WriteString("answered 2xx (by request id) in the topic and in `activity_log` (both replicas, after SYSTEM SYNC REPLICA).\n")
	b.WriteString("*lost*: answered 2xx, no row; *duplicated*: rows beyond one per request answered 2xx.\n\n")
	fmt.Fprintf(&b, "Run started %s UTC.\n\n", started.UTC().Format("2006-01-02 15:04"))
	b.WriteString(bench.MatrixMarkdown(results, chartDir, rate, dur))
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
