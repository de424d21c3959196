package directory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/phone"
)

// Created is what Create (or Plan) made of identifiers the directory did not know.
type Created struct {
	// Subjects are the subjects of the values, keyed by the value as given (as Resolve's map): read
	// back from PostgreSQL after the insert (Create), or as the insert would make them (Plan).
	Subjects map[string]Subject
	// New are the values whose subject this call inserted (Create) or would insert (Plan), one per
	// subject: of two spellings of one address, the first in sort order. A value whose subject a
	// concurrent call inserted first is in Subjects but not in New.
	New map[string]bool
	// Refused are the values no subject can be made of, with why: an invalid e-mail address, a phone
	// number that does not normalise, an identifier too long for a user id.
	Refused map[string]string
	// Set are the e-mail and phone (normalised) the user of each value in New was (Create) or would
	// be (Plan) inserted with, for the values that had any.
	Set map[string]Contact
	// Notes say, per value, what of its Contact was left out and why (an invalid address, a number
	// that does not normalise, an e-mail or phone another user already has). Never an error.
	Notes map[string][]string
}

// Contact is what a created user gets besides its identifier: an e-mail address and a phone number, as
// read from the payload (Create validates and normalises them; empty: none). A user created from an
// e-mail gets only Phone, one from a phone only Email; a device neither.
type Contact struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Prefixes of the user ids made for users created from an e-mail address or a phone number.
const (
	CreatedEmailPrefix = "email:"
	CreatedPhonePrefix = "phone:"
)

// newSubject is the row made of value: a user (user_id; e-mail and phone with an id derived from
// them, so that two creations of the same person make the same row) or an anonymous device (hwid).
// region reads phone numbers without a country code.
type newSubject struct {
	userID, email, phone, hwid string
	// contactEmail, contactPhone: email, phone came from the Contact, not the identifier.
	contactEmail, contactPhone bool
}

// addContact sets the user's e-mail and phone from c, those the identifier did not set, when valid;
// note says why one is left out.
func (n *newSubject) addContact(kind identify.Kind, c Contact, region string, note func(string)) {
	if e := c.Email; e != "" && kind != identify.ByEmail {
		switch {
		case !utf8.ValidString(e):
			note("e-mail left out: not valid UTF-8")
		case !ValidEmail(NormalizeEmail(e)):
			note("e-mail left out: not a valid email address")
		default:
			n.email, n.contactEmail = NormalizeEmail(e), true
		}
	}
	if p := c.Phone; p != "" && kind != identify.ByPhone {
		if e164, err := phone.Normalize(p, region); err != nil {
			note(fmt.Sprintf("phone left out: %v", err))
		} else {
			n.phone, n.contactPhone = e164, true
		}
	}
}

// contact is what of the row came from its Contact.
func (n newSubject) contact() Contact {
	var c Contact
	if n.contactEmail {
		c.Email = n.email
	}
	if n.contactPhone {
		c.Phone = n.phone
	}
	return c
}

func makeSubject(kind identify.Kind, value, region string) (newSubject, error) {
	var v domainerr.ValidationError
	var n newSubject
	switch kind {
	case identify.ByUserID:
		n.userID = value
		checkID(&v, "user_id", value, MaxUserIDLen)
	case identify.ByEmail:
		if !utf8.ValidString(value) {
			return n, domainerr.Invalid("email", "not valid UTF-8")
		}
		n.email = NormalizeEmail(value)
		if !ValidEmail(n.email) {
			return n, domainerr.Invalid("email", "not a valid email address")
		}
		// Lower-cased: the unique index compares e-mails ignoring case, so two spellings of one
		// address must make one id.
		n.userID = CreatedEmailPrefix + strings.ToLower(n.email)
		checkID(&v, "user_id", n.userID, MaxUserIDLen)
	case identify.ByPhone:
		p, err := phone.Normalize(value, region)
		if err != nil {
			return n, domainerr.Invalid("phone", "%v", err)
		}
		n.phone, n.userID = p, CreatedPhonePrefix+p
	case identify.ByHWID:
		n.hwid = value
		checkID(&v, "hwid", value, MaxHWIDLen)
	default:
		return n, domainerr.Invalid("kind", "%q is not one of user_id, email, phone, hwid", kind)
	}
	return n, v.Err()
}

// key is the row's key: the hwid of a device, the user id of a user.
func (n newSubject) key() string {
	if n.hwid != "" {
		return n.hwid
	}
	return n.userID
}

