package pipeline

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFlushPolicy(t *testing.T) {
	cfg := Defaults()
	cfg.BatchRows, cfg.BatchBytes = 100, 1<<20
	cfg.FlushInterval, cfg.FlushLinger = time.Second, 200*time.Millisecond
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ms := time.Millisecond
	tests := []struct {
		name       string
		rows, size int
		age        time.Duration
		caughtUp   bool
		idle, last time.Duration // idle time in polls since the batch started, the last flush's duration
		want       bool
	}{
		{"young, caught up", 10, 100, 199 * ms, true, 199 * ms, 0, false},
		{"lingered, caught up, idle", 10, 100, 200 * ms, true, 150 * ms, 100 * ms, true},
		{"lingered, caught up, idle as long as a flush", 10, 100, 200 * ms, true, 100 * ms, 100 * ms, true},
		{"lingered, caught up, too busy to pay for a flush", 10, 100, 999 * ms, true, 99 * ms, 100 * ms, false},
		{"lingered, behind", 10, 100, 999 * ms, false, 500 * ms, 0, false},
		{"interval, behind and busy", 10, 100, time.Second, false, 0, 500 * ms, true},
		{"full rows, young", 100, 100, 0, false, 0, 0, true},
		{"full bytes, young", 1, 1 << 20, 0, false, 0, 0, true},
	}
	for _, tt := range tests {
		f := newFlushPolicy(&cfg)
		f.flushed(tt.last)
		f.polled(0, false, tt.caughtUp) // the poll that started the batch
		f.polled(tt.idle, true, tt.caughtUp)
		if got := f.due(tt.rows, tt.size, t0, at(tt.age)); got != tt.want {
			t.Errorf("%s: due = %v; want %v", tt.name, got, tt.want)
		}
	}

	// Idle time counts only while a batch is held, and a flush starts the count again.
	f := newFlushPolicy(&cfg)
	f.flushed(100 * ms)
	f.polled(time.Second, false, true) // waited with an empty batch: not counted
	if f.due(1, 1, t0, at(300*ms)) {
		t.Errorf("the wait before the batch paid for its flush")
	}
	f.polled(60*ms, true, true)
	f.polled(40*ms, true, true)
	if !f.due(1, 1, t0, at(300*ms)) {
		t.Errorf("100ms idle in two polls did not pay for a 100ms flush")
	}
	f.flushed(100 * ms)
	if f.due(1, 1, t0, at(300*ms)) {
		t.Errorf("the idle time of the flushed batch paid for the next")
	}

	waits := []struct {
		name       string
		started    time.Time
		caughtUp   bool
		idle, last time.Duration
		now        time.Time
		want       time.Duration
	}{
		{"empty batch", time.Time{}, true, 0, 0, t0, time.Second},
		{"caught up: the rest of the linger", t0, true, 0, 0, at(50 * ms), 150 * ms},
		{"caught up, a flush not paid for: the idle time it lacks", t0, true, 50 * ms, 300 * ms, at(50 * ms), 250 * ms},
		{"caught up, a flush never paid for: the interval", t0, true, 0, 2 * time.Second, at(50 * ms), 950 * ms},
		{"behind: the rest of the interval", t0, false, 0, 0, at(50 * ms), 950 * ms},
		{"overdue: 1ms", t0, true, 0, 0, at(time.Hour), time.Millisecond},
	}
	for _, w := range waits {
		f := newFlushPolicy(&cfg)
		f.flushed(w.last)
		f.polled(0, false, w.caughtUp)
		f.polled(w.idle, true, w.caughtUp)
		if got := f.pollWait(w.started, w.now); got != w.want {
			t.Errorf("%s: pollWait = %s; want %s", w.name, got, w.want)
		}
	}

	// flush_linger equal to flush_interval is valid and turns the early flush off.
	cfg.FlushLinger = cfg.FlushInterval
	if err := cfg.Validate(); err != nil {
		t.Fatalf("flush_linger = flush_interval: %v", err)
	}
	f = newFlushPolicy(&cfg)
	f.polled(time.Second, true, true)
	if f.due(10, 100, t0, at(999*ms)) {
		t.Errorf("flush_linger = flush_interval: due before the interval")
	}

	// A flush_interval shortened below the default linger (a config that predates flush_linger) is
	// valid, and the interval rules.
	cfg.FlushInterval = 200 * ms
	cfg.FlushLinger = Defaults().FlushLinger
	if err := cfg.Validate(); err != nil {
		t.Fatalf("flush_interval below flush_linger: %v", err)
	}
	f = newFlushPolicy(&cfg)
	f.polled(time.Second, true, true)
	if f.due(10, 100, t0, at(199*ms)) || !f.due(10, 100, t0, at(200*ms)) {
		t.Errorf("flush_interval 200ms, flush_linger 250ms: not due at the interval")
	}
}

