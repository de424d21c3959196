package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// How long a started process may take to become ready, and to stop after SIGTERM before it is killed.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 20 * time.Second
	pollEvery    = 100 * time.Millisecond
)

// proc is a process the suite started (and only those are ever signalled).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// startProc runs argv with env appended to the suite's environment, logging to logPath. With cpus set
// ("0", "0-1") it runs under taskset so the system under test can be pinned apart from the generator.
// The child gets SIGTERM if the suite dies.
func startProc(name string, argv []string, env []string, logPath, cpus string) (*proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	p := &proc{name: name, cmd: cmd, log: f, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// pid is the process's id. Under taskset, taskset execs the command, so the pid is the same.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, without waiting.
func (p *proc) exited() (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		return err, true
	default:
		return nil, false
	}
}

// stop sends SIGTERM, waits up to stopTimeout, then SIGKILL. Only this process, by its pid.
func (p *proc) stop() error {
	if p == nil {
		return nil
	}
	defer p.log.Close()
	if _, ok := p.exited(); ok {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s (pid %d): still running %s after SIGTERM, killed", p.name, p.pid(), stopTimeout)
	}
}

// waitReady polls check until it succeeds, the process exits, or readyTimeout.
func (p *proc) waitReady(ctx context.Context, check func(context.Context) error) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		if err, ok := p.exited(); ok {
			return fmt.Errorf("%s exited during start-up (%v); see %s", p.name, err, p.log.Name())
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	return fmt.Errorf("%s not ready after %s: %w; see %s", p.name, readyTimeout, last, p.log.Name())
}

// httpOK is a readiness check: GET url answers 200.
func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// postAnswers is a readiness check: POST body to url answers want, from a server whose Server header
// is server (when set) — so that another process on the port is never taken for ours.
func postAnswers(url, server string, want int) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(SeedSample))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != want || (server != "" && resp.Header.Get("Server") != server) {
			return fmt.Errorf("POST %s: %s from server %q; want %d from %q", url, resp.Status, resp.Header.Get("Server"), want, server)
		}
		return nil
	}
}

// portFree fails when something already listens on addr.
func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is taken (choose another with the flags): %w", addr, err)
	}
	return ln.Close()
}

// usage is a process's CPU time and memory at one moment.
type usage struct {
	cpu float64 // user + system seconds
	rss int64   // bytes
}

// readUsage reads /proc/<pid>/stat (utime + stime, RSS).
func readUsage(pid int) (usage, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return usage{}, fmt.Errorf("proc %d: %w", pid, err)
	}
	st, err := p.Stat()
	if err != nil {
		return usage{}, fmt.Errorf("stat of pid %d: %w", pid, err)
	}
	return usage{cpu: st.CPUTime(), rss: int64(st.ResidentMemory())}, nil
}

// kafkaPID finds the broker started by deploy/local (its pid file, checked against its command line),
// so that its CPU can be reported beside the targets'. 0 when it cannot be found.
func kafkaPID(stateDir string) int {
	b, err := os.ReadFile(stateDir + "/kafka/kafka.pid")
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "kafka") {
		return 0
	}
	return pid
}

// errStopped is returned by a run when a process it needs has exited.
var errStopped = errors.New("process exited")
