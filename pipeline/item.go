package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/bytedance/sonic/ast"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/expr"
	"github.com/inlet-dev/inlet/internal/fieldpath"
	"github.com/inlet-dev/inlet/internal/form"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/jsonvalid"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Hooks looks a webhook's configuration up by public id: webhook.Cache in production. It returns an
// error wrapping domainerr.ErrNotFound for a deleted webhook; any other error is taken as temporary and
// retried.
type Hooks interface {
	Get(ctx context.Context, publicID string) (*webhook.Hook, error)
}

// HookPrefetcher is a Hooks that can read many webhooks in one round trip ahead of the Gets
// (webhook.Cache.Prefetch): the pipeline hands it a poll's webhook ids, so that records for many
// webhooks do not cost a query each. Best effort: what it could not read, Get reads.
type HookPrefetcher interface {
	// PrefetchHooks reads ids and hands back, in hooks (as long as ids), what it found cached: none
	// where Get must be called (webhook.Cache.PrefetchHooks).
	PrefetchHooks(ctx context.Context, ids []string, hooks []webhook.Cached)
	// Fresh reports whether Get would still answer x's config from memory (webhook.Cache.Fresh): the
	// config compiled from it can be used without looking the webhook up.
	Fresh(x webhook.Cached) bool
}

// Subject is who an event is about, as the directory resolves an identifier: the user id (empty for an
// anonymous device), the device when identified by hwid, and all the user's devices (a journey needs a
// device to start). It is the directory's own type, so that its Resolver serves the pipeline without an
// adapter copying every answer.
type Subject = directory.Subject

// Deliveries tells which requests repeat a delivery of their sender (delivery.Store in production): it
// decides claims into verdicts and stores the originals, and deletes the originals whose window has
// long ended. Any error is taken as temporary and retried.
type Deliveries interface {
	Claim(ctx context.Context, claims []delivery.Claim, verdicts []delivery.Verdict) error
	DeleteExpired(ctx context.Context, before time.Time, limit int) (int, error)
}

// Resolver turns a batch of identifiers of one kind into subjects: directory.Resolver in production. Values without a subject are absent from the map; an error means the directory could not be
// asked and is retried, never taken as "user not found".
type Resolver interface {
	Resolve(ctx context.Context, projectID int64, kind identify.Kind, values []string) (map[string]Subject, error)
}

// Creator creates the subjects of identifiers the directory does not know, for routes whose
// unknown-user policy is create (webhook.UnknownUserCreate): directory.Resolver in production. Create
// writes them (skipping those that exist, so a replay or a concurrent call converges on the same rows)
// and answers the subjects as the directory then has them; Plan answers what Create would make,
// writing nothing (a dry run). A refused value (an invalid e-mail) is in Created.Refused; an error
// means the directory could not be asked and is retried.
type Creator interface {
	Create(ctx context.Context, projectID int64, kind identify.Kind, values []string, contacts map[string]directory.Contact) (Created, error)
	Plan(ctx context.Context, projectID int64, kind identify.Kind, values []string, contacts map[string]directory.Contact) (Created, error)
}

// Created is what a Creator made: the directory's own type, as Subject is.
type Created = directory.Created

// Contact is the e-mail and phone a created user gets from the payload: the directory's own type.
type Contact = directory.Contact

// item is one webhooks.requests record on its way through the pipeline.
type item struct {
	partition int32
	offset    int64
	epoch     int32
	healOnly  bool          // already in activity_log; only its events rows are missing (see partState.heal)
	healFired chstore.Fired // healOnly: what its activity row says it fired

	requestID     uuid.UUID
	webhookID     string
	projectID     int64
	receivedMs    int64
	configVersion int64
	outcome       wire.Outcome
	edgeStatus    uint16
	bodyBytes     uint32
	truncated     bool
	body          []byte
	// contentType is a form body's Content-Type (wire.HeaderContentType), nil for JSON; view is then
	// the form's JSON view (form.ToJSON), which the mappings read: the body itself is what is stored.
	contentType []byte
	view        []byte
	headerErr   string
	// sender are the sender headers the record carries (aliasing its bytes; the array is the
	// processor's, reused every poll).
	sender []wire.SenderHeader
	// trace is the edge span's context (wire.HeaderTraceParent), zero for none; status is the activity
	// status finish gave the request, for its span.
	trace  wire.TraceParent
	status string

	hook *compiledHook
	// searcher reads the payload (search: it has been made); a value, as the item is on the heap
	// already, so that making it costs no allocation.
	searcher ast.Searcher
	search   bool
	// node holds the value being read (identifier, key, attribute): methods of *ast.Node make a local
	// one escape, and the item is on the heap already, so reading a value costs no allocation.
	node   ast.Node
	reason string
	detail []string
	// skipped: reason is a skip's (no_route, no_elements), not a failure's.
	skipped bool

	// route is the route that took the request; elems its events to fire: one (index -1) or one per
	// element of a fan-out. Set once the body is read and a route holds.
	route *compiledRoute
	elems []element
	// tree is the body as expressions read it (expr.Lazy: fields found when read), made once per
	// request when a route needs it; headers the kept headers they see. exprIn is their input.
	tree     any
	treeDone bool
	headers  map[string]string
	exprIn   expr.Input
	exprRes  expr.Result
	// condTrace, when set (a dry run), is told what each condition tried gave.
	condTrace func(route int, matched bool, err error)

	// key is the hash of the sender's delivery key when hasKey; duplicateOf the first request of the
	// delivery when the claim found this request repeats it.
	key         [32]byte
	hasKey      bool
	duplicateOf uuid.UUID

	// attempt is a later attempt's headers (package replay): zero for the edge's first attempt. A later
	// attempt claims (request id, attempt number) instead of the sender's key; attemptCopy is set when
	// an earlier position of the same attempt holds the claim, and then the item writes nothing.
	attempt     wire.Attempt
	attemptCopy bool

	// heldUntil is when the request's hold runs out, set when it is held (its elements that found no
	// user then wait, reason waiting_for_user).
	heldUntil time.Time
}

