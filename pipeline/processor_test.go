package pipeline

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// The processor's unit tests: records in, rows and events out, with plain values for its lookups and no
// service (they run under -short).

const unitSeed = `{"user_id":"12345","email_address":"jane@example.com","purchase_date":"2024-03-15","order_number":"ORD-001","price":99.99}`

func unitProcessor(t *testing.T) (*processor, *int) {
	t.Helper()
	cfg := Defaults()
	hook := &webhook.Hook{PublicID: "wh_1", ProjectID: 1, Version: 1, Enabled: true, EventName: "CheckoutSuccess",
		Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		Mappings: []webhook.TypedMapping{
			{Attribute: "email", Type: webhook.TypeString, Field: "email_address"},
			{Attribute: "total", Type: webhook.TypePrice, Field: "price"},
			{Attribute: "purchase_date", Type: webhook.TypeDate, Field: "purchase_date"},
		}}
	m, log := newMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler)
	flushes := 0
	p := &processor{cfg: &cfg, lim: cfg.Limits(), hooks: mapHooks{"wh_1": hook},
		resolver: mapResolver{"12345": {UserID: "12345", HWIDs: []string{"hw-a"}}},
		retry:    &retrier{maxBackoff: cfg.RetryMaxBackoff, m: m, log: log}, m: m, log: log, eventsTopic: "events",
		b: newBatch(), parts: map[int32]*partState{0: {hwm: [chstore.NumTables]int64{-1, -1, -1}, streaks: map[string]*streak{}}},
		compiled: map[string]*compiledHook{}}
	p.flush = func(context.Context) error { flushes++; p.b.reset(); return nil }
	return p, &flushes
}

// unitRecord is a webhooks.requests record at offset off of partition 0.
func unitRecord(off int64, outcome wire.Outcome, body string, receivedMs int64) *kgo.Record {
	h := new(wire.RequestHeaders)
	return &kgo.Record{Topic: "requests", Partition: 0, Offset: off, Key: []byte("wh_1"), Value: []byte(body),
		Headers: h.Encode(&wire.Request{ID: uuid.Must(uuid.NewV7()), WebhookID: "wh_1", ProjectID: 1,
			ReceivedMs: receivedMs, ConfigVersion: 1, Outcome: outcome, EdgeStatus: 202, BodyBytes: len(body)})}
}

func fetches(recs ...*kgo.Record) kgo.Fetches {
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "requests", Partitions: []kgo.FetchPartition{{Partition: 0, Records: recs}}}}}}
}

