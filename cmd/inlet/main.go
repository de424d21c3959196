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
	"slices"
	"strings"
	"syscall"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/obs"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

func main() { os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr)) }

// command is one subcommand of inlet, as its usage shows it.
type command struct {
	name, args, doc string
	takesArgs       bool
	// help, when set, is the reference of the command's flags, printed after its usage line by
	// `inlet help NAME` and `inlet NAME … --help`.
	help func() string
}

var commands = []command{
	{name: "ingestor", doc: "run the public webhook edge"},
	{name: "pipeline", doc: "run the consumer that resolves users, fires events and writes ClickHouse"},
	{name: "admin", doc: "run the admin REST API and console"},
	{name: "migrate", doc: "apply PostgreSQL and ClickHouse migrations and create the Kafka topics"},
	{name: "project", args: "create NAME", doc: "create a project and print its admin API key (shown once)", takesArgs: true},
	{name: "project", args: "keys PROJECT_ID", doc: "list the project's API keys (id, name, prefix, created, last used, revoked)", takesArgs: true},
	{name: "project", args: "key-create PROJECT_ID [-scopes LIST] [NAME]", doc: "issue another API key for the project and print it (shown once); -scopes: comma-separated, default all (read,webhooks:write,directory:write,admin)", takesArgs: true},
	{name: "project", args: "key-revoke PROJECT_ID KEY_ID", doc: "revoke an API key: refused at once by the API, console sessions with it end", takesArgs: true},
	{name: "audit", args: "PROJECT_ID [-target T] [-target-id ID] [-key-id N] [-limit N] [-before ID] [-json]", doc: "print the project's audit log (who changed what, newest first)", takesArgs: true},
	{name: "erase", args: "user|device PROJECT_ID ID", doc: "delete a user or device and erase its rows from ClickHouse, waiting for the erasure job", takesArgs: true},
	{name: "erase", args: "status PROJECT_ID [JOB_ID]", doc: "list the project's erasure jobs, or show one", takesArgs: true},
	{name: "webhook", args: "test -webhook ID [flags]", doc: "send the edge a test request signed as the webhook's sender would; print it (secrets redacted) and the answer", takesArgs: true, help: webhookTestHelp},
	{name: "replay", args: "start|request|status|cancel|list [flags]", doc: "replay failed requests through the webhook's current configuration (calls the admin API)", takesArgs: true, help: replayHelp},
	{name: "demo", doc: "seed the demo project (idempotent) and print the console URL, webhook URL, secret and a ready-to-paste curl command", takesArgs: true},
	{name: "keygen", doc: "print a new master key for secrets.master_key"},
	{name: "secrets", args: "reseal [-batch N]", doc: "re-encrypt every stored webhook secret under secrets.master_key (after a key rotation; safe while serving, and to re-run)", takesArgs: true},
	{name: "healthcheck", args: "[-timeout D] URL", doc: "GET URL (a process's /healthz or /readyz) and exit 0 on 2xx, 1 otherwise: the container image's health check, which has no shell or curl", takesArgs: true},
	{name: "version", doc: "print the version, commit and Go version of this binary"},
	{name: "help", args: "[COMMAND]", doc: "print this help, or one command's", takesArgs: true},
}

// usage is the help of every command, or of the commands named name.
func usage(name string) string {
	var b strings.Builder
	b.WriteString("usage: inlet [-config FILE] [-check-config] COMMAND [ARGS]\n\ncommands:\n")
	for _, c := range commands {
		if name != "" && c.name != name {
			continue
		}
		line := c.name
		if c.args != "" {
			line += " " + c.args
		}
		if len(line) < 18 {
			fmt.Fprintf(&b, "  %-18s%s\n", line, c.doc)
		} else {
			fmt.Fprintf(&b, "  %s\n  %-18s%s\n", line, "", c.doc)
		}
	}
	return b.String()
}

// help is the usage of the commands named name followed by their flag references.
func help(name string) string {
	out := usage(name)
	for _, c := range commands {
		if c.name == name && c.help != nil {
			out += c.help()
		}
	}
	return out
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

func run(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inlet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage("")); fmt.Fprintln(fs.Output(), "\nflags:"); fs.PrintDefaults() }
	path := fs.String("config", envOr(environ, "INLET_CONFIG", ""), "settings file (YAML); env INLET_CONFIG")
	check := fs.Bool("check-config", false, "validate the settings, print the problem if any, and exit (0 valid, 2 invalid)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK
		}
		return exitConfig
	}
	// Help, version and healthcheck need no settings.
	if fs.NArg() > 0 {
		name, rest := fs.Arg(0), fs.Args()[1:]
		c, known := lookup(name)
		switch {
		case name == "help" && len(rest) == 0:
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK
		case name == "help":
			if _, ok := lookup(rest[0]); !ok {
				fmt.Fprintf(stderr, "inlet help: unknown command %q\n\n%s", rest[0], usage(""))
				return exitConfig
			}
			fmt.Fprint(stdout, help(rest[0]))
			return exitOK
		case known && slices.ContainsFunc(rest, isHelp):
			fmt.Fprint(stdout, help(name))
			return exitOK
		case name == "version":
			b := obs.BuildInfo()
			fmt.Fprintf(stdout, "inlet %s (commit %s, %s)\n", b.Version, b.Commit, b.GoVersion)
			return exitOK
		case name == "healthcheck":
			return healthcheck(rest, stdout, stderr)
		case known && !c.takesArgs && len(rest) > 0:
			fmt.Fprintf(stderr, "inlet %s: takes no arguments (got %q)\n\n%s", name, rest, usage(name))
			return exitConfig
		}
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
		runErr = projectCmd(cliActor(ctx), cfg, rest, stdout)
	case "audit":
		runErr = auditCmd(ctx, cfg, rest, stdout)
	case "erase":
		runErr = eraseCmd(ctx, cfg, rest, stdout, newLogger(stderr, cfg, "erase"))
	case "demo":
		runErr = demo(ctx, cfg, newLogger(stderr, cfg, "demo"), rest, stdout)
	case "admin":
		runErr = runAdmin(ctx, cfg, newLogger(stderr, cfg, "admin"), rest)
	case "webhook":
		runErr = webhookCmd(ctx, cfg, rest, environ, stdout)
	case "secrets":
		runErr = secretsCmd(ctx, cfg, rest, stdout)
	case "replay":
		runErr = replayCmd(ctx, cfg, rest, environ, stdout)
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