// parseRecord reads the wire headers. A record that breaks the contract is still logged (as failed,
// reason invalid_record) so that nothing the edge acknowledged disappears silently. The sender headers
// are decoded into the free capacity of *senders, which is advanced past them (nil: into memory of
// their own), so that a poll's records share one array.
func parseRecord(r *kgo.Record, it *item, senders *[]wire.SenderHeader) {
	var req wire.Request
	if senders != nil {
		req.Sender = (*senders)[len(*senders):]
	}
	bad := wire.DecodeRequest(r, &req)
	if n := len(req.Sender); senders != nil && n > 0 && n <= cap(*senders)-len(*senders) {
		*senders = (*senders)[:len(*senders)+n] // decoded in place (append had the room)
	}
	*it = item{partition: r.Partition, offset: r.Offset, epoch: r.LeaderEpoch, body: r.Value,
		requestID: req.ID, webhookID: req.WebhookID, projectID: req.ProjectID, receivedMs: req.ReceivedMs,
		configVersion: req.ConfigVersion, outcome: req.Outcome, edgeStatus: uint16(req.EdgeStatus),
		bodyBytes: uint32(req.BodyBytes), truncated: req.Truncated, sender: req.Sender,
		contentType: req.ContentType, trace: req.Trace, attempt: req.Attempt}
	if req.Detail != nil {
		it.detail = append(it.detail, bytesString(req.Detail))
	}
	if it.receivedMs == 0 {
		// Without the edge's clock the record's own timestamp is the best approximation.
		it.receivedMs = r.Timestamp.UnixMilli()
	}
	if it.requestID == uuid.Nil {
		// A stable id keeps reprocessing idempotent even for a record that broke the contract.
		it.requestID = uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)))
	}
	if it.bodyBytes == 0 {
		it.bodyBytes = uint32(len(r.Value))
	}
	if len(bad) > 0 {
		it.headerErr = "record headers missing or malformed: " + strings.Join(bad, ", ")
	}
}

// element is one event a request fires: the request's single event, or one element of a fan-out.
type element struct {
	// index is the element's position in the fan-out's array; -1 for a request's single event.
	index int
	// raw is the element's JSON (fan-out; "" reads the body), searcher its reader, made on first use.
	raw      string
	searcher *ast.Searcher
	item     any // the element as expressions read it (expr.Lazy), made on first use
	eventID  uuid.UUID

	identValue string
	subject    Subject
	found      bool
	// created: the subject was created (a dry run: would be) by the route's unknown-user policy.
	created bool
	// createdWith: the e-mail and phone read from the payload that the created user got (would get).
	createdWith directory.Contact
	// holdable: no subject, and the route's unknown-user policy is hold; failed with user_not_found
	// until the processor's hold step holds it (reason waiting_for_user).
	holdable bool
	// reason fails the element (and the request); detail says what happened to it (attributes
	// omitted or dropped, why it failed).
	reason string
	detail []string
	// attrs are the attributes fired (JSON object), set when the element fires.
	attrs string
	fired bool
	rec   *kgo.Record // the event record to produce, until the batch has it
	// earlier: an earlier attempt of the request fired this element's event (wire.Attempt.Fired); it
	// is neither resolved nor fired again, and counts as a success.
	earlier bool
}

func (e *element) fail(reason, format string, args ...any) {
	e.reason = reason
	e.detail = append(e.detail, fmt.Sprintf(format, args...))
}

// resolvable reports whether the element's identifier is to be resolved.
func (e *element) resolvable() bool { return e.reason == "" && e.identValue != "" && !e.earlier }

// compiledHook is a Hook with its paths and expressions compiled once per config version.
type compiledHook struct {
	hook *webhook.Hook
	// cached is hook as the cache handed it over (HookPrefetcher), to check it is still current without
	// a lookup; zero until a prefetch hands it over.
	cached webhook.Cached
	// routes and headerNames are set's: shared by the webhooks whose routes and kept headers are
	// equal (see routeSet). They are read-only.
	routes []compiledRoute
	// headerNames are the kept headers' names, the keys of the headers expressions see.
	headerNames []string
	// set is what routes and headerNames come from, counted in the processor's routeSets; nil when
	// compiled for this webhook alone (compileHook).
	set       *routeSet
	attrsTail []byte // `"__webhook":"<id>"}`
	exprs     int    // the CEL programs compiled (conditions and mapped values)
	dedup     compiledDedup
	loc       *time.Location // the webhook's time zone, for dates without an offset
	// mask is the webhook's masking (mask.go); nil when it marks nothing sensitive. masked is then
	// what each route (by index) reads of sensitive fields.
	mask   *compiledMask
	masked []routeMask
}

// routeSet is a webhook's routes and kept headers' names compiled: what depends only on the routes'
// config and the kept headers, so that webhooks equal in these (many shops connected from one
// template) share one. A processor keeps every webhook it meets (up to maxCompiledHooks), and the
// compiled routes are most of a webhook's memory, pointers the garbage collector follows at every
// cycle. What differs between such webhooks (the id in attrsTail, the masking, the dedup key, the time
// zone) stays in each compiledHook.
type routeSet struct {
	key         [32]byte // routeSetKey
	routes      []compiledRoute
	headerNames []string
	exprs       int // the CEL programs in routes
	// refs counts the compiledHooks in processor.compiled that hold the set; it goes at 0.
	refs int
	// one holds routes when there is one (most webhooks): one object less.
	one [1]compiledRoute
}

// routeMask is what a route reads of the webhook's sensitive fields (mask.go): the attributes mapped
// from them and whether the identifier is.
type routeMask struct {
	attrs map[string]bool
	ident bool
}

// routeMask is route i's masking; zero when the webhook masks nothing.
func (c *compiledHook) routeMask(i int) routeMask {
	if i < len(c.masked) {
		return c.masked[i]
	}
	return routeMask{}
}

// compiledRoute is a route with its condition, paths and expressions compiled.
type compiledRoute struct {
	r     *webhook.HookRoute
	index int
	// label names the route in the activity log and in messages: its name, or "#<position>"; label is
	// "" for a webhook's single unnamed route (as before routes).
	label string
	when  *expr.Program
	// whenErr: the condition does not compile (saved by an older release, say); every request the
	// route is tried for fails with expression_error.
	whenErr error

	fanOut bool
	// forEachAll: for_each is "$", the body itself is the array; forEachKeys is the array's path
	// otherwise.
	forEachAll  bool
	forEachKeys []any
	forEachErr  error
	identKeys   []any
	identErr    error
	identHeader string // the kept header the identifier is read from; "" for the payload
	identBody   bool   // fan-out: the identifier is read from the body ($.…), not the element
	// createFrom are the fields the create policy reads the new user's e-mail and phone from
	// (webhook.CreateFrom), read only for an identifier the directory does not know.
	createFrom [2]contactField
	mappings   []compiledMapping
	// exprs: the route evaluates expressions (mappings), so its requests' bodies are decoded for them.
	exprs bool
}

// name is how messages name the route: "route paid" or "route #2"; "" when it has no label.
func (r *compiledRoute) name() string {
	if r.label == "" {
		return ""
	}
	return "route " + r.label + ": "
}

