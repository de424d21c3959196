package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// sink is everything the pipeline does with ClickHouse: it inserts a batch's blocks exactly once,
// reads back the high-water marks, the events to heal and the auth-failure streaks of newly assigned
// partitions, and drops expired partitions. What it writes and reads, and the SQL, are chstore.Writer's;
// the sink decides when: it names each insert attempt, retries, waits for attempts still running on the
// server before checking whether one landed, and turns what ClickHouse holds into the partitions' state.
type sink struct {
	store    *chstore.Writer
	topic    string // the requests topic, named in insert query ids
	lookback time.Duration
	cfg      *Config
	retry    *retrier
	m        *metrics
	log      *slog.Logger
	group    groupMember // the consumer: this process's place in the group, for its claims

	// epochs is, per partition, the epoch of this process's claim (partitions): its inserts land only
	// while that is the partition's latest claim. Like the batch, it changes only under the consumer's
	// lock.
	epochs map[int32]uint64
}

// groupMember is what a claim needs of the consumer group.
type groupMember interface {
	// member returns this process's member id and the group generation it last joined (-1 outside one).
	member() (string, int32)
	// current fails unless that generation is still the group's and this process a member of it.
	current(ctx context.Context) error
}

// send inserts table t's rows of the batch as one block, fenced by this process's claims.
func (s *sink) send(ctx context.Context, t chstore.Table, b *batch) error {
	g := chstore.Gate{Topic: s.topic, Epochs: make(map[int32]uint64, len(b.maxOffset[t]))}
	for part := range b.maxOffset[t] {
		e, ok := s.epochs[part]
		if !ok {
			// Rows of a partition are only ever added after its claim (partitions).
			return fmt.Errorf("%w: rows of partition %d without a claim", errPermanent, part)
		}
		g.Epochs[part] = e
	}
	switch t {
	case chstore.ActivityLog:
		return s.store.InsertActivityGated(ctx, g, b.activity)
	case chstore.Events:
		return s.store.InsertEventsGated(ctx, g, b.events)
	}
	return s.store.InsertNotificationsGated(ctx, g, b.notes)
}

// claim records this process's claim of partitions it was assigned, before it reads what ClickHouse
// holds of them: from then on an insert of their rows by any other process — one frozen before its
// INSERT reached the server and thawed after the group moved the partitions, or one that still thinks
// it owns them — lands nothing (chstore.Gate). docs/architecture.md gives the argument.
//
// An epoch orders claims as the group orders its members: era, then the group generation in which the
// claimant is a member, then a sequence within that generation. A later owner of a partition is a member
// of a later generation (Kafka's rebalance protocol moves a partition only through a new generation), so
// its epoch is higher whenever it claims, however late an earlier owner writes its own claim. Two cases
// need more, and both are decided only after the group coordinator has confirmed that this process is
// a member of its current generation (groupMember.current), which a stale process cannot get:
//   - the partition's latest claim is of this very generation by another member: a static member
//     (instance_id) replaced within its session timeout keeps the generation, so the replacement takes
//     the next sequence;
//   - the latest claim is of a later generation than this process's current one: the group's
//     generations started again (the group was deleted or expired and re-created), so the era goes up.
func (s *sink) claim(ctx context.Context, parts []int32) error {
	member, gen := s.group.member()
	if gen < 0 {
		return errors.New("not in the consumer group yet: no generation to claim partitions at")
	}
	owners, err := s.store.Owners(ctx, s.topic, parts)
	if err != nil {
		return err
	}
	epochs := make(map[int32]uint64, len(parts))
	verified := false
	for _, x := range parts {
		o, had := owners[x]
		e, confirm := claimEpoch(gen, member, o, had)
		if confirm && !verified {
			if err := s.group.current(ctx); err != nil {
				return fmt.Errorf("partition %d was last claimed at epoch %s by member %q; this member (%q, generation %d) may claim it past that only as the group's current member, and is not: %w",
					x, epochString(o.Epoch), o.Member, member, gen, err)
			}
			verified = true
		}
		if confirm {
			s.log.Info("partition claimed past an equal or later claim (a static member's replacement, or the group's generations started again)",
				"partition", x, "previous_epoch", epochString(o.Epoch), "previous_member", o.Member, "epoch", epochString(e), "generation", gen)
		}
		epochs[x] = e
	}
	if err := s.store.Claim(ctx, s.topic, member, epochs); err != nil {
		return err
	}
	for x, e := range epochs {
		s.epochs[x] = e
	}
	return nil
}

