// Package obs is what every Inlet process shares for being observed: a JSON slog logger, a Prometheus
// registry, and an internal HTTP listener serving /metrics, /healthz and /readyz, kept apart from the
// public edge port so that senders can never reach it.
package obs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json or text. Default json (one object per line, for log shippers).
	Format string `yaml:"format"`
}

// Validate reports the first invalid field, named as in the YAML file.
func (c *LogConfig) Validate() error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err != nil {
		return fmt.Errorf("level: %q is not one of debug, info, warn, error", c.Level)
	}
	if c.Format != "json" && c.Format != "text" {
		return fmt.Errorf("format: %q is not json or text", c.Format)
	}
	return nil
}

// NewLogger builds the process logger writing to w.
func NewLogger(w io.Writer, c LogConfig, process string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	if c.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("process", process)
}

// NewRegistry returns a registry with the Go runtime and process collectors, which every process exposes.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfoCollector())
	return reg
}

// ReadyCheck reports whether one dependency is usable; a nil error means ready.
type ReadyCheck func(ctx context.Context) error

// Server is the internal listener. Readiness checks can be added until Serve is called.
type Server struct {
	addr   string
	reg    *prometheus.Registry
	log    *slog.Logger
	mu     sync.Mutex
	checks map[string]ReadyCheck
	ln     net.Listener
	srv    *http.Server
}

// NewServer binds addr (":0" picks a free port, see Addr) so that a busy port fails at start-up.
func NewServer(addr string, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("internal listener %s: %w", addr, err)
	}
	s := &Server{addr: addr, reg: reg, log: log, checks: map[string]ReadyCheck{}, ln: ln}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	// Profiles, on the internal listener only: what an operator needs to find where CPU or memory goes
	// in production, never reachable from the public edge.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second, // CPU profiles take 30 s by default
		MaxHeaderBytes:    16 << 10,
	}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AddReadyCheck registers a named dependency check run on every /readyz.
func (s *Server) AddReadyCheck(name string, c ReadyCheck) {
	s.mu.Lock()
	s.checks[name] = c
	s.mu.Unlock()
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	s.mu.Lock()
	checks := make(map[string]ReadyCheck, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()
	var b strings.Builder
	ready := true
	for name, c := range checks {
		if err := c(ctx); err != nil {
			ready = false
			fmt.Fprintf(&b, "%s: %v\n", name, err)
		} else {
			fmt.Fprintf(&b, "%s: ok\n", name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = io.WriteString(w, b.String())
}

// Run serves until ctx is done, then shuts down within 5 s.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("internal listener serving", "addr", s.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("internal listener: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("internal listener shutdown: %w", err)
	}
	return nil
}