// compiledMapping is a mapping compiled. It keeps only what requests read: a webhook's compiled
// mappings are most of what the pipeline keeps per webhook it has met.
type compiledMapping struct {
	name   []byte // the attribute name as a JSON string followed by ':' (in the route's one buffer)
	attr   string
	typ    webhook.AttrType
	field  string // as configured, for messages
	keys   []any  // the field's path for the searcher
	header string // the kept header the value is read from; "" for the payload
	prog   *expr.Program
	// err: the field's path does not parse (the attribute is omitted), or, expr, the expression does
	// not compile (the attribute fails, or drops, with expression_error).
	err  error
	expr bool // the value is an expression's (prog), not a field's
	body bool // fan-out: read from the body ($.…), not the element
	drop bool // a value that does not coerce omits the attribute (on_error drop) instead of failing
}

// compiledDedup is where a webhook's delivery key is, parsed once per config version.
type compiledDedup struct {
	on       bool
	source   delivery.Source
	header   string   // SourceHeader: its name
	path     string   // SourceBody: the field path as configured
	keys     []any    // SourceBody: the path for the searcher
	hashWith []string // SourceBodyHash: the headers hashed with the body
	window   time.Duration
	about    string // the key, for a duplicate's detail: "X-GitHub-Delivery header", "field id", "body"
	// invalid says why a configured key cannot be read (a path that does not parse); requests are then
	// not de-duplicated and their detail says so.
	invalid string
}

// headerPath tells a path that names a sender header: headers.<Name> or headers["<Name>"] where Name
// is, ignoring case, one of the headers the webhook keeps. It returns the kept header's name. Any other
// path, headers.… included, is the payload's, as it was before webhooks kept headers.
func headerPath(p fieldpath.Path, kept []webhook.KeptHeader) (string, bool) {
	steps := p.Steps()
	if len(steps) != 2 || steps[0].IsIndex || steps[0].Key != "headers" || steps[1].IsIndex {
		return "", false
	}
	for _, h := range kept {
		if strings.EqualFold(h.Name, steps[1].Key) {
			return h.Name, true
		}
	}
	return "", false
}

// senderHeader returns the value of the record's sender header name (ignoring case).
func (it *item) senderHeader(name string) ([]byte, bool) {
	for i := range it.sender {
		if strings.EqualFold(it.sender[i].Name(), name) {
			return it.sender[i].Value, true
		}
	}
	return nil, false
}

// lookup reads the value at keys into it.node, with fieldpath.Path.Get's semantics: a missing key, an
// index out of range or a step into a value of the other kind is ErrNotFound. One searcher serves all
// of a record's paths, without validating: extractIdentifier has checked the whole payload (jsonvalid)
// first.
func (it *item) lookup(keys []any) error {
	if !it.search {
		it.searcher, it.search = *ast.NewSearcher(bytesString(it.payload())), true
		it.searcher.ValidateJSON = false
	}
	return searchInto(&it.searcher, keys, &it.node)
}

// searchInto reads the value at keys into n, which must not be a local: Node's methods would move it
// to the heap at every call.
func searchInto(s *ast.Searcher, keys []any, n *ast.Node) error {
	var err error
	if *n, err = s.GetByPath(keys...); err != nil {
		*n = ast.Node{}
		return fieldpath.ErrNotFound
	}
	if err := n.Check(); err != nil {
		*n = ast.Node{}
		return err
	}
	return nil
}

// payload is what the mappings read: the body, or a form's JSON view.
func (it *item) payload() []byte {
	if it.view != nil {
		return it.view
	}
	return it.body
}

// compileHook compiles h for itself alone (a dry run); the processor shares the compiled routes of
// equal configs (processor.compile).
func compileHook(h *webhook.Hook) *compiledHook {
	return compileHookWith(h, compileRoutes(h))
}

// compileRoutes compiles h's routes and kept headers' names: the part of its compiled config that
// webhooks with equal routes and kept headers share.
func compileRoutes(h *webhook.Hook) *routeSet {
	s := &routeSet{}
	if len(h.Headers) > 0 {
		s.headerNames = make([]string, len(h.Headers))
		for i, k := range h.Headers {
			s.headerNames[i] = k.Name
		}
	}
	routes := h.RouteList()
	if len(routes) == 1 {
		s.routes = s.one[:]
	} else {
		s.routes = make([]compiledRoute, len(routes))
	}
	for i := range routes {
		s.routes[i] = compileRoute(&routes[i], i, len(routes), h.Headers)
		r := &s.routes[i]
		if r.when != nil {
			s.exprs++
		}
		for j := range r.mappings {
			if r.mappings[j].prog != nil {
				s.exprs++
			}
		}
	}
	return s
}

// compileHookWith is h compiled with s, its routes compiled (compileRoutes, or an equal webhook's).
func compileHookWith(h *webhook.Hook, s *routeSet) *compiledHook {
	c := &compiledHook{hook: h, loc: h.Location, routes: s.routes, headerNames: s.headerNames, exprs: s.exprs}
	if c.loc == nil {
		c.loc = time.UTC
	}
	tail := append(make([]byte, 0, len(`"__webhook":"`)+len(h.PublicID)+len(`"}`)), `"__webhook":`...)
	c.attrsTail = append(wire.AppendJSONString(tail, h.PublicID), '}')
	c.dedup = compileDedup(h.Dedup)
	if c.mask = compileMask(&h.Mask); c.mask != nil {
		c.masked = make([]routeMask, len(c.routes))
		for i := range c.routes {
			r, m := c.routes[i].r, &c.masked[i]
			m.ident = c.mask.reads(r.Identify.Field)
			for _, mp := range r.Mappings {
				if c.mask.reads(mp.Field) || (mp.Expr != "" && c.mask.exprRelated(mp.Expr)) {
					if m.attrs == nil {
						m.attrs = map[string]bool{}
					}
					m.attrs[mp.Attribute] = true
				}
			}
		}
	}
	return c
}

// routeSetKey is the digest of what compileRoutes reads of h: its routes and kept headers' names.
func routeSetKey(h *webhook.Hook) [32]byte {
	var buf [512]byte
	b := webhook.AppendRoutesKey(buf[:0], h.RouteList())
	for _, k := range h.Headers {
		b = binary.AppendUvarint(b, uint64(len(k.Name)))
		b = append(b, k.Name...)
	}
	return sha256.Sum256(b)
}

// compiledFrom reports whether s was compiled from routes and kept headers equal to h's (a digest
// that matches another config's is then told apart).
func (s *routeSet) compiledFrom(h *webhook.Hook) bool {
	routes := h.RouteList()
	if len(routes) != len(s.routes) || len(h.Headers) != len(s.headerNames) {
		return false
	}
	for i := range routes {
		if !sameRoute(s.routes[i].r, &routes[i]) {
			return false
		}
	}
	for i, k := range h.Headers {
		if k.Name != s.headerNames[i] {
			return false
		}
	}
	return true
}

