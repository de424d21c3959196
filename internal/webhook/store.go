package webhook

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bytedance/sonic"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/fieldpath"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/jsonvalid"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/verify"
)

// Limits of the store's operations.
const (
	// MaxListLimit bounds one page of List; DefaultListLimit is used when the caller asks for none.
	MaxListLimit     = 200
	DefaultListLimit = 50
	// MaxRotationGrace bounds how long a rotated-out secret keeps working.
	MaxRotationGrace = 7 * 24 * time.Hour
	// MaxSearchLen bounds List's name search.
	MaxSearchLen = MaxWebhookNameLen
)

// Store keeps events and webhooks in PostgreSQL. Every method is scoped to the caller's project: a row
// of another project answers domainerr.ErrNotFound, exactly like a row that does not exist.
type Store struct {
	db     *pgxpool.Pool
	sealer *secret.Sealer
	// noVerifiers: the Hooks read have no verifiers (WithoutVerifiers).
	noVerifiers bool
}

// NewStore returns a store on pool; sealer encrypts webhook secrets at rest under the master key.
func NewStore(pool *pgxpool.Pool, sealer *secret.Sealer) *Store {
	return &Store{db: pool, sealer: sealer}
}

// WithoutVerifiers returns a view of s whose Hook, Hooks and HooksByID read Hooks without verifiers, for
// a process that never verifies a request (the pipeline: the ingestor has). The secrets are then not
// decrypted, and each Hook is smaller by its verifiers: an HMAC webhook's two hold keyed hash states and
// their scratch, a few KiB, all of it kept for every webhook the process meets. Such a Hook's Verify
// refuses every request (verify.CredentialsMismatch) rather than answer without its verifier.
func (s *Store) WithoutVerifiers() *Store {
	v := *s
	v.noVerifiers = true
	return &v
}

