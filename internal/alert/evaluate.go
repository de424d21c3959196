package alert

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// evaluatorLock is the advisory lock whose holder evaluates the rules; the others skip the round.
const evaluatorLock = int64(0x696e6c6574_0017) // "inlet", issue 17

// baseline is how far before a silence rule's window a webhook's traffic makes it busy.
const baseline = time.Hour

// verdict is a rule's judgement of one webhook's window: whether it should fire (and with what
// value and message), or whether an open alert may resolve.
type verdict struct {
	fire, clear bool
	value       float64
	message     string
}

// judge applies a rule to one webhook's counts.
func judge(r *Rule, c chstore.WindowCounts) verdict {
	switch r.Kind {
	case KindFailureRatio:
		judged := c.Success + c.Failed
		if judged == 0 || int64(judged) < r.MinRequests {
			return verdict{clear: true}
		}
		pct := 100 * float64(c.Failed) / float64(judged)
		return verdict{fire: pct > r.Threshold, clear: pct <= r.Threshold, value: pct,
			message: fmt.Sprintf("%.1f%% of the requests to webhook %s failed in the last %d minutes (%d of %d), above %.1f%% (rule %q)",
				pct, c.WebhookID, r.WindowMinutes, c.Failed, judged, r.Threshold, r.Name)}
	case KindReasonSpike:
		n := float64(c.Reason)
		return verdict{fire: n >= r.Threshold, clear: n < r.Threshold, value: n,
			message: fmt.Sprintf("%d requests to webhook %s failed with %s in the last %d minutes, at least %.0f (rule %q)",
				c.Reason, c.WebhookID, r.Reason, r.WindowMinutes, r.Threshold, r.Name)}
	case KindSilence:
		return verdict{fire: c.Total == 0 && float64(c.Before) >= r.Threshold, clear: c.Total > 0, value: float64(c.Before),
			message: fmt.Sprintf("webhook %s received no request in the last %d minutes after %d in the hour before (rule %q)",
				c.WebhookID, r.WindowMinutes, c.Before, r.Name)}
	}
	return verdict{clear: true}
}

func resolvedMessage(r *Rule, webhookID string) string {
	return fmt.Sprintf("resolved: rule %q (%s) no longer holds for webhook %s", r.Name, r.Kind, webhookID)
}

// Evaluate judges every enabled rule of every project at now, firing and resolving alerts, unless
// another process holds the evaluator's lock (then it does nothing and returns false). Each alert's
// notification is queued in the transaction that fires or resolves it.
func (s *Service) Evaluate(ctx context.Context, now time.Time) (bool, error) {
	ran := false
	err := pgx.BeginFunc(ctx, s.store.db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, evaluatorLock).Scan(&ran); err != nil || !ran {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT project_id, `+ruleColumns+` FROM alert_rules WHERE enabled ORDER BY project_id, id`)
		if err != nil {
			return err
		}
		type projectRule struct {
			project int64
			Rule
		}
		rules, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (projectRule, error) {
			var r projectRule
			err := row.Scan(append([]any{&r.project}, r.fields()...)...)
			return r, err
		})
		if err != nil {
			return err
		}
		for i := range rules {
			if err := s.evaluateRule(ctx, tx, rules[i].project, &rules[i].Rule, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return ran, fmt.Errorf("evaluate alert rules: %w", err)
	}
	return ran, nil
}

func (s *Service) evaluateRule(ctx context.Context, tx pgx.Tx, projectID int64, r *Rule, now time.Time) error {
	to := now.UTC().Truncate(time.Minute).Add(time.Minute)
	from := to.Add(-time.Duration(r.WindowMinutes) * time.Minute)
	counts, err := s.rollup.WindowCounts(ctx, projectID, r.WebhookID, r.Reason, from.Add(-baseline), from, to)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT webhook_id, id FROM alerts WHERE rule_id = $1 AND resolved_at IS NULL`, r.ID)
	if err != nil {
		return err
	}
	open := map[string]int64{}
	var wh string
	var id int64
	if _, err := pgx.ForEachRow(rows, []any{&wh, &id}, func() error { open[wh] = id; return nil }); err != nil {
		return err
	}
	seen := make(map[string]bool, len(counts))
	for _, c := range counts {
		seen[c.WebhookID] = true
		if err := s.apply(ctx, tx, projectID, r, c, open, now); err != nil {
			return err
		}
	}
	// An open alert's webhook without traffic in either range: judged on zero counts.
	for wh := range open {
		if !seen[wh] {
			if err := s.apply(ctx, tx, projectID, r, chstore.WindowCounts{WebhookID: wh}, open, now); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) apply(ctx context.Context, tx pgx.Tx, projectID int64, r *Rule, c chstore.WindowCounts, open map[string]int64, now time.Time) error {
	v := judge(r, c)
	alertID, isOpen := open[c.WebhookID]
	ruleID := r.ID
	switch {
	case !isOpen && v.fire:
		if err := tx.QueryRow(ctx, `INSERT INTO alerts (project_id, rule_id, kind, webhook_id, message, value, fired_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			projectID, r.ID, r.Kind, c.WebhookID, v.message, v.value, now).Scan(&alertID); err != nil {
			return err
		}
		s.m.fired.WithLabelValues(r.Kind).Inc()
		return s.store.enqueue(ctx, tx, Payload{ProjectID: projectID, WebhookID: c.WebhookID, ID: uuid.New(), Kind: r.Kind,
			CreatedAt: now.UTC(), Message: v.message, Type: EventFired, AlertID: alertID, RuleID: &ruleID, Value: v.value})
	case isOpen && v.clear:
		if _, err := tx.Exec(ctx, `UPDATE alerts SET resolved_at = $2 WHERE id = $1`, alertID, now); err != nil {
			return err
		}
		s.m.resolved.WithLabelValues(r.Kind).Inc()
		return s.store.enqueue(ctx, tx, Payload{ProjectID: projectID, WebhookID: c.WebhookID, ID: uuid.New(), Kind: r.Kind,
			CreatedAt: now.UTC(), Message: resolvedMessage(r, c.WebhookID), Type: EventResolved, AlertID: alertID, RuleID: &ruleID, Value: v.value})
	}
	return nil
}
