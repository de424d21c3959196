package chstore_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestQueries(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)

	// 130 rows for wh_a (every third failed, 10 of them two days old), 7 for wh_b, 3 for another
	// project's wh_a.
	type row struct {
		project uint64
		webhook string
		id      uuid.UUID
		at      time.Time
		status  string
		reason  string
	}
	var rows []row
	for i := range 130 {
		r := row{project: 1, webhook: "wh_a", id: uuid.Must(uuid.NewV7()), at: now.Add(-time.Duration(i/4) * time.Second), status: "success"}
		if i%3 == 0 {
			r.status, r.reason = "failed", "user_not_found"
		}
		if i >= 120 {
			r.at = now.Add(-48 * time.Hour)
		}
		rows = append(rows, r)
	}
	for range 7 {
		rows = append(rows, row{project: 1, webhook: "wh_b", id: uuid.Must(uuid.NewV7()), at: now, status: "failed", reason: "auth_rejected"})
	}
	for range 3 {
		rows = append(rows, row{project: 2, webhook: "wh_a", id: uuid.Must(uuid.NewV7()), at: now, status: "success"})
	}
	// One insert per day partition, as the pipeline does.
	for _, old := range []bool{false, true} {
		b, err := conn.PrepareBatch(ctx, "INSERT INTO activity_log (project_id, webhook_id, request_id, received_at, received_ms, processed_ms, status, reason, payload, payload_bytes, src_partition, src_offset)")
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rows {
			if (r.at.Before(now.Add(-24 * time.Hour))) != old {
				continue
			}
			payload := fmt.Sprintf(`{"n":%d,"pad":"%0600d"}`, i, 0)
			if err := b.Append(r.project, r.webhook, r.id, r.at, uint64(r.at.UnixMilli()), uint64(r.at.UnixMilli()), r.status, r.reason, payload, uint32(len(payload)), int32(0), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO events (project_id, subject_kind, subject, occurred_at, event_id, event_name, webhook_id, user_id, hwid, hwids, attributes, received_ms, src_partition, src_offset)")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		at := now.Add(-time.Duration(i) * time.Minute)
		if err := b.Append(uint64(1), "user", "u1", at, uuid.Must(uuid.NewV7()), "Buy", "wh_a", "u1", "", []string{"hw1"}, fmt.Sprintf(`{"i":%d}`, i), uint64(at.UnixMilli()), int32(0), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Append(uint64(1), "device", "hw1", now, uuid.Must(uuid.NewV7()), "Open", "wh_a", "u1", "hw1", []string{"hw1"}, `{}`, uint64(now.UnixMilli()), int32(0), int64(9)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}

	r := chstore.NewReader(conn)
	s, err := r.Summary24h(ctx, 1, "wh_a", now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var raw [2]uint64
	if err := conn.QueryRow(ctx, "SELECT countIf(status = 'success'), countIf(status = 'failed') FROM activity_log WHERE project_id = 1 AND webhook_id = 'wh_a' AND received_at >= toDateTime(?)",
		now.Add(time.Second).Add(-24*time.Hour).Truncate(time.Minute).Unix()).Scan(&raw[0], &raw[1]); err != nil {
		t.Fatal(err)
	}
	if s.Success != raw[0] || s.Failed != raw[1] || s.Hits != raw[0]+raw[1] || s.ByReason["user_not_found"] != raw[1] || s.Hits != 120 {
		t.Errorf("summary %+v; want success %d, failed %d (user_not_found), hits 120 as counted over the raw rows", s, raw[0], raw[1])
	}

	rec, err := r.Received(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rec["wh_a"] != 130 || rec["wh_b"] != 7 || len(rec) != 2 {
		t.Errorf("received %v; want wh_a 130, wh_b 7", rec)
	}

	// Pagination: every entry once, newest first, across pages of 17, with and without a filter.
	for _, status := range []string{"", "failed", "success"} {
		seen := map[string]bool{}
		cursor := ""
		var prev time.Time
		for pages := 0; ; pages++ {
			page, err := r.Entries(ctx, chstore.EntriesQuery{ProjectID: 1, WebhookID: "wh_a", Status: status, Cursor: cursor, Limit: 17})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Entries {
				if seen[e.RequestID] {
					t.Fatalf("status %q: entry %s on two pages", status, e.RequestID)
				}
				seen[e.RequestID] = true
				if !prev.IsZero() && e.ReceivedAt.After(prev) {
					t.Fatalf("status %q: entries not newest first", status)
				}
				prev = e.ReceivedAt
				if status != "" && e.Status != status {
					t.Fatalf("status %q: got an entry with status %s", status, e.Status)
				}
				if len(e.Payload) > chstore.PreviewBytes {
					t.Fatalf("list payload is %d bytes; want a preview of at most %d", len(e.Payload), chstore.PreviewBytes)
				}
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		want := map[string]int{"": 130, "failed": 44, "success": 86}[status]
		if len(seen) != want {
			t.Errorf("status %q: paged through %d entries; want %d", status, len(seen), want)
		}
	}

	full, err := r.Entry(ctx, 1, "wh_a", rows[5].id.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Payload) <= chstore.PreviewBytes || full.Status != "success" {
		t.Errorf("entry payload %d bytes, status %s; want the whole payload and success", len(full.Payload), full.Status)
	}
	if _, err := r.Entry(ctx, 2, "wh_a", rows[5].id.String()); !errors.Is(err, chstore.ErrNotFound) {
		t.Errorf("another project's entry: %v; want ErrNotFound", err)
	}

	hist, err := r.History(ctx, chstore.HistoryQuery{ProjectID: 1, Kind: chstore.SubjectUser, Subject: "u1", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ev := hist.Events; len(ev) != 3 || ev[0].Attributes != `{"i":0}` || ev[2].Attributes != `{"i":2}` || ev[0].HWIDs[0] != "hw1" || hist.NextCursor == "" {
		t.Errorf("user history %+v; want the 3 newest of u1 and a cursor", hist)
	}
	rest, err := r.History(ctx, chstore.HistoryQuery{ProjectID: 1, Kind: chstore.SubjectUser, Subject: "u1", Limit: 3, Cursor: hist.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	if ev := rest.Events; len(ev) != 2 || ev[0].Attributes != `{"i":3}` || ev[1].Attributes != `{"i":4}` || rest.NextCursor != "" {
		t.Errorf("user history after the cursor %+v; want the 2 oldest of u1 and no cursor", rest)
	}
	dev, err := r.History(ctx, chstore.HistoryQuery{ProjectID: 1, Kind: chstore.SubjectDevice, Subject: "hw1"})
	if err != nil || len(dev.Events) != 1 || dev.Events[0].EventName != "Open" || dev.NextCursor != "" {
		t.Errorf("device history %+v, %v; want one Open event", dev, err)
	}
	if _, err := r.Entries(ctx, chstore.EntriesQuery{ProjectID: 1, WebhookID: "wh_a", Cursor: "!!"}); !errors.Is(err, chstore.ErrInvalid) {
		t.Errorf("bad cursor: %v; want ErrInvalid", err)
	}
}

// TestEntriesNewestFirst pages through thousands of entries, several per millisecond and one
// millisecond holding hundreds, inserted in random order in several blocks, with UUIDv7 ids made at
// their millisecond: every page size must give each entry exactly once, strictly newest first — by
// received_ms, then by the id's bytes. ClickHouse 18.16 orders the UUID column by its low 64 bits first,
// so ordering by it shuffled such ids.
func TestEntriesNewestFirst(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))

	type row struct {
		id     uuid.UUID
		ms     uint64
		status string
	}
	var rows []row
	items, _ := busyTraffic(rnd)
	for _, ms := range items {
		status := "success"
		if rnd.IntN(3) == 0 {
			status = "failed"
		}
		rows = append(rows, row{id: uuidAt(ms), ms: ms, status: status})
	}
	rnd.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	insertInBlocks(t, conn, "INSERT INTO activity_log (project_id, webhook_id, request_id, received_at, received_ms, processed_ms, status, reason, payload, payload_bytes, src_partition, src_offset)",
		len(rows), func(i int) []any {
			r := rows[i]
			return []any{uint64(1), "wh_busy", r.id, time.UnixMilli(int64(r.ms)), r.ms, r.ms, r.status, "", "{}", uint32(2), int32(0), int64(i)}
		})
	t.Logf("%d entries over 1,500 ms, 700 of them in one millisecond", len(rows))

	reader := chstore.NewReader(conn)
	for _, tc := range []struct {
		status string
		limit  int
	}{{"", 500}, {"", 37}, {"", 9}, {"failed", 13}, {"success", 64}} {
		want := map[string]row{}
		for _, r := range rows {
			if tc.status == "" || r.status == tc.status {
				want[r.id.String()] = r
			}
		}
		seen := map[string]bool{}
		var prev row
		cursor := ""
		for page := 0; ; page++ {
			p, err := reader.Entries(ctx, chstore.EntriesQuery{ProjectID: 1, WebhookID: "wh_busy", Status: tc.status, Cursor: cursor, Limit: tc.limit})
			if err != nil {
				t.Fatalf("status %q, limit %d, page %d: %v", tc.status, tc.limit, page, err)
			}
			if len(p.Entries) > tc.limit || (p.NextCursor != "" && len(p.Entries) != tc.limit) {
				t.Fatalf("status %q, limit %d, page %d: %d entries, next cursor %q; want %d and a cursor, or the rest and none",
					tc.status, tc.limit, page, len(p.Entries), p.NextCursor, tc.limit)
			}
			for _, e := range p.Entries {
				r, ok := want[e.RequestID]
				if !ok {
					t.Fatalf("status %q, limit %d, page %d: entry %s (%s) is not one of the expected", tc.status, tc.limit, page, e.RequestID, e.Status)
				}
				if seen[e.RequestID] {
					t.Fatalf("status %q, limit %d, page %d: entry %s again", tc.status, tc.limit, page, e.RequestID)
				}
				seen[e.RequestID] = true
				if got := uint64(e.ReceivedAt.UnixMilli()); got != r.ms {
					t.Fatalf("entry %s received at %d ms; want %d", e.RequestID, got, r.ms)
				}
				if prev.ms != 0 && (r.ms > prev.ms || r.ms == prev.ms && bytes.Compare(r.id[:], prev.id[:]) >= 0) {
					t.Fatalf("status %q, limit %d, page %d: entry %s (%d ms) after %s (%d ms); want strictly newest first",
						tc.status, tc.limit, page, r.id, r.ms, prev.id, prev.ms)
				}
				prev = r
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if len(seen) != len(want) {
			t.Errorf("status %q, limit %d: paged through %d entries; want %d", tc.status, tc.limit, len(seen), len(want))
		}
	}
}

// TestEntriesCursorRefused: a cursor of the first format (received_at in seconds + request id, 24 bytes)
// and strings that are no cursor are refused as invalid, with a message that says what to do.
func TestEntriesCursorRefused(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	reader := chstore.NewReader(conn)
	var old [24]byte
	binary.BigEndian.PutUint64(old[:8], uint64(time.Now().Unix()))
	id := uuid.Must(uuid.NewV7())
	copy(old[8:], id[:])
	for _, tc := range []struct{ cursor, says string }{
		{base64.RawURLEncoding.EncodeToString(old[:]), "request the first page again"},
		{"!!", "not a next_cursor"},
		{base64.RawURLEncoding.EncodeToString(make([]byte, 25)), "not a next_cursor"},
	} {
		_, err := reader.Entries(context.Background(), chstore.EntriesQuery{ProjectID: 1, WebhookID: "wh", Cursor: tc.cursor})
		if !errors.Is(err, chstore.ErrInvalid) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("cursor %q: %v; want ErrInvalid saying %q", tc.cursor, err, tc.says)
		}
	}
}

// busyTraffic is the milliseconds of 1.5 s of traffic an hour ago, straddling two second boundaries:
// 0..6 items a millisecond, and 700 in busy. One entry per item, in time order.
func busyTraffic(rnd *rand.Rand) (items []uint64, busy uint64) {
	base := uint64(time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()) + 700
	busy = base + 800
	for ms := base; ms < base+1500; ms++ {
		n := rnd.IntN(7)
		if ms == busy {
			n = 700
		}
		for range n {
			items = append(items, ms)
		}
	}
	return items, busy
}

// insertInBlocks inserts n rows, row i given by row(i), spread over four blocks (row i in block i%4),
// so that the table's parts do not hold them in any order of their own.
func insertInBlocks(t *testing.T, conn driver.Conn, insert string, n int, row func(i int) []any) {
	t.Helper()
	const blocks = 4
	for b := range blocks {
		batch, err := conn.PrepareBatch(context.Background(), insert)
		if err != nil {
			t.Fatal(err)
		}
		for i := b; i < n; i += blocks {
			if err := batch.Append(row(i)...); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
}

// uuidAt is a UUIDv7 made at millisecond ms, as the edge makes request ids: its 48-bit timestamp is ms,
// the rest random.
func uuidAt(ms uint64) uuid.UUID {
	id := uuid.Must(uuid.NewV7())
	binary.BigEndian.PutUint16(id[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(id[2:6], uint32(ms))
	return id
}

// TestHistoryNewestFirst pages through thousands of events of one user, several per millisecond and one
// millisecond holding hundreds, inserted in random order in several blocks among events of a device with
// the same subject string and of another project: every page size, with and without before, must give
// each of the subject's events exactly once, strictly newest first — by received_ms, then by the event
// id's bytes. The history used to page on whole seconds (occurred_at < before), skipping the rest of a
// page's last second, and left ties within a second unordered.
func TestHistoryNewestFirst(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(3, 4))

	type row struct {
		project uint64
		kind    chstore.SubjectKind
		id      uuid.UUID
		ms      uint64
	}
	var rows []row
	items, busy := busyTraffic(rnd)
	for _, ms := range items {
		r := row{project: 1, kind: chstore.SubjectUser, id: uuidAt(ms), ms: ms}
		switch rnd.IntN(8) {
		case 0:
			r.kind = chstore.SubjectDevice
		case 1:
			r.project = 2
		}
		rows = append(rows, r)
	}
	rnd.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	insertInBlocks(t, conn, "INSERT INTO events (project_id, subject_kind, subject, occurred_at, event_id, event_name, webhook_id, user_id, hwid, hwids, attributes, received_ms, src_partition, src_offset)",
		len(rows), func(i int) []any {
			r := rows[i]
			return []any{r.project, string(r.kind), "s_busy", time.UnixMilli(int64(r.ms)), r.id, "Buy", "wh_busy", "s_busy", "",
				[]string{}, `{}`, r.ms, int32(0), int64(i)}
		})
	t.Logf("%d events over 1,500 ms, 700 of them in one millisecond", len(rows))

	reader := chstore.NewReader(conn)
	for _, tc := range []struct {
		kind   chstore.SubjectKind
		before time.Time
		limit  int
	}{
		{chstore.SubjectUser, time.Time{}, 500},
		{chstore.SubjectUser, time.Time{}, 37},
		{chstore.SubjectUser, time.Time{}, 9},
		{chstore.SubjectDevice, time.Time{}, 13},
		// Within the busy millisecond: its events are older than that, and are kept.
		{chstore.SubjectUser, time.UnixMilli(int64(busy)).Add(300 * time.Microsecond), 50},
		// At the busy millisecond exactly: its events are not older, and are left out.
		{chstore.SubjectUser, time.UnixMilli(int64(busy)), 50},
	} {
		name := fmt.Sprintf("%s, limit %d", tc.kind, tc.limit)
		if !tc.before.IsZero() {
			name += ", before " + tc.before.Format(time.RFC3339Nano)
		}
		want := map[string]row{}
		for _, r := range rows {
			if r.project == 1 && r.kind == tc.kind && (tc.before.IsZero() || time.UnixMilli(int64(r.ms)).Before(tc.before)) {
				want[r.id.String()] = r
			}
		}
		seen := map[string]bool{}
		var prev row
		cursor := ""
		for page := 0; ; page++ {
			p, err := reader.History(ctx, chstore.HistoryQuery{ProjectID: 1, Kind: tc.kind, Subject: "s_busy", Before: tc.before, Cursor: cursor, Limit: tc.limit})
			if err != nil {
				t.Fatalf("%s, page %d: %v", name, page, err)
			}
			if len(p.Events) > tc.limit || (p.NextCursor != "" && len(p.Events) != tc.limit) {
				t.Fatalf("%s, page %d: %d events, next cursor %q; want %d and a cursor, or the rest and none",
					name, page, len(p.Events), p.NextCursor, tc.limit)
			}
			for _, e := range p.Events {
				r, ok := want[e.EventID]
				if !ok {
					t.Fatalf("%s, page %d: event %s is not one of the expected", name, page, e.EventID)
				}
				if seen[e.EventID] {
					t.Fatalf("%s, page %d: event %s again", name, page, e.EventID)
				}
				seen[e.EventID] = true
				if got := uint64(e.OccurredAt.UnixMilli()); got != r.ms {
					t.Fatalf("event %s occurred at %d ms; want %d", e.EventID, got, r.ms)
				}
				if prev.ms != 0 && (r.ms > prev.ms || r.ms == prev.ms && bytes.Compare(r.id[:], prev.id[:]) >= 0) {
					t.Fatalf("%s, page %d: event %s (%d ms) after %s (%d ms); want strictly newest first",
						name, page, r.id, r.ms, prev.id, prev.ms)
				}
				prev = r
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if len(seen) != len(want) {
			t.Errorf("%s: paged through %d events; want %d", name, len(seen), len(want))
		}
	}
}

// TestHistoryCursorRefused: strings that are no cursor of this API are refused as invalid.
func TestHistoryCursorRefused(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	reader := chstore.NewReader(conn)
	for _, c := range []string{"!!", base64.RawURLEncoding.EncodeToString(make([]byte, 25)), base64.RawURLEncoding.EncodeToString(make([]byte, 24))} {
		_, err := reader.History(context.Background(), chstore.HistoryQuery{ProjectID: 1, Kind: chstore.SubjectUser, Subject: "u", Cursor: c})
		if !errors.Is(err, chstore.ErrInvalid) || !strings.Contains(err.Error(), "not a next_cursor") {
			t.Errorf("cursor %q: %v; want ErrInvalid saying it is not a next_cursor", c, err)
		}
	}
}

// TestNotificationsNewestFirst: hundreds of notifications of one webhook in each of three seconds
// (created_at has whole seconds), inserted in random order in several blocks among another webhook's
// and another project's, come newest first in one order on every read: by created_at, then by the
// Kafka position of the request that raised them (a webhook's requests share a partition, so offset
// order is receive order), then by the id's text. The latest notification is the one raised last.
func TestNotificationsNewestFirst(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(5, 6))

	type row struct {
		project   uint64
		webhook   string
		id        uuid.UUID
		sec       int64
		partition int32
		offset    int64
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second).Unix()
	var rows []row
	offset := int64(0)
	for sec := base; sec < base+3; sec++ {
		for i := range 200 {
			offset += 1 + rnd.Int64N(5)
			r := row{project: 1, webhook: "wh_notes", id: uuid.NewSHA1(uuid.Must(uuid.NewV7()), []byte("auth_failures")), sec: sec, offset: offset}
			switch {
			case sec == base+1 && i%50 == 0:
				// Rows of another partition in the same second, as after the topic's partitions changed:
				// an offset of its own, possibly equal to one of partition 0's.
				r.partition, r.offset = 1, offset-1
			case i%7 == 0:
				r.webhook = "wh_other"
			case i%11 == 0:
				r.project = 2
			}
			rows = append(rows, r)
		}
	}
	want := []row{}
	for _, r := range rows {
		if r.project == 1 && r.webhook == "wh_notes" {
			want = append(want, r)
		}
	}
	// Newest first: the expected order, computed here from the rows as generated.
	slices.SortFunc(want, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.sec, a.sec), cmp.Compare(b.partition, a.partition), cmp.Compare(b.offset, a.offset),
			strings.Compare(b.id.String(), a.id.String()))
	})
	rnd.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	const blocks = 3
	for b := range blocks {
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO notifications (project_id, webhook_id, notification_id, kind, created_at, message, src_partition, src_offset)")
		if err != nil {
			t.Fatal(err)
		}
		for i := b; i < len(rows); i += blocks {
			r := rows[i]
			if err := batch.Append(r.project, r.webhook, r.id, "auth_failures", time.Unix(r.sec, 0), "m", r.partition, r.offset); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}

	reader := chstore.NewReader(conn)
	for _, limit := range []int{chstore.MaxLimit, 0, 1} {
		got, err := reader.Notifications(ctx, 1, "wh_notes", limit)
		if err != nil {
			t.Fatal(err)
		}
		n := min(len(want), cmp.Or(limit, chstore.DefaultLimit))
		if len(got) != n {
			t.Fatalf("limit %d: %d notifications; want %d", limit, len(got), n)
		}
		for i, g := range got {
			if w := want[i]; g.ID != w.id.String() || g.CreatedAt.Unix() != w.sec {
				t.Fatalf("limit %d: notification %d is %s at %d; want %s at %d (partition %d, offset %d)",
					limit, i, g.ID, g.CreatedAt.Unix(), w.id, w.sec, w.partition, w.offset)
			}
		}
	}
}

// TestDuplicatesAndHeaders: duplicates are counted apart from successes and failures (in the rollup,
// the summary and the status filter), and entries carry the first request's id and the sender headers.
func TestDuplicatesAndHeaders(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	first := uuid.Must(uuid.NewV7())
	headers := `{"X-Shopify-Topic":"orders/create","X-Shopify-Webhook-Id":"b54557e4"}`
	row := func(status, reason, dupOf, headers string, off int64) chstore.ActivityRow {
		return chstore.ActivityRow{ProjectID: 1, WebhookID: "wh", RequestID: uuid.Must(uuid.NewV7()), ReceivedAt: now,
			ReceivedMs: uint64(now.UnixMilli()) + uint64(off), Status: status, Reason: reason, EdgeStatus: 202,
			DuplicateOf: dupOf, Headers: headers, Offset: off}
	}
	rows := []chstore.ActivityRow{
		row(chstore.StatusSuccess, "", "", headers, 0),
		row(chstore.StatusDuplicate, "", first.String(), headers, 1),
		row(chstore.StatusDuplicate, "", first.String(), headers, 2),
		row(chstore.StatusFailed, "user_not_found", "", "", 3),
	}
	rows[0].RequestID = first
	if err := chstore.NewWriter(conn).InsertActivity(ctx, rows); err != nil {
		t.Fatal(err)
	}
	r := chstore.NewReader(conn)
	s, err := r.Summary24h(ctx, 1, "wh", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if s.Hits != 4 || s.Success != 1 || s.Failed != 1 || s.Duplicate != 2 || len(s.ByReason) != 1 || s.ByReason["user_not_found"] != 1 {
		t.Errorf("summary %+v; want 4 hits: 1 success, 1 failed (user_not_found), 2 duplicates", s)
	}
	page, err := r.Entries(ctx, chstore.EntriesQuery{ProjectID: 1, WebhookID: "wh", Status: chstore.StatusDuplicate})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 2 {
		t.Fatalf("%d duplicate entries; want 2", len(page.Entries))
	}
	for _, e := range page.Entries {
		if e.Status != chstore.StatusDuplicate || e.DuplicateOf != first.String() || string(e.Headers) != headers {
			t.Errorf("entry %+v; want a duplicate of %s with headers %s", e, first, headers)
		}
	}
	e, err := r.Entry(ctx, 1, "wh", rows[3].RequestID.String())
	if err != nil {
		t.Fatal(err)
	}
	if e.DuplicateOf != "" || e.Headers != nil {
		t.Errorf("entry without headers: duplicate_of %q, headers %s; want both empty", e.DuplicateOf, e.Headers)
	}
	if _, err := r.Entries(ctx, chstore.EntriesQuery{ProjectID: 1, WebhookID: "wh", Status: "retried"}); !errors.Is(err, chstore.ErrInvalid) {
		t.Errorf("status retried: %v; want ErrInvalid", err)
	}
}
