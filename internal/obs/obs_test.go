package obs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestInternalServer(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "inlet_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	var logs bytes.Buffer
	s, err := NewServer("127.0.0.1:0", reg, NewLogger(&logs, LogConfig{Level: "info", Format: "json"}, "test"))
	if err != nil {
		t.Fatal(err)
	}
	var broken error
	s.AddReadyCheck("dep", func(context.Context) error { return broken })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d; want 200", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "inlet_test_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, missing counters:\n%.300s", code, body)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, "dep: ok") {
		t.Errorf("/readyz = %d %q; want 200 dep: ok", code, body)
	}
	broken = errors.New("down")
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "dep: down") {
		t.Errorf("/readyz = %d %q; want 503 naming the dependency", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !strings.Contains(logs.String(), `"process":"test"`) {
		t.Errorf("log lines lack the process field: %s", logs.String())
	}
}

func TestLogConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		c  LogConfig
		ok bool
	}{
		{LogConfig{"info", "json"}, true},
		{LogConfig{"debug", "text"}, true},
		{LogConfig{"loud", "json"}, false},
		{LogConfig{"info", "xml"}, false},
	} {
		if err := tc.c.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v; want ok=%v", tc.c, err, tc.ok)
		}
	}
}

// TestBuildInfo: every process's registry exports inlet_build_info = 1 with the version and commit.
func TestBuildInfo(t *testing.T) {
	mfs, err := NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "inlet_build_info" {
			continue
		}
		m := mf.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		b := BuildInfo()
		if m.GetGauge().GetValue() != 1 || labels["version"] != b.Version || labels["commit"] != b.Commit || labels["goversion"] == "" {
			t.Errorf("inlet_build_info %v = %v; want 1 with version %q, commit %q", labels, m.GetGauge().GetValue(), b.Version, b.Commit)
		}
		return
	}
	t.Fatal("inlet_build_info is not exported")
}