// Webhook is the admin view of a webhook. Its secret is never part of it: see Create, RotateSecret and
// Credentials.
type Webhook struct {
	// ID is the public id, the {id} of the webhook's URL.
	ID        string    `json:"id"`
	ProjectID int64     `json:"-"`
	Name      string    `json:"name"`
	EventID   int64     `json:"event_id"`
	EventName string    `json:"event"`
	Identify  Identify  `json:"identify"`
	Mappings  []Mapping `json:"mappings"`
	// UnknownUser is the first route's policy for an unknown user (Route.UnknownUser).
	UnknownUser string `json:"unknown_user,omitempty"`
	// HoldFor is the first route's hold time (Route.HoldFor).
	HoldFor string `json:"hold_for,omitempty"`
	// CreateFrom is the first route's (Route.CreateFrom).
	CreateFrom
	// Routes are every route, in order (see Route); event, identify, mappings and unknown_user above
	// are the first one's, for clients of the single-mapping API.
	Routes        []Route `json:"routes"`
	Enabled       bool    `json:"enabled"`
	SamplePayload string  `json:"sample_payload"`
	// TimeZone is the IANA time zone in which dates without an offset are read ("UTC" by default).
	TimeZone string `json:"time_zone"`
	// Sender is the sender the webhook is connected as (LookupSender; "inlet" is the Bearer secret).
	Sender string `json:"sender"`
	// Verification is how its requests prove their sender. The secret is not part of it: see
	// Credentials.
	Verification verify.Config `json:"verification"`
	// SenderHeaders are the headers the user keeps with each record, besides the sender's own
	// (KeptHeaders lists them all).
	SenderHeaders []string `json:"sender_headers"`
	// KeptHeaders is every header kept with each record: the sender's, SenderHeaders and the dedup's.
	KeptHeaders []string `json:"kept_headers"`
	// Dedup is where the sender's delivery id is.
	Dedup Dedup `json:"dedup"`
	// Handshake is the challenge the edge answers for this sender, if any.
	Handshake Handshake `json:"handshake,omitempty"`
	// Sensitive are the payload fields and sender headers stored masked (see Sensitive).
	Sensitive Sensitive `json:"sensitive"`
	// Version grows by one with every change (edit, enable/disable, secret rotation); pass it back as
	// expectedVersion to detect concurrent edits.
	Version         int64     `json:"version"`
	SecretRotatedAt time.Time `json:"secret_rotated_at"`
	// PreviousSecretExpiresAt is when the secret replaced by the last rotation stops working; nil when
	// there is no grace period running or it has ended.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// WebhookInput is the body of a webhook create. The event is named by EventID or by EventName (if both
// are given they must name the same event). Field paths use the syntax of package fieldpath and are
// stored in its canonical form. SamplePayload is optional; when given it must be one JSON value of at
// most MaxSamplePayload bytes that the edge would accept as a body (package jsonvalid), and the
// mappings must fit it (see checkSample). Names are 1..MaxWebhookNameLen characters, unique among the
// project's live webhooks ignoring case. TimeZone is an IANA time zone name (default "UTC") in which
// dates without an offset are read.
//
// The connection: Sender picks a catalog entry (default "inlet", the Bearer secret) whose verification
// and dedup apply unless Verification or Dedup are given. Secret is the signing secret the provider
// shows, required in HMAC modes; Inlet makes a Bearer secret, and a Basic password or URL token when
// none is given. HandshakeToken is Meta's verify token (made when empty).
type WebhookInput struct {
	Name      string    `json:"name"`
	EventID   int64     `json:"event_id,omitempty"`
	EventName string    `json:"event,omitempty"`
	Identify  Identify  `json:"identify"`
	Mappings  []Mapping `json:"mappings"`
	// UnknownUser is the single route's policy for an unknown user (Route.UnknownUser).
	UnknownUser string `json:"unknown_user,omitempty"`
	// HoldFor is the single route's hold time (Route.HoldFor).
	HoldFor string `json:"hold_for,omitempty"`
	// CreateFrom is the single route's (Route.CreateFrom).
	CreateFrom
	// Routes replaces event, identify, mappings and unknown_user (give one or the other) with one or
	// more routes.
	Routes         []Route        `json:"routes,omitempty"`
	SamplePayload  string         `json:"sample_payload,omitempty"`
	TimeZone       string         `json:"time_zone,omitempty"`
	Sender         string         `json:"sender,omitempty"`
	Verification   *verify.Config `json:"verification,omitempty"`
	Secret         string         `json:"secret,omitempty"`
	SenderHeaders  []string       `json:"sender_headers,omitempty"`
	Dedup          *Dedup         `json:"dedup,omitempty"`
	HandshakeToken string         `json:"handshake_token,omitempty"`
	Sensitive      *Sensitive     `json:"sensitive,omitempty"`
}

// WebhookPatch is the body of a webhook edit: nil fields stay as they are. Changing the event keeps the
// mappings unless they are given too, so they must fit the new event. Mappings, when given, replace the
// whole list.
//
// Changing the sender applies its verification and dedup unless those are given too. A change of
// verification (mode or scheme) replaces the secret at once, without a grace period: the new one is
// Secret (required in HMAC modes) or one Inlet makes. Secret alone replaces the secret in the same
// way; RotateSecret keeps the old one working for a while.
type WebhookPatch struct {
	Name      *string    `json:"name,omitempty"`
	EventID   *int64     `json:"event_id,omitempty"`
	EventName *string    `json:"event,omitempty"`
	Identify  *Identify  `json:"identify,omitempty"`
	Mappings  *[]Mapping `json:"mappings,omitempty"`
	// UnknownUser changes the first route's policy for an unknown user (Route.UnknownUser).
	UnknownUser *string `json:"unknown_user,omitempty"`
	// HoldFor changes the first route's hold time (Route.HoldFor).
	HoldFor *string `json:"hold_for,omitempty"`
	// CreateEmail and CreatePhone change the first route's (Route.CreateFrom).
	CreateEmail *string `json:"create_email,omitempty"`
	CreatePhone *string `json:"create_phone,omitempty"`
	// Routes, when given, replace every route; event, identify, mappings and unknown_user change the
	// first route.
	Routes         *[]Route       `json:"routes,omitempty"`
	SamplePayload  *string        `json:"sample_payload,omitempty"`
	TimeZone       *string        `json:"time_zone,omitempty"`
	Sender         *string        `json:"sender,omitempty"`
	Verification   *verify.Config `json:"verification,omitempty"`
	Secret         *string        `json:"secret,omitempty"`
	SenderHeaders  *[]string      `json:"sender_headers,omitempty"`
	Dedup          *Dedup         `json:"dedup,omitempty"`
	HandshakeToken *string        `json:"handshake_token,omitempty"`
	Sensitive      *Sensitive     `json:"sensitive,omitempty"`
}

// Credentials is what a sender needs: the webhook's id, its mode and its secret in clear.
type Credentials struct {
	ID     string      `json:"id"`
	Sender string      `json:"sender"`
	Mode   verify.Mode `json:"mode"`
	// Secret is the current secret: "whsec_…" in bearer mode, the Basic password, the URL token, or
	// the signing secret pasted from the provider.
	Secret string `json:"secret"`
	// Authorization is the header value the sender must present, exactly: "Bearer whsec_…" or
	// "Basic …"; empty in token and HMAC modes.
	Authorization string `json:"authorization,omitempty"`
	// Username is the Basic user; QueryParam the token's query parameter.
	Username   string `json:"username,omitempty"`
	QueryParam string `json:"query_param,omitempty"`
	// HandshakeToken is Meta's verify token.
	HandshakeToken string `json:"handshake_token,omitempty"`
	// SamplePayload is the webhook's sample, for the example request.
	SamplePayload string `json:"sample_payload"`
}

// ListFilter selects and orders a page of webhooks.
type ListFilter struct {
	// Search keeps webhooks whose name contains it, ignoring case. At most MaxSearchLen characters.
	Search string
	// Status is "" (all), "enabled" or "disabled".
	Status string
	// Sort is "updated_at" (default), "created_at" or "name"; ties are broken by id.
	Sort string
	// Desc reverses the order. The console's default is updated_at, newest first.
	Desc bool
	// Limit is the page size, 1..MaxListLimit; 0 means DefaultListLimit.
	Limit int
	// Offset skips that many matching webhooks.
	Offset int
}

// Page is one page of List.
type Page struct {
	Webhooks []Webhook `json:"webhooks"`
	// Total counts every webhook that matches the filter, on all pages.
	Total int `json:"total"`
}

const webhookColumns = `w.public_id, w.project_id, w.name, w.event_id, e.name, w.identify_kind, w.identify_field,
	w.mappings, w.enabled, w.sample_payload, w.version, w.secret_rotated_at,
	CASE WHEN w.prev_secret_expires_at > now() THEN w.prev_secret_expires_at END, w.created_at, w.updated_at,
	w.sender, w.verification, w.sender_headers, w.dedup, w.handshake_token, w.time_zone,
	w.route_name, w.route_when, w.route_for_each, w.route_unknown_user, w.route_hold_for, w.route_create_email, w.route_create_phone, w.routes, w.sensitive, ` + routeEvents

// routeEvents selects the events of a webhook's further routes (webhooks.routes), as a JSON array of
// {id, name, attributes}: one query reads a webhook with all its routes.
const routeEvents = `(SELECT coalesce(jsonb_agg(jsonb_build_object('id', re.id, 'name', re.name, 'attributes', re.attributes)), '[]'::jsonb)
	FROM events re WHERE re.id IN (SELECT (r->>'event_id')::bigint FROM jsonb_array_elements(w.routes) r))`

// routeEvent is an element of routeEvents.
type routeEvent struct {
	ID         int64       `json:"id"`
	Name       string      `json:"name"`
	Attributes []Attribute `json:"attributes"`
}

// storedRoute is a further route as webhooks.routes holds it: its event by id only.
type storedRoute struct {
	Name     string    `json:"name,omitempty"`
	When     string    `json:"when,omitempty"`
	ForEach  string    `json:"for_each,omitempty"`
	EventID  int64     `json:"event_id"`
	Identify Identify  `json:"identify"`
	Mappings []Mapping `json:"mappings"`
	// UnknownUser is omitted when it is the default (fail), as in the routes saved before it.
	UnknownUser string `json:"unknown_user,omitempty"`
	HoldFor     string `json:"hold_for,omitempty"`
	CreateFrom
}

// storedRoutes is what webhooks.routes holds of routes (the routes after the first).
func storedRoutes(routes []Route) []storedRoute {
	out := make([]storedRoute, 0, max(len(routes)-1, 0))
	for _, r := range routes[min(1, len(routes)):] {
		out = append(out, storedRoute{Name: r.Name, When: r.When, ForEach: r.ForEach, EventID: r.EventID,
			Identify: r.Identify, Mappings: mappingsOrEmpty(r.Mappings), UnknownUser: r.UnknownUser, HoldFor: r.HoldFor, CreateFrom: r.CreateFrom})
	}
	return out
}

// eventsByID indexes the events of routeEvents.
func eventsByID(evs []routeEvent) map[int64]*routeEvent {
	m := make(map[int64]*routeEvent, len(evs))
	for i := range evs {
		m[evs[i].ID] = &evs[i]
	}
	return m
}

const webhookFrom = ` FROM webhooks w JOIN events e ON e.id = w.event_id `

func scanWebhook(row pgx.Row) (*Webhook, error) {
	var w Webhook
	var token string
	var first Route
	var more []storedRoute
	var evs []routeEvent
	if err := row.Scan(&w.ID, &w.ProjectID, &w.Name, &w.EventID, &w.EventName, &w.Identify.Kind, &w.Identify.Field,
		&w.Mappings, &w.Enabled, &w.SamplePayload, &w.Version, &w.SecretRotatedAt,
		&w.PreviousSecretExpiresAt, &w.CreatedAt, &w.UpdatedAt,
		&w.Sender, &w.Verification, &w.SenderHeaders, &w.Dedup, &token, &w.TimeZone,
		&first.Name, &first.When, &first.ForEach, &w.UnknownUser, &w.HoldFor, &w.CreateEmail, &w.CreatePhone, &more, &w.Sensitive, &evs); err != nil {
		return nil, err
	}
	if w.Sensitive.Fields == nil {
		w.Sensitive.Fields = []string{}
	}
	if w.Sensitive.Headers == nil {
		w.Sensitive.Headers = []string{}
	}
	if w.Mappings == nil {
		w.Mappings = []Mapping{}
	}
	first.EventID, first.EventName, first.Identify, first.Mappings = w.EventID, w.EventName, w.Identify, w.Mappings
	first.UnknownUser, first.HoldFor, first.CreateFrom = w.UnknownUser, w.HoldFor, w.CreateFrom
	w.Routes = append(make([]Route, 0, 1+len(more)), first)
	byID := eventsByID(evs)
	for _, r := range more {
		rt := Route{Name: r.Name, When: r.When, ForEach: r.ForEach, EventID: r.EventID, Identify: r.Identify,
			Mappings: mappingsOrEmpty(r.Mappings), UnknownUser: r.UnknownUser, HoldFor: r.HoldFor, CreateFrom: r.CreateFrom}
		if ev := byID[r.EventID]; ev != nil {
			rt.EventName = ev.Name
		}
		w.Routes = append(w.Routes, rt)
	}
	if w.Sender == "" {
		w.Sender = SenderInlet
	}
	if w.SenderHeaders == nil {
		w.SenderHeaders = []string{}
	}
	c := w.connection()
	snd, _ := LookupSender(w.Sender)
	w.KeptHeaders = c.keptHeaders(snd)
	if w.KeptHeaders == nil {
		w.KeptHeaders = []string{}
	}
	w.Handshake = snd.Handshake
	return &w, nil
}

// connection is the stored connection of w.
func (w *Webhook) connection() connection {
	return connection{Sender: w.Sender, Verification: w.Verification, SenderHeaders: w.SenderHeaders, Dedup: w.Dedup}
}

// validate checks in and resolves the events of its routes inside tx (locking each event row against
// a concurrent change or delete until tx ends). It canonicalises the field paths in place and leaves
// in.Routes holding every route (the first one from event, identify and mappings when routes are not
// given). With sample, the routes are checked against the sample payload (checkSample; kept are the
// headers kept with each record, whose paths are exempt). All problems are reported at once, with those
// the caller found already in e (the connection's); the returned error is either a
// *domainerr.ValidationError or a database error. The events are in route order.
func (s *Store) validate(ctx context.Context, tx pgx.Tx, projectID int64, in *WebhookInput, sample bool, kept []string, e *domainerr.ValidationError) ([]*Event, error) {
	switch n := utf8.RuneCountInString(in.Name); {
	case !utf8.ValidString(in.Name):
		e.Add("name", "not valid UTF-8")
	case strings.TrimSpace(in.Name) == "":
		e.Add("name", "required")
	case n > MaxWebhookNameLen:
		e.Add("name", "%d characters; at most %d", n, MaxWebhookNameLen)
	case strings.ContainsFunc(in.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		e.Add("name", "must not contain control characters")
	}

	if in.Sensitive != nil {
		in.Sensitive.normalize(e)
	}
	legacy := in.normalizeRoutes(e)
	if len(in.Routes) > MaxRoutes {
		e.Add("routes", "%d routes; at most %d", len(in.Routes), MaxRoutes)
		return nil, e.Err()
	}

	// The sample's own problems are reported after the routes'.
	var sampleErr error
	sampleOK := false
	if len(in.SamplePayload) > MaxSamplePayload {
		sampleErr = fmt.Errorf("%d bytes; at most %d", len(in.SamplePayload), MaxSamplePayload)
	} else if in.SamplePayload != "" {
		// The rule of webhook bodies: a sample the edge would refuse makes an example request that fails.
		if sampleErr = jsonvalid.Validate([]byte(in.SamplePayload), jsonvalid.DefaultDepth); sampleErr == nil {
			sampleOK = true
		}
	}
	var sc *sampleCheck
	if sample && sampleOK {
		sc = newSampleCheck(in.SamplePayload, kept)
	}

	events := make([]*Event, len(in.Routes))
	for i := range in.Routes {
		prefix := fmt.Sprintf("routes[%d].", i)
		if legacy {
			prefix = ""
		}
		ev, err := s.validateRoute(ctx, tx, projectID, &in.Routes[i], prefix, kept, sc, e)
		if err != nil {
			return nil, err
		}
		events[i] = ev
	}
	if in.TimeZone == "" {
		in.TimeZone = DefaultTimeZone
	}
	if _, err := LoadTimeZone(in.TimeZone); err != nil {
		e.Add("time_zone", "%v", err)
	}
	if sampleErr != nil {
		e.Add("sample_payload", "%v", sampleErr)
	}
	return events, e.Err()
}

// normalizeRoutes leaves in.Routes holding every route: the routes given, or one route made of event,
// identify and mappings (the single-mapping API). It reports whether the latter was used (legacy): the
// route's problems are then named as the single-mapping API names them ("mappings[0].field", not
// "routes[0].mappings[0].field").
func (in *WebhookInput) normalizeRoutes(e *domainerr.ValidationError) (legacy bool) {
	if len(in.Routes) == 0 {
		in.Routes = []Route{{EventID: in.EventID, EventName: in.EventName, Identify: in.Identify, Mappings: in.Mappings,
			UnknownUser: in.UnknownUser, HoldFor: in.HoldFor, CreateFrom: in.CreateFrom}}
		return true
	}
	if in.EventID != 0 || in.EventName != "" || in.Identify != (Identify{}) || len(in.Mappings) > 0 || in.UnknownUser != "" || in.HoldFor != "" ||
		in.CreateFrom != (CreateFrom{}) {
		e.Add("routes", "give routes, or event, identify, mappings, unknown_user, hold_for, create_email and create_phone (a single route), not both")
	}
	return false
}

// validateRoute checks one route (its problems named with prefix) and resolves its event.
func (s *Store) validateRoute(ctx context.Context, tx pgx.Tx, projectID int64, r *Route, prefix string, kept []string, sc *sampleCheck, e *domainerr.ValidationError) (*Event, error) {
	switch n := utf8.RuneCountInString(r.Name); {
	case !utf8.ValidString(r.Name):
		e.Add(prefix+"name", "not valid UTF-8")
	case n > MaxRouteNameLen:
		e.Add(prefix+"name", "%d characters; at most %d", n, MaxRouteNameLen)
	case strings.ContainsFunc(r.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		e.Add(prefix+"name", "must not contain control characters")
	}
	ev, err := s.resolveEvent(ctx, tx, projectID, r.EventID, r.EventName, prefix, e)
	if err != nil {
		return nil, err
	}

	if !r.Identify.Kind.Valid() {
		e.Add(prefix+"identify.kind", "%q is not one of user_id, email, phone, hwid", r.Identify.Kind)
	}
	if r.Identify.Field == "" {
		e.Add(prefix+"identify.field", "required")
	} else if p, err := fieldpath.Parse(r.Identify.Field); err != nil {
		e.Add(prefix+"identify.field", "%v", err)
	} else {
		r.Identify.Field = p.String()
	}
	switch r.UnknownUser {
	case "", UnknownUserFail:
		r.UnknownUser = "" // the default, stored as nothing
	case UnknownUserCreate, UnknownUserHold:
	default:
		e.Add(prefix+"unknown_user", "%q is not one of fail, create, hold", r.UnknownUser)
	}
	switch d, err := time.ParseDuration(r.HoldFor); {
	case r.HoldFor == "":
	case r.UnknownUser != UnknownUserHold:
		e.Add(prefix+"hold_for", "only with unknown_user hold")
	case err != nil:
		e.Add(prefix+"hold_for", "%q is not a duration such as 24h or 30m", r.HoldFor)
	case d < time.Second || d > MaxHoldFor:
		e.Add(prefix+"hold_for", "%s is outside 1s..%s", d, MaxHoldFor)
	default:
		r.HoldFor = d.String()
	}
	for _, f := range []struct {
		name string
		path *string
	}{{"create_email", &r.CreateEmail}, {"create_phone", &r.CreatePhone}} {
		switch p, err := fieldpath.Parse(*f.path); {
		case *f.path == "":
		case r.UnknownUser != UnknownUserCreate:
			e.Add(prefix+f.name, "only with unknown_user create")
		case r.Identify.Kind == identify.ByHWID:
			e.Add(prefix+f.name, "only for a user: identify.kind hwid creates an anonymous device")
		case err != nil:
			e.Add(prefix+f.name, "%v", err)
		default:
			*f.path = p.String()
		}
	}

	fanOut := r.ForEach != ""
	forEachOK := false
	if fanOut {
		if p, err := fieldpath.Parse(r.ForEach); err != nil {
			e.Add(prefix+"for_each", "%v", err)
		} else {
			r.ForEach = p.String()
			forEachOK = true
		}
	}
	whenOK := false
	if r.When != "" {
		if _, err := CompileCondition(r.When); err != nil {
			e.Add(prefix+"when", "%v", err)
		} else {
			whenOK = true
		}
	}

	mappingsOK := true
	if len(r.Mappings) > MaxMappings {
		e.Add(prefix+"mappings", "%d mappings; at most %d", len(r.Mappings), MaxMappings)
		mappingsOK = false
	} else {
		seen := make(map[string]int, len(r.Mappings))
		for i := range r.Mappings {
			m := &r.Mappings[i]
			f := fmt.Sprintf("%smappings[%d]", prefix, i)
			switch {
			case m.Attribute == "":
				e.Add(f+".attribute", "required")
			case ev != nil && !hasAttribute(ev, m.Attribute):
				e.Add(f+".attribute", "%q is not an attribute of event %q", m.Attribute, ev.Name)
			default:
				if j, dup := seen[m.Attribute]; dup {
					e.Add(f+".attribute", "%q is already mapped by mappings[%d]", m.Attribute, j)
				} else {
					seen[m.Attribute] = i
				}
			}
			switch m.OnError {
			case "", OnErrorFail:
				m.OnError = "" // the default, stored as nothing
			case OnErrorDrop:
			default:
				e.Add(f+".on_error", "%q is not one of fail, drop", m.OnError)
			}
			switch {
			case m.Field != "" && m.Expr != "":
				e.Add(f+".expr", "give field or expr, not both")
				mappingsOK = false
			case m.Expr != "":
				if _, err := CompileValue(m.Expr, fanOut); err != nil {
					e.Add(f+".expr", "%v", err)
					mappingsOK = false
				}
			case m.Field == "":
				e.Add(f+".field", "required (field or expr)")
				mappingsOK = false
			default:
				if p, err := fieldpath.Parse(m.Field); err != nil {
					e.Add(f+".field", "%v", err)
					mappingsOK = false
				} else {
					m.Field = p.String()
				}
			}
		}
	}
	if sc != nil && ev != nil && (!fanOut || forEachOK) {
		sc.check(r, ev, prefix, whenOK, mappingsOK, e)
	}
	return ev, nil
}

func hasAttribute(ev *Event, name string) bool {
	for _, a := range ev.Attributes {
		if a.Name == name {
			return true
		}
	}
	return false
}

// resolveEvent finds the event by id or name, FOR SHARE so that it cannot be deleted, lose an
// attribute or retype one before tx commits. A missing event is a field error (named with prefix), not
// domainerr.ErrNotFound: the webhook is what the caller addressed.
func (s *Store) resolveEvent(ctx context.Context, tx pgx.Tx, projectID, eventID int64, eventName, prefix string, e *domainerr.ValidationError) (*Event, error) {
	var (
		q     string
		arg   any
		field string
	)
	switch {
	case eventID == 0 && eventName == "":
		e.Add(prefix+"event", "required (event or event_id)")
		return nil, nil
	case eventID < 0:
		e.Add(prefix+"event_id", "must be positive")
		return nil, nil
	case eventID != 0:
		q, arg, field = `id = $2`, eventID, prefix+"event_id"
	default:
		q, arg, field = `name = $2`, eventName, prefix+"event"
	}
	ev, err := scanEvent(tx.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE project_id = $1 AND `+q+` FOR SHARE`, projectID, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		e.Add(field, "no event %v in this project", quoteIfString(arg))
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolve event: %w", err)
	}
	if eventID != 0 && eventName != "" && ev.Name != eventName {
		e.Add(prefix+"event", "event_id %d is event %q, not %q", eventID, ev.Name, eventName)
	}
	return ev, nil
}

func quoteIfString(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// conflictName turns the unique index on live webhook names into domainerr.ErrConflict.
func conflictName(err error, name string) error {
	if uniqueViolation(err, "webhooks_project_name") {
		return fmt.Errorf("a webhook named %q already exists: %w", name, domainerr.ErrConflict)
	}
	return err
}

// uniqueViolation reports whether err is PostgreSQL's unique_violation on the named constraint or index
// (any when name is empty).
func uniqueViolation(err error, name string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (name == "" || pe.ConstraintName == name)
}

// Create adds a webhook, disabled, with a fresh public id and secret. It returns the webhook and the
// secret in clear ("whsec_…"); only its digest and its ciphertext are stored.
func (s *Store) Create(ctx context.Context, projectID int64, in WebhookInput) (*Webhook, string, error) {
	id := secret.NewPublicID()
	var ve domainerr.ValidationError
	conn, snd := in.connection()
	conn.validate(&ve)
	sec := resolveSecret(&ve, conn.Verification, in.Secret, snd.Title)
	if snd.Handshake == HandshakeMeta && conn.HandshakeToken == "" {
		conn.HandshakeToken = secret.NewPublicID()
	}
	digest := secretDigest(conn.Verification, sec)
	sealed := s.sealer.Seal([]byte(sec), []byte(id))
	var out *Webhook
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		evs, err := s.validate(ctx, tx, projectID, &in, true, conn.keptHeaders(snd), &ve)
		if err != nil {
			return err
		}
		setEventIDs(in.Routes, evs)
		r := &in.Routes[0]
		if err := s.saveSensitive(ctx, tx, projectID, in.Sensitive); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO webhooks (public_id, project_id, name, event_id, identify_kind, identify_field,
			mappings, sample_payload, secret_digest, secret_ciphertext,
			sender, verification, sender_headers, dedup, handshake_token, time_zone,
			route_name, route_when, route_for_each, routes, route_unknown_user, route_hold_for, sensitive,
			route_create_email, route_create_phone)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)`,
			id, projectID, in.Name, r.EventID, r.Identify.Kind, r.Identify.Field,
			mappingsOrEmpty(r.Mappings), in.SamplePayload, digest[:], sealed,
			conn.Sender, conn.Verification, stringsOrEmpty(conn.SenderHeaders), conn.Dedup, conn.HandshakeToken, in.TimeZone,
			r.Name, r.When, r.ForEach, storedRoutes(in.Routes), r.UnknownUser, r.HoldFor, sensitiveOf(in.Sensitive),
			r.CreateEmail, r.CreatePhone)
		if err != nil {
			return conflictName(err, in.Name)
		}
		out, err = scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookColumns+webhookFrom+`WHERE w.public_id = $1`, id))
		return err
	})
	if err != nil {
		return nil, "", wrapUnlessSentinel(err, "create webhook %q", in.Name)
	}
	return out, sec, nil
}

