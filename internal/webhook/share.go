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

// shared holds lists of the Hooks read by the digest of their content, weakly: Hooks whose lists are
// equal (many webhooks connected from one template, the same webhook read again) share one, with what
// it points to. A process keeps every webhook it meets (the cache, the pipeline's compiled configs),
// and a webhook's routes are most of its memory, all of it pointers the garbage collector follows at
// every cycle. An entry goes when no Hook holds its list any more. Lists are read-only once in a Hook:
// sharing them changes nothing a reader sees.
type shared[T any] struct {
	mu    sync.Mutex
	m     map[[32]byte]sharedList[T]
	equal func(a, b []T) bool
}

type sharedList[T any] struct {
	first weak.Pointer[T]
	n     int
}

func newShared[T any](equal func(a, b []T) bool) *shared[T] {
	return &shared[T]{m: map[[32]byte]sharedList[T]{}, equal: equal}
}

// share returns the list equal to list (not empty), of digest key, which becomes the shared one when
// there is none.
func (t *shared[T]) share(key [32]byte, list []T) []T {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.m[key]; ok {
		if p := s.first.Value(); p != nil {
			if found := unsafe.Slice(p, s.n); t.equal(found, list) {
				return found
			}
			return list // equal digests of different lists: not shared, never mixed
		}
	}
	t.m[key] = sharedList[T]{first: weak.Make(&list[0]), n: len(list)}
	runtime.AddCleanup(&list[0], t.drop, key)
	return list
}

// drop forgets the list of key once no Hook holds it (unless an equal list took its place).
func (t *shared[T]) drop(key [32]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.m[key]; ok && s.first.Value() == nil {
		delete(t.m, key)
	}
}

// held reports whether a list of digest key is shared (tests).
func (t *shared[T]) held(key [32]byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[key]
	return ok
}

var (
	routeLists  = newShared(sameRoutes)
	headerLists = newShared(slices.Equal[[]KeptHeader])
)

// shareRoutes is the shared list equal to routes (not empty).
func shareRoutes(routes []HookRoute) []HookRoute {
	var buf [256]byte
	return routeLists.share(sha256.Sum256(AppendRoutesKey(buf[:0], routes)), routes)
}

// shareHeaders is the shared list equal to kept (nil when empty).
func shareHeaders(kept []KeptHeader) []KeptHeader {
	if len(kept) == 0 {
		return nil
	}
	return headerLists.share(headersKey(kept), kept)
}

func headersKey(kept []KeptHeader) [32]byte {
	var buf [256]byte
	b := buf[:0]
	for _, k := range kept {
		b = binary.AppendUvarint(b, uint64(len(k.Name)))
		b = append(b, k.Name...)
	}
	return sha256.Sum256(b)
}

// routeSetHeld reports whether the shared list equal to routes is still known (tests).
func routeSetHeld(routes []HookRoute) bool {
	return routeLists.held(sha256.Sum256(AppendRoutesKey(nil, routes)))
}
