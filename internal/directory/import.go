package directory

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/inlet-dev/inlet/internal/domainerr"
)

// LineError is one NDJSON line that was not imported, numbered from 1.
type LineError struct {
	Line  int64  `json:"line"`
	Error string `json:"error"`
}

// ImportResult counts what an import did. Every non-blank line is either applied (counted in Users or
// Devices) or failed (counted in Failed, and listed in Errors up to Config.MaxLineErrors).
type ImportResult struct {
	Lines   int64       `json:"lines"`   // lines read, blank ones included
	Users   int64       `json:"users"`   // user lines applied (created or updated)
	Devices int64       `json:"devices"` // device lines applied
	Failed  int64       `json:"failed"`  // lines not applied
	Errors  []LineError `json:"errors"`  // the first Config.MaxLineErrors failed lines
}

// importLine is one line as sent. Pointers tell an absent field from an empty one, so that a field of
// the other line type is refused rather than silently ignored.
type importLine struct {
	Type     *string `json:"type"`
	UserID   *string `json:"user_id"`
	Email    *string `json:"email"`
	Phone    *string `json:"phone"`
	HWID     *string `json:"hwid"`
	Platform *string `json:"platform"`
}

// pending is a validated line waiting for its batch.
type pending struct {
	line   int64
	isUser bool
	user   User
	device Device
}

// Import reads NDJSON from r, one user or device per line, and upserts them into the project (phone
// numbers without a country code are read in the project's phone region, else Config.DefaultRegion):
//
//	{"type":"user","user_id":"42","email":"jane@example.com","phone":"+15551234567"}
//	{"type":"device","hwid":"A1B2","user_id":"42","platform":"ios"}
//
// The input is streamed: at most Config.ImportBatch lines are held at a time, and a line longer than
// Config.MaxLineBytes is reported and skipped. Lines are applied in batches of Config.ImportBatch, each
// in one transaction and one round trip; a batch that PostgreSQL refuses (e.g. an email that already
// belongs to another user) is retried line by line, each line under a savepoint, to find the bad lines.
// So a line is applied entirely or not at all, and bad lines never keep good ones out. Later lines win
// over earlier ones for the same user or device, as if applied one by one. Blank lines are skipped.
//
// The returned error is for the import as a whole (no such project → domainerr.ErrNotFound, reading r
// failed, PostgreSQL unreachable, ctx done); the result then counts the batches committed before it.
func (s *Store) Import(ctx context.Context, projectID int64, r io.Reader) (ImportResult, error) {
	res := ImportResult{Errors: []LineError{}}
	// The region is read once: a change during the import applies from the next one.
	region, err := s.phoneRegion(ctx, projectID)
	if errors.Is(err, domainerr.ErrNotFound) {
		return res, fmt.Errorf("import into project %d: project: %w", projectID, domainerr.ErrNotFound)
	}
	if err != nil {
		return res, fmt.Errorf("import into project %d: %w", projectID, err)
	}
	imp := importer{s: s, projectID: projectID, res: &res,
		users: map[string]struct{}{}, devices: map[string]struct{}{}}
	br := bufio.NewReaderSize(r, s.cfg.MaxLineBytes+1) // +1: the newline of a line of exactly MaxLineBytes
	for {
		b, err := br.ReadSlice('\n')
		if len(b) == 0 && err == io.EOF {
			break
		}
		res.Lines++
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of the line without holding it
				_, err = br.ReadSlice('\n')
			}
			imp.fail(res.Lines, fmt.Sprintf("line longer than %d bytes", s.cfg.MaxLineBytes))
		} else if err == nil || err == io.EOF {
			if p, msg := parseLine(b, res.Lines, region); msg != "" {
				imp.fail(res.Lines, msg)
			} else if p != nil {
				if ferr := imp.add(ctx, *p); ferr != nil {
					return res, ferr
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("import into project %d: read line %d: %w", projectID, res.Lines, err)
		}
	}
	err = imp.flush(ctx)
	// Parse errors are reported as they are read, database refusals when their batch is applied.
	slices.SortFunc(res.Errors, func(a, b LineError) int { return cmp.Compare(a.Line, b.Line) })
	return res, err
}

// parseLine decodes and validates one line. It returns nil and no message for a blank line.
func parseLine(b []byte, n int64, region string) (*pending, string) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, ""
	}
	var l importLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, "invalid JSON: " + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "invalid JSON: data after the object"
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	var v domainerr.ValidationError
	p := &pending{line: n}
	switch str(l.Type) {
	case "user":
		if l.HWID != nil {
			v.Add("hwid", "not a field of a user line")
		}
		if l.Platform != nil {
			v.Add("platform", "not a field of a user line")
		}
		u, err := normalizeUser(User{UserID: str(l.UserID), Email: str(l.Email), Phone: str(l.Phone)}, region)
		var ve *domainerr.ValidationError
		if errors.As(err, &ve) {
			v.Fields = append(v.Fields, ve.Fields...)
		}
		p.isUser, p.user = true, u
	case "device":
		if l.Email != nil {
			v.Add("email", "not a field of a device line")
		}
		if l.Phone != nil {
			v.Add("phone", "not a field of a device line")
		}
		p.device = Device{HWID: str(l.HWID), UserID: str(l.UserID), Platform: str(l.Platform)}
		var ve *domainerr.ValidationError
		if errors.As(validateDevice(p.device), &ve) {
			v.Fields = append(v.Fields, ve.Fields...)
		}
	case "":
		v.Add("type", `missing: must be "user" or "device"`)
	default:
		v.Add("type", "%q is not \"user\" or \"device\"", str(l.Type))
	}
	if err := v.Err(); err != nil {
		return nil, err.Error()
	}
	return p, ""
}