// An epoch is era (16 bits), group generation (32 bits) and sequence (16 bits), compared as one number.
func packEpoch(era uint16, gen int32, seq uint16) uint64 {
	return uint64(era)<<48 | uint64(uint32(gen))<<16 | uint64(seq)
}

func unpackEpoch(e uint64) (era uint16, gen int32, seq uint16) {
	return uint16(e >> 48), int32(uint32(e >> 16)), uint16(e)
}

func epochString(e uint64) string {
	era, gen, seq := unpackEpoch(e)
	return fmt.Sprintf("%d/%d/%d", era, gen, seq)
}

// claimEpoch is the epoch at which member, in generation gen, claims a partition whose latest claim is
// prev (had: there is one), and whether the claim goes past prev and so needs the coordinator's word
// that gen is current (see sink.claim).
func claimEpoch(gen int32, member string, prev chstore.Owner, had bool) (uint64, bool) {
	if !had {
		return packEpoch(0, gen, 0), false
	}
	era, pgen, seq := unpackEpoch(prev.Epoch)
	switch {
	case pgen < gen:
		return packEpoch(era, gen, 0), false
	case pgen == gen && prev.Member == member:
		return prev.Epoch, false // this process claims again (after abandoning its work)
	case pgen == gen && seq < 1<<16-1:
		return packEpoch(era, gen, seq+1), true
	}
	return packEpoch(era+1, gen, 0), true
}

// since is where the look-back window starts: the reads by Kafka position skip older rows, which come
// from offsets Kafka no longer keeps.
func (s *sink) since() time.Time { return time.Now().Add(-s.lookback) }

// partitions reads what the pipeline needs to know of partitions seen for the first time since their
// assignment: each table's high-water mark, the events to heal and the auth-failure streaks, and the
// notifications a crash left unraised. It retries until ClickHouse answers or ctx ends.
func (s *sink) partitions(ctx context.Context, parts []int32) (map[int32]*partState, []chstore.NotificationRow, error) {
	var loaded map[int32]*partState
	var missing []chstore.NotificationRow
	err := s.retry.do(ctx, "clickhouse", partitionsRef(parts), func(ctx context.Context) error {
		// Claim first: an insert of these partitions' rows by anyone else that has not reached the server
		// yet will land nothing. One that has may still be running (a previous owner's, or this process's
		// own before it abandoned its batch): read the marks after it ends.
		if err := s.claim(ctx, parts); err != nil {
			return err
		}
		if err := s.store.AwaitInserts(ctx, s.topic, parts, s.cfg.InsertTimeout); err != nil {
			return err
		}
		var hwm [chstore.NumTables]map[int32]int64
		for t := range chstore.NumTables {
			m, err := s.store.HighWater(ctx, t, parts, s.since())
			if err != nil {
				return err
			}
			hwm[t] = m
		}
		loaded, missing = map[int32]*partState{}, nil
		for _, x := range parts {
			st := &partState{streaks: map[string]*streak{}}
			for t := range chstore.NumTables {
				st.hwm[t] = hwm[t][x]
			}
			if st.hwm[chstore.ActivityLog] > st.hwm[chstore.Events] {
				heal, err := s.store.FiredAbove(ctx, x, st.hwm[chstore.Events], s.since())
				if err != nil {
					return err
				}
				for off := range heal {
					if off > st.hwm[chstore.ActivityLog] {
						delete(heal, off)
					}
				}
				if len(heal) > 0 {
					st.heal = heal
				}
			}
			m, err := s.loadStreaks(ctx, x, st)
			if err != nil {
				return err
			}
			if len(m) > 0 {
				s.log.Warn("auth-failure notifications missing after a crash, raising them now", "partition", x, "count", len(m))
				missing = append(missing, m...)
			}
			loaded[x] = st
			s.log.Info("partition assigned", "partition", x, "activity_hwm", st.hwm[chstore.ActivityLog],
				"events_hwm", st.hwm[chstore.Events], "notifications_hwm", st.hwm[chstore.Notifications], "heal", len(st.heal))
		}
		return nil
	})
	return loaded, missing, err
}