func (n newSubject) subject() Subject {
	if n.hwid != "" {
		return Subject{HWID: n.hwid, HWIDs: []string{n.hwid}}
	}
	return Subject{UserID: n.userID, HWIDs: []string{}}
}

// Statements of Create: one round trip per call, whatever the number of values. DO NOTHING on any
// conflict — the primary key, or users_email / users_phone — is what makes concurrent creations of
// the same subject converge: the unique indexes decide, and the loser reads the winner's row.
const (
	createUsersSQL = `
INSERT INTO users (project_id, user_id, email, phone)
SELECT $1, v.user_id, v.email, v.phone FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS v (user_id, email, phone, n)
ORDER BY v.n
ON CONFLICT DO NOTHING
RETURNING user_id`
	createDevicesSQL = `
INSERT INTO devices (project_id, hwid, user_id, platform)
SELECT $1, v.hwid, '', '' FROM unnest($2::text[]) WITH ORDINALITY AS v (hwid, n)
ORDER BY v.n
ON CONFLICT DO NOTHING
RETURNING hwid`
)

// Plan is Create without writing: the subjects the values would get, each New (once), with the
// contacts they would be set. A dry run uses it. The values are those a lookup did not find; Plan does
// not look them up again, nor check whether another user has a contact's e-mail or phone.
func (r *Resolver) Plan(ctx context.Context, projectID int64, kind identify.Kind, values []string, contacts map[string]Contact) (Created, error) {
	out, rows, err := r.prepare(ctx, projectID, kind, values, contacts)
	if err != nil {
		return Created{}, err
	}
	keys := make([]string, 0, len(rows))
	for v := range rows {
		keys = append(keys, v)
	}
	slices.Sort(keys)
	seen := make(map[string]bool, len(keys))
	for _, v := range keys {
		n := rows[v]
		out.Subjects[v] = n.subject()
		if !seen[n.key()] {
			seen[n.key()] = true
			out.New[v] = true
			if c := n.contact(); c != (Contact{}) {
				out.Set[v] = c
			}
		}
	}
	return out, nil
}

// Create creates a subject for each value of one kind in the project (values the caller's lookup did
// not find): a user with user id value; a user with that e-mail, or phone in E.164, whose user id is
// CreatedEmailPrefix + the e-mail lower-cased, or CreatedPhonePrefix + the E.164 number; for a hwid
// an anonymous device (no user, no platform). A user also gets the valid e-mail and phone of its
// value's contacts (nil: none); an invalid one is left out with a note (Created.Notes). Of several
// values that make one row, the first in sort order gives its contact. Nothing else is set, and an
// existing user is never changed. It inserts every value in one
// statement that skips what exists (so a replay, or a concurrent Create of the same subject, inserts
// nothing), then reads all the values back from PostgreSQL (ResolveFresh, which also replaces any
// cached "not found"), so the subjects are the directory's whoever inserted them.
//
// An error means PostgreSQL could not be asked (or refused the project: it does not exist); retry.
// Values that cannot make a subject are in Created.Refused, not an error.
func (r *Resolver) Create(ctx context.Context, projectID int64, kind identify.Kind, values []string, contacts map[string]Contact) (Created, error) {
	out, rows, err := r.prepare(ctx, projectID, kind, values, contacts)
	if err != nil || len(rows) == 0 {
		return out, err
	}
	keys := make([]string, 0, len(rows))
	for v := range rows {
		keys = append(keys, v)
	}
	slices.Sort(keys)
	// Several values may make one row (two spellings of an e-mail or a phone number): it is inserted
	// once, and New names the first of them.
	byKey := make(map[string][]string, len(keys))
	var made []newSubject
	for _, v := range keys {
		n := rows[v]
		k := n.key()
		if _, dup := byKey[k]; !dup {
			made = append(made, n)
		}
		byKey[k] = append(byKey[k], v)
	}
	// Inserted in key order, so that concurrent calls with overlapping rows wait on each other's
	// rows in one order rather than deadlock (which PostgreSQL would break, and the caller retry).
	slices.SortFunc(made, func(a, b newSubject) int { return strings.Compare(a.key(), b.key()) })
	ids, emails, phones := make([]string, len(made)), make([]string, len(made)), make([]string, len(made))
	for i, n := range made {
		ids[i], emails[i], phones[i] = n.key(), n.email, n.phone
	}
	inserted, err := r.insert(ctx, projectID, kind, ids, emails, phones)
	if err != nil {
		return Created{}, err
	}
	found, err := r.ResolveFresh(ctx, projectID, kind, keys)
	if err != nil {
		return Created{}, err
	}
	// A row with a contact that is not there now was skipped for its e-mail or phone (another user
	// has it: users_email, users_phone), not for its key: it is inserted again without them. A row
	// skipped for its key was inserted by someone else, and is found.
	var retry []newSubject
	for _, n := range made {
		if _, ok := found[byKey[n.key()][0]]; !ok && (n.contactEmail || n.contactPhone) {
			retry = append(retry, n)
		}
	}
	if len(retry) > 0 {
		ids, emails, phones = ids[:0], emails[:0], phones[:0]
		for _, n := range retry {
			v := byKey[n.key()][0]
			out.Notes[v] = append(out.Notes[v], "the e-mail and phone read from the payload were left out: another user has one of them")
			if n.contactEmail {
				n.email = ""
			}
			if n.contactPhone {
				n.phone = ""
			}
			ids, emails, phones = append(ids, n.key()), append(emails, n.email), append(phones, n.phone)
		}
		more, err := r.insert(ctx, projectID, kind, ids, emails, phones)
		if err != nil {
			return Created{}, err
		}
		inserted = append(inserted, more...)
		again, err := r.ResolveFresh(ctx, projectID, kind, keys)
		if err != nil {
			return Created{}, err
		}
		found = again
	}
	byRow := make(map[string]newSubject, len(made))
	for _, n := range made {
		byRow[n.key()] = n
	}
	for _, k := range inserted {
		v := byKey[k][0] // one row, one value that made it (the first in order)
		out.New[v] = true
		if c := byRow[k].contact(); c != (Contact{}) && !slices.ContainsFunc(retry, func(n newSubject) bool { return n.key() == k }) {
			out.Set[v] = c
		}
	}
	if len(inserted) > 0 {
		r.m.created.WithLabelValues(string(kind)).Add(float64(len(inserted)))
	}
	for v, s := range found {
		out.Subjects[v] = s
	}
	return out, nil
}

