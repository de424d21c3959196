package webhook

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"slices"
	"sync"
	"unsafe"
	"weak"
)

// AppendRoutesKey appends to dst an encoding of routes that two route lists share exactly when they
// are equal: every field of every route and mapping, each string preceded by its length.
func AppendRoutesKey(dst []byte, routes []HookRoute) []byte {
	str := func(s string) {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(routes)))
	for i := range routes {
		r := &routes[i]
		str(r.Name)
		str(r.When)
		str(r.ForEach)
		str(r.EventName)
		str(string(r.Identify.Kind))
		str(r.Identify.Field)
		str(r.UnknownUser)
		dst = binary.AppendVarint(dst, int64(r.HoldFor))
		str(r.CreateEmail)
		str(r.CreatePhone)
		dst = binary.AppendUvarint(dst, uint64(len(r.Mappings)))
		for _, m := range r.Mappings {
			str(m.Attribute)
			str(string(m.Type))
			str(m.Field)
			str(m.Expr)
			str(m.OnError)
		}
	}
	return dst
}

// sameRoutes reports whether a and b are equal route lists.
func sameRoutes(a, b []HookRoute) bool {
	return slices.EqualFunc(a, b, func(x, y HookRoute) bool {
		return x.Name == y.Name && x.When == y.When && x.ForEach == y.ForEach && x.EventName == y.EventName &&
			x.Identify == y.Identify && slices.Equal(x.Mappings, y.Mappings) && x.UnknownUser == y.UnknownUser &&
			x.HoldFor == y.HoldFor && x.CreateFrom == y.CreateFrom
	})
}

// routeSets are the route lists of the Hooks read, by the digest of their content, held weakly: Hooks
// whose routes are equal (many webhooks connected from one template, the same webhook read again) share
// one list, its mappings and its strings. A process keeps every webhook it meets (the cache, the
// pipeline's compiled configs), and a webhook's routes are most of its memory, all of it pointers the
// garbage collector follows at every cycle. An entry goes when no Hook holds its list any more.
var routeSets = struct {
	sync.Mutex
	m map[[32]byte]routeSet
}{m: map[[32]byte]routeSet{}}

type routeSet struct {
	first weak.Pointer[HookRoute]
	n     int
}

// shareRoutes returns the shared list equal to routes (not empty), which becomes the shared one when
// there is none. Lists are read-only once in a Hook: sharing them changes nothing a reader sees.
func shareRoutes(routes []HookRoute) []HookRoute {
	var buf [256]byte
	key := sha256.Sum256(AppendRoutesKey(buf[:0], routes))
	routeSets.Lock()
	defer routeSets.Unlock()
	if s, ok := routeSets.m[key]; ok {
		if p := s.first.Value(); p != nil {
			if shared := unsafe.Slice(p, s.n); sameRoutes(shared, routes) {
				return shared
			}
			return routes // equal digests of different lists: not shared, never mixed
		}
	}
	routeSets.m[key] = routeSet{first: weak.Make(&routes[0]), n: len(routes)}
	runtime.AddCleanup(&routes[0], dropRouteSet, key)
	return routes
}

// dropRouteSet forgets the list of key once no Hook holds it (unless an equal list took its place).
func dropRouteSet(key [32]byte) {
	routeSets.Lock()
	defer routeSets.Unlock()
	if s, ok := routeSets.m[key]; ok && s.first.Value() == nil {
		delete(routeSets.m, key)
	}
}

// routeSetHeld reports whether the shared list equal to routes is still known (tests).
func routeSetHeld(routes []HookRoute) bool {
	key := sha256.Sum256(AppendRoutesKey(nil, routes))
	routeSets.Lock()
	defer routeSets.Unlock()
	_, ok := routeSets.m[key]
	return ok
}
