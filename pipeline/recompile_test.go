package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/fieldpath"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// TestSameCompiledCoversHook: every field of webhook.Hook, HookRoute, TypedMapping, Dedup and Mask is
// either compared by sameCompiled or known not to be read by compileHook. A field added to one of them
// fails here until it is put in one list or the other (and, if compileHook reads it, compared).
func TestSameCompiledCoversHook(t *testing.T) {
	for _, tc := range []struct {
		typ               reflect.Type
		compared, ignored []string
	}{
		{reflect.TypeFor[webhook.Hook](),
			[]string{"PublicID", "Headers", "Dedup", "Routes", "EventName", "Identify", "Mappings", "UnknownUser", "Mask", "HoldFor", "CreateFrom", "Location"},
			[]string{"ProjectID", "Enabled", "Version", "SecretDigest", "PrevSecretDigest", "PrevSecretUntil", "SecretRotatedAt", "Sender",
				"Verification", "verifier", "verifierPrev", "verifiersLeftOut", "Handshake", "HandshakeToken"}},
		{reflect.TypeFor[webhook.HookRoute](), []string{"Name", "When", "ForEach", "EventName", "Identify", "Mappings", "UnknownUser", "HoldFor", "CreateFrom"}, nil},
		{reflect.TypeFor[webhook.TypedMapping](), []string{"Attribute", "Type", "Field", "Expr", "OnError"}, nil},
		{reflect.TypeFor[webhook.Dedup](), []string{"Key", "Window", "HashHeaders"}, nil},
		{reflect.TypeFor[webhook.Mask](), []string{"Fields", "Headers", "Key"}, nil},
	} {
		for i := range tc.typ.NumField() {
			f := tc.typ.Field(i).Name
			if !slices.Contains(tc.compared, f) && !slices.Contains(tc.ignored, f) {
				t.Errorf("%s.%s is neither compared by sameCompiled nor listed as not read by compileHook", tc.typ, f)
			}
		}
	}
}

// TestSameCompiled: a webhook read again with the same config is the same compiled config; a change to
// anything compileHook reads is not, and a change to what it does not read (the version, the secret) is.
func TestSameCompiled(t *testing.T) {
	base := func() *webhook.Hook {
		h := benchHook()
		h.Routes = []webhook.HookRoute{{EventName: h.EventName, Identify: h.Identify, Mappings: slices.Clone(h.Mappings)}}
		h.Headers = []webhook.KeptHeader{webhook.NewKeptHeader("X-Topic")}
		h.Dedup = webhook.Dedup{Key: "header:X-Id"}
		h.Mask = webhook.Mask{Fields: []fieldpath.Path{fieldpath.MustParse("email_address")}, Key: []byte("k")}
		h.Location, _ = time.LoadLocation("Europe/Berlin")
		return h
	}
	for _, tc := range []struct {
		name   string
		change func(h *webhook.Hook)
		same   bool
	}{
		{"read again", func(h *webhook.Hook) { h.Location, _ = time.LoadLocation("Europe/Berlin") }, true},
		{"new version, same config", func(h *webhook.Hook) { h.Version++; h.SecretDigest[0]++ }, true},
		{"mapping field", func(h *webhook.Hook) { h.Routes[0].Mappings[1].Field = "total" }, false},
		{"mapping type", func(h *webhook.Hook) { h.Routes[0].Mappings[1].Type = webhook.TypeString }, false},
		{"mapping on_error", func(h *webhook.Hook) { h.Routes[0].Mappings[0].OnError = webhook.OnErrorDrop }, false},
		{"one more route", func(h *webhook.Hook) { h.Routes = append(h.Routes, h.Routes[0]) }, false},
		{"route condition", func(h *webhook.Hook) { h.Routes[0].When = "true" }, false},
		{"identifier", func(h *webhook.Hook) { h.Routes[0].Identify.Field = "uid" }, false},
		{"event", func(h *webhook.Hook) { h.Routes[0].EventName = "Other" }, false},
		{"hold", func(h *webhook.Hook) { h.Routes[0].HoldFor = time.Hour }, false},
		{"kept header", func(h *webhook.Hook) { h.Headers = nil }, false},
		{"dedup window", func(h *webhook.Hook) { h.Dedup.Window = 60 }, false},
		{"mask key", func(h *webhook.Hook) { h.Mask.Key = []byte("other") }, false},
		{"mask field", func(h *webhook.Hook) { h.Mask.Fields = []fieldpath.Path{fieldpath.MustParse("mobile")} }, false},
		{"time zone", func(h *webhook.Hook) { h.Location = time.UTC }, false},
		{"single route without Routes", func(h *webhook.Hook) { h.Routes = nil; h.Mappings = h.Mappings[:1] }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(b)
			if got := sameCompiled(a, b); got != tc.same {
				t.Errorf("sameCompiled = %v; want %v", got, tc.same)
			}
		})
	}
	a, b := benchHook(), benchHook()
	if !sameCompiled(a, b) {
		t.Error("two reads of a hook without Routes differ")
	}
	b.Mappings[0].Field = "mobile"
	if sameCompiled(a, b) {
		t.Error("hooks without Routes with different mappings are the same")
	}
}