// sameCompiled reports whether compiling b gives what compiling a gave: the same webhook with the same
// routes, kept headers, delivery key, masking and time zone. The cache reads a webhook again when its
// entry expires (webhook_cache.ttl) or everything is invalidated, which is a new *webhook.Hook with, most
// often, the same config: at 100,000 webhooks a recompile on each of these reads is thousands of
// compiles a second. What compileHook reads must be compared here; TestSameCompiledCoversHook keeps the
// two in step.
func sameCompiled(a, b *webhook.Hook) bool {
	if a.PublicID != b.PublicID || len(a.Routes) != len(b.Routes) ||
		!slices.EqualFunc(a.Routes, b.Routes, func(x, y webhook.HookRoute) bool { return sameRoute(&x, &y) }) ||
		len(a.Routes) == 0 && !sameRoute(singleRoute(a), singleRoute(b)) ||
		!slices.Equal(a.Headers, b.Headers) || a.Dedup.Key != b.Dedup.Key || a.Dedup.Window != b.Dedup.Window ||
		!slices.Equal(a.Dedup.HashHeaders, b.Dedup.HashHeaders) || !sameMask(&a.Mask, &b.Mask) {
		return false
	}
	// A zone's rules come from the binary's database: the same name is the same zone.
	return a.Location == b.Location || a.Location != nil && b.Location != nil && a.Location.String() == b.Location.String()
}

// singleRoute is the route of a Hook built without Routes (webhook.Hook.RouteList).
func singleRoute(h *webhook.Hook) *webhook.HookRoute {
	return &webhook.HookRoute{EventName: h.EventName, Identify: h.Identify, Mappings: h.Mappings, UnknownUser: h.UnknownUser,
		HoldFor: h.HoldFor, CreateFrom: h.CreateFrom}
}

func sameRoute(a, b *webhook.HookRoute) bool {
	return a.Name == b.Name && a.When == b.When && a.ForEach == b.ForEach && a.EventName == b.EventName &&
		a.Identify == b.Identify && slices.Equal(a.Mappings, b.Mappings) && a.UnknownUser == b.UnknownUser &&
		a.HoldFor == b.HoldFor && a.CreateFrom == b.CreateFrom
}

func sameMask(a, b *webhook.Mask) bool {
	return bytes.Equal(a.Key, b.Key) && slices.Equal(a.Headers, b.Headers) &&
		slices.EqualFunc(a.Fields, b.Fields, fieldpath.Path.Equal)
}

// rebind points c, compiled from an earlier read of h's webhook with the same config (sameCompiled),
// at h, so that the earlier read can be let go. Shared routes stay as they are: they may be another
// webhook's, and their configs are equal to h's; they keep the routes they were compiled from (most
// often h's too, as the store shares equal routes between its Hooks).
func (c *compiledHook) rebind(h *webhook.Hook) {
	c.hook = h
	if c.set != nil {
		return
	}
	if len(h.Routes) > 0 {
		for i := range c.routes {
			c.routes[i].r = &h.Routes[i]
		}
		return
	}
	routes := h.RouteList()
	for i := range c.routes {
		c.routes[i].r = &routes[i]
	}
}

// compileRoute compiles route i of n. Configs are checked when saved; what fails here (a config saved
// by an older release) fails the requests that reach it, with a reason that says so.
func compileRoute(r *webhook.HookRoute, i, n int, kept []webhook.KeptHeader) compiledRoute {
	cr := compiledRoute{r: r, index: i, label: r.Name, fanOut: r.ForEach != ""}
	if cr.label == "" && (n > 1 || r.When != "" || r.ForEach != "") {
		cr.label = "#" + strconv.Itoa(i+1)
	}
	if r.When != "" {
		cr.when, cr.whenErr = webhook.CompileCondition(r.When)
	}
	if cr.fanOut {
		var p fieldpath.Path
		p, cr.forEachErr = webhook.FanOutPath(r.ForEach)
		cr.forEachAll, cr.forEachKeys = p.IsZero(), p.Keys()
	}
	ident, err := fieldpath.Parse(r.Identify.Field)
	if cr.identErr = err; err == nil {
		cr.identHeader, _ = headerPath(ident, kept)
		var rest fieldpath.Path
		cr.identBody, rest = ident.FromRoot()
		cr.identBody = cr.identBody || !cr.fanOut
		cr.identKeys = rest.Keys()
	}
	if r.UnknownUser == webhook.UnknownUserCreate {
		cr.createFrom[0] = compileContactField("e-mail", r.CreateEmail, cr.fanOut, kept)
		cr.createFrom[1] = compileContactField("phone", r.CreatePhone, cr.fanOut, kept)
	}
	// Sized once: kept for every webhook the pipeline has met (up to maxCompiledHooks), so growing by
	// append would keep up to twice the mappings' memory, and make garbage on the way.
	// The attributes' names in one buffer, as one object rather than one each.
	size := 0
	for _, m := range r.Mappings {
		size += len(m.Attribute) + len(`"":`)
	}
	names := make([]byte, 0, size)
	cr.mappings = make([]compiledMapping, 0, len(r.Mappings))
	for _, m := range r.Mappings {
		cm := compiledMapping{attr: m.Attribute, typ: m.Type, field: m.Field, drop: m.OnError == webhook.OnErrorDrop}
		if m.Expr != "" {
			cm.field, cm.expr = "expression", true
			cm.prog, cm.err = webhook.CompileValue(m.Expr, cr.fanOut)
			cr.exprs = true
		} else {
			var p fieldpath.Path
			if p, cm.err = fieldpath.Parse(m.Field); cm.err == nil {
				cm.header, _ = headerPath(p, kept)
				var rest fieldpath.Path
				cm.body, rest = p.FromRoot()
				cm.body = cm.body || !cr.fanOut
				cm.keys = rest.Keys()
			}
		}
		at := len(names)
		names = append(wire.AppendJSONString(names, m.Attribute), ':')
		cm.name = names[at:len(names):len(names)] // a name escaped longer may move the rest to a new buffer
		cr.mappings = append(cr.mappings, cm)
	}
	cr.packKeys()
	return cr
}

// packKeys moves the route's paths (fan-out, identifier, mappings, contact fields) into one array: one
// object of pointers per route rather than one per path.
func (cr *compiledRoute) packKeys() {
	n := len(cr.forEachKeys) + len(cr.identKeys) + len(cr.createFrom[0].keys) + len(cr.createFrom[1].keys)
	for i := range cr.mappings {
		n += len(cr.mappings[i].keys)
	}
	all := make([]any, 0, n)
	put := func(keys []any) []any {
		if len(keys) == 0 {
			return keys
		}
		at := len(all)
		all = append(all, keys...)
		return all[at:len(all):len(all)]
	}
	cr.forEachKeys, cr.identKeys = put(cr.forEachKeys), put(cr.identKeys)
	cr.createFrom[0].keys, cr.createFrom[1].keys = put(cr.createFrom[0].keys), put(cr.createFrom[1].keys)
	for i := range cr.mappings {
		cr.mappings[i].keys = put(cr.mappings[i].keys)
	}
}

