package webhook

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/fieldpath"
)

// MaxSensitive bounds a webhook's sensitive fields, and its sensitive headers.
const MaxSensitive = 32

// Sensitive marks what of a webhook's requests must not be stored in clear: payload fields (field
// paths, fieldpath syntax) and kept sender headers. The activity log keeps each of them as a keyed
// hash ("hmac-sha256:<32 hex digits>", HMAC-SHA256 under a key of the project's, so that equal values
// have equal hashes and support can still match them), and so do the attributes mapped from them, in
// the activity log and the event history; the fired event gets the mapped value as it is.
type Sensitive struct {
	Fields  []string `json:"fields"`
	Headers []string `json:"headers"`
}

// Empty reports whether nothing is marked.
func (s Sensitive) Empty() bool { return len(s.Fields) == 0 && len(s.Headers) == 0 }

// normalize canonicalises the paths and header names in place and reports what is wrong.
func (s *Sensitive) normalize(e *domainerr.ValidationError) {
	if s.Fields == nil {
		s.Fields = []string{}
	}
	if s.Headers == nil {
		s.Headers = []string{}
	}
	if len(s.Fields) > MaxSensitive {
		e.Add("sensitive.fields", "%d fields; at most %d", len(s.Fields), MaxSensitive)
	}
	if len(s.Headers) > MaxSensitive {
		e.Add("sensitive.headers", "%d headers; at most %d", len(s.Headers), MaxSensitive)
	}
	for i, f := range s.Fields {
		p, err := fieldpath.Parse(f)
		if err != nil {
			e.Add("sensitive.fields["+strconv.Itoa(i)+"]", "%v", err)
			continue
		}
		s.Fields[i] = p.String()
	}
	for i, h := range s.Headers {
		if h == "" || len(h) > 100 || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' }) {
			e.Add("sensitive.headers["+strconv.Itoa(i)+"]", "%q is not a header name", h)
			continue
		}
		s.Headers[i] = textproto.CanonicalMIMEHeaderKey(h)
	}
}

// sensitiveOf is what webhooks.sensitive stores of s (nil: nothing marked).
func sensitiveOf(s *Sensitive) Sensitive {
	if s == nil {
		return Sensitive{Fields: []string{}, Headers: []string{}}
	}
	return Sensitive{Fields: stringsOrEmpty(s.Fields), Headers: stringsOrEmpty(s.Headers)}
}

// saveSensitive makes sure the project has a masking key before a webhook marks anything sensitive.
func (s *Store) saveSensitive(ctx context.Context, tx pgx.Tx, projectID int64, sens *Sensitive) error {
	if sens == nil || sens.Empty() {
		return nil
	}
	return s.ensureMaskKey(ctx, tx, projectID)
}

// MaskKeySize is the size of a project's masking key.
const MaskKeySize = 32

// MaskAAD is the additional data a project's masking key is sealed with.
func MaskAAD(projectID int64) []byte {
	return []byte("mask:project:" + strconv.FormatInt(projectID, 10))
}

// ensureMaskKey gives the project a masking key if it has none, inside tx.
func (s *Store) ensureMaskKey(ctx context.Context, tx pgx.Tx, projectID int64) error {
	key := make([]byte, MaskKeySize)
	_, _ = rand.Read(key)
	if _, err := tx.Exec(ctx, `UPDATE projects SET mask_key_ciphertext = $2 WHERE id = $1 AND mask_key_ciphertext IS NULL`,
		projectID, s.sealer.Seal(key, MaskAAD(projectID))); err != nil {
		return fmt.Errorf("masking key of project %d: %w", projectID, err)
	}
	return nil
}

// Mask is what the data path needs to mask a webhook's stored copies: the sensitive paths and header
// names (as saved) and the project's key.
type Mask struct {
	Fields  []fieldpath.Path
	Headers []string
	Key     []byte
}

// Active reports whether anything is masked.
func (m *Mask) Active() bool { return len(m.Key) > 0 && (len(m.Fields) > 0 || len(m.Headers) > 0) }

// setMask builds h.Mask from the stored settings and the project's sealed key.
func (s *Store) setMask(h *Hook, sens Sensitive, sealedKey []byte) error {
	if sens.Empty() {
		return nil
	}
	if sealedKey == nil {
		return fmt.Errorf("sensitive fields are set but project %d has no masking key", h.ProjectID)
	}
	key, err := s.sealer.Open(sealedKey, MaskAAD(h.ProjectID))
	if err != nil {
		return fmt.Errorf("masking key of project %d: %w", h.ProjectID, err)
	}
	m := Mask{Key: key, Headers: sens.Headers}
	for _, f := range sens.Fields {
		p, err := fieldpath.Parse(f)
		if err != nil {
			return fmt.Errorf("sensitive field %q: %w", f, err)
		}
		m.Fields = append(m.Fields, p)
	}
	h.Mask = m
	return nil
}
