package webhook

import (
	"bytes"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/secret"
)

func shareInput(field string) (WebhookInput, []*Event) {
	in := WebhookInput{EventName: "CheckoutSuccess", Identify: Identify{Kind: identify.ByUserID, Field: "user_id"},
		Mappings: []Mapping{{Attribute: "email", Field: field}, {Attribute: "total", Field: "price"}}}
	ev := &Event{ID: 7, Name: "CheckoutSuccess", Attributes: []Attribute{{"email", TypeString}, {"total", TypePrice}}}
	return in, []*Event{ev}
}

// TestHooksShareEqualRoutes: Hooks read with equal routes share one list (and what it holds), Hooks
// with different routes do not, and the shared list is forgotten once no Hook holds it.
func TestHooksShareEqualRoutes(t *testing.T) {
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(nil, sealer)
	hookOf := func(id, field string) *Hook {
		t.Helper()
		in, evs := shareInput(field)
		h, err := s.HookOf(id, 1, 1, in, evs)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a, b, c := hookOf("wh_a", "share_test_email"), hookOf("wh_b", "share_test_email"), hookOf("wh_c", "share_test_other")
	if &a.Routes[0] != &b.Routes[0] || &a.Mappings[0] != &b.Mappings[0] || &a.Mappings[0] != &a.Routes[0].Mappings[0] {
		t.Error("two Hooks with equal routes do not share them")
	}
	if &a.Routes[0] == &c.Routes[0] || c.Mappings[0].Field != "share_test_other" || a.Mappings[0].Field != "share_test_email" {
		t.Errorf("Hooks with different routes share them: %v, %v", a.Mappings, c.Mappings)
	}
	if a.PublicID != "wh_a" || b.PublicID != "wh_b" {
		t.Errorf("ids %s, %s; want wh_a, wh_b", a.PublicID, b.PublicID)
	}
	routes := slices.Clone(a.Routes)
	if !routeSetHeld(routes) {
		t.Fatal("the shared list is not known")
	}
	runtime.KeepAlive(b)
	runtime.KeepAlive(c)
	a, b = nil, nil
	for deadline := time.Now().Add(30 * time.Second); routeSetHeld(routes); {
		if time.Now().After(deadline) {
			t.Fatal("the shared list is still known with no Hook holding it")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHooksShareSenderDefaults: Hooks connected as the same sender share its kept headers, its
// verification config and its dedup strings where they are the sender's defaults; one that keeps a
// header more has a list of its own.
func TestHooksShareSenderDefaults(t *testing.T) {
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(nil, sealer).WithoutVerifiers()
	hookOf := func(id string, extra ...string) *Hook {
		t.Helper()
		in, evs := shareInput("email")
		in.Sender, in.Secret, in.SenderHeaders = "shopify", "shpss_test", extra
		h, err := s.HookOf(id, 1, 1, in, evs)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a, b, c := hookOf("wh_a"), hookOf("wh_b"), hookOf("wh_c", "X-Extra")
	if len(a.Headers) == 0 || &a.Headers[0] != &b.Headers[0] {
		t.Error("two Hooks of one sender do not share its kept headers")
	}
	if &c.Headers[0] == &a.Headers[0] || len(c.Headers) != len(a.Headers)+1 || c.Headers[len(c.Headers)-1].Name != "X-Extra" {
		t.Errorf("kept headers %v with one more; want their own list", c.Headers)
	}
	snd, _ := LookupSender("shopify")
	if unsafe.StringData(a.Dedup.Key) != unsafe.StringData(snd.Dedup.Key) || *a.Verification != snd.Verification ||
		a.Verification != b.Verification {
		t.Errorf("dedup %v, verification %v; want the sender's own", a.Dedup, a.Verification)
	}
}

// TestRoutesKeyCoversHookRoute: a change to any field of a route or of its mappings changes the digest
// the store shares lists by (AppendRoutesKey) and makes the lists unequal (sameRoutes): a field added
// to HookRoute or TypedMapping and left out of either fails here, before two webhooks' configs mix.
func TestRoutesKeyCoversHookRoute(t *testing.T) {
	base := func() []HookRoute {
		return []HookRoute{{Name: "n", When: "w", ForEach: "f", EventName: "e", Identify: Identify{Kind: identify.ByEmail, Field: "i"},
			Mappings:    []TypedMapping{{Attribute: "a", Type: TypeString, Field: "f", Expr: "x", OnError: OnErrorDrop}},
			UnknownUser: UnknownUserCreate, HoldFor: time.Hour, CreateFrom: CreateFrom{CreateEmail: "ce", CreatePhone: "cp"}}}
	}
	// leaves calls visit with every settable leaf field of v, named by its path.
	var leaves func(v reflect.Value, name string, visit func(reflect.Value, string))
	leaves = func(v reflect.Value, name string, visit func(reflect.Value, string)) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				leaves(v.Field(i), name+"."+v.Type().Field(i).Name, visit)
			}
		case reflect.Slice:
			leaves(v.Index(0), name+"[0]", visit)
		default:
			visit(v, name)
		}
	}
	var names []string
	leaves(reflect.ValueOf(&base()[0]).Elem(), "HookRoute", func(_ reflect.Value, name string) { names = append(names, name) })
	for n, name := range names {
		routes := base()
		i := 0
		leaves(reflect.ValueOf(&routes[0]).Elem(), "HookRoute", func(v reflect.Value, _ string) {
			if i++; i-1 != n {
				return
			}
			switch v.Kind() {
			case reflect.String:
				v.SetString(v.String() + "+")
			case reflect.Int64:
				v.SetInt(v.Int() + 1)
			default:
				t.Fatalf("%s: a %s; teach this test to change it", name, v.Kind())
			}
		})
		if bytes.Equal(AppendRoutesKey(nil, routes), AppendRoutesKey(nil, base())) {
			t.Errorf("%s: changing it does not change AppendRoutesKey", name)
		}
		if sameRoutes(routes, base()) {
			t.Errorf("%s: changing it leaves the lists equal for sameRoutes", name)
		}
	}
	if len(names) < 15 {
		t.Errorf("only %d fields visited: %v", len(names), names)
	}
}