func compileDedup(d webhook.Dedup) compiledDedup {
	kind, arg := d.Source()
	c := compiledDedup{on: kind != "", window: d.EffectiveWindow()}
	switch kind {
	case "":
	case "header":
		c.source, c.header = delivery.SourceHeader, arg
		c.about = arg + " header"
	case "body":
		c.source, c.path = delivery.SourceBody, arg
		c.about = "field " + arg
		p, err := fieldpath.Parse(arg)
		if err != nil {
			c.invalid = fmt.Sprintf("not de-duplicated: the key's field path %q is invalid: %v", arg, err)
		} else {
			c.keys = p.Keys()
		}
	case webhook.DedupBodyHash:
		c.source, c.hashWith = delivery.SourceBodyHash, d.HashHeaders
		c.about = "body"
		for _, h := range d.HashHeaders {
			c.about += " and " + h + " header"
		}
	default:
		c.invalid = fmt.Sprintf("not de-duplicated: the key %q names no header, field or body hash", d.Key)
	}
	return c
}

// readBody checks the body (a form: makes its JSON view, which the mappings read); on failure it sets
// the reason and returns false. A body that breaks package jsonvalid's rule fails as invalid_json.
func (it *item) readBody() bool {
	if it.contentType != nil {
		// A form: the edge checked it against the same rule; its JSON view is what maps. A record the
		// edge did not check (another producer) fails as the edge would have refused it.
		view, err := form.ToJSON(nil, bytesString(it.contentType), it.body)
		if err != nil {
			it.fail(string(wire.OutcomeInvalidForm), "%v", err)
			return false
		}
		it.view = view
	} else if err := jsonvalid.Validate(it.body, jsonvalid.MaxDepth); err != nil {
		// The edge refuses such a body; one it did not check (written before it did, or by another
		// producer) fails the same way rather than be read as sonic reads it.
		it.fail(wire.ReasonInvalidJSON, "%v", err)
		return false
	}
	return true
}

// extractIdentifier reads the body, picks the route, lays out its events (elements) and reads each
// one's identifier. It returns false when the request fails or is skipped as a whole (the reason set);
// an element whose identifier cannot be read fails alone (its reason set).
func (it *item) extractIdentifier(lim *Limits, alloc func(n int) []element) bool {
	if !it.readBody() || !it.pickRoute() || !it.expand(alloc) {
		return false
	}
	for i := range it.elems {
		it.identify(&it.elems[i], lim)
	}
	return true
}

// exprInput is the expressions' input for element e (nil: the request's): the body, read lazily (a
// field is found when an expression reads it, not decoded up front), the kept headers ("" when absent;
// names matched ignoring case) and, in a fan-out, the element and its index.
func (it *item) exprInput(e *element) *expr.Input {
	if !it.treeDone {
		it.treeDone = true
		it.tree = expr.Lazy(it.payload())
		c := it.hook
		if len(c.headerNames) > 0 && it.headers == nil {
			it.headers = make(map[string]string, len(c.headerNames))
		}
		for _, name := range c.headerNames {
			v, _ := it.senderHeader(name)
			it.headers[name] = bytesString(v) // expressions look names up ignoring case
		}
	}
	in := &it.exprIn
	*in = expr.Input{Body: it.tree, Headers: it.headers}
	if e != nil && e.index >= 0 {
		if e.item == nil {
			e.item = expr.Lazy(stringBytes(e.raw))
		}
		in.Item, in.Index = e.item, e.index
	}
	return in
}

// pickRoute tries the routes in order and takes the first whose condition holds. No route: the request
// is skipped (no_route). A condition that fails fails the request (expression_error): a route is not
// passed over for an error, which would hide it.
func (it *item) pickRoute() bool {
	c := it.hook
	for i := range c.routes {
		r := &c.routes[i]
		switch {
		case r.whenErr != nil:
			it.fail(wire.ReasonExpressionError, "%scondition does not compile: %v", r.name(), r.whenErr)
			return false
		case r.when == nil:
			it.route = r
			return true
		}
		ok, err := r.when.Bool(it.exprInput(nil))
		if it.condTrace != nil {
			it.condTrace(i, ok, err)
		}
		if err != nil {
			it.fail(wire.ReasonExpressionError, "%scondition: %v", r.name(), err)
			return false
		}
		if ok {
			it.route = r
			return true
		}
	}
	it.skip(wire.ReasonNoRoute, "no route's condition holds (%d tried); no event fired", len(c.routes))
	return false
}

// expand lays out the events of the route: one, or one per element of its fan-out's array (at most
// webhook.MaxFanOut). An absent, null or empty array skips the request (no_elements).
func (it *item) expand(alloc func(n int) []element) bool {
	r := it.route
	if !r.fanOut {
		it.elems = alloc(1)
		it.elems[0] = element{index: -1, eventID: it.requestID}
		return true
	}
	if r.forEachErr != nil {
		it.fail(wire.ReasonFanOutInvalid, "%sfor_each %q is invalid: %v", r.name(), r.r.ForEach, r.forEachErr)
		return false
	}
	n := &it.node
	var err error
	if r.forEachAll {
		*n = ast.NewRaw(bytesString(it.payload()))
	} else if err = it.lookup(r.forEachKeys); err != nil {
		if errors.Is(err, fieldpath.ErrNotFound) {
			it.skip(wire.ReasonNoElements, "%sfield %s is absent; no event fired", r.name(), r.r.ForEach)
			return false
		}
		it.fail(wire.ReasonFanOutInvalid, "%sfield %s: %v", r.name(), r.r.ForEach, err)
		return false
	}
	switch kind := n.TypeSafe(); kind {
	case ast.V_ARRAY:
	case ast.V_NULL, ast.V_NONE:
		it.skip(wire.ReasonNoElements, "%sfield %s is null; no event fired", r.name(), r.r.ForEach)
		return false
	default:
		it.fail(wire.ReasonFanOutInvalid, "%sfield %s is %s, not an array to fan out over", r.name(), r.r.ForEach, aKind(kind))
		return false
	}
	arr, err := n.ArrayUseNode()
	if err != nil {
		it.fail(wire.ReasonFanOutInvalid, "%sfield %s: %v", r.name(), r.r.ForEach, err)
		return false
	}
	switch {
	case len(arr) == 0:
		it.skip(wire.ReasonNoElements, "%sfield %s is an empty array; no event fired", r.name(), r.r.ForEach)
		return false
	case len(arr) > webhook.MaxFanOut:
		it.fail(wire.ReasonFanOutTooLarge, "%sfield %s has %d elements, more than %d; no event fired", r.name(), r.r.ForEach, len(arr), webhook.MaxFanOut)
		return false
	}
	it.elems = alloc(len(arr))
	for i := range arr {
		raw, err := arr[i].Raw()
		e := &it.elems[i]
		*e = element{index: i, raw: raw, eventID: wire.ElementEventID(it.requestID, i)}
		if err != nil {
			e.fail(wire.ReasonFanOutInvalid, "element %d: %v", i, err)
		}
	}
	return true
}

