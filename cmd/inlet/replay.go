package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/config"
)

// replayHelp is the reference of `inlet replay`.
func replayHelp() string { return replayHelpText }

const replayHelpText = `  inlet replay start -webhook ID -since TIME -until TIME [-reason R] [-dry-run] [-wait]
        replay the webhook's requests that failed in the pipeline, received in [since, until)
        (RFC 3339), with reason R or any; -dry-run only counts them; -wait prints the progress
        until the job ends
  inlet replay request -webhook ID -request REQUEST_ID [-wait]
        replay one failed request
  inlet replay status JOB_ID | inlet replay cancel JOB_ID | inlet replay list
  Every subcommand calls the admin API: -admin-url URL (default http://<admin.listen_addr>) with the
  API key in $INLET_API_KEY.
`

// replayClient calls the admin API's replay endpoints.
type replayClient struct {
	base, key string
	out       io.Writer
}

func replayCmd(ctx context.Context, cfg *config.Config, args, environ []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: inlet replay start|request|status|cancel|list (inlet help replay)"}
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("replay "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	adminURL := fs.String("admin-url", "http://"+cfg.Admin.ListenAddr, "the admin API's base URL")
	wh := fs.String("webhook", "", "the webhook's public id")
	since := fs.String("since", "", "requests received at or after (RFC 3339)")
	until := fs.String("until", "", "requests received before (RFC 3339)")
	reason := fs.String("reason", "", "only requests that failed with this reason")
	request := fs.String("request", "", "the request id (replay request)")
	dry := fs.Bool("dry-run", false, "count what would be replayed; start nothing")
	wait := fs.Bool("wait", false, "print the progress until the job ends")
	if err := fs.Parse(args); err != nil {
		return usageError{"replay " + sub + ": " + err.Error()}
	}
	key := envOr(environ, envAPIKey, "")
	if key == "" {
		return usageError{"replay: the admin API key is read from $" + envAPIKey}
	}
	c := &replayClient{base: strings.TrimRight(*adminURL, "/"), key: key, out: stdout}
	var job map[string]any
	var err error
	switch sub {
	case "start":
		if *wh == "" || *since == "" || *until == "" {
			return usageError{"replay start: -webhook, -since and -until are required"}
		}
		body := map[string]any{"webhook_id": *wh, "since": *since, "until": *until}
		if *reason != "" {
			body["reason"] = *reason
		}
		if *dry {
			var n struct{ Count int }
			if err := c.call(ctx, http.MethodPost, "/api/v1/replays?dry_run=1", body, &n); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%d requests would be replayed\n", n.Count)
			return nil
		}
		err = c.call(ctx, http.MethodPost, "/api/v1/replays", body, &job)
	case "request":
		if *wh == "" || *request == "" {
			return usageError{"replay request: -webhook and -request are required"}
		}
		err = c.call(ctx, http.MethodPost, "/api/v1/webhooks/"+url.PathEscape(*wh)+"/activity/"+url.PathEscape(*request)+"/replay", nil, &job)
	case "status", "cancel":
		if fs.NArg() != 1 {
			return usageError{"replay " + sub + ": give the job id"}
		}
		path := "/api/v1/replays/" + url.PathEscape(fs.Arg(0))
		if sub == "cancel" {
			err = c.call(ctx, http.MethodPost, path+"/cancel", nil, &job)
		} else {
			err = c.call(ctx, http.MethodGet, path, nil, &job)
		}
	case "list":
		var l struct{ Replays []map[string]any }
		if err := c.call(ctx, http.MethodGet, "/api/v1/replays", nil, &l); err != nil {
			return err
		}
		for _, j := range l.Replays {
			printJob(stdout, j)
		}
		return nil
	default:
		return usageError{fmt.Sprintf("replay: unknown subcommand %q (start, request, status, cancel, list)", sub)}
	}
	if err != nil {
		return err
	}
	printJob(stdout, job)
	for *wait && job["state"] != "done" && job["state"] != "cancelled" && job["state"] != "failed" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		if err := c.call(ctx, http.MethodGet, "/api/v1/replays/"+url.PathEscape(fmt.Sprint(job["id"])), nil, &job); err != nil {
			return err
		}
		printJob(stdout, job)
	}
	return nil
}

// printJob prints one line of a job's progress.
func printJob(w io.Writer, j map[string]any) {
	n := func(k string) int64 {
		f, _ := j[k].(float64)
		return int64(f)
	}
	fmt.Fprintf(w, "%s %s webhook %s: %d of %d produced, %d succeeded, %d failed again, %d expired, %d truncated, %d skipped\n",
		j["id"], j["state"], j["webhook_id"], n("produced"), n("total"), n("succeeded"), n("failed_again"), n("expired"), n("truncated"), n("skipped"))
}

// call sends one request to the admin API and decodes its 2xx answer into into.
func (c *replayClient) call(ctx context.Context, method, path string, body, into any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return usageError{fmt.Sprintf("replay: -admin-url: %v", err)}
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return fmt.Errorf("admin API %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("admin API %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("admin API %s %s: %w", method, path, err)
	}
	return nil
}