// insert writes one table's rows. A failed attempt may still have landed (the server applied the block
// but the answer was lost, or the attempt was cut short by a shutdown or a rebalance while the server
// went on), so before trying again the high-water marks are read back: writing the block twice is the
// one thing that must never happen. The batch remembers the last attempt (batch.attempt), so that this
// holds as well for the first attempt of a later flush of the same batch: the last one on shutdown, or
// the one on revocation, after the consume loop's flush was interrupted.
func (s *sink) insert(ctx context.Context, t chstore.Table, b *batch) error {
	n := b.tableRows(t)
	name := t.String()
	parts := make([]int32, 0, len(b.maxOffset[t]))
	for part := range b.maxOffset[t] {
		parts = append(parts, part)
	}
	about := logFunc(func() []any {
		return []any{"table", name, "rows", n, "partitions_to_offset", b.maxOffset[t]}
	})
	return s.retry.do(ctx, "clickhouse", about, func(ctx context.Context) error {
		if last := b.attempt[t]; last != "" {
			// An attempt that reported an error may still be running on the server (the client gave
			// up, the server did not): wait for it to end before reading whether it landed, or the
			// retry could write the rows a second time.
			if err := s.store.AwaitQuery(ctx, last, s.cfg.InsertTimeout); err != nil {
				return err
			}
			hw, err := s.store.HighWater(ctx, t, parts, s.since())
			if err != nil {
				return err
			}
			if landed(hw, b.maxOffset[t]) {
				s.log.Info("insert that reported an error had landed", "table", name, "rows", n)
				return nil
			}
		}
		b.attempt[t] = chstore.InsertQueryID(s.topic, parts)
		ictx, cancel := context.WithTimeout(clickhouse.Context(ctx, clickhouse.WithQueryID(b.attempt[t])), s.cfg.InsertTimeout)
		defer cancel()
		start := time.Now()
		if err := s.send(ictx, t, b); err != nil {
			s.m.insertErrors.WithLabelValues(name).Inc()
			return err
		}
		s.m.insertSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		s.m.batchRows.WithLabelValues(name).Observe(float64(n))
		return nil
	})
}

func landed(hw map[int32]int64, want map[int32]int64) bool {
	for part, off := range want {
		if hw[part] < off {
			return false
		}
	}
	return true
}

// loadStreaks rebuilds a partition's streaks from ClickHouse as of its activity high-water mark: for
// each webhook, the auth_rejected rows after its last authenticated row (at most AuthFailureStreak of
// them are needed) and whether a notification was raised since. A streak that reached the threshold
// without its notification (a crash between the activity and notifications inserts) is returned so the
// caller raises it now.
func (s *sink) loadStreaks(ctx context.Context, part int32, st *partState) ([]chstore.NotificationRow, error) {
	state, err := s.store.StreakState(ctx, part, s.since(), s.cfg.AuthFailureStreak)
	if err != nil {
		return nil, err
	}
	var missing []chstore.NotificationRow
	for w, fails := range state.Failures { // newest first
		ok, seen := state.LastAuthenticated[w]
		if !seen {
			ok = -1
		}
		var run streak
		for _, f := range fails {
			if f.Offset <= ok {
				break
			}
			run.count++
			run.startMs = int64(f.ReceivedMs)
		}
		if run.count == 0 {
			continue
		}
		note, noted := state.LastNotified[w]
		run.notified = noted && note > ok
		if run.count >= s.cfg.AuthFailureStreak && !run.notified {
			run.notified = true
			f := fails[run.count-1] // the failure that completed the streak
			if f.Offset > st.hwm[chstore.Notifications] {
				missing = append(missing, chstore.NotificationRow{
					ProjectID: f.ProjectID, WebhookID: w, ID: notificationID(f.RequestID), Kind: notificationKind,
					CreatedAt: time.UnixMilli(int64(f.ReceivedMs)).UTC(), Message: authMessage(w, run.count),
					Partition: part, Offset: f.Offset,
				})
			}
		}
		st.streaks[w] = &run
	}
	return missing, nil
}

// applyRetention enforces the projects' shorter retentions (chstore.Writer.ApplyRetention).
func (s *sink) applyRetention(ctx context.Context, projects []chstore.ProjectRetention, now time.Time) (int, error) {
	return s.store.ApplyRetention(ctx, projects, now)
}

// dropExpired drops the daily partitions of activity_log and events that end before now minus
// RetentionDays and returns how many it dropped.
func (s *sink) dropExpired(ctx context.Context, now time.Time) (int, error) {
	n, err := s.store.DropExpired(ctx, now, s.cfg.RetentionDays)
	s.m.dropped.Add(float64(n))
	return n, err
}
