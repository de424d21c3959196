package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/audit"
	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/erasure"
)

// cliActor makes the operator the audit actor of ctx: the changes the CLI makes are recorded as
// {"via": "cli", "key_name": <OS user>}.
func cliActor(ctx context.Context) context.Context {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return audit.WithActor(ctx, audit.Actor{Via: "cli", KeyName: name})
}

const auditUsage = `usage: inlet audit PROJECT_ID [-target T] [-target-id ID] [-key-id N] [-limit N] [-before ID] [-json]`

// auditCmd prints a project's audit log, newest first, read from PostgreSQL.
func auditCmd(ctx context.Context, cfg *config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || parseID(args[0]) == 0 {
		return usageError{"PROJECT_ID must be a positive integer\n" + auditUsage}
	}
	q := audit.Query{ProjectID: parseID(args[0])}
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&q.Target, "target", "", "only changes to this kind of row ("+strings.Join(audit.Targets, ", ")+")")
	fs.StringVar(&q.TargetID, "target-id", "", "only changes to this row (a webhook's public id, a key's id, a user id…)")
	fs.Int64Var(&q.KeyID, "key-id", 0, "only changes made with this API key")
	fs.IntVar(&q.Limit, "limit", audit.DefaultLimit, "entries to print")
	fs.Int64Var(&q.Before, "before", 0, "only entries older than this id (the next page's cursor)")
	asJSON := fs.Bool("json", false, "print the entries as JSON lines")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return usageError{auditUsage}
	}
	stores, err := compose.OpenStores(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	defer stores.Close()
	page, err := audit.NewStore(stores.Pool).List(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, e := range page.Entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAT\tBY\tACTION\tTARGET\tCHANGE")
		for _, e := range page.Entries {
			by := e.Via
			if e.KeyID != nil {
				by += " key " + strconv.FormatInt(*e.KeyID, 10)
			}
			if e.KeyName != "" {
				by += " (" + e.KeyName + ")"
			}
			change := string(e.After)
			if e.Action == "delete" {
				change = string(e.Before)
			} else if e.Action == "update" {
				change = string(e.Before) + " → " + string(e.After)
			}
			if len(change) > 160 {
				change = change[:157] + "…"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s %s\t%s\n", e.ID, e.At.UTC().Format(time.RFC3339), by, e.Action, e.Target, e.TargetID, change)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if page.NextBefore != 0 {
		fmt.Fprintf(stdout, "more: inlet audit %d -before %d\n", q.ProjectID, page.NextBefore)
	}
	return nil
}

const eraseUsage = `usage: inlet erase user PROJECT_ID USER_ID     delete the user and erase its rows from ClickHouse
       inlet erase device PROJECT_ID HWID      delete the device and erase its rows from ClickHouse
       inlet erase status PROJECT_ID [JOB_ID]  list the project's erasure jobs, or show one`

// eraseCmd deletes a user or a device as DELETE /users/{id} does, then runs erasure jobs until that one
// is finished (done or failed), printing its status; or shows jobs.
func eraseCmd(ctx context.Context, cfg *config.Config, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) < 2 || parseID(args[1]) == 0 {
		return usageError{eraseUsage}
	}
	pid := parseID(args[1])
	switch {
	case (args[0] == "user" || args[0] == "device") && len(args) == 3 && args[2] != "":
	case args[0] == "status" && len(args) <= 3:
	default:
		return usageError{eraseUsage}
	}
	stores, err := compose.OpenStores(ctx, cfg, nil, log)
	if err != nil {
		return err
	}
	defer stores.Close()
	jobs := erasure.NewStore(stores.Pool)
	if args[0] == "status" {
		var list []erasure.Job
		if len(args) == 3 {
			j, err := jobs.Get(ctx, pid, parseID(args[2]))
			if err != nil {
				return err
			}
			list = []erasure.Job{j}
		} else if list, err = jobs.List(ctx, pid); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSUBJECT\tSTATUS\tATTEMPTS\tREQUESTED\tFINISHED\tERROR")
		for _, j := range list {
			fmt.Fprintf(tw, "%d\t%s %s\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.SubjectKind, j.Subject, j.Status, j.Attempts,
				j.RequestedAt.UTC().Format(time.RFC3339), timeOrDash(j.FinishedAt), orDash(j.Error))
		}
		return tw.Flush()
	}
	actx := cliActor(ctx)
	var job erasure.Job
	if args[0] == "user" {
		job, err = stores.Directory.DeleteUser(actx, pid, args[2])
	} else {
		job, err = stores.Directory.DeleteDevice(actx, pid, args[2])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %q deleted from the directory; erasure %d recorded\n", args[0], args[2], job.ID)
	ch, err := chdb.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return fmt.Errorf("erasure %d stays pending (an admin process will run it): %w", job.ID, err)
	}
	defer ch.Close()
	runner := erasure.NewRunner(stores.Pool, chstore.NewEraser(ch), log)
	deadline := time.Now().Add(erasure.Lease)
	for {
		if _, err := runner.RunOne(ctx); err != nil {
			return err
		}
		j, err := jobs.Get(ctx, pid, job.ID)
		if err != nil {
			return err
		}
		switch {
		case j.Status == erasure.StatusDone:
			fmt.Fprintf(stdout, "erasure %d done: the %s's rows are gone from ClickHouse\n", j.ID, j.SubjectKind)
			return nil
		case j.Status == erasure.StatusFailed:
			return fmt.Errorf("erasure %d failed after %d attempts: %s", j.ID, j.Attempts, j.Error)
		case time.Now().After(deadline):
			return fmt.Errorf("erasure %d is still %s (%s); an admin process will finish it: see inlet erase status %d %d", j.ID, j.Status, j.Error, pid, j.ID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