// TestProcessReusesCompiled: the processor compiles a webhook once however often the cache reads it
// again unchanged (each read a new *webhook.Hook), rebinding the compiled config to the newest read
// (its shared routes stay those they were compiled from, equal to the newest read's), and compiles it
// again when it changes.
func TestProcessReusesCompiled(t *testing.T) {
	pp := newPolls(t, benchHook(), nil, nil, seedBody, 1)
	hooks := pp.p.hooks.(mapHooks)
	pp.poll(t, 10)
	first := pp.p.compiled["wh_bench"]
	hooks["wh_bench"] = benchHook() // read again, unchanged
	pp.poll(t, 10)
	if c := pp.p.compiled["wh_bench"]; c != first || c.hook != hooks["wh_bench"] || c.routes[0].r.EventName != "CheckoutSuccess" {
		t.Fatalf("an unchanged config read again was compiled again (%p, was %p) or not rebound", c, first)
	}
	if c := pp.p.compiled["wh_bench"]; c.set == nil || &c.routes[0] != &c.set.routes[0] || len(pp.p.routeSets) != 1 {
		t.Errorf("the rebound config's routes are not its shared set's (%d sets)", len(pp.p.routeSets))
	}
	changed := benchHook()
	changed.Mappings = changed.Mappings[:2]
	hooks["wh_bench"] = changed
	pp.poll(t, 10)
	if c := pp.p.compiled["wh_bench"]; c == first || len(c.routes[0].mappings) != 2 {
		t.Fatalf("a changed config was not compiled again: %d mappings", len(c.routes[0].mappings))
	}
}

