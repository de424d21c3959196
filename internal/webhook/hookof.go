package webhook

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/bytedance/sonic"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/secret"
)

// HookOf returns the Hook that Hook and Hooks read for a webhook saved with in (not validated: it must
// be a config Create accepts), firing evs[i] from route i, without PostgreSQL: the columns Create would
// store are handed to the same code that reads a row (scanHook), copied as the driver copies them, so
// that the Hook is laid out in memory as a loaded one is. It is for tests and measurements that need
// many data-path Hooks (what a process holds at 100,000 webhooks). A secret is made for the sender's
// verification and sealed, as is a masking key when in marks fields sensitive, with s's sealer.
func (s *Store) HookOf(publicID string, projectID, version int64, in WebhookInput, evs []*Event) (*Hook, error) {
	conn, snd := in.connection()
	var ve domainerr.ValidationError
	in.normalizeRoutes(&ve)
	if err := ve.Err(); err != nil {
		return nil, err
	}
	if len(evs) != len(in.Routes) {
		return nil, fmt.Errorf("hook of %s: %d events for %d routes", publicID, len(evs), len(in.Routes))
	}
	routes := append([]Route(nil), in.Routes...)
	setEventIDs(routes, evs)
	if snd.Handshake == HandshakeMeta && conn.HandshakeToken == "" {
		conn.HandshakeToken = secret.NewPublicID()
	}
	sec := in.Secret
	if sec == "" {
		sec = secret.NewWebhookSecret()
	}
	digest := secretDigest(conn.Verification, sec)
	var sealedMaskKey []byte
	if sens := sensitiveOf(in.Sensitive); !sens.Empty() {
		sealedMaskKey = s.sealer.Seal(make([]byte, MaskKeySize), MaskAAD(projectID))
	}
	var more []routeEvent
	for _, ev := range evs[1:] {
		more = append(more, routeEvent{ID: ev.ID, Name: ev.Name, Attributes: ev.Attributes})
	}
	r := &routes[0]
	js := func(v any) []byte {
		b, err := sonic.ConfigStd.Marshal(v)
		if err != nil {
			panic(err) // plain structs
		}
		return b
	}
	var none *time.Time
	row := fakeRow{publicID, projectID, true, version, digest[:], []byte(nil), none, time.Time{},
		evs[0].Name, js(evs[0].Attributes), r.Identify.Kind, r.Identify.Field, js(mappingsOrEmpty(r.Mappings)),
		conn.Sender, js(conn.Verification), js(stringsOrEmpty(conn.SenderHeaders)), js(conn.Dedup), conn.HandshakeToken,
		s.sealer.Seal([]byte(sec), []byte(publicID)), []byte(nil), in.TimeZone,
		r.Name, r.When, r.ForEach, r.UnknownUser, r.HoldFor, r.CreateEmail, r.CreatePhone, js(storedRoutes(routes)),
		js(sensitiveOf(in.Sensitive)), sealedMaskKey, js(more)}
	return s.scanHook(row)
}

// fakeRow is a row of hookColumns for HookOf: Scan copies each column into its destination, strings
// and bytes into memory of their own, as pgx does.
type fakeRow []any

func (r fakeRow) Scan(dst ...any) error {
	if len(dst) != len(r) {
		return fmt.Errorf("scan: %d destinations for %d columns", len(dst), len(r))
	}
	for i, v := range r {
		ok := true
		switch d := dst[i].(type) {
		case *string:
			var s string
			if s, ok = v.(string); ok {
				*d = strings.Clone(s)
			}
		case *identify.Kind:
			var k identify.Kind
			if k, ok = v.(identify.Kind); ok {
				*d = identify.Kind(strings.Clone(string(k)))
			}
		case *int64:
			*d, ok = v.(int64)
		case *bool:
			*d, ok = v.(bool)
		case *time.Time:
			*d, ok = v.(time.Time)
		case **time.Time:
			var t *time.Time
			if t, ok = v.(*time.Time); ok && t != nil {
				c := *t
				*d = &c
			} else {
				*d = nil
			}
		case *[]byte:
			var b []byte
			if b, ok = v.([]byte); ok {
				*d = bytes.Clone(b)
			}
		default:
			return fmt.Errorf("scan: column %d: destination %T", i, dst[i])
		}
		if !ok {
			return fmt.Errorf("scan: column %d: %T into %T", i, v, dst[i])
		}
	}
	return nil
}