// connection is the connection a create makes of in: its sender's (default inlet) verification and
// dedup unless given.
func (in *WebhookInput) connection() (connection, Sender) {
	conn := connection{Sender: in.Sender, SenderHeaders: in.SenderHeaders, HandshakeToken: in.HandshakeToken}
	if conn.Sender == "" {
		conn.Sender = SenderInlet
	}
	snd, _ := LookupSender(conn.Sender)
	conn.Verification = snd.Verification
	if in.Verification != nil {
		conn.Verification = *in.Verification
	}
	conn.Dedup = snd.Dedup
	if in.Dedup != nil {
		conn.Dedup = *in.Dedup
	}
	return conn, snd
}

func stringsOrEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// setEventIDs names each route's event by the id validate resolved.
func setEventIDs(routes []Route, evs []*Event) {
	for i := range routes {
		routes[i].EventID, routes[i].EventName = evs[i].ID, evs[i].Name
	}
}

func mappingsOrEmpty(m []Mapping) []Mapping {
	if m == nil {
		return []Mapping{}
	}
	return m
}

// Get returns one live webhook of the project, or domainerr.ErrNotFound.
func (s *Store) Get(ctx context.Context, projectID int64, publicID string) (*Webhook, error) {
	w, err := scanWebhook(s.db.QueryRow(ctx, `SELECT `+webhookColumns+webhookFrom+
		`WHERE w.public_id = $1 AND w.project_id = $2 AND w.deleted_at IS NULL`, publicID, projectID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("webhook %s: %w", publicID, domainerr.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get webhook %s: %w", publicID, err)
	}
	return w, nil
}

// validate checks a filter; the field names are the query parameters the admin API is expected to use.
func (f *ListFilter) validate() error {
	var e domainerr.ValidationError
	if utf8.RuneCountInString(f.Search) > MaxSearchLen || !utf8.ValidString(f.Search) {
		e.Add("search", "at most %d characters of valid UTF-8", MaxSearchLen)
	}
	switch f.Status {
	case "", "enabled", "disabled":
	default:
		e.Add("status", "%q is not enabled or disabled", f.Status)
	}
	switch f.Sort {
	case "", "updated_at", "created_at", "name":
	default:
		e.Add("sort", "%q is not one of name, updated_at, created_at", f.Sort)
	}
	if f.Limit < 0 || f.Limit > MaxListLimit {
		e.Add("limit", "%d is not in 1..%d", f.Limit, MaxListLimit)
	}
	if f.Offset < 0 {
		e.Add("offset", "must not be negative")
	}
	return e.Err()
}

// List returns one page of the project's live webhooks and how many match in all. SamplePayload is left
// empty in list rows (it can be 64 KiB each); Get has it.
func (s *Store) List(ctx context.Context, projectID int64, f ListFilter) (*Page, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	where := `WHERE w.project_id = $1 AND w.deleted_at IS NULL`
	args := []any{projectID}
	if f.Search != "" {
		args = append(args, "%"+likeEscaper.Replace(f.Search)+"%")
		where += ` AND w.name ILIKE $` + strconv.Itoa(len(args))
	}
	if f.Status != "" {
		args = append(args, f.Status == "enabled")
		where += ` AND w.enabled = $` + strconv.Itoa(len(args))
	}
	col := "w.updated_at"
	switch f.Sort {
	case "created_at":
		col = "w.created_at"
	case "name":
		col = "lower(w.name)"
	}
	dir := " ASC"
	if f.Desc {
		dir = " DESC"
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	page := &Page{Webhooks: []Webhook{}}
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks w `+where, args...).Scan(&page.Total); err != nil {
			return err
		}
		cols := strings.Replace(webhookColumns, "w.sample_payload", "''", 1)
		rows, err := tx.Query(ctx, `SELECT `+cols+webhookFrom+where+` ORDER BY `+col+dir+`, w.id`+dir+
			` LIMIT `+strconv.Itoa(limit)+` OFFSET `+strconv.Itoa(f.Offset), args...)
		if err != nil {
			return err
		}
		page.Webhooks, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Webhook, error) {
			w, err := scanWebhook(r)
			if err != nil {
				return Webhook{}, err
			}
			return *w, nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return page, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// lockLive locks a live webhook of the project for the rest of tx and checks the expected version.
func lockLive(ctx context.Context, tx pgx.Tx, projectID int64, publicID string, expectedVersion int64) (*Webhook, error) {
	w, err := scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookColumns+webhookFrom+
		`WHERE w.public_id = $1 AND w.project_id = $2 AND w.deleted_at IS NULL FOR UPDATE OF w`, publicID, projectID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("webhook %s: %w", publicID, domainerr.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if expectedVersion != 0 && w.Version != expectedVersion {
		return nil, fmt.Errorf("webhook %s is at version %d, not %d: %w", publicID, w.Version, expectedVersion, domainerr.ErrVersionMismatch)
	}
	return w, nil
}

// checksSample reports whether the patch changes what the sample check checks: an edit of the name
// alone must not fail on a webhook saved before mappings were checked.
func (p *WebhookPatch) checksSample() bool {
	return p.Mappings != nil || p.SamplePayload != nil || p.EventID != nil || p.EventName != nil ||
		p.Sender != nil || p.SenderHeaders != nil || p.Routes != nil || p.CreateEmail != nil || p.CreatePhone != nil
}

// patched is the input cur would be saved from with patch applied (its mapping part; the connection
// is mergeConnection's).
//
// Event, identify and mappings change the first route; a webhook with one route is then validated as
// the single-mapping API names its fields. Routes replace every route.
func patched(cur *Webhook, patch *WebhookPatch) WebhookInput {
	in := WebhookInput{Name: cur.Name, SamplePayload: cur.SamplePayload, TimeZone: cur.TimeZone, Sensitive: &cur.Sensitive}
	if patch.Sensitive != nil {
		in.Sensitive = patch.Sensitive
	}
	if patch.Name != nil {
		in.Name = *patch.Name
	}
	first := cur.Routes[0]
	first.EventName = "" // by id, unless the patch names another
	legacyPatch := patch.EventID != nil || patch.EventName != nil || patch.Identify != nil || patch.Mappings != nil || patch.UnknownUser != nil ||
		patch.HoldFor != nil || patch.CreateEmail != nil || patch.CreatePhone != nil
	if patch.EventID != nil || patch.EventName != nil {
		first.EventID, first.EventName = 0, ""
		if patch.EventID != nil {
			first.EventID = *patch.EventID
		}
		if patch.EventName != nil {
			first.EventName = *patch.EventName
		}
	}
	if patch.Identify != nil {
		first.Identify = *patch.Identify
	}
	if patch.Mappings != nil {
		first.Mappings = *patch.Mappings
	}
	if patch.UnknownUser != nil {
		first.UnknownUser = *patch.UnknownUser
		if *patch.UnknownUser != UnknownUserHold && patch.HoldFor == nil {
			first.HoldFor = "" // leaving hold drops its time
		}
	}
	if patch.HoldFor != nil {
		first.HoldFor = *patch.HoldFor
	}
	if patch.UnknownUser != nil && *patch.UnknownUser != UnknownUserCreate {
		// Leaving create drops where it read the e-mail and phone, unless the patch sets them.
		first.CreateFrom = CreateFrom{}
	}
	if patch.CreateEmail != nil {
		first.CreateEmail = *patch.CreateEmail
	}
	if patch.CreatePhone != nil {
		first.CreatePhone = *patch.CreatePhone
	}
	switch {
	case patch.Routes != nil:
		in.Routes = *patch.Routes
		if legacyPatch {
			// Both: validate refuses it, naming the conflict.
			in.EventID, in.EventName, in.Identify, in.Mappings = first.EventID, first.EventName, first.Identify, first.Mappings
			in.UnknownUser, in.HoldFor, in.CreateFrom = first.UnknownUser, first.HoldFor, first.CreateFrom
		}
	case len(cur.Routes) == 1 && first.Name == "" && first.When == "" && first.ForEach == "":
		in.EventID, in.EventName, in.Identify, in.Mappings = first.EventID, first.EventName, first.Identify, first.Mappings
		in.UnknownUser, in.HoldFor, in.CreateFrom = first.UnknownUser, first.HoldFor, first.CreateFrom
	default:
		in.Routes = append([]Route{first}, cur.Routes[1:]...)
		for i := 1; i < len(in.Routes); i++ {
			in.Routes[i].EventName = ""
		}
	}
	if patch.SamplePayload != nil {
		in.SamplePayload = *patch.SamplePayload
	}
	if patch.TimeZone != nil {
		in.TimeZone = *patch.TimeZone
	}
	return in
}

// Update applies patch to a live webhook and bumps its version. expectedVersion 0 skips the check; another
// value answers domainerr.ErrVersionMismatch unless it is the current version. The result is validated as a
// whole, like a create.
func (s *Store) Update(ctx context.Context, projectID int64, publicID string, expectedVersion int64, patch WebhookPatch) (*Webhook, error) {
	var out *Webhook
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		cur, err := lockLive(ctx, tx, projectID, publicID, expectedVersion)
		if err != nil {
			return err
		}
		in := patched(cur, &patch)
		var ve domainerr.ValidationError
		conn, newSecret, err := s.patchConnection(ctx, tx, cur, &patch, &ve)
		if err != nil {
			return err
		}
		// The sample check runs when the patch changes what it checks: an edit of the name alone
		// must not fail on a webhook saved before mappings were checked.
		sample := patch.checksSample()
		snd, _ := LookupSender(conn.Sender)
		evs, err := s.validate(ctx, tx, projectID, &in, sample, conn.keptHeaders(snd), &ve)
		if err != nil {
			return err
		}
		setEventIDs(in.Routes, evs)
		r := &in.Routes[0]
		if err := s.saveSensitive(ctx, tx, projectID, in.Sensitive); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE webhooks SET name = $3, event_id = $4, identify_kind = $5, identify_field = $6,
			mappings = $7, sample_payload = $8, version = version + 1, updated_at = now(),
			sender = $10, verification = $11, sender_headers = $12, dedup = $13, handshake_token = $14, time_zone = $15,
			route_name = $16, route_when = $17, route_for_each = $18, routes = $19, route_unknown_user = $20,
			route_hold_for = $21, sensitive = $22, route_create_email = $23, route_create_phone = $24
			WHERE public_id = $1 AND project_id = $2 AND version = $9`,
			publicID, projectID, in.Name, r.EventID, r.Identify.Kind, r.Identify.Field, mappingsOrEmpty(r.Mappings), in.SamplePayload, cur.Version,
			conn.Sender, conn.Verification, stringsOrEmpty(conn.SenderHeaders), conn.Dedup, conn.HandshakeToken, in.TimeZone,
			r.Name, r.When, r.ForEach, storedRoutes(in.Routes), r.UnknownUser, r.HoldFor, sensitiveOf(in.Sensitive),
			r.CreateEmail, r.CreatePhone)
		if err != nil {
			return conflictName(err, in.Name)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("webhook %s changed concurrently: %w", publicID, domainerr.ErrVersionMismatch)
		}
		if newSecret != "" {
			// A new scheme or a secret given outright: the old secret stops at once (no grace).
			digest := secretDigest(conn.Verification, newSecret)
			if _, err := tx.Exec(ctx, `UPDATE webhooks SET secret_digest = $2, secret_ciphertext = $3,
				prev_secret_digest = NULL, prev_secret_ciphertext = NULL, prev_secret_expires_at = NULL,
				secret_rotated_at = now() WHERE public_id = $1`,
				publicID, digest[:], s.sealer.Seal([]byte(newSecret), []byte(publicID))); err != nil {
				return err
			}
		}
		out, err = scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookColumns+webhookFrom+`WHERE w.public_id = $1`, publicID))
		return err
	})
	if err != nil {
		return nil, wrapUnlessSentinel(err, "update webhook %s", publicID)
	}
	return out, nil
}

