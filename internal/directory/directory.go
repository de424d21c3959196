// Package directory is a project's user directory: users (user id, email, phone) and their devices
// (hwid → user id, platform), kept in PostgreSQL. The Store serves the admin API (upsert, get, delete,
// lookups, streamed NDJSON import); the Resolver serves the data path, turning a batch of identifiers into
// subjects with one query per call and a push-invalidated ristretto cache in front, so that the pipeline
// neither hammers PostgreSQL nor stops when it is briefly unreachable.
//
// Every method takes the caller's project id and sees only that project's rows: another project's user
// answers domainerr.ErrNotFound, exactly like a user that does not exist. Failures are domainerr's
// kinds: a *domainerr.ValidationError naming every bad field, a *domainerr.ConflictError for an email or
// phone number of another user, an *UnavailableError when the Resolver cannot reach PostgreSQL.
//
// Identifiers are matched the way senders spell them: emails are stored as given but in Unicode NFC
// (NormalizeEmail, applied on write and on every lookup, so "é" typed as e + U+0301 is the same
// address) and compared case-insensitively through PostgreSQL's lower(), the expression of the unique
// index, on both sides of the comparison; phone numbers are normalised to E.164 both when written and when looked up, so
// "+1 (555) 123-4567", "001-555-123-4567" and "+15551234567" are one number.
//
// The directory's SQL reads and writes its own tables only, users and devices. It depends on projects
// in two ways, both one way: its rows reference projects(id) by foreign key (so a write into a project
// that does not exist is domainerr.ErrNotFound, and a deleted project takes its users and devices with
// it), and a project's phone region, a projects column, comes through PhoneRegions (the project store),
// whose changes a trigger on projects announces as "project:<id>" to the Resolver. Package project does
// not depend on the directory.
package directory

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/phone"
)

// PhoneRegions tells the directory each project's phone region: *project.Store in production.
type PhoneRegions interface {
	// PhoneRegion returns the project's phone region, an ISO 3166-1 alpha-2 code or "" for none (then
	// Config.DefaultRegion applies), or an error that is domainerr.ErrNotFound when there is no such
	// project.
	PhoneRegion(ctx context.Context, projectID int64) (string, error)
}

// Limits of the directory's fields. Lengths count characters (as PostgreSQL's length() does), not bytes.
// A phone number's is phone.MaxLen.
const (
	MaxUserIDLen   = 256
	MaxHWIDLen     = 256
	MaxEmailLen    = 254 // RFC 5321's path limit less the angle brackets
	MaxPlatformLen = 32
)

// Well-known platforms. Platform is free text of at most MaxPlatformLen characters: these are only the
// spellings the console suggests.
const (
	PlatformIOS     = "ios"
	PlatformAndroid = "android"
	PlatformWeb     = "web"
	PlatformEmail   = "email"
	PlatformSMS     = "sms"
)

// User is one user of a project. Email is stored as given (matched case-insensitively), Phone in E.164;
// either may be empty.
type User struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	Phone     string    `json:"phone"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Device is one device (or browser, or email/SMS channel) of a project. UserID is empty for an
// anonymous device.
type Device struct {
	HWID      string    `json:"hwid"`
	UserID    string    `json:"user_id"`
	Platform  string    `json:"platform"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// UnavailableError lists the values of one Resolve call that could not be answered: PostgreSQL was
// unreachable and nothing was cached for them. They are neither found nor not found.
type UnavailableError struct {
	Values []string
	Err    error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("user directory unavailable for %d values: %v", len(e.Values), e.Err)
}

// Is makes errors.Is(err, domainerr.ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == domainerr.ErrUnavailable }

func (e *UnavailableError) Unwrap() error { return e.Err }

// checkID validates a user id or hwid: 1..max characters of valid UTF-8 without NUL (which PostgreSQL
// text cannot hold).
func checkID(v *domainerr.ValidationError, field, s string, max int) {
	switch {
	case s == "":
		v.Add(field, "must not be empty")
	case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
		v.Add(field, "must be valid UTF-8 without NUL")
	case utf8.RuneCountInString(s) > max:
		v.Add(field, "must be at most %d characters", max)
	}
}

// ValidEmail reports whether s is a bare address ("jane@example.com"): what net/mail accepts, without a
// display name, angle brackets or surrounding spaces, at most MaxEmailLen characters.
func ValidEmail(s string) bool {
	if s == "" || len(s) > MaxEmailLen || !utf8.ValidString(s) {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1
}

// NormalizeEmail is an email as the directory stores and matches it: in Unicode NFC, so that a
// sender's decomposed "é" (e + U+0301) and a stored composed one are one address. Case is kept (the
// stored address is shown as given) and folded by the queries, with lower() on both sides. A value
// already in NFC, as nearly every address is, is returned as is without allocating.
func NormalizeEmail(s string) string {
	return norm.NFC.String(s)
}

// normalizeUser validates u and returns it with its email in NFC and its phone in E.164. Email and
// phone may be empty.
func normalizeUser(u User, region string) (User, error) {
	var v domainerr.ValidationError
	checkID(&v, "user_id", u.UserID, MaxUserIDLen)
	if utf8.ValidString(u.Email) {
		u.Email = NormalizeEmail(u.Email)
	}
	if u.Email != "" && !ValidEmail(u.Email) {
		v.Add("email", "not a valid email address")
	}
	if u.Phone != "" {
		p, err := phone.Normalize(u.Phone, region)
		if err != nil {
			v.Add("phone", "%v", err)
		}
		u.Phone = p
	}
	return u, v.Err()
}

// validateDevice validates d. UserID may be empty (an anonymous device); it need not name an existing
// user: devices often arrive before their user's profile does.
func validateDevice(d Device) error {
	var v domainerr.ValidationError
	checkID(&v, "hwid", d.HWID, MaxHWIDLen)
	if d.UserID != "" {
		checkID(&v, "user_id", d.UserID, MaxUserIDLen)
	}
	switch {
	case !utf8.ValidString(d.Platform):
		v.Add("platform", "must be valid UTF-8")
	case utf8.RuneCountInString(d.Platform) > MaxPlatformLen:
		v.Add("platform", "must be at most %d characters", MaxPlatformLen)
	case strings.IndexFunc(d.Platform, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		v.Add("platform", "must be printable text")
	}
	return v.Err()
}
