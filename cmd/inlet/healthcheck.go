package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// healthcheck is `inlet healthcheck [-timeout D] URL`: GET URL and exit 0 on a 2xx answer, 1 otherwise.
// The container image has no shell and no curl, so Compose's and other runtimes' health checks run the
// binary itself against a process's /healthz or /readyz. It needs no settings.
func healthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inlet healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long (connect and answer)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "inlet healthcheck: want one URL (got %d arguments)\n\n%s", fs.NArg(), usage("healthcheck"))
		return exitConfig
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "inlet healthcheck: %q is not an http(s) URL\n", fs.Arg(0))
		return exitConfig
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(u.String())
	if err != nil {
		fmt.Fprintf(stderr, "inlet healthcheck: %v\n", err)
		return exitFail
	}
	defer resp.Body.Close()
	// The body says why a check failed (/readyz names the dependency); bounded, it is only for the log.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "inlet healthcheck: %s answered %s: %s\n", u, resp.Status, body)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: %s\n", u, resp.Status)
	return exitOK
}
