package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/project"
)

const projectUsage = `usage: inlet project create NAME
       inlet project keys PROJECT_ID                  list the project's API keys
       inlet project key-create PROJECT_ID [-scopes LIST] [NAME]
                                                      issue another API key (shown once); LIST is
                                                      comma-separated scopes, default all of them
       inlet project key-revoke PROJECT_ID KEY_ID     revoke a key (not the project's last active one)`

// projectCmd runs the project subcommands against PostgreSQL directly: they are the operator's way in
// when no API key is at hand (a lost or leaked last key).
func projectCmd(ctx context.Context, cfg *config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{projectUsage}
	}
	var pid, keyID int64
	switch sub := args[0]; {
	case sub == "create" && len(args) >= 2:
	case sub == "keys" && len(args) == 2, sub == "key-create" && len(args) >= 2:
		pid = parseID(args[1])
	case sub == "key-revoke" && len(args) == 3:
		pid, keyID = parseID(args[1]), parseID(args[2])
		if keyID == 0 {
			return usageError{"KEY_ID must be a positive integer (see inlet project keys PROJECT_ID)\n" + projectUsage}
		}
	default:
		return usageError{projectUsage}
	}
	if args[0] != "create" && pid == 0 {
		return usageError{"PROJECT_ID must be a positive integer\n" + projectUsage}
	}

	stores, err := compose.OpenStores(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	defer stores.Close()
	store := stores.Projects
	switch args[0] {
	case "create":
		p, key, err := store.Create(ctx, strings.Join(args[1:], " "))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "project %d %q created\nAPI key (shown once, store it now): %s\n", p.ID, p.Name, key)
	case "keys":
		if _, err := store.Get(ctx, pid); err != nil {
			return fmt.Errorf("project %d: %w", pid, err)
		}
		keys, err := store.ListKeys(ctx, pid)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tKEY\tSCOPES\tCREATED\tLAST USED\tREVOKED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%d\t%s\t%s…\t%s\t%s\t%s\t%s\n", k.ID, orDash(k.Name), k.Prefix, strings.Join(k.Scopes, ","),
				k.CreatedAt.UTC().Format(time.RFC3339), timeOrDash(k.LastUsedAt), timeOrDash(k.RevokedAt))
		}
		return tw.Flush()
	case "key-create":
		rest, scopes := args[2:], project.AllScopes
		if len(rest) >= 2 && (rest[0] == "-scopes" || rest[0] == "--scopes") {
			scopes, rest = strings.Split(rest[1], ","), rest[2:]
		}
		k, key, err := store.CreateKey(ctx, pid, strings.Join(rest, " "), scopes)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API key %d created in project %d with scopes %s\nAPI key (shown once, store it now): %s\n",
			k.ID, pid, strings.Join(k.Scopes, ","), key)
	case "key-revoke":
		k, err := store.RevokeKey(ctx, pid, keyID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API key %d (%s…) revoked at %s; requests and console sessions using it are refused from now on\n",
			k.ID, k.Prefix, k.RevokedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// parseID is a positive id, or 0.
func parseID(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0
	}
	return n
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
