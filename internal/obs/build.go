package obs

import (
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Version and Commit are set at build time (make build: -ldflags "-X …/internal/obs.Version=… -X
// …/internal/obs.Commit=…"); without them, the module version ("(devel)" in a checkout) and the VCS
// revision Go recorded, if it did (not with -buildvcs=false).
var Version, Commit = "", ""

// Build is what a binary knows of its own making.
type Build struct {
	Version   string // release, or the module version
	Commit    string // VCS revision, with "-dirty" when built from a modified tree; "unknown" outside a checkout
	GoVersion string
}

var buildOnce = sync.OnceValue(func() Build {
	b := Build{Version: Version, Commit: Commit, GoVersion: runtime.Version()}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "unknown"
		}
		return b
	}
	if b.Version == "" {
		b.Version = info.Main.Version
	}
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && Commit == "" && b.Commit != "unknown" {
		b.Commit += "-dirty"
	}
	return b
})

// BuildInfo returns the binary's version and commit.
func BuildInfo() Build { return buildOnce() }

// buildInfoCollector is inlet_build_info: a constant 1 labelled with the version, commit and Go version,
// so dashboards and alerts can tell which build a process runs.
func buildInfoCollector() prometheus.Collector {
	b := BuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "inlet_build_info",
		Help:        "Always 1; the labels say which build of Inlet this process runs.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}