// lookupIn reads the value at keys into it.node, from element e (fan-out) or, when body is set or the
// request has a single event, from the body.
func (it *item) lookupIn(e *element, body bool, keys []any) error {
	if body || e.raw == "" {
		return it.lookup(keys)
	}
	if e.searcher == nil {
		e.searcher = ast.NewSearcher(e.raw)
		e.searcher.ValidateJSON = false
	}
	return searchInto(e.searcher, keys, &it.node)
}

// identify reads element e's identifier; on failure it fails the element.
func (it *item) identify(e *element, lim *Limits) {
	if e.reason != "" {
		return
	}
	r := it.route
	field := r.r.Identify.Field
	if r.identErr != nil {
		e.fail(wire.ReasonIdentifierMissing, "identifier path %q is invalid: %v", field, r.identErr)
		return
	}
	n := &it.node
	var err error
	if r.identHeader != "" {
		v, ok := it.senderHeader(r.identHeader)
		if !ok {
			e.fail(wire.ReasonIdentifierMissing, "header %s is absent", r.identHeader)
			return
		}
		*n = ast.NewString(bytesString(v))
	} else {
		err = it.lookupIn(e, r.identBody, r.identKeys)
	}
	if err != nil {
		if errors.Is(err, fieldpath.ErrNotFound) {
			e.fail(wire.ReasonIdentifierMissing, "field %s is absent", field)
		} else {
			e.fail(wire.ReasonIdentifierMissing, "field %s: %v", field, err)
		}
		return
	}
	kind := n.TypeSafe()
	var v string
	switch kind {
	case ast.V_NONE, ast.V_NULL:
		e.fail(wire.ReasonIdentifierMissing, "field %s is null", field)
		return
	case ast.V_STRING, ast.V_NUMBER:
		v, _ = scalarText(n, kind)
		v = strings.TrimSpace(v)
	default:
		e.fail(wire.ReasonIdentifierMissing, "field %s is a %s, not an identifier", field, kindName(kind))
		return
	}
	if v == "" {
		e.fail(wire.ReasonIdentifierMissing, "field %s is empty", field)
		return
	}
	if r.r.Identify.Kind == identify.ByEmail {
		v = directory.NormalizeEmail(v) // as the directory stores it; no allocation when already NFC
	}
	if len(v) > lim.IdentifierBytes {
		e.fail(wire.ReasonIdentifierInvalid, "field %s is %d bytes long, more than %d", field, len(v), lim.IdentifierBytes)
		return
	}
	e.identValue = v
}

// extractKey reads the sender's delivery key and hashes it (h) into it.key. A request whose key cannot
// be read (the header absent, the field absent or neither a string nor a number, the body not JSON) is
// not de-duplicated, and its detail says why.
// attemptKey sets the item's claim to its attempt's: the request id and the attempt number, hashed.
func (it *item) attemptKey(h *delivery.Hasher) {
	h.Begin(delivery.SourceAttempt)
	h.Part(it.requestID[:])
	var b [8]byte
	h.Part(strconv.AppendInt(b[:0], int64(it.attempt.Number), 10))
	it.key, it.hasKey = h.Sum(), true
}

// markFiredEarlier marks the elements an earlier attempt fired (wire.Attempt.Fired; -1 is a single
// event), which this attempt does not fire again. A list that does not read fails the request with
// invalid_record: firing again what may have fired is what must not happen.
func (it *item) markFiredEarlier() {
	if it.attempt.Fired == "" {
		return
	}
	var buf [16]int
	fired, err := it.attempt.FiredIndices(buf[:0])
	if err != nil {
		it.fail(wire.ReasonInvalidRecord, "attempt %d: %v", it.attempt.Number, err)
		return
	}
	for i := range it.elems {
		if e := &it.elems[i]; slices.Contains(fired, e.index) {
			e.earlier = true
			e.detail = append(e.detail, "fired by an earlier attempt of the request; not fired again")
		}
	}
}

func (it *item) extractKey(h *delivery.Hasher) {
	d := &it.hook.dedup
	if d.invalid != "" {
		it.detail = append(it.detail, d.invalid)
		return
	}
	switch d.source {
	case delivery.SourceHeader:
		v, ok := it.senderHeader(d.header)
		if !ok || len(v) == 0 {
			it.detail = append(it.detail, "not de-duplicated: header "+d.header+" is absent")
			return
		}
		h.Begin(delivery.SourceHeader)
		h.Part(v)
	case delivery.SourceBody:
		if it.reason == wire.ReasonInvalidJSON || it.reason == string(wire.OutcomeInvalidForm) {
			// The body could not be read: the searcher must not scan what was never checked.
			it.detail = append(it.detail, "not de-duplicated: the body is not JSON, so field "+d.path+" cannot be read")
			return
		}
		n := &it.node
		var err error
		if err = it.lookup(d.keys); err != nil {
			it.detail = append(it.detail, "not de-duplicated: field "+d.path+" is absent")
			return
		}
		kind := n.TypeSafe()
		if kind != ast.V_STRING && kind != ast.V_NUMBER {
			it.detail = append(it.detail, "not de-duplicated: field "+d.path+" is "+aKind(kind)+", not a delivery id")
			return
		}
		v, err := scalarText(n, kind)
		if err != nil || v == "" {
			it.detail = append(it.detail, "not de-duplicated: field "+d.path+" is empty")
			return
		}
		h.Begin(delivery.SourceBody)
		h.Part(stringBytes(v))
	case delivery.SourceBodyHash:
		h.Begin(delivery.SourceBodyHash)
		h.Part(it.body)
		for _, name := range d.hashWith {
			if v, ok := it.senderHeader(name); ok {
				h.Part(v)
			} else {
				h.Absent()
			}
		}
	}
	it.key, it.hasKey = h.Sum(), true
}

// aKind is kindName with its article: "an object", "a boolean".
func aKind(kind int) string {
	if k := kindName(kind); k[0] == 'a' || k[0] == 'o' || k[0] == 'i' {
		return "an " + k
	}
	return "a " + kindName(kind)
}