// SetEnabled enables or disables a live webhook and bumps its version (even when the state does not
// change, so that an If-Match sequence stays simple). expectedVersion as in Update.
func (s *Store) SetEnabled(ctx context.Context, projectID int64, publicID string, expectedVersion int64, enabled bool) (*Webhook, error) {
	return s.change(ctx, projectID, publicID, expectedVersion, `enabled = $4`, enabled)
}

// change runs one UPDATE of a live webhook that bumps version and updated_at; set is the extra SET list
// with its argument as $4.
func (s *Store) change(ctx context.Context, projectID int64, publicID string, expectedVersion int64, set string, arg any) (*Webhook, error) {
	var out *Webhook
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		cur, err := lockLive(ctx, tx, projectID, publicID, expectedVersion)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhooks SET `+set+`, version = version + 1, updated_at = now()
			WHERE public_id = $1 AND project_id = $2 AND version = $3`, publicID, projectID, cur.Version, arg); err != nil {
			return err
		}
		out, err = scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookColumns+webhookFrom+`WHERE w.public_id = $1`, publicID))
		return err
	})
	if err != nil {
		return nil, wrapUnlessSentinel(err, "change webhook %s", publicID)
	}
	return out, nil
}

// Delete soft-deletes a live webhook: from then on Get, Hook (and so the edge) answer domainerr.ErrNotFound.
// Its activity stays in ClickHouse.
func (s *Store) Delete(ctx context.Context, projectID int64, publicID string) error {
	tag, err := s.db.Exec(ctx, `UPDATE webhooks SET deleted_at = now(), enabled = false, version = version + 1, updated_at = now()
		WHERE public_id = $1 AND project_id = $2 AND deleted_at IS NULL`, publicID, projectID)
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", publicID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook %s: %w", publicID, domainerr.ErrNotFound)
	}
	return nil
}

// RotateSecret gives a live webhook a new secret and returns it in clear: given (the provider's new
// signing secret, required in HMAC modes; a Basic password or URL token of the user's) or one Inlet
// makes. The old secret keeps working for grace (0: not at all; at most MaxRotationGrace); a rotation
// during a grace period ends that one, so at most two secrets work at any time. It bumps the version
// and secret_rotated_at, which resets the edge's auth-failure streak.
func (s *Store) RotateSecret(ctx context.Context, projectID int64, publicID string, grace time.Duration, given string) (string, error) {
	if grace < 0 || grace > MaxRotationGrace {
		return "", domainerr.Invalid("grace", "%s is not in 0..%s", grace, MaxRotationGrace)
	}
	var sec string
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		cur, err := lockLive(ctx, tx, projectID, publicID, 0)
		if err != nil {
			return err
		}
		var ve domainerr.ValidationError
		snd, _ := LookupSender(cur.Sender)
		if sec = resolveSecret(&ve, cur.Verification, given, snd.Title); ve.Err() != nil {
			return ve.Err()
		}
		digest := secretDigest(cur.Verification, sec)
		sealed := s.sealer.Seal([]byte(sec), []byte(publicID))
		_, err = tx.Exec(ctx, `UPDATE webhooks SET
				prev_secret_digest = CASE WHEN $3::bigint > 0 THEN secret_digest END,
				prev_secret_ciphertext = CASE WHEN $3::bigint > 0 THEN secret_ciphertext END,
				prev_secret_expires_at = CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 microsecond' END,
				secret_digest = $4, secret_ciphertext = $5, secret_rotated_at = now(),
				version = version + 1, updated_at = now()
			WHERE public_id = $1 AND project_id = $2 AND deleted_at IS NULL`,
			publicID, projectID, grace.Microseconds(), digest[:], sealed)
		return err
	})
	if err != nil {
		return "", wrapUnlessSentinel(err, "rotate secret of webhook %s", publicID)
	}
	return sec, nil
}

// Credentials returns a live webhook's current secret in clear, decrypted with the master key, for the
// console's "Copy URL" window.
func (s *Store) Credentials(ctx context.Context, projectID int64, publicID string) (*Credentials, error) {
	var sealed []byte
	var sample, sender, token string
	var v verify.Config
	err := s.db.QueryRow(ctx, `SELECT secret_ciphertext, sample_payload, sender, verification, handshake_token FROM webhooks
		WHERE public_id = $1 AND project_id = $2 AND deleted_at IS NULL`, publicID, projectID).Scan(&sealed, &sample, &sender, &v, &token)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("webhook %s: %w", publicID, domainerr.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("credentials of webhook %s: %w", publicID, err)
	}
	pt, err := s.sealer.Open(sealed, []byte(publicID))
	if err != nil {
		return nil, fmt.Errorf("credentials of webhook %s (wrong master key?): %w", publicID, err)
	}
	sec := string(pt)
	if sender == "" {
		sender = SenderInlet
	}
	c := &Credentials{ID: publicID, Sender: sender, Mode: v.Mode, Secret: sec, SamplePayload: sample, HandshakeToken: token}
	switch v.Mode {
	case "", verify.ModeBearer:
		c.Mode, c.Authorization = verify.ModeBearer, secret.Authorization(sec)
	case verify.ModeBasic:
		c.Username = v.Username
		c.Authorization = "Basic " + base64.StdEncoding.EncodeToString([]byte(v.Username+":"+sec))
	case verify.ModeToken:
		c.QueryParam = v.QueryParam
		if c.QueryParam == "" {
			c.QueryParam = verify.DefaultQueryParam
		}
	}
	return c, nil
}

// Hook is the data path's view of a live webhook, across projects (the public id is the key the edge has),
// with the event's name and attribute types joined in. Deleted or unknown: domainerr.ErrNotFound. Any other
// error means PostgreSQL could not answer.
func (s *Store) Hook(ctx context.Context, publicID string) (*Hook, error) {
	h, err := s.scanHook(s.db.QueryRow(ctx, `SELECT `+hookColumns+webhookFrom+
		`WHERE w.public_id = $1 AND w.deleted_at IS NULL`, publicID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("webhook %s: %w", publicID, domainerr.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load webhook %s: %w", publicID, err)
	}
	return h, nil
}

// buildVerifiers sets h's verifiers: bearer mode compares the stored digests (rows rotated before
// the secret's ciphertext was kept have only the previous digest); the other modes need the secrets in
// clear, opened with the master key.
func (s *Store) buildVerifiers(h *Hook, sealed, prevSealed []byte, hasPrev bool) error {
	if s.noVerifiers {
		h.verifiersLeftOut = true
		return nil
	}
	if h.Verification == nil || h.Verification.Mode == "" || h.Verification.Mode == verify.ModeBearer {
		// No Verifier: Hook.Verify compares the bearer digests itself (SecretDigest, and
		// PrevSecretDigest while the grace runs), as a bearer Verifier would. Every process keeps every
		// webhook it meets, and a Verifier is ~200 bytes more of it (22 MiB at 100,000 webhooks in the
		// bench's heap profiles), which the pipeline never uses.
		h.SetVerifiers(nil, nil)
		return nil
	}
	sec, err := s.sealer.Open(sealed, []byte(h.PublicID))
	if err != nil {
		return fmt.Errorf("open secret (wrong master key?): %w", err)
	}
	cur, err := verify.New(*h.Verification, [][]byte{sec})
	if err != nil {
		return fmt.Errorf("verification: %w", err)
	}
	var withPrev *verify.Verifier
	if hasPrev && prevSealed != nil {
		old, err := s.sealer.Open(prevSealed, []byte(h.PublicID))
		if err != nil {
			return fmt.Errorf("open previous secret (wrong master key?): %w", err)
		}
		if withPrev, err = verify.New(*h.Verification, [][]byte{sec, old}); err != nil {
			return fmt.Errorf("verification: %w", err)
		}
	}
	h.SetVerifiers(cur, withPrev)
	return nil
}

// Hooks returns the data-path view of up to limit live webhooks, across projects, with public ids
// after the given one (in id order): pages for warming a cache at start-up.
func (s *Store) Hooks(ctx context.Context, after string, limit int) ([]*Hook, error) {
	rows, err := s.db.Query(ctx, `SELECT `+hookColumns+webhookFrom+
		`WHERE w.public_id > $1 AND w.deleted_at IS NULL ORDER BY w.public_id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("load webhooks after %q: %w", after, err)
	}
	hooks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Hook, error) { return s.scanHook(r) })
	if err != nil {
		return nil, fmt.Errorf("load webhooks after %q: %w", after, err)
	}
	return hooks, nil
}