func TestPollRecords(t *testing.T) {
	cfg := Defaults()
	cfg.BatchRows, cfg.BatchBytes = 1000, 1<<20
	f := newFlushPolicy(&cfg)
	tests := []struct {
		name                  string
		batchBytes, perRecord int
		want                  int
	}{
		{"size unknown: batch_rows", 0, 0, 1000},
		{"small records: batch_rows", 0, 100, 1000},
		{"64 KiB records: what fills batch_bytes", 0, 64 << 10, 16},
		{"half full", 512 << 10, 64 << 10, 8},
		{"full: at least one", 1 << 20, 64 << 10, 1},
		{"larger than batch_bytes: one", 0, 2 << 20, 1},
	}
	for _, tt := range tests {
		if got := f.pollRecords(tt.batchBytes, tt.perRecord); got != tt.want {
			t.Errorf("%s: pollRecords = %d; want %d", tt.name, got, tt.want)
		}
	}
	fs := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: []kgo.FetchPartition{
		{Partition: 0, Records: []*kgo.Record{{Value: make([]byte, 100)}, {Value: make([]byte, 300)}}}}}}}}
	if got := recordBytes(fs); got != 200 {
		t.Errorf("recordBytes = %d; want 200", got)
	}
	if got := recordBytes(nil); got != 0 {
		t.Errorf("recordBytes(empty poll) = %d; want 0", got)
	}
}

func TestCaughtUp(t *testing.T) {
	recs := func(p int32, from, n int64) []*kgo.Record {
		var rs []*kgo.Record
		for o := from; o < from+n; o++ {
			rs = append(rs, &kgo.Record{Partition: p, Offset: o})
		}
		return rs
	}
	poll := func(parts ...kgo.FetchPartition) kgo.Fetches {
		return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: parts}}}}
	}
	tests := []struct {
		name string
		fs   kgo.Fetches
		want bool
	}{
		{"empty poll", nil, true},
		{"partition without records", poll(kgo.FetchPartition{Partition: 0, HighWatermark: 50}), true},
		{"every partition at its high watermark", poll(
			kgo.FetchPartition{Partition: 0, HighWatermark: 13, Records: recs(0, 10, 3)},
			kgo.FetchPartition{Partition: 1, HighWatermark: 5, Records: recs(1, 0, 5)}), true},
		{"one partition behind", poll(
			kgo.FetchPartition{Partition: 0, HighWatermark: 13, Records: recs(0, 10, 3)},
			kgo.FetchPartition{Partition: 1, HighWatermark: 6, Records: recs(1, 0, 5)}), false},
		{"as many records as the poll could take", poll(
			kgo.FetchPartition{Partition: 0, HighWatermark: 10, Records: recs(0, 0, 10)}), false},
	}
	for _, tt := range tests {
		if got := caughtUp(tt.fs, 10); got != tt.want {
			t.Errorf("%s: caughtUp = %v; want %v", tt.name, got, tt.want)
		}
	}
}