func TestProcessorOutcomes(t *testing.T) {
	p, _ := unitProcessor(t)
	now := time.Now().UnixMilli()
	recs := []*kgo.Record{
		unitRecord(0, wire.OutcomeAccepted, unitSeed, now),
		unitRecord(1, wire.OutcomeAccepted, `{"user_id":"nobody"}`, now),
		unitRecord(2, wire.OutcomeAccepted, `{"email_address":"x"}`, now),
		unitRecord(3, wire.OutcomeAuthRejected, `{"user_id":"12345"}`, now),
		unitRecord(4, wire.OutcomeAccepted, `{"user_id":"12345","price":1e10000}`, now),
		unitRecord(5, wire.OutcomeAccepted, `{"user_id":"12345","email_address":"`+strings.Repeat("x", 70_000)+`"}`, now),
		{Topic: "requests", Partition: 0, Offset: 6, Key: []byte("wh_1"), Value: []byte(unitSeed), Timestamp: time.UnixMilli(now)},
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	want := []struct{ status, reason string }{
		{chstore.StatusSuccess, ""}, {chstore.StatusFailed, wire.ReasonUserNotFound}, {chstore.StatusFailed, wire.ReasonIdentifierMissing},
		{chstore.StatusFailed, string(wire.OutcomeAuthRejected)}, {chstore.StatusFailed, wire.ReasonNumberOutOfRange},
		{chstore.StatusFailed, wire.ReasonAttributeTooLarge}, {chstore.StatusFailed, wire.ReasonInvalidRecord},
	}
	if len(p.b.activity) != len(want) {
		t.Fatalf("%d activity rows; want %d", len(p.b.activity), len(want))
	}
	for i, w := range want {
		if r := p.b.activity[i]; r.Status != w.status || r.Reason != w.reason || r.Offset != int64(i) {
			t.Errorf("row %d: %s/%s at offset %d (detail %q); want %s/%s", i, r.Status, r.Reason, r.Offset, r.Detail, w.status, w.reason)
		}
	}
	if len(p.b.events) != 1 || len(p.b.fire) != 1 {
		t.Fatalf("%d events rows, %d to fire; want 1 and 1", len(p.b.events), len(p.b.fire))
	}
	ev, err := wire.DecodeEvent(p.b.fire[0].rec)
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventID != p.b.activity[0].RequestID.String() || ev.Event != "CheckoutSuccess" || ev.UserID != "12345" ||
		ev.Attributes["total"] != "99.99" || ev.Attributes["email"] != "jane@example.com" || ev.Attributes["__webhook"] != "wh_1" {
		t.Errorf("event = %+v; want CheckoutSuccess for 12345 with the request's id and the mapped attributes", ev)
	}
	if got := p.b.marks[0].Offset; got != 7 {
		t.Errorf("commit mark %d; want 7 (the offset after the last record)", got)
	}
}

// TestProcessorSkipsWhatIsWritten: records at or below a table's high-water mark are skipped (they are
// in ClickHouse already); a success row whose events row is missing is redone for the events table
// only.
func TestProcessorSkipsWhatIsWritten(t *testing.T) {
	p, _ := unitProcessor(t)
	st := p.parts[0]
	st.hwm = [chstore.NumTables]int64{4, 2, -1}
	st.heal = map[int64]chstore.Fired{4: {}}
	now := time.Now().UnixMilli()
	var recs []*kgo.Record
	for off := range int64(7) {
		recs = append(recs, unitRecord(off, wire.OutcomeAccepted, unitSeed, now))
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	if len(p.b.activity) != 2 || p.b.activity[0].Offset != 5 || p.b.activity[1].Offset != 6 {
		t.Fatalf("activity rows %+v; want offsets 5 and 6", p.b.activity)
	}
	var offs []int64
	for _, e := range p.b.events {
		offs = append(offs, e.Offset)
	}
	if len(offs) != 3 || offs[0] != 4 || offs[1] != 5 || offs[2] != 6 {
		t.Errorf("events rows at %v; want 4 (healed), 5, 6", offs)
	}
	if len(p.b.fire) != 2 {
		t.Errorf("%d events to fire; want 2 (a healed row's event was fired before the crash)", len(p.b.fire))
	}
}

// TestProcessorFlushesOnDayChange: one batch never spans two UTC days, so that an INSERT never spans two
// daily partitions.
func TestProcessorFlushesOnDayChange(t *testing.T) {
	p, flushes := unitProcessor(t)
	day := time.Date(2026, 12, 3, 23, 59, 59, 0, time.UTC).UnixMilli()
	recs := []*kgo.Record{unitRecord(0, wire.OutcomeAccepted, unitSeed, day), unitRecord(1, wire.OutcomeAccepted, unitSeed, day+1000)}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	if *flushes != 1 || len(p.b.activity) != 1 || p.b.activity[0].Offset != 1 {
		t.Errorf("%d flushes, batch rows %+v; want 1 flush and the next day's row alone", *flushes, p.b.activity)
	}
}

// TestProcessorFlushesWhenFull: the batch goes to flush at batch_rows, not later.
func TestProcessorFlushesWhenFull(t *testing.T) {
	p, flushes := unitProcessor(t)
	p.cfg.BatchRows = 4 // activity + events rows: two successes fill it
	now := time.Now().UnixMilli()
	var recs []*kgo.Record
	for off := range int64(5) {
		recs = append(recs, unitRecord(off, wire.OutcomeAccepted, unitSeed, now))
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	if *flushes != 2 || len(p.b.activity) != 1 {
		t.Errorf("%d flushes, %d rows left; want 2 flushes and 1 row", *flushes, len(p.b.activity))
	}
}

// TestProcessorOnErrorDrop: a mapping with on_error drop omits an attribute whose value does not
// coerce (or is over a bound) and fires the event, saying why in the detail; the same value fails the
// request under a mapping that keeps the default.
func TestProcessorOnErrorDrop(t *testing.T) {
	p, _ := unitProcessor(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	drop := *p.hooks.(mapHooks)["wh_1"]
	drop.Version, drop.Location = 2, berlin
	drop.Mappings = []webhook.TypedMapping{
		{Attribute: "email", Type: webhook.TypeString, Field: "email_address"},
		{Attribute: "total", Type: webhook.TypePrice, Field: "price", OnError: webhook.OnErrorDrop},
		{Attribute: "purchase_date", Type: webhook.TypeDate, Field: "purchase_date", OnError: webhook.OnErrorDrop},
	}
	p.hooks.(mapHooks)["wh_1"] = &drop
	now := time.Now().UnixMilli()
	recs := []*kgo.Record{
		unitRecord(0, wire.OutcomeAccepted, `{"user_id":"12345","email_address":"a@b.c","price":"free","purchase_date":"2026-11-26 10:12:31"}`, now),
		unitRecord(1, wire.OutcomeAccepted, `{"user_id":"12345","price":1e10000,"purchase_date":"26/11/2026"}`, now),
		unitRecord(2, wire.OutcomeAccepted, `{"user_id":"12345","email_address":{"not":"a string"},"price":"free"}`, now),
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	if len(p.b.activity) != 3 {
		t.Fatalf("%d activity rows; want 3", len(p.b.activity))
	}
	for i, want := range []struct {
		status, reason string
		detail         []string
	}{
		{chstore.StatusSuccess, "", []string{`attribute total (price) dropped: field price: "free" is not a price`}},
		{chstore.StatusSuccess, "", []string{"attribute total (price) dropped: field price: number out of range", "attribute purchase_date (date) dropped: field purchase_date: "}},
		{chstore.StatusFailed, wire.ReasonAttributeTypeMismatch, []string{"attribute email (string): field email_address: object is not a scalar"}},
	} {
		r := p.b.activity[i]
		if r.Status != want.status || r.Reason != want.reason {
			t.Errorf("row %d: %s/%s (detail %q); want %s/%s", i, r.Status, r.Reason, r.Detail, want.status, want.reason)
		}
		for _, d := range want.detail {
			if !strings.Contains(r.Detail, d) {
				t.Errorf("row %d: detail %q; want it to say %q", i, r.Detail, d)
			}
		}
	}
	if len(p.b.fire) != 2 {
		t.Fatalf("%d events to fire; want 2", len(p.b.fire))
	}
	ev, err := wire.DecodeEvent(p.b.fire[0].rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ev.Attributes["total"]; ok || ev.Attributes["email"] != "a@b.c" || ev.Attributes["purchase_date"] != "2026-11-26T09:12:31Z" {
		t.Errorf("attributes %v; want email, purchase_date read in Berlin, and no total", ev.Attributes)
	}
}

// TestProcessorEmailNFC: an email identifier is normalised to NFC before it is resolved, as the
// directory stores emails: a decomposed "é" in the payload finds the user stored with a composed one.
// (Case is folded by the directory's query; see internal/directory's TestEmailNFC.)
func TestProcessorEmailNFC(t *testing.T) {
	p, _ := unitProcessor(t)
	h := *p.hooks.(mapHooks)["wh_1"]
	h.Version, h.Identify = 2, webhook.Identify{Kind: identify.ByEmail, Field: "email_address"}
	p.hooks.(mapHooks)["wh_1"] = &h
	p.resolver = mapResolver{"jos\u00e9@example.com": {UserID: "jose"}}
	now := time.Now().UnixMilli()
	if err := p.handle(context.Background(), fetches(unitRecord(0, wire.OutcomeAccepted, `{"email_address":" jose\u0301@example.com "}`, now))); err != nil {
		t.Fatal(err)
	}
	if r := p.b.activity[0]; r.Status != chstore.StatusSuccess {
		t.Errorf("%s/%s (%s); want success for the user stored composed", r.Status, r.Reason, r.Detail)
	}
}