// HooksByID reads the live webhooks among ids in one query (webhook.Cache.Prefetch): the unknown and
// the deleted are left out, the others come in no particular order.
func (s *Store) HooksByID(ctx context.Context, ids []string) ([]*Hook, error) {
	rows, err := s.db.Query(ctx, `SELECT `+hookColumns+webhookFrom+
		`WHERE w.public_id = ANY($1) AND w.deleted_at IS NULL`, ids)
	if err != nil {
		return nil, fmt.Errorf("load %d webhooks: %w", len(ids), err)
	}
	hooks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Hook, error) { return s.scanHook(r) })
	if err != nil {
		return nil, fmt.Errorf("load %d webhooks: %w", len(ids), err)
	}
	return hooks, nil
}

// hookJSON decodes a Hook's JSON columns as sonic.ConfigStd does, except that strings refer to the
// column's text rather than each being copied: a Hook keeps a column's strings (mapped attributes and
// fields, most of all) in one object rather than one each, in every process, for every webhook.
var hookJSON = sonic.Config{EscapeHTML: true, SortMapKeys: true, CompactMarshaler: true, ValidateString: true}.Froze()

const hookColumns = `w.public_id, w.project_id, w.enabled, w.version, w.secret_digest,
	w.prev_secret_digest, w.prev_secret_expires_at, w.secret_rotated_at, e.name, e.attributes,
	w.identify_kind, w.identify_field, w.mappings,
	w.sender, w.verification, w.sender_headers, w.dedup, w.handshake_token, w.secret_ciphertext, w.prev_secret_ciphertext,
	w.time_zone, w.route_name, w.route_when, w.route_for_each, w.route_unknown_user, w.route_hold_for, w.route_create_email, w.route_create_phone, w.routes, w.sensitive,
	(SELECT p.mask_key_ciphertext FROM projects p WHERE p.id = w.project_id), ` + routeEvents

