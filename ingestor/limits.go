package ingestor

import (
	"math"
	"sync"
	"time"
	"unsafe"

	"github.com/inlet-dev/inlet/internal/secret"
)

// validID reports whether id has the form of a public webhook id; other ids are answered 404 without
// reaching the config store. The unsafe view is not retained: ValidPublicID only reads it.
func validID(id []byte) bool {
	return len(id) == secret.PublicIDLen && secret.ValidPublicID(unsafe.String(unsafe.SliceData(id), len(id)))
}

// bucket is a token bucket. Not safe for concurrent use; hookState's mutex guards it.
type bucket struct {
	tokens float64
	last   int64 // unix nanos of the last refill; 0 means full
}

// take removes one token if there is one. Otherwise it reports how long until there will be.
func (b *bucket) take(now int64, rate float64, burst int) (bool, time.Duration) {
	if b.last == 0 {
		b.tokens = float64(burst)
	} else if now > b.last {
		b.tokens = math.Min(float64(burst), b.tokens+float64(now-b.last)*rate/1e9)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * 1e9)
}

// hookState is what the edge keeps per webhook id: the interned id (so steady-state lookups convert no
// bytes to strings) and its two token buckets.
type hookState struct {
	id      string
	mu      sync.Mutex
	rate    bucket // accepted traffic: 429 beyond it
	rejects bucket // rejected requests appended for the activity log: counted but not appended beyond it
}

// takeRate applies the webhook's rate limit.
func (h *hookState) takeRate(now int64, rate float64, burst int) (bool, time.Duration) {
	h.mu.Lock()
	ok, wait := h.rate.take(now, rate, burst)
	h.mu.Unlock()
	return ok, wait
}

// takeReject applies the webhook's rejected-request log limit.
func (h *hookState) takeReject(now int64, rate float64, burst int) bool {
	h.mu.Lock()
	ok, _ := h.rejects.take(now, rate, burst)
	h.mu.Unlock()
	return ok
}

// hookStates is a bounded map id → *hookState. Only ids the config store knows are added, and when it is
// full it is reset rather than grown: buckets start full again, erring on the side of accepting.
type hookStates struct {
	mu  sync.RWMutex
	m   map[string]*hookState
	max int
}

func newHookStates(max int) *hookStates {
	return &hookStates{m: make(map[string]*hookState), max: max}
}

// get returns the state of id, or nil. It does not allocate: the map index converts without copying.
func (t *hookStates) get(id []byte) *hookState {
	t.mu.RLock()
	s := t.m[string(id)]
	t.mu.RUnlock()
	return s
}

// add returns the state of id, creating it.
func (t *hookStates) add(id string) *hookState {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.m[id]; s != nil {
		return s
	}
	if len(t.m) >= t.max {
		t.m = make(map[string]*hookState)
	}
	s := &hookState{id: id}
	t.m[id] = s
	return s
}

func (t *hookStates) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
