package webhook

import (
	"context"
	"fmt"
	"slices"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/verify"
)

// Drafts: the Hook a webhook would be with an unsaved config, for a dry run or a backtest. They are
// validated as Create and Update validate (every invalid field in a *domainerr.ValidationError) and
// write nothing: the validation's transaction is rolled back. The secret is not looked at and a
// draft has no verifiers (Verify compares digests that are zero): a dry run does not verify.

// Draft returns the Hook that Create would make of in, without creating it. Its PublicID is "draft".
func (s *Store) Draft(ctx context.Context, projectID int64, in WebhookInput) (*Hook, error) {
	var ve domainerr.ValidationError
	conn, _ := in.connection()
	conn.validate(&ve)
	return s.draft(ctx, projectID, "draft", 0, &in, conn, true, &ve)
}

// DraftPatch returns the Hook that Update would make of the live webhook publicID with patch applied,
// without saving it; its Version is the current one. domainerr.ErrNotFound when there is no such
// webhook in the project.
func (s *Store) DraftPatch(ctx context.Context, projectID int64, publicID string, patch WebhookPatch) (*Hook, error) {
	cur, err := s.Get(ctx, projectID, publicID)
	if err != nil {
		return nil, err
	}
	in := patched(cur, &patch)
	conn := cur.connection()
	conn.merge(&patch)
	var ve domainerr.ValidationError
	conn.validate(&ve)
	return s.draft(ctx, projectID, publicID, cur.Version, &in, conn, patch.checksSample(), &ve)
}

func (s *Store) draft(ctx context.Context, projectID int64, publicID string, version int64, in *WebhookInput, conn connection, sample bool, ve *domainerr.ValidationError) (*Hook, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("draft of webhook %s: %w", publicID, err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // nothing is written: validate only reads (and locks the event)
	snd, _ := LookupSender(conn.Sender)
	evs, err := s.validate(ctx, tx, projectID, in, sample, conn.keptHeaders(snd), ve)
	if err != nil {
		return nil, wrapUnlessSentinel(err, "draft of webhook %s", publicID)
	}
	setEventIDs(in.Routes, evs)
	h := &Hook{PublicID: publicID, ProjectID: projectID, Enabled: true, Version: version}
	attrsOf := make([][]Attribute, len(evs))
	for i, ev := range evs {
		attrsOf[i] = ev.Attributes
	}
	h.setMapping(conn, in.Routes, attrsOf)
	if h.Location, err = LoadTimeZone(in.TimeZone); err != nil {
		return nil, fmt.Errorf("draft of webhook %s: %w", publicID, err)
	}
	return h, nil
}

// setMapping sets what h makes of a request's body and headers: the connection's sender, verification
// config, dedup, handshake and kept headers, and the routes with their mappings typed by their events'
// attributes (attrsOf[i] are route i's).
func (h *Hook) setMapping(conn connection, routes []Route, attrsOf [][]Attribute) {
	snd, ok := LookupSender(conn.Sender)
	if ok {
		// The catalog's strings where they are the sender's defaults, rather than a copy per webhook.
		conn.Sender = snd.Name
		if d := conn.Dedup; d.Key == snd.Dedup.Key && d.Window == snd.Dedup.Window && slices.Equal(d.HashHeaders, snd.Dedup.HashHeaders) {
			conn.Dedup = snd.Dedup
		}
	}
	if v := senderVerifications[conn.Sender]; v != nil && *v == conn.Verification {
		h.Verification = v
	} else {
		v := conn.Verification
		h.Verification = &v
	}
	h.Sender, h.Dedup, h.Handshake = conn.Sender, conn.Dedup, snd.Handshake
	names := conn.keptHeaders(snd)
	if len(names) > 0 {
		h.Headers = make([]KeptHeader, len(names))
		for i, name := range names {
			h.Headers[i] = NewKeptHeader(name)
		}
		h.Headers = shareHeaders(h.Headers)
	}
	h.Routes = make([]HookRoute, len(routes))
	for i, r := range routes {
		types := make(map[string]AttrType, len(attrsOf[i]))
		for _, a := range attrsOf[i] {
			types[a.Name] = a.Type.canonical()
		}
		r.Identify.Kind = canonicalKind(r.Identify.Kind)
		hr := HookRoute{Name: r.Name, When: r.When, ForEach: r.ForEach, EventName: r.EventName, Identify: r.Identify,
			UnknownUser: r.UnknownUser, HoldFor: parseHoldFor(r.HoldFor), CreateFrom: r.CreateFrom, Mappings: make([]TypedMapping, len(r.Mappings))}
		for j, m := range r.Mappings {
			// An attribute always exists: UpdateEvent refuses to remove a mapped one and validate checks
			// new mappings, both under a lock on the event row.
			hr.Mappings[j] = TypedMapping{Attribute: m.Attribute, Type: types[m.Attribute], Field: m.Field, Expr: m.Expr, OnError: m.OnError}
		}
		h.Routes[i] = hr
	}
	h.Routes = shareRoutes(h.Routes)
	first := &h.Routes[0]
	h.EventName, h.Identify, h.Mappings, h.UnknownUser, h.HoldFor = first.EventName, first.Identify, first.Mappings, first.UnknownUser, first.HoldFor
	h.CreateFrom = first.CreateFrom
}

// canonical is t as the constant of its name, so that the Hooks read share it rather than each hold a
// copy decoded from its row.
func (t AttrType) canonical() AttrType {
	for _, c := range [...]AttrType{TypeInteger, TypeString, TypeList, TypeDate, TypeBoolean, TypePrice} {
		if t == c {
			return c
		}
	}
	return t
}

// canonicalKind is k as the constant of its name, as AttrType.canonical.
func canonicalKind(k identify.Kind) identify.Kind {
	for _, c := range [...]identify.Kind{identify.ByUserID, identify.ByEmail, identify.ByPhone, identify.ByHWID} {
		if k == c {
			return c
		}
	}
	return k
}

// senderVerifications are the catalog's verification configs by sender, which the Hooks that use them
// point to (Hook.Verification).
var senderVerifications = func() map[string]*verify.Config {
	m := make(map[string]*verify.Config, len(senders))
	for name, s := range senders {
		m[name] = &s.Verification
	}
	return m
}()