type importer struct {
	s         *Store
	projectID int64
	res       *ImportResult
	batch     []pending
	// Keys in the current batch: one multi-row upsert cannot touch the same row twice, so a repeated
	// key closes the batch first (which also keeps "the later line wins").
	users, devices map[string]struct{}
}

func (imp *importer) fail(line int64, msg string) {
	imp.res.Failed++
	imp.s.m.importLines.WithLabelValues("failed").Inc()
	if len(imp.res.Errors) < imp.s.cfg.MaxLineErrors {
		imp.res.Errors = append(imp.res.Errors, LineError{Line: line, Error: msg})
	}
}

func (imp *importer) add(ctx context.Context, p pending) error {
	keys, key := imp.devices, p.device.HWID
	if p.isUser {
		keys, key = imp.users, p.user.UserID
	}
	if _, dup := keys[key]; dup {
		if err := imp.flush(ctx); err != nil {
			return err
		}
	}
	keys[key] = struct{}{}
	imp.batch = append(imp.batch, p)
	if len(imp.batch) >= imp.s.cfg.ImportBatch {
		return imp.flush(ctx)
	}
	return nil
}

// Multi-row upserts of one batch. Rows that would not change are not updated, so re-importing the same
// file neither rewrites rows nor fires change notifications that empty the resolvers' caches.
const (
	bulkUsersSQL = `
INSERT INTO users (project_id, user_id, email, phone)
SELECT $1, t.user_id, t.email, t.phone FROM unnest($2::text[], $3::text[], $4::text[]) AS t (user_id, email, phone)
ON CONFLICT (project_id, user_id) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone, updated_at = now()
WHERE (users.email, users.phone) IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.phone)`
	bulkDevicesSQL = `
INSERT INTO devices (project_id, hwid, user_id, platform)
SELECT $1, t.hwid, t.user_id, t.platform FROM unnest($2::text[], $3::text[], $4::text[]) AS t (hwid, user_id, platform)
ON CONFLICT (project_id, hwid) DO UPDATE SET user_id = EXCLUDED.user_id, platform = EXCLUDED.platform, updated_at = now()
WHERE (devices.user_id, devices.platform) IS DISTINCT FROM (EXCLUDED.user_id, EXCLUDED.platform)`
)

// flush applies the batch in one transaction, or line by line when PostgreSQL refuses it.
func (imp *importer) flush(ctx context.Context) error {
	if len(imp.batch) == 0 {
		return nil
	}
	defer func() {
		imp.batch = imp.batch[:0]
		clear(imp.users)
		clear(imp.devices)
	}()
	var uID, uEmail, uPhone, dHWID, dUser, dPlatform []string
	for _, p := range imp.batch {
		if p.isUser {
			uID, uEmail, uPhone = append(uID, p.user.UserID), append(uEmail, p.user.Email), append(uPhone, p.user.Phone)
		} else {
			dHWID, dUser, dPlatform = append(dHWID, p.device.HWID), append(dUser, p.device.UserID), append(dPlatform, p.device.Platform)
		}
	}
	err := pgx.BeginFunc(ctx, imp.s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if len(uID) > 0 {
			b.Queue(bulkUsersSQL, imp.projectID, uID, uEmail, uPhone)
		}
		if len(dHWID) > 0 {
			b.Queue(bulkDevicesSQL, imp.projectID, dHWID, dUser, dPlatform)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err == nil {
		imp.s.m.importBatches.WithLabelValues("batch").Inc()
		imp.applied(int64(len(uID)), int64(len(dHWID)))
		return nil
	}
	if !lineLevel(err) {
		return fmt.Errorf("import into project %d: batch ending at line %d: %w", imp.projectID, imp.batch[len(imp.batch)-1].line, err)
	}
	imp.s.m.importBatches.WithLabelValues("fallback").Inc()
	imp.s.log.Debug("import batch refused, applying line by line", "project", imp.projectID,
		"first_line", imp.batch[0].line, "lines", len(imp.batch), "err", err)
	return imp.lineByLine(ctx)
}

func (imp *importer) applied(users, devices int64) {
	imp.res.Users += users
	imp.res.Devices += devices
	imp.s.m.importLines.WithLabelValues("applied").Add(float64(users + devices))
}

// lineByLine applies the batch one line per savepoint in one transaction: a refused line rolls back to
// its savepoint and is reported; the others commit together.
func (imp *importer) lineByLine(ctx context.Context) error {
	var users, devices int64
	var failed []LineError
	err := pgx.BeginFunc(ctx, imp.s.pool, func(tx pgx.Tx) error {
		for _, p := range imp.batch {
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
				var err error
				if p.isUser {
					_, err = sp.Exec(ctx, upsertUserSQL, imp.projectID, p.user.UserID, p.user.Email, p.user.Phone)
				} else {
					_, err = sp.Exec(ctx, upsertDeviceSQL, imp.projectID, p.device.HWID, p.device.UserID, p.device.Platform)
				}
				return err
			})
			switch {
			case err == nil && p.isUser:
				users++
			case err == nil:
				devices++
			case lineLevel(err):
				failed = append(failed, LineError{Line: p.line, Error: lineMessage(err)})
			default:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import into project %d: lines %d to %d: %w", imp.projectID, imp.batch[0].line, imp.batch[len(imp.batch)-1].line, err)
	}
	imp.applied(users, devices)
	for _, f := range failed {
		imp.fail(f.Line, f.Error)
	}
	return nil
}

// lineLevel reports whether PostgreSQL refused the data itself (integrity or data exception), as
// opposed to the connection or the server failing, which no line-by-line retry would fix.
func lineLevel(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

func lineMessage(err error) string {
	var ce *domainerr.ConflictError
	if errors.As(writeErr("", err), &ce) {
		return ce.Error()
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}