// resolvable reports whether the item's elements are to be resolved: nothing has failed or skipped it
// and it is not a duplicate.
func (it *item) resolvable() bool {
	return it.reason == "" && it.route != nil && it.duplicateOf == uuid.Nil
}

// settle decides the request's status from its own reason and its elements', and completes its
// detail: a single event's reason and detail are the request's; a fan-out's failed elements are summed
// up in it (each element's own outcome is in the activity row's outcomes). A fan-out that fired some
// elements and failed others is failed, with the first failed element's reason.
func (it *item) settle() string {
	switch {
	case it.duplicateOf != uuid.Nil:
		return chstore.StatusDuplicate
	case it.skipped:
		return chstore.StatusSkipped
	case it.reason != "" || it.route == nil || len(it.elems) == 0:
		return chstore.StatusFailed
	}
	if !it.route.fanOut {
		e := &it.elems[0]
		it.detail = append(it.detail, e.detail...)
		switch e.reason {
		case "":
			return chstore.StatusSuccess
		case wire.ReasonWaitingForUser:
			it.reason = e.reason
			return chstore.StatusHeld
		}
		it.reason = e.reason
		return chstore.StatusFailed
	}
	failed, listed, held := 0, 0, 0
	var b strings.Builder
	for i := range it.elems {
		e := &it.elems[i]
		if e.reason == "" {
			continue
		}
		if e.reason == wire.ReasonWaitingForUser {
			held++
			continue
		}
		failed++
		if it.reason == "" {
			it.reason = e.reason
		}
		if listed < 3 {
			listed++
			fmt.Fprintf(&b, "; element %d: %s", e.index, e.reason)
			if len(e.detail) > 0 {
				b.WriteString(" (" + truncateText(e.detail[len(e.detail)-1]) + ")")
			}
		}
	}
	if held > 0 {
		// Held whatever else failed: the attempt that releases it decides its outcome.
		it.reason = wire.ReasonWaitingForUser
		it.detail = append(it.detail, fmt.Sprintf("%d of %d elements wait for their user until %s, %d fired",
			held, len(it.elems), it.heldUntil.Format(time.RFC3339), it.fired()))
	}
	if failed == 0 {
		if held > 0 {
			return chstore.StatusHeld
		}
		return chstore.StatusSuccess
	}
	more := ""
	if failed > listed {
		more = fmt.Sprintf("; %d more in outcomes", failed-listed)
	}
	it.detail = append(it.detail, fmt.Sprintf("%d of %d elements failed, %d fired%s%s", failed, len(it.elems), it.fired(), b.String(), more))
	if held > 0 {
		return chstore.StatusHeld
	}
	return chstore.StatusFailed
}

// fired counts the elements that fire (or fired) an event.
func (it *item) fired() int {
	n := 0
	for i := range it.elems {
		if it.elems[i].fired {
			n++
		}
	}
	return n
}

// commonSubject is the identifier, user id and hwid the activity row shows: the single event's, or
// those every element of a fan-out shares (a Shopify order's line items, identified by the order's
// e-mail); empty where the elements differ.
func (it *item) commonSubject() (ident, userID, hwid string) {
	for i := range it.elems {
		e := &it.elems[i]
		var u, h string
		if e.found {
			u, h = e.subject.UserID, e.subject.HWID
		}
		if i == 0 {
			ident, userID, hwid = e.identValue, u, h
			continue
		}
		if e.identValue != ident {
			ident = ""
		}
		if u != userID {
			userID = ""
		}
		if h != hwid {
			hwid = ""
		}
	}
	return ident, userID, hwid
}

// skip marks the request skipped (no event to fire, not a failure).
func (it *item) skip(reason, format string, args ...any) {
	it.fail(reason, format, args...)
	it.skipped = true
}

// about names the record for a log line.
func (it *item) about() []any {
	return []any{"webhook_id", it.webhookID, "partition", it.partition, "offset", it.offset, "request_id", it.requestID}
}

func (it *item) fail(reason, format string, args ...any) {
	it.reason = reason
	it.detail = append(it.detail, fmt.Sprintf(format, args...))
}

// attrOutcome is what became of one mapping on one request.
type attrOutcome uint8

const (
	attrMapped  attrOutcome = iota // the attribute is in the event
	attrOmitted                    // its field or header is absent, or null, or its path is invalid
	attrDropped                    // its value does not coerce and the mapping says on_error drop
	attrFailed                     // its value does not coerce (or is over a limit): the request fails
)

// attrTrace, when not nil, is told what became of each mapping: its index, outcome, coerced JSON value
// (mapped), failure reason (failed) and the message the detail has (or would have) for it. The
// pipeline passes nil; a dry run (Evaluator) records every attribute, those after a failing one too.
type attrTrace func(i int, o attrOutcome, value []byte, reason, msg string)

// mapAttributes appends element e's attributes object to dst. On a value that does not coerce it
// fails e with attribute_type_mismatch naming the attribute; on a value over a limit, with the limit's
// own reason; on an expression that fails, with expression_error. A mapping with on_error drop omits
// its attribute instead, and e's detail says why.
func (it *item) mapAttributes(dst []byte, e *element, lim *Limits, trace attrTrace) ([]byte, bool) {
	r := it.route
	dst = append(dst, '{')
	for i := range r.mappings {
		at := len(dst)
		var o attrOutcome
		var reason, msg string
		dst, o, reason, msg = it.mapOne(dst, e, i, lim)
		if trace != nil {
			var v []byte
			if o == attrMapped {
				v = dst[at+len(r.mappings[i].name) : len(dst)-1]
			}
			trace(i, o, v, reason, msg)
		}
		switch o {
		case attrOmitted, attrDropped:
			e.detail = append(e.detail, msg)
		case attrFailed:
			e.reason = reason
			e.detail = append(e.detail, msg)
			if trace != nil {
				// The element has failed; the rest are looked at only to be shown.
				for j := i + 1; j < len(r.mappings); j++ {
					at := len(dst)
					var v []byte
					dst, o, reason, msg = it.mapOne(dst, e, j, lim)
					if o == attrMapped {
						v = dst[at+len(r.mappings[j].name) : len(dst)-1]
					}
					trace(j, o, v, reason, msg)
				}
			}
			return dst, false
		}
	}
	return append(dst, it.hook.attrsTail...), true
}

