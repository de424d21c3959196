// Command inlet runs one Inlet process (ingestor, pipeline or admin) or an operator task (migrate,
// keygen, …). Settings come from -config and INLET_* variables; see deploy/inlet.example.yaml.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/inlet-dev/inlet/config"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

func main() { os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr)) }

const usage = `usage: inlet [-config FILE] [-check-config] COMMAND [ARGS]

commands:
  ingestor          run the public webhook edge
  pipeline          run the consumer that resolves users, fires events and writes ClickHouse
  admin             run the admin REST API and console
  migrate           apply PostgreSQL and ClickHouse migrations and create the Kafka topics
  project create NAME
                    create a project and print its admin API key (shown once)
  project keys PROJECT_ID
                    list the project's API keys (id, name, prefix, created, last used, revoked)
  project key-create PROJECT_ID [NAME]
                    issue another API key for the project and print it (shown once)
  project key-revoke PROJECT_ID KEY_ID
                    revoke an API key: refused at once by the API, console sessions with it end
  demo              seed the demo project (idempotent) and print the console URL, webhook URL,
                    secret and a ready-to-paste curl command
  keygen            print a new master key for secrets.master_key
`

func run(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inlet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	path := fs.String("config", envOr(environ, "INLET_CONFIG", ""), "settings file (YAML); env INLET_CONFIG")
	check := fs.Bool("check-config", false, "validate the settings, print the problem if any, and exit (0 valid, 2 invalid)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	cfg, err := config.Load(*path, environ)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	if *check {
		fmt.Fprintln(stdout, "config ok")
		return exitOK
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitConfig
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	ctx, stop := signalContext(stderr)
	defer stop()

	var runErr error
	switch cmd {
	case "keygen":
		fmt.Fprintln(stdout, config.NewMasterKey())
		return exitOK
	case "migrate":
		runErr = migrate(ctx, cfg, newLogger(stderr, cfg, "migrate"))
	case "ingestor":
		runErr = runIngestor(ctx, cfg, newLogger(stderr, cfg, "ingestor"))
	case "pipeline":
		runErr = runPipeline(ctx, cfg, newLogger(stderr, cfg, "pipeline"))
	case "project":
		runErr = projectCmd(ctx, cfg, rest, stdout)
	case "demo":
		runErr = demo(ctx, cfg, newLogger(stderr, cfg, "demo"), rest, stdout)
	case "admin":
		runErr = runAdmin(ctx, cfg, newLogger(stderr, cfg, "admin"), rest)
	default:
		fmt.Fprintf(stderr, "inlet: unknown command %q\n\n", cmd)
		fs.Usage()
		return exitConfig
	}
	if runErr != nil {
		var uerr usageError
		if errors.As(runErr, &uerr) {
			fmt.Fprintln(stderr, "inlet:", runErr)
			return exitConfig
		}
		fmt.Fprintf(stderr, "inlet %s: %v\n", cmd, runErr)
		return exitFail
	}
	return exitOK
}

// usageError marks bad command-line arguments (exit 2, like a bad config).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newLogger(w io.Writer, cfg *config.Config, process string) *slog.Logger {
	return obsLogger(w, cfg, process)
}

// signalContext is cancelled by the first SIGINT/SIGTERM, starting a graceful shutdown; a second signal
// exits at once.
func signalContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		fmt.Fprintln(stderr, "inlet: second signal, exiting now")
		os.Exit(exitFail)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

func envOr(environ []string, key, def string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := cut(environ[i]); ok && k == key {
			return v
		}
	}
	return def
}

func cut(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return "", "", false
}
