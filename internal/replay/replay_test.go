package replay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/wire"
)

// first produces a first attempt of a request to webhook wh and returns its record as acknowledged.
func first(t *testing.T, cl *kgo.Client, topic, wh, body string, truncated bool) *kgo.Record {
	t.Helper()
	var h wire.RequestHeaders
	r := &wire.Request{ID: uuid.Must(uuid.NewV7()), WebhookID: wh, ProjectID: 1, ReceivedMs: time.Now().UnixMilli(),
		ConfigVersion: 1, Outcome: wire.OutcomeAccepted, EdgeStatus: 202, BodyBytes: len(body) + 10, Truncated: truncated}
	rec := &kgo.Record{Topic: topic, Key: []byte(wh), Value: []byte(body), Headers: h.Encode(r)}
	if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestProduce: attempts of many requests over the partitions, in any order, are read back by position
// (seeking over gaps) and produced with the attempt headers, same key and value; a truncated record, one
// past retention (its log start moved past it), one past the log end and one that is another request's
// are not, each saying why.
func TestProduce(t *testing.T) {
	cfg, cl := testenv.Kafka(t)
	ctx := context.Background()
	var recs []*kgo.Record
	for i := range 60 {
		recs = append(recs, first(t, cl, cfg.RequestsTopic, []string{"wh_a", "wh_b", "wh_c"}[i%3], `{"n":1}`, false))
	}
	trunc := first(t, cl, cfg.RequestsTopic, "wh_a", `{"n":`, true)
	// Retention: delete wh_a's partition's records up to (not including) its 5th record.
	var ofA []*kgo.Record
	for _, r := range recs {
		if r.Partition == trunc.Partition {
			ofA = append(ofA, r)
		}
	}
	gone := ofA[0]
	del := kadm.Offsets{}
	del.AddOffset(cfg.RequestsTopic, gone.Partition, ofA[4].Offset, -1)
	if _, err := kadm.NewClient(cl).DeleteRecords(ctx, del); err != nil {
		t.Fatal(err)
	}
	attempt := func(r *kgo.Record, n int) replay.Attempt {
		var req wire.Request
		wire.DecodeRequest(r, &req)
		return replay.Attempt{ProjectID: 1, WebhookID: req.WebhookID, RequestID: req.ID, Partition: r.Partition, Offset: r.Offset,
			Number: n, Cause: replay.CauseReplay, Job: "j1", ReplacesStatus: "failed", ReplacesReason: "user_not_found", Fired: []int{2}}
	}
	var attempts []replay.Attempt
	want := map[uuid.UUID]bool{}
	for i := len(recs) - 1; i >= 0; i -= 2 { // every other one, newest first
		if recs[i] == gone || recs[i].Partition == gone.Partition && recs[i].Offset < ofA[4].Offset {
			continue
		}
		a := attempt(recs[i], 2)
		attempts = append(attempts, a)
		want[a.RequestID] = true
	}
	bad := []replay.Attempt{attempt(trunc, 1), attempt(gone, 1), attempt(recs[1], 1), attempt(recs[2], 1)}
	bad[2].Offset = 1 << 40       // past the log end
	bad[3].RequestID = uuid.New() // another request's position
	attempts = append(attempts, bad...)
	p, err := replay.NewProducer(cfg, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SeekGap = 2 // seek between most of them
	res, err := p.Produce(ctx, attempts)
	if err != nil {
		t.Fatal(err)
	}
	n := len(attempts) - len(bad)
	for i, r := range res[:n] {
		if r.Err != nil {
			t.Errorf("attempt %d: %v", i, r.Err)
		}
	}
	for i, w := range []error{replay.ErrTruncated, replay.ErrExpired, replay.ErrNotFound, replay.ErrNotFound} {
		if err := res[n+i].Err; !errors.Is(err, w) {
			t.Errorf("bad attempt %d: %v; want %v", i, err, w)
		}
	}

	// Read the attempts back: key, value and request id as the first attempt's, the attempt headers set.
	rd, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(cfg.RequestsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got := map[uuid.UUID]bool{}
	for len(got) < len(want) && rctx.Err() == nil {
		rd.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			var req wire.Request
			if bad := wire.DecodeRequest(r, &req); bad != nil {
				t.Errorf("record %d/%d: %v", r.Partition, r.Offset, bad)
			}
			if req.Attempt.Number == 0 {
				return
			}
			a := req.Attempt
			if !want[req.ID] || got[req.ID] || a.Number != 2 || a.Cause != "replay" || a.Job != "j1" || a.Fired != "2" ||
				a.ReplacesStatus != "failed" || a.ReplacesReason != "user_not_found" || string(r.Value) != `{"n":1}` ||
				string(r.Key) != req.WebhookID || a.OriginOffset >= r.Offset || a.OriginPartition != r.Partition {
				t.Errorf("attempt record %d/%d: %+v %+v key %s value %s", r.Partition, r.Offset, req, a, r.Key, r.Value)
			}
			got[req.ID] = true
		})
	}
	if len(got) != len(want) {
		t.Errorf("%d attempts read back; want %d", len(got), len(want))
	}
}
