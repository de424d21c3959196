package webhook

import (
	"fmt"
	"time"

	"github.com/inlet-dev/inlet/internal/expr"
	"github.com/inlet-dev/inlet/internal/fieldpath"
)

// Route is one way a webhook turns a request into events. A webhook's routes are tried in order and the
// first whose condition holds takes the request; a request no route takes is logged as skipped
// (no_route), not as a failure. The seed's single mapping is a webhook with one route without a
// condition, which takes every request.
type Route struct {
	// Name labels the route in the activity log and the console ("orders/paid"); optional, at most
	// MaxRouteNameLen characters.
	Name string `json:"name,omitempty"`
	// When is the route's condition, a CEL expression over body and headers that must be true for the
	// route to take a request: `headers["X-Shopify-Topic"] == "orders/paid"`. Empty: always.
	When string `json:"when,omitempty"`
	// ForEach makes the route fire one event per element of the array at this field path ("line_items";
	// "$" for a body that is itself an array). Its identify field and mappings are then read from the
	// element, and a path starting with "$." from the body ("$.customer.email"). Empty: one event.
	ForEach string `json:"for_each,omitempty"`
	// The event fired, by id or by name (both: they must agree).
	EventID   int64     `json:"event_id,omitempty"`
	EventName string    `json:"event,omitempty"`
	Identify  Identify  `json:"identify"`
	Mappings  []Mapping `json:"mappings"`
	// UnknownUser is what a request whose identifier the directory does not know does: "fail" (the
	// default, stored as "") fails it with user_not_found; "create" creates the subject from the
	// identifier (see UnknownUserCreate) and fires.
	UnknownUser string `json:"unknown_user,omitempty"`
	// HoldFor is how long "hold" keeps a request waiting for its user, as a duration ("24h", "30m");
	// empty is the pipeline's default (hold.default, 24h). The pipeline keeps it within its bounds
	// (hold.min, hold.max). Only with unknown_user hold.
	HoldFor string `json:"hold_for,omitempty"`
	// CreateFrom says where "create" finds the new user's e-mail and phone. Only with unknown_user
	// create.
	CreateFrom
}

// CreateFrom names the payload fields "create" reads the new user's e-mail address and phone number
// from, besides its identifier (Route.UnknownUser create). Each is a field path read as the identify
// field is (from the element in a fan-out route, from the body with "$."); empty: not set. A value that
// is missing, empty, not a string or number, or not a valid address / number is left out (the
// element's detail says why) and never fails the request. A user identified by email gets only the
// phone from here, one identified by phone only the e-mail; a device (hwid) gets neither.
type CreateFrom struct {
	CreateEmail string `json:"create_email,omitempty"`
	CreatePhone string `json:"create_phone,omitempty"`
}

// The values of Route.UnknownUser. It is a string, not a flag: more policies may come.
const (
	UnknownUserFail = "fail"
	// UnknownUserCreate creates what the identifier names: a user_id makes a user with that id; an
	// email a user with that email whose id is "email:" + the email as stored; a phone a user with
	// that phone (E.164) whose id is "phone:" + the E.164 number; a hwid an anonymous device. A user
	// also gets the e-mail and phone its route's CreateFrom reads from the payload. Ids derived from
	// the identifier make concurrent creations of the same user converge on one row; an existing
	// user is never changed.
	UnknownUserCreate = "create"
	// UnknownUserHold keeps the request waiting, for up to the route's HoldFor, until its user appears
	// (created through the API, an import, or another webhook's create); it then fires, in arrival
	// order per user. When the time runs out it fails with user_not_found.
	UnknownUserHold = "hold"
)

// MaxHoldFor bounds a route's HoldFor; the pipeline's hold.max may bound it further.
const MaxHoldFor = 30 * 24 * time.Hour

// Route limits.
const (
	MaxRoutes       = 32
	MaxRouteNameLen = 100
	// MaxConditionLen bounds a condition's source, as an expression's (expr.MaxSourceLen).
	MaxConditionLen = 4096
	// MaxFanOut is the most elements a fan-out route fires for in one request; a request with more
	// fails with fan_out_too_large rather than fire a part of them.
	MaxFanOut = 1000
)

// HookRoute is a Route as the data path needs it: the event's name and the mappings typed by its
// attributes.
type HookRoute struct {
	Name      string
	When      string
	ForEach   string
	EventName string
	Identify  Identify
	Mappings  []TypedMapping
	// UnknownUser is Route.UnknownUser: "" (fail), UnknownUserCreate or UnknownUserHold.
	UnknownUser string
	// HoldFor is Route.HoldFor parsed; 0 is the pipeline's default.
	HoldFor time.Duration
	// CreateFrom is Route.CreateFrom (validated field paths).
	CreateFrom
}

// RouteList is the webhook's routes. A Hook built by hand may give a single route through EventName,
// Identify and Mappings instead of Routes (what every Hook was before routes).
func (h *Hook) RouteList() []HookRoute {
	if len(h.Routes) > 0 {
		return h.Routes
	}
	return []HookRoute{{EventName: h.EventName, Identify: h.Identify, Mappings: h.Mappings, UnknownUser: h.UnknownUser, HoldFor: h.HoldFor, CreateFrom: h.CreateFrom}}
}

// FanOutPath is a route's ForEach parsed: the path of the array and whether it starts at the body
// (always, today: "$" and "$.x" are the body's, as is "x").
func FanOutPath(forEach string) (fieldpath.Path, error) {
	p, err := fieldpath.Parse(forEach)
	if err != nil {
		return fieldpath.Path{}, err
	}
	_, rest := p.FromRoot()
	return rest, nil
}

// CompileCondition compiles a route's condition (When), for the store's checks and the pipeline alike.
// A condition is about the request, also in a fan-out route: it sees body and headers, not item.
func CompileCondition(src string) (*expr.Program, error) {
	if len(src) > MaxConditionLen {
		return nil, fmt.Errorf("%d bytes; at most %d", len(src), MaxConditionLen)
	}
	return expr.Compile(src, expr.Options{Kind: expr.Condition})
}

// CompileValue compiles a mapping's expression, for the store's checks and the pipeline alike.
func CompileValue(src string, fanOut bool) (*expr.Program, error) {
	return expr.Compile(src, expr.Options{Kind: expr.Value, FanOut: fanOut})
}

// parseHoldFor is a stored HoldFor as a duration: 0 (the pipeline's default) when empty or, for a
// value saved by a later release that this one cannot read, invalid.
func parseHoldFor(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0
	}
	return d
}