// insert runs the insert of Create, answering the keys it inserted.
func (r *Resolver) insert(ctx context.Context, projectID int64, kind identify.Kind, ids, emails, phones []string) ([]string, error) {
	qctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
	defer cancel()
	var inserted []string
	var err error
	if kind == identify.ByHWID {
		inserted, err = collectStrings(r.pool.Query(qctx, createDevicesSQL, projectID, ids))
	} else {
		inserted, err = collectStrings(r.pool.Query(qctx, createUsersSQL, projectID, ids, emails, phones))
	}
	if err != nil {
		return nil, writeErr(fmt.Sprintf("create %d %s subjects in project %d", len(ids), kind, projectID), err)
	}
	return inserted, nil
}

// prepare makes the rows of the values, refusing those no subject can be made of, and adds their
// contacts' valid e-mail and phone (noting what it leaves out).
func (r *Resolver) prepare(ctx context.Context, projectID int64, kind identify.Kind, values []string, contacts map[string]Contact) (Created, map[string]newSubject, error) {
	out := Created{Subjects: map[string]Subject{}, New: map[string]bool{}, Refused: map[string]string{},
		Set: map[string]Contact{}, Notes: map[string][]string{}}
	if _, ok := r.m.byKind[kind]; !ok {
		return out, nil, domainerr.Invalid("kind", "%q is not one of user_id, email, phone, hwid", kind)
	}
	region := r.cfg.DefaultRegion
	needRegion := kind == identify.ByPhone
	if kind != identify.ByHWID {
		for _, v := range values {
			if contacts[v].Phone != "" {
				needRegion = true
				break
			}
		}
	}
	if needRegion {
		var err error
		if region, err = r.phoneRegion(ctx, projectID); err != nil {
			return out, nil, err
		}
	}
	rows := make(map[string]newSubject, len(values))
	for _, v := range values {
		if v == "" {
			continue
		}
		n, err := makeSubject(kind, v, region)
		if err != nil {
			out.Refused[v] = err.Error()
			continue
		}
		if c, ok := contacts[v]; ok && kind != identify.ByHWID {
			n.addContact(kind, c, region, func(note string) { out.Notes[v] = append(out.Notes[v], note) })
		}
		rows[v] = n
	}
	return out, rows, nil
}

func collectStrings(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
