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
	f := newFlushPolicy(&cfg)
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name       string
		rows, size int
		age        time.Duration
		caughtUp   bool
		want       bool
	}{
		{"young, caught up", 10, 100, 199 * time.Millisecond, true, false},
		{"lingered, caught up", 10, 100, 200 * time.Millisecond, true, true},
		{"lingered, behind", 10, 100, 999 * time.Millisecond, false, false},
		{"interval, behind", 10, 100, time.Second, false, true},
		{"full rows, young", 100, 100, 0, false, true},
		{"full bytes, young", 1, 1 << 20, 0, false, true},
	}
	for _, tt := range tests {
		if got := f.due(tt.rows, tt.size, t0, tt.caughtUp, at(tt.age)); got != tt.want {
			t.Errorf("%s: due = %v; want %v", tt.name, got, tt.want)
		}
	}

	waits := []struct {
		name     string
		started  time.Time
		caughtUp bool
		now      time.Time
		want     time.Duration
	}{
		{"empty batch", time.Time{}, true, t0, time.Second},
		{"caught up: the rest of the linger", t0, true, at(50 * time.Millisecond), 150 * time.Millisecond},
		{"behind: the rest of the interval", t0, false, at(50 * time.Millisecond), 950 * time.Millisecond},
		{"overdue: 1ms", t0, true, at(time.Hour), time.Millisecond},
	}
	for _, w := range waits {
		if got := f.pollWait(w.started, w.caughtUp, w.now); got != w.want {
			t.Errorf("%s: pollWait = %s; want %s", w.name, got, w.want)
		}
	}

	// flush_linger equal to flush_interval is valid and turns the early flush off.
	cfg.FlushLinger = cfg.FlushInterval
	if err := cfg.Validate(); err != nil {
		t.Fatalf("flush_linger = flush_interval: %v", err)
	}
	if newFlushPolicy(&cfg).due(10, 100, t0, true, at(999*time.Millisecond)) {
		t.Errorf("flush_linger = flush_interval: due before the interval")
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