// scanHook reads a Hook and builds its verifiers: from the stored digests in bearer mode, from the
// secrets decrypted with the master key in the others.
func (s *Store) scanHook(row pgx.Row) (*Hook, error) {
	var (
		h          Hook
		digest     []byte
		prev       []byte
		prevTill   *time.Time
		attrs      []Attribute
		maps       []Mapping
		conn       connection
		sealed     []byte
		prevSealed []byte
		zone       string
		sens       Sensitive
		maskKey    []byte
		first      Route
		more       []storedRoute
		evs        []routeEvent
		// The JSON columns, decoded below with sonic rather than by pgx with encoding/json: decoding is
		// most of what reading a webhook costs, and the cache reads every live webhook again every ttl.
		jAttrs, jMaps, jVerification, jSenderHeaders, jDedup, jMore, jSens, jEvs []byte
	)
	if err := row.Scan(&h.PublicID, &h.ProjectID, &h.Enabled, &h.Version, &digest, &prev, &prevTill, &h.SecretRotatedAt,
		&first.EventName, &jAttrs, &first.Identify.Kind, &first.Identify.Field, &jMaps,
		&conn.Sender, &jVerification, &jSenderHeaders, &jDedup, &h.HandshakeToken, &sealed, &prevSealed, &zone,
		&first.Name, &first.When, &first.ForEach, &first.UnknownUser, &first.HoldFor, &first.CreateEmail, &first.CreatePhone, &jMore, &jSens, &maskKey, &jEvs); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		name string
		src  []byte
		dst  any
	}{
		{"attributes", jAttrs, &attrs}, {"mappings", jMaps, &maps}, {"verification", jVerification, &conn.Verification},
		{"sender_headers", jSenderHeaders, &conn.SenderHeaders}, {"dedup", jDedup, &conn.Dedup}, {"routes", jMore, &more},
		{"sensitive", jSens, &sens}, {"route events", jEvs, &evs},
	} {
		if len(c.src) == 0 { // NULL
			continue
		}
		if err := hookJSON.Unmarshal(c.src, c.dst); err != nil {
			return nil, fmt.Errorf("webhook %s: %s: %w", h.PublicID, c.name, err)
		}
	}
	if err := s.setMask(&h, sens, maskKey); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", h.PublicID, err)
	}
	copy(h.SecretDigest[:], digest)
	if len(prev) == len(h.PrevSecretDigest) && prevTill != nil {
		copy(h.PrevSecretDigest[:], prev)
		h.PrevSecretUntil = *prevTill
	}
	if conn.Sender == "" {
		conn.Sender = SenderInlet
	}
	first.Mappings = maps
	routes := append(make([]Route, 0, 1+len(more)), first)
	attrsOf := [][]Attribute{attrs}
	byID := eventsByID(evs)
	for _, r := range more {
		rt := Route{Name: r.Name, When: r.When, ForEach: r.ForEach, EventID: r.EventID, Identify: r.Identify, Mappings: r.Mappings,
			UnknownUser: r.UnknownUser, HoldFor: r.HoldFor, CreateFrom: r.CreateFrom}
		var at []Attribute
		if ev := byID[r.EventID]; ev != nil {
			// A copy: the name refers to the events' JSON (hookJSON), all their attributes.
			rt.EventName, at = strings.Clone(ev.Name), ev.Attributes
		}
		routes = append(routes, rt)
		attrsOf = append(attrsOf, at)
	}
	h.setMapping(conn, routes, attrsOf)
	if err := s.buildVerifiers(&h, sealed, prevSealed, prevTill != nil); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", h.PublicID, err)
	}
	// Loaded once per config version. A name validated when saved loads in any build with the same
	// embedded zone database; one that does not (a zone removed since) is an error rather than a
	// silent UTC, which would shift every date of the webhook.
	loc, err := LoadTimeZone(zone)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", h.PublicID, err)
	}
	h.Location = loc
	return &h, nil
}