// TestProcessFreshCompiled: with the real webhook cache, a record whose webhook's compiled config comes
// from a read the cache still holds uses it without a lookup, and a change notified to the cache (or a
// resync) is seen by the next poll all the same.
func TestProcessFreshCompiled(t *testing.T) {
	pp := newPolls(t, benchHook(), nil, nil, seedBody, 1)
	store := hookStore{"wh_bench": benchHook()}
	cache, err := webhook.NewCache(store, webhook.DefaultCacheConfig(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	pp.p.hooks = cache
	pp.poll(t, 10) // read (prefetch) and compiled
	pp.poll(t, 10) // handed over by the prefetch: compiled.cached set
	first := pp.p.compiled["wh_bench"]
	if first.cached.Hook != first.hook || !cache.Fresh(first.cached) {
		t.Fatal("the compiled config does not hold the cache's read after a prefetch handed it over")
	}
	pp.poll(t, 10)
	if c := pp.p.compiled["wh_bench"]; c != first {
		t.Fatal("a fresh compiled config was replaced")
	}
	for _, change := range []struct {
		name   string
		notify func()
	}{
		{"change notified", func() { cache.Changed("webhook:wh_bench") }},
		{"resync", cache.Resync},
	} {
		h := benchHook()
		h.Version = pp.p.compiled["wh_bench"].hook.Version + 1
		h.Mappings = h.Mappings[:len(pp.p.compiled["wh_bench"].routes[0].mappings)-1]
		store["wh_bench"] = h
		change.notify()
		pp.poll(t, 10)
		c := pp.p.compiled["wh_bench"]
		if c.hook.Version != h.Version || len(c.routes[0].mappings) != len(h.Mappings) {
			t.Fatalf("%s: the next poll used config version %d with %d mappings; want version %d with %d", change.name,
				c.hook.Version, len(c.routes[0].mappings), h.Version, len(h.Mappings))
		}
	}
}

// TestCompiledBound: when the compiled configs reach their bound, meeting one more webhook drops an
// eighth of them, not all (clearing all made a pipeline whose live webhooks just outnumbered the bound
// compile every webhook again on each round), and a config replaced by a newer one gives its CEL
// programs back to the count.
func TestCompiledBound(t *testing.T) {
	p, _ := unitProcessor(t)
	for i := range maxCompiledHooks {
		p.compiled[fmt.Sprintf("wh_filler_%d", i)] = &compiledHook{}
	}
	it := &item{webhookID: "wh_1", configVersion: 1}
	c, err := p.hook(context.Background(), it, webhook.Cached{})
	if err != nil || c == nil {
		t.Fatalf("hook: %v, %v", c, err)
	}
	if want := maxCompiledHooks - maxCompiledHooks/8 + 1; len(p.compiled) != want {
		t.Errorf("%d compiled configs after meeting one more webhook at the bound; want %d", len(p.compiled), want)
	}
	if p.compiled["wh_1"] != c {
		t.Errorf("the webhook just met is not kept")
	}

	// CEL programs: over their bound, configs are dropped until the count is under 7/8 of it.
	p.compiled, p.compiledExprs = map[string]*compiledHook{}, 0
	for i := range maxCompiledExprs / 10 {
		p.compiled[fmt.Sprintf("wh_expr_%d", i)] = &compiledHook{exprs: 10}
		p.compiledExprs += 10
	}
	p.compiledExprs++ // one over
	p.compiled["wh_extra"] = &compiledHook{exprs: 1}
	p.evictCompiled()
	if p.compiledExprs > maxCompiledExprs*7/8 {
		t.Errorf("%d CEL programs after eviction; want at most %d", p.compiledExprs, maxCompiledExprs*7/8)
	}
	sum := 0
	for _, c := range p.compiled {
		sum += c.exprs
	}
	if sum != p.compiledExprs {
		t.Errorf("count of CEL programs %d; the kept configs hold %d", p.compiledExprs, sum)
	}

	// A config replaced by a newer version: its programs leave the count with it.
	p.compiled, p.compiledExprs = map[string]*compiledHook{}, 0
	h := benchHook()
	h.PublicID = "wh_1"
	h.Mappings = []webhook.TypedMapping{{Attribute: "total", Type: webhook.TypePrice, Expr: "body.price"}}
	p.hooks = mapHooks{"wh_1": h}
	if _, err := p.hook(context.Background(), it, webhook.Cached{}); err != nil {
		t.Fatal(err)
	}
	first := p.compiledExprs
	h2 := *h
	h2.Version = 2
	h2.Mappings = []webhook.TypedMapping{{Attribute: "total", Type: webhook.TypePrice, Expr: "body.price * 2"}}
	p.hooks = mapHooks{"wh_1": &h2}
	if _, err := p.hook(context.Background(), it, webhook.Cached{}); err != nil {
		t.Fatal(err)
	}
	if first == 0 || p.compiledExprs != first {
		t.Errorf("CEL programs counted %d after the first config, %d after its replacement; want the same, not 0", first, p.compiledExprs)
	}
}
