// Package alert evaluates a project's alert rules over the per-minute rollup and delivers the
// notifications they raise, so that a team on call can rely on them.
//
// Rules (failure ratio over a window, a reason spiking, a busy webhook going silent) live in
// PostgreSQL (alert_rules) and are evaluated every evaluate_interval from ClickHouse's activity_minute
// rollup by one admin process at a time (a transaction-scoped advisory lock). An alert is a row in
// alerts: at most one open per rule and webhook (a unique index), so it fires once and resolves once.
// The pipeline's five-failures notification (pipeline/processor.go trackStreak) is recorded here too,
// as an alert without a rule, named by its notification id so that a replay records it once.
//
// Every firing and resolution queues a notification in notification_deliveries, in the same
// transaction as the alert. A worker in each admin process claims due notifications (FOR UPDATE SKIP
// LOCKED), signs each with the project's Standard Webhooks secret (webhook-id, webhook-timestamp,
// webhook-signature), POSTs it, records the attempt (status code, error, duration) and retries with
// exponential backoff up to max_attempts. Targets whose address is private, loopback or link-local are
// refused when the connection is made (see Sender) unless allow_private_targets is set. Nothing here
// runs on the pipeline's consume loop: the pipeline only inserts a row, from its notification
// goroutine.
package alert

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Kinds of rules, and of alerts (an alert has its rule's kind; KindAuthFailures is the pipeline's).
const (
	// KindFailureRatio fires when failed requests are more than threshold percent of the window's
	// successful and failed requests, once at least min_requests of them (and at least 1) were seen.
	KindFailureRatio = "failure_ratio"
	// KindReasonSpike fires when at least threshold requests of the window failed with reason.
	KindReasonSpike = "reason_spike"
	// KindSilence fires when a webhook that had at least threshold requests in the hour before the
	// window has none in the window; it resolves when a request arrives.
	KindSilence = "silence"
	// KindAuthFailures is the pipeline's five-failures notification: AuthFailureStreak consecutive
	// auth_rejected requests to one webhook. It is not a rule of this package; it resolves when the
	// webhook accepts an authenticated request again (ResolveStreak).
	KindAuthFailures = "auth_failures"
)

// Notification events, the "type" of a notification's body.
const (
	EventFired    = "alert.fired"
	EventResolved = "alert.resolved"
)

// Rule is one of a project's alert rules.
type Rule struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
	// WebhookID limits the rule to one webhook; "" applies it to each webhook of the project on its
	// own (one alert per webhook).
	WebhookID string `json:"webhook_id"`
	// Reason is the failure reason a reason_spike rule counts (e.g. user_not_found, auth_rejected).
	Reason string `json:"reason"`
	// Threshold: a percentage (failure_ratio), a count of requests (reason_spike), or the requests in
	// the hour before the window that make a webhook busy (silence).
	Threshold float64 `json:"threshold"`
	// WindowMinutes is the window the rule looks at, the current minute included.
	WindowMinutes int `json:"window_minutes"`
	// MinRequests is the fewest successful and failed requests a failure_ratio rule needs in its
	// window to judge.
	MinRequests int64     `json:"min_requests"`
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Alert is one firing of a rule (or one five-failures notification).
type Alert struct {
	ID        int64  `json:"id"`
	RuleID    *int64 `json:"rule_id"`
	Kind      string `json:"kind"`
	WebhookID string `json:"webhook_id"`
	Message   string `json:"message"`
	// Value is what fired the alert: the failure percentage, the reason's count, the requests before
	// the silence, or the streak's length.
	Value      float64    `json:"value"`
	FiredAt    time.Time  `json:"fired_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
	// State is "firing" or "resolved".
	State string `json:"state"`
}

// Payload is a notification's body in the standard format. The first six fields are those of the
// seed's notification, kept for its receivers.
type Payload struct {
	ProjectID int64     `json:"project_id"`
	WebhookID string    `json:"webhook_id"`
	ID        uuid.UUID `json:"notification_id"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	Message   string    `json:"message"`
	// Type is alert.fired or alert.resolved.
	Type    string  `json:"type"`
	AlertID int64   `json:"alert_id"`
	RuleID  *int64  `json:"rule_id"`
	Value   float64 `json:"value"`
}

// Delivery is one notification and its delivery so far.
type Delivery struct {
	ID      uuid.UUID       `json:"id"`
	AlertID *int64          `json:"alert_id"`
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
	// State is pending, delivered, failed (every attempt failed, or the target was refused) or
	// skipped (no notification URL, or the project's queue was full).
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	// AttemptLog lists the attempts, first first.
	AttemptLog []Attempt `json:"attempt_log"`
}

// Attempt is one POST of a notification.
type Attempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	URL        string    `json:"url"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error"`
	DurationMs int       `json:"duration_ms"`
}

// Formats of a project's notifications.
const (
	// FormatStandard POSTs Payload as JSON.
	FormatStandard = "standard"
	// FormatSlack POSTs {"text": message}, which a Slack incoming webhook (and Mattermost's, and
	// Discord's /slack endpoint) shows as a message.
	FormatSlack = "slack"
)
