package pipeline

import (
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// arena hands out the memory of fired events in large chunks. A chunk is never reused: records and
// byte slices taken from it may be referenced by the Kafka client until acked, so old chunks are left to
// the garbage collector and a full chunk is simply replaced.
type arena struct {
	buf  []byte
	recs []kgo.Record
	hdrs []kgo.RecordHeader
}

const (
	arenaBytes   = 256 << 10
	arenaRecords = 512
)

// fit starts a new byte chunk when the current one is nearly full, so the next appends do not grow
// (and copy) a chunk that earlier slices point into.
func (a *arena) fit() {
	if cap(a.buf)-len(a.buf) < 16<<10 {
		a.buf = make([]byte, 0, arenaBytes)
	}
}

func (a *arena) record() *kgo.Record {
	if len(a.recs) == cap(a.recs) {
		a.recs = make([]kgo.Record, 0, arenaRecords)
	}
	a.recs = a.recs[:len(a.recs)+1]
	return &a.recs[len(a.recs)-1]
}

func (a *arena) headers(n int) []kgo.RecordHeader {
	if cap(a.hdrs)-len(a.hdrs) < n {
		a.hdrs = make([]kgo.RecordHeader, 0, arenaRecords*2)
	}
	start := len(a.hdrs)
	a.hdrs = a.hdrs[:start+n]
	return a.hdrs[start : start+n : start+n]
}

// stringBytes views s as bytes; the Kafka client only reads record keys and header values.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// str copies b into the arena and returns it as a string, for rows that hold it until the batch is
// written (a chunk is never reused, so the string stays valid).
func (a *arena) str(b []byte) string {
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	s := bytesString(a.buf[start:len(a.buf):len(a.buf)])
	a.fit()
	return s
}
