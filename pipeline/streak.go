package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/wire"
)

// Auth-failure streaks. Records of one webhook share a partition (key = webhook id), so offset order is
// the order the edge saw them in and the streak is tracked per partition. Authenticated requests
// (accepted, invalid_json, payload_too_large: the edge checks the secret before the body) end a streak;
// webhook_disabled neither counts nor ends one; a secret rotation after the streak began restarts it.
// The notification fires once, when the streak reaches AuthFailureStreak, and again only after a reset.

const notificationKind = "auth_failures"

func (p *Pipeline) trackStreak(ctx context.Context, it *item) {
	st := p.parts[it.partition]
	if st == nil {
		return
	}
	switch it.outcome {
	case wire.OutcomeAccepted, wire.OutcomeInvalidJSON, wire.OutcomePayloadTooLarge:
		delete(st.streaks, it.webhookID)
	case wire.OutcomeAuthRejected:
		s := st.streaks[it.webhookID]
		if s == nil {
			if len(st.streaks) > 100_000 {
				clear(st.streaks) // bound memory against a flood of ids; streaks restart
			}
			s = &streak{}
			st.streaks[it.webhookID] = s
		}
		if s.count > 0 {
			// The cache answers from memory; when it cannot, the streak just goes on.
			if h, err := p.deps.Hooks.Get(ctx, it.webhookID); err == nil && h.SecretRotatedAt.UnixMilli() > s.startMs {
				*s = streak{}
			}
		}
		if s.count == 0 {
			s.startMs = it.receivedMs
		}
		s.count++
		if s.count >= p.cfg.AuthFailureStreak && !s.notified {
			s.notified = true
			p.addNotification(Notification{
				ProjectID: it.projectID,
				WebhookID: it.webhookID,
				ID:        notificationID(it.requestID),
				Kind:      notificationKind,
				CreatedAt: time.UnixMilli(it.receivedMs).UTC(),
				Message:   authMessage(it.webhookID, s.count),
				partition: it.partition,
				offset:    it.offset,
			})
		}
	}
}

func authMessage(webhookID string, n int) string {
	return fmt.Sprintf("%d consecutive requests to webhook %s were rejected: the Authorization header is missing or does not match the secret. Update the secret in the sending service; the webhook keeps accepting requests.", n, webhookID)
}

func (p *Pipeline) addNotification(n Notification) {
	if st := p.parts[n.partition]; st != nil && n.offset <= st.hwm[tableNotifications] {
		return
	}
	p.b.notes = append(p.b.notes, n)
	p.b.noteOffset(tableNotifications, n.partition, n.offset)
	p.m.notifications.Inc()
}

// loadStreaks rebuilds a partition's streaks from ClickHouse as of its activity high-water mark: for
// each webhook, the auth_rejected rows after its last authenticated row (at most AuthFailureStreak of
// them are needed) and whether a notification was raised since. A streak that reached the threshold
// without its notification (a crash between the activity and notifications inserts) is returned so the
// caller raises it now.
func (p *Pipeline) loadStreaks(ctx context.Context, part int32, st *partState) ([]Notification, error) {
	since := p.store.since()
	lastOK, err := p.lastOffsets(ctx, fmt.Sprintf(
		"SELECT webhook_id, max(src_offset) FROM activity_log WHERE received_at >= toDateTime(%d) AND src_partition = %d AND reason NOT IN ('auth_rejected', 'webhook_disabled') GROUP BY webhook_id",
		since, part))
	if err != nil {
		return nil, err
	}
	lastNote, err := p.lastOffsets(ctx, fmt.Sprintf(
		"SELECT webhook_id, max(src_offset) FROM notifications WHERE created_at >= toDateTime(%d) AND src_partition = %d GROUP BY webhook_id",
		since, part))
	if err != nil {
		return nil, err
	}
	rows, err := p.store.conn.Query(ctx, fmt.Sprintf(
		"SELECT webhook_id, project_id, request_id, received_ms, src_offset FROM activity_log WHERE received_at >= toDateTime(%d) AND src_partition = %d AND reason = 'auth_rejected' ORDER BY webhook_id, src_offset DESC LIMIT %d BY webhook_id",
		since, part, p.cfg.AuthFailureStreak))
	if err != nil {
		return nil, fmt.Errorf("auth-failure streaks of partition %d: %w", part, err)
	}
	defer rows.Close()
	type fail struct {
		project   uint64
		requestID uuid.UUID
		ms        uint64
		offset    int64
	}
	recent := map[string][]fail{} // newest first
	for rows.Next() {
		var w string
		var f fail
		if err := rows.Scan(&w, &f.project, &f.requestID, &f.ms, &f.offset); err != nil {
			return nil, fmt.Errorf("auth-failure streaks of partition %d: %w", part, err)
		}
		recent[w] = append(recent[w], f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth-failure streaks of partition %d: %w", part, err)
	}
	var missing []Notification
	for w, fails := range recent {
		ok, seen := lastOK[w]
		if !seen {
			ok = -1
		}
		var s streak
		for _, f := range fails {
			if f.offset <= ok {
				break
			}
			s.count++
			s.startMs = int64(f.ms)
		}
		if s.count == 0 {
			continue
		}
		note, noted := lastNote[w]
		s.notified = noted && note > ok
		if s.count >= p.cfg.AuthFailureStreak && !s.notified {
			s.notified = true
			f := fails[s.count-1] // the failure that completed the streak
			if f.offset > st.hwm[tableNotifications] {
				missing = append(missing, Notification{
					ProjectID: int64(f.project), WebhookID: w, ID: notificationID(f.requestID), Kind: notificationKind,
					CreatedAt: time.UnixMilli(int64(f.ms)).UTC(), Message: authMessage(w, s.count),
					partition: part, offset: f.offset,
				})
			}
		}
		st.streaks[w] = &s
	}
	return missing, nil
}

func (p *Pipeline) lastOffsets(ctx context.Context, q string) (map[string]int64, error) {
	rows, err := p.store.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("auth-failure streak state: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var w string
		var off int64
		if err := rows.Scan(&w, &off); err != nil {
			return nil, fmt.Errorf("auth-failure streak state: %w", err)
		}
		out[w] = off
	}
	return out, rows.Err()
}
