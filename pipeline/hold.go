package pipeline

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/hold"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Holds keeps the requests of routes whose unknown-user policy is hold (hold.Store in production):
// Known tells which requests are held already and how many each project holds; Insert writes a
// batch's holds (idempotently: a request held already keeps its row). Any error is taken as temporary
// and retried.
type Holds interface {
	Known(ctx context.Context, ids []uuid.UUID, projects []int64) (map[uuid.UUID][]string, map[int64]int, error)
	Insert(ctx context.Context, holds []hold.Hold) error
}

// holdTime is how long route r holds a request: its hold_for, or the default, within the bounds.
func (c *Config) holdTime(r *webhook.HookRoute) time.Duration {
	d := r.HoldFor
	if d == 0 {
		d = c.HoldDefault
	}
	return min(max(d, c.HoldMin), c.HoldMax)
}

// hold decides the holds of a poll: the requests with elements that found no user on a route whose
// policy is hold (resolveItems marks them holdable, failed with user_not_found). A request already
// held (its batch redone after a crash) is held again, as it was, even if its users exist by now: its
// hold will release it, and a row saying otherwise would leave the hold's release replacing an outcome
// the request never had. A new one is held while its project holds fewer than HoldMaxPerProject
// requests, and otherwise stays failed, its detail saying the hold is full. The holds themselves are
// written when the batch is flushed (writer.write), before its rows.
func (p *processor) hold(ctx context.Context, items []item) error {
	var ids []uuid.UUID
	var projects []int64
	var waiting []int
	for i := range items {
		it := &items[i]
		if it.healOnly || !it.resolvable() || it.route.r.UnknownUser != webhook.UnknownUserHold {
			continue
		}
		switch {
		case it.attempt.Number == 0 && p.holds != nil:
			// Asked about even when every user is known: its batch may be redone after a crash.
		case !it.holdable():
			continue
		case it.attempt.Number > 0 && it.attempt.Cause == string(replay.CauseExpire):
			it.noteNotHeld("not held again: its hold ran out")
			continue
		case it.attempt.Number > 0 && it.attempt.Cause == string(replay.CauseRelease):
			it.noteNotHeld("not held again: the user was found when the request was released, and is gone again")
			continue
		case it.attempt.Number > 0:
			// A request is held once, by its first attempt: a later one that waited again would be a
			// second hold of the same request (the holds are keyed by request id).
			it.noteNotHeld("not held: only a request's first attempt waits for its user")
			continue
		case p.holds == nil:
			it.noteNotHeld("not held: this pipeline has no hold store")
			continue
		}
		ids = append(ids, it.requestID)
		projects = append(projects, it.projectID)
		waiting = append(waiting, i)
	}
	if len(waiting) == 0 {
		return nil
	}
	slices.Sort(projects)
	projects = slices.Compact(projects)
	var held map[uuid.UUID][]string
	var counts map[int64]int
	about := logFunc(func() []any {
		return append([]any{"reading", "held requests", "holds", len(ids)}, items[waiting[0]].about()...)
	})
	if err := p.retry.do(ctx, "postgres", about, func(ctx context.Context) error {
		var err error
		held, counts, err = p.holds.Known(ctx, ids, projects)
		return err
	}); err != nil {
		return err
	}
	for _, i := range waiting {
		it := &items[i]
		values, was := held[it.requestID]
		switch {
		case was:
			it.holdAgain(values)
		case !it.holdable():
			continue
		case counts[it.projectID] >= p.cfg.HoldMaxPerProject:
			it.noteNotHeld(fmt.Sprintf("not held: the hold is full (the project already holds %d requests, the most hold_max_per_project allows)", counts[it.projectID]))
			p.m.holdFull.Inc()
			continue
		default:
			counts[it.projectID]++
			held[it.requestID] = nil // a record delivered twice in one poll is held once
		}
		until := time.UnixMilli(it.receivedMs).Add(p.cfg.holdTime(it.route.r)).UTC()
		it.heldUntil = until
		for j := range it.elems {
			if e := &it.elems[j]; e.holdable {
				e.reason = wire.ReasonWaitingForUser
				e.detail = append(e.detail[:0], fmt.Sprintf("waiting for %s %q until %s", kindLabel(it.route.r.Identify.Kind),
					truncateText(e.identValue), until.Format(time.RFC3339)))
			}
		}
	}
	return nil
}

// holdable reports whether some element of the request found no user on a route whose policy is hold.
func (it *item) holdable() bool {
	for i := range it.elems {
		if it.elems[i].holdable {
			return true
		}
	}
	return false
}

// holdAgain makes the elements that waited for values (the request's hold, written by an earlier run
// of its batch) wait again, found or not.
func (it *item) holdAgain(values []string) {
	for i := range it.elems {
		e := &it.elems[i]
		if e.reason == "" && e.found && slices.Contains(values, e.identValue) {
			e.found, e.subject, e.holdable = false, Subject{}, true
		}
	}
}

// noteNotHeld says, in the detail of each element that would have been held, why it was not.
func (it *item) noteNotHeld(why string) {
	for i := range it.elems {
		if e := &it.elems[i]; e.holdable {
			e.holdable = false
			e.detail = append(e.detail, why)
		}
	}
}

// holdOf is the hold a held request (settled as held) writes: its unknown identifiers, sorted without
// repeats, and the elements it fired.
func (it *item) holdOf() hold.Hold {
	h := hold.Hold{ProjectID: it.projectID, WebhookID: it.webhookID, RequestID: it.requestID,
		Kind: it.route.r.Identify.Kind, Partition: it.partition, Offset: it.offset,
		ReceivedAt: time.UnixMilli(it.receivedMs).UTC(), ExpiresAt: it.heldUntil}
	for i := range it.elems {
		e := &it.elems[i]
		switch {
		case e.reason == wire.ReasonWaitingForUser:
			h.Values = append(h.Values, e.identValue)
		case e.fired && e.index >= 0:
			h.Fired = append(h.Fired, e.index)
		}
	}
	slices.Sort(h.Values)
	h.Values = slices.Compact(h.Values)
	return h
}
