package chstore_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestRecorded: the newest accepted requests, newest first, across days, without refused requests,
// duplicates or other webhooks' rows, with payload, truncation and headers.
func TestRecorded(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var rows []chstore.ActivityRow
	for i := range 30 {
		at := now.Add(-time.Duration(i) * 6 * time.Hour) // spans a week of daily partitions
		r := chstore.ActivityRow{ProjectID: 1, WebhookID: "wh", RequestID: uuid.Must(uuid.NewV7()), ReceivedAt: at,
			ReceivedMs: uint64(at.UnixMilli()), Status: chstore.StatusSuccess, EdgeStatus: 202,
			Payload: `{"n":` + strconv.Itoa(i) + `}`, Offset: int64(i)}
		switch i % 5 {
		case 1:
			r.EdgeStatus, r.Status, r.Reason = 401, chstore.StatusFailed, "auth_rejected"
		case 2:
			r.Status, r.DuplicateOf = chstore.StatusDuplicate, uuid.NewString()
		case 3:
			r.Status, r.Reason, r.PayloadTruncated, r.Headers = chstore.StatusFailed, "user_not_found", 1, `{"X-Topic":"a"}`
		}
		rows = append(rows, r)
		other := r
		other.WebhookID, other.RequestID = "other", uuid.Must(uuid.NewV7())
		rows = append(rows, other)
	}
	if err := chstore.NewWriter(conn).InsertActivity(ctx, rows); err != nil {
		t.Fatal(err)
	}
	r := chstore.NewReader(conn)
	got, err := r.Recorded(ctx, 1, "wh", 7)
	if err != nil {
		t.Fatal(err)
	}
	// Accepted and not duplicates: i%5 in {0, 3, 4}, newest first: 0, 3, 4, 5, 8, 9, 10.
	want := []int{0, 3, 4, 5, 8, 9, 10}
	if len(got) != len(want) {
		t.Fatalf("%d recorded; want %d", len(got), len(want))
	}
	for j, i := range want {
		src := rows[2*i]
		if g := got[j]; g.RequestID != src.RequestID.String() || g.ReceivedMs != src.ReceivedMs || g.Payload != src.Payload ||
			g.Truncated != (src.PayloadTruncated == 1) || g.Headers != src.Headers || g.Reason != src.Reason {
			t.Errorf("recorded[%d] = %+v; want request %d, %s", j, g, i, src.RequestID)
		}
	}
	all, err := r.Recorded(ctx, 1, "wh", chstore.MaxRecorded)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 18 {
		t.Errorf("%d recorded with a limit above the count; want all 18", len(all))
	}
	for _, limit := range []int{0, chstore.MaxRecorded + 1} {
		if _, err := r.Recorded(ctx, 1, "wh", limit); !errors.Is(err, chstore.ErrInvalid) {
			t.Errorf("limit %d: %v; want ErrInvalid", limit, err)
		}
	}
}

// TestRecordedReplayed: a request that ran twice (a replay) is recorded once, with its latest outcome.
func TestRecordedReplayed(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	first := chstore.ActivityRow{ProjectID: 1, WebhookID: "wh", RequestID: uuid.Must(uuid.NewV7()), ReceivedAt: at,
		ReceivedMs: uint64(at.UnixMilli()), Status: chstore.StatusFailed, Reason: "user_not_found", EdgeStatus: 202, Payload: `{"n":1}`}
	replayed := first
	replayed.Status, replayed.Reason, replayed.Attempt, replayed.Offset = chstore.StatusSuccess, "", 1, 1
	replayed.ReplacesStatus, replayed.ReplacesReason = chstore.StatusFailed, "user_not_found"
	if err := chstore.NewWriter(conn).InsertActivity(ctx, []chstore.ActivityRow{first, replayed}); err != nil {
		t.Fatal(err)
	}
	got, err := chstore.NewReader(conn).Recorded(ctx, 1, "wh", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Status != chstore.StatusSuccess {
		t.Errorf("recorded %+v; want the request once, a success", got)
	}
}

// TestRecordedSkipsUnstoredPayloads: a request whose payload is not stored (cleared by a project's
// retention, or not storable masked) is no request a backtest can run.
func TestRecordedSkipsUnstoredPayloads(t *testing.T) {
	_, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	now := time.Now().UTC()
	var rows []chstore.ActivityRow
	for i, payload := range []string{`{"kept":1}`, ""} {
		rows = append(rows, chstore.ActivityRow{ProjectID: 1, WebhookID: "wh", RequestID: uuid.Must(uuid.NewV7()), ReceivedAt: now,
			ReceivedMs: uint64(now.UnixMilli()) + uint64(i), Status: chstore.StatusSuccess, EdgeStatus: 202, Payload: payload, Offset: int64(i)})
	}
	if err := chstore.NewWriter(conn).InsertActivity(ctx, rows); err != nil {
		t.Fatal(err)
	}
	got, err := chstore.NewReader(conn).Recorded(ctx, 1, "wh", 10)
	if err != nil || len(got) != 1 || got[0].Payload != `{"kept":1}` {
		t.Fatalf("Recorded = %+v, %v; want the stored payload only", got, err)
	}
}
