package chstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/inlet-dev/inlet/internal/wire"
)

// Subject is a user or a device whose rows an erasure deletes: the rows of its project received at
// or before Before (so that requests arriving after the erasure are not touched, even when a job is
// run again). Tag names the job's mutations in system.mutations; it must be unique to the job and hold
// nothing but letters, digits and '-'.
type Subject struct {
	ProjectID int64
	// Kind is SubjectUser or SubjectDevice; ID the user id or the hwid.
	Kind SubjectKind
	ID   string
	// Email and Phone are the user's (lower-cased email, E.164 phone; "" when none): rows that
	// identified the user by them are erased too. They are matched by SHA-256, so that the values do
	// not stay in clear in the server's mutation log (system.mutations keeps each command).
	Email, Phone string
	Before       time.Time
	Tag          string
}

// Eraser deletes a subject's rows from the tables that hold personal data: activity_log (payloads,
// identifiers, attributes, headers) and events. It uses ALTER TABLE … DELETE, a mutation that rewrites
// the parts holding matching rows in the background; Erase waits until the server reports it done
// (system.mutations.is_done). The rollup activity_minute holds counts only and is not touched: a
// mutation of activity_log does not reach its materialized view, so the 24 h counts stay.
type Eraser struct {
	conn driver.Conn
	// poll is how often Erase reads system.mutations while it waits.
	poll time.Duration
}

// NewEraser returns an eraser on conn (the admin's ClickHouse connection; its user needs ALTER DELETE).
func NewEraser(conn driver.Conn) *Eraser { return &Eraser{conn: conn, poll: 200 * time.Millisecond} }

// Erase issues the subject's mutations and waits for them until ctx is done. Running it again for the
// same subject is harmless: the rows it matches are gone, and later ones are out of its time bound.
func (e *Eraser) Erase(ctx context.Context, s Subject) error {
	if s.Tag == "" || strings.Trim(s.Tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
		return fmt.Errorf("erase: tag %q must be letters, digits and '-'", s.Tag)
	}
	if s.ID == "" {
		return fmt.Errorf("erase: no subject")
	}
	before := uint64(s.Before.UnixMilli())
	var stmts []struct {
		table, where string
		args         []any
	}
	add := func(table, where string, args ...any) {
		stmts = append(stmts, struct {
			table, where string
			args         []any
		}{table, where, args})
	}
	scope := "project_id = ? AND received_ms <= ? AND "
	switch s.Kind {
	case SubjectUser:
		where := "(user_id = ? OR (identifier_kind = 'user_id' AND identifier_value = ?) OR position(outcomes, ?) > 0"
		args := []any{uint64(s.ProjectID), before, s.ID, s.ID, string(wire.AppendJSONString([]byte(`"user_id":`), s.ID))}
		if s.Email != "" {
			where += " OR (identifier_kind = 'email' AND hex(SHA256(lowerUTF8(identifier_value))) = ?)"
			args = append(args, sha256Hex(strings.ToLower(s.Email)))
		}
		if s.Phone != "" {
			where += " OR (identifier_kind = 'phone' AND hex(SHA256(identifier_value)) = ?)"
			args = append(args, sha256Hex(s.Phone))
		}
		add("activity_log", scope+where+")", args...)
		add("events", scope+"(user_id = ? OR (subject_kind = 'user' AND subject = ?))", uint64(s.ProjectID), before, s.ID, s.ID)
	case SubjectDevice:
		add("activity_log", scope+"(hwid = ? OR (identifier_kind = 'hwid' AND identifier_value = ?) OR position(outcomes, ?) > 0)",
			uint64(s.ProjectID), before, s.ID, s.ID, string(wire.AppendJSONString([]byte(`"hwid":`), s.ID)))
		add("events", scope+"(hwid = ? OR (subject_kind = 'device' AND subject = ?))", uint64(s.ProjectID), before, s.ID, s.ID)
	default:
		return fmt.Errorf("erase: unknown subject kind %q", s.Kind)
	}
	for _, st := range stmts {
		// The tag is a constant condition: it names the mutation in system.mutations.command.
		q := "ALTER TABLE " + st.table + " DELETE WHERE " + st.where + " AND '" + s.Tag + "' != ''"
		if err := e.conn.Exec(ctx, q, st.args...); err != nil {
			return fmt.Errorf("erase %s %q from %s: %w", s.Kind, s.ID, st.table, err)
		}
	}
	for _, st := range stmts {
		if err := e.await(ctx, st.table, s.Tag); err != nil {
			return err
		}
	}
	return nil
}

// await waits until the table's mutations named by tag are done. ClickHouse 18.16 reports no failure
// reason: a mutation that cannot finish stays is_done = 0 (and is retried by the server), so the
// caller's ctx bounds the wait.
func (e *Eraser) await(ctx context.Context, table, tag string) error {
	for {
		var all, open uint64
		err := e.conn.QueryRow(ctx, `SELECT count(), countIf(is_done = 0) FROM system.mutations
WHERE database = currentDatabase() AND table = ? AND position(command, ?) > 0`, table, "'"+tag+"'").Scan(&all, &open)
		if err != nil {
			return fmt.Errorf("erase: read system.mutations of %s: %w", table, err)
		}
		if all == 0 {
			return fmt.Errorf("erase: the mutation %s of %s is not in system.mutations", tag, table)
		}
		if open == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("erase: the mutation %s of %s is not done (see system.mutations): %w", tag, table, ctx.Err())
		case <-time.After(e.poll):
		}
	}
}

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return strings.ToUpper(hex.EncodeToString(d[:]))
}