// mapOne reads and coerces mapping i for element e. When it maps, `"name":value,` is appended to dst;
// otherwise dst is returned as it was, with the outcome, the failure reason (attrFailed) and the
// message for the detail. Messages are built only off the success path.
func (it *item) mapOne(dst []byte, e *element, i int, lim *Limits) ([]byte, attrOutcome, string, string) {
	m := &it.route.mappings[i]
	field := m.field
	if m.err != nil && !m.expr {
		return dst, attrOmitted, "", fmt.Sprintf("attribute %s omitted: path %q is invalid", m.attr, field)
	}
	n := &it.node
	var err error
	switch {
	case m.expr:
		if err = m.err; err == nil {
			err = m.prog.Eval(it.exprInput(e), &it.exprRes)
		}
		if err != nil {
			if m.drop {
				return dst, attrDropped, "", fmt.Sprintf("attribute %s (%s) dropped: expression: %v", m.attr, m.typ, err)
			}
			return dst, attrFailed, wire.ReasonExpressionError, fmt.Sprintf("attribute %s (%s): expression: %v", m.attr, m.typ, err)
		}
		// A scalar as it is, anything else as its JSON: the value then coerces as a field's would.
		switch r := &it.exprRes; r.Kind {
		case expr.ResultString:
			*n = ast.NewString(r.Str)
		case expr.ResultNumber:
			*n = ast.NewNumber(bytesString(r.Number))
		case expr.ResultBool:
			*n = ast.NewBool(r.Bool)
		case expr.ResultNull:
			*n = ast.NewNull()
		default:
			*n = ast.NewRaw(bytesString(r.JSON))
		}
	case m.header != "":
		v, ok := it.senderHeader(m.header)
		if !ok {
			return dst, attrOmitted, "", "attribute " + m.attr + " omitted: header " + m.header + " is absent"
		}
		*n = ast.NewString(bytesString(v)) // a header's value maps as a payload string would
	default:
		err = it.lookupIn(e, m.body, m.keys)
	}
	if err != nil {
		if errors.Is(err, fieldpath.ErrNotFound) {
			return dst, attrOmitted, "", "attribute " + m.attr + " omitted: field " + field + " is absent"
		}
		if m.drop {
			return dst, attrDropped, "", fmt.Sprintf("attribute %s (%s) dropped: field %s: %v", m.attr, m.typ, field, err)
		}
		return dst, attrFailed, wire.ReasonAttributeTypeMismatch, fmt.Sprintf("attribute %s (%s): field %s: %v", m.attr, m.typ, field, err)
	}
	mark := len(dst)
	dst = append(dst, m.name...)
	valueAt := len(dst)
	dst, err = appendCoerced(dst, m.typ, n, lim, it.hook.loc)
	if err == nil && len(dst)-valueAt > lim.AttributeBytes {
		err = &tooLargeError{size: len(dst) - valueAt, max: lim.AttributeBytes}
	}
	switch {
	case err == nil:
		return append(dst, ','), attrMapped, "", ""
	case errors.Is(err, errAbsent):
		if m.prog != nil {
			return dst[:mark], attrOmitted, "", "attribute " + m.attr + " omitted: the expression's value is null"
		}
		return dst[:mark], attrOmitted, "", "attribute " + m.attr + " omitted: field " + field + " is null"
	case m.drop:
		return dst[:mark], attrDropped, "", fmt.Sprintf("attribute %s (%s) dropped: %s: %v", m.attr, m.typ, fieldWord(m), err)
	}
	reason := wire.ReasonAttributeTypeMismatch
	switch {
	case errors.Is(err, errOutOfRange):
		reason = wire.ReasonNumberOutOfRange
	case errors.As(err, new(*tooLargeError)):
		reason = wire.ReasonAttributeTooLarge
	}
	return dst[:mark], attrFailed, reason, fmt.Sprintf("attribute %s (%s): %s: %v", m.attr, m.typ, fieldWord(m), err)
}

// fieldWord names where a mapping's value comes from in a message: "field x", or "expression".
func fieldWord(m *compiledMapping) string {
	if m.prog != nil {
		return "expression"
	}
	return "field " + m.field
}

// tooLargeError: a coerced value longer than Limits.AttributeBytes (attribute_too_large).
type tooLargeError struct{ size, max int }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the value is %d bytes, more than %d", e.size, e.max)
}

func subjectOf(kind identify.Kind, s Subject) (subjectKind, subject string) {
	if kind == identify.ByHWID {
		return "device", s.HWID
	}
	return "user", s.UserID
}

// Event is the layout of a webhooks.events value: see package wire.
type Event = wire.Event

// bytesString views b as a string without copying. Record keys, values and headers are never modified
// after the fetch, so the string stays valid (and keeps the buffer alive) as long as a row holds it.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// contactField is a compiled create_email or create_phone (webhook.CreateFrom).
type contactField struct {
	what   string // "e-mail" or "phone", for notes
	path   string // as configured; "" when not set
	keys   []any
	header string // the kept header it is read from; "" for the payload
	body   bool   // read from the body, not the fan-out element
	err    error  // the path does not parse (a config saved by an older release)
}

func compileContactField(what, path string, fanOut bool, kept []webhook.KeptHeader) contactField {
	f := contactField{what: what, path: path}
	if path == "" {
		return f
	}
	p, err := fieldpath.Parse(path)
	if err != nil {
		f.err = err
		return f
	}
	f.header, _ = headerPath(p, kept)
	var rest fieldpath.Path
	f.body, rest = p.FromRoot()
	f.body = f.body || !fanOut
	f.keys = rest.Keys()
	return f
}

// readContact reads the e-mail and phone the create policy gives element e's new user, as the
// identifier is read. A field that is absent, null or empty gives nothing; one that cannot be read as
// a single value gives nothing and a note. The directory validates what is read (Creator.Create).
func (it *item) readContact(e *element) (c directory.Contact, notes []string) {
	for i := range it.route.createFrom {
		f := &it.route.createFrom[i]
		if f.path == "" {
			continue
		}
		if f.err != nil {
			notes = append(notes, fmt.Sprintf("%s left out: path %q is invalid: %v", f.what, f.path, f.err))
			continue
		}
		var v string
		if f.header != "" {
			h, ok := it.senderHeader(f.header)
			if !ok {
				continue
			}
			v = strings.TrimSpace(string(h))
		} else {
			if err := it.lookupIn(e, f.body, f.keys); err != nil {
				if !errors.Is(err, fieldpath.ErrNotFound) {
					notes = append(notes, fmt.Sprintf("%s left out: field %s: %v", f.what, f.path, err))
				}
				continue
			}
			n := &it.node
			switch kind := n.TypeSafe(); kind {
			case ast.V_NONE, ast.V_NULL:
				continue
			case ast.V_STRING, ast.V_NUMBER:
				v, _ = scalarText(n, kind)
				v = strings.TrimSpace(v)
			default:
				notes = append(notes, fmt.Sprintf("%s left out: field %s is a %s, not a single value", f.what, f.path, kindName(kind)))
				continue
			}
		}
		if i == 0 {
			c.Email = v
		} else {
			c.Phone = v
		}
	}
	return c, notes
}
