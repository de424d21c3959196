-- Alert rules, alerts and trusted notifications (issue 17).
--
-- projects: the Standard Webhooks signing secret of the project's notifications (sealed under the
-- master key like webhook secrets, bound to "project:<id>"; NULL until first read or rotated) and the
-- body format of its notifications ('standard': Inlet's JSON; 'slack': {"text": …}, for a Slack
-- incoming webhook).
--
-- alert_rules: a project's rules, evaluated from ClickHouse's activity_minute rollup by one admin
-- process at a time (internal/alert). webhook_id '' applies the rule to each webhook of the project on
-- its own.
--
-- alerts: one row per firing; at most one open (resolved_at IS NULL) per rule and webhook, so an alert
-- fires once and resolves once. The pipeline's five-failures notification is an alert without a rule,
-- named by its notification id (source_id), so that a replay records it once.
--
-- notification_deliveries: the delivery queue. A row per notification, id = the webhook-id header
-- (stable across retries); the worker claims due rows (FOR UPDATE SKIP LOCKED), posts, records the
-- attempt in notification_attempts and either marks the row delivered, schedules the next try with
-- exponential backoff, or marks it failed after the last attempt.

-- Masking: webhooks.sensitive lists the payload fields (field paths) and sender headers stored masked,
-- as {"fields": [...], "headers": [...]}; projects.mask_key_ciphertext is the project's HMAC key for
-- those keyed hashes (sealed, bound to "mask:project:<id>"), made when a webhook first marks anything.

-- +goose Up
ALTER TABLE projects ADD COLUMN signing_secret_ciphertext bytea;
ALTER TABLE projects ADD COLUMN mask_key_ciphertext bytea;
ALTER TABLE webhooks ADD COLUMN sensitive jsonb NOT NULL DEFAULT '{"fields": [], "headers": []}';
-- Retention per project, in days; 0 keeps the server's (pipeline.retention_days). Bounds are the
-- server's settings, checked by the admin API.
ALTER TABLE projects ADD COLUMN activity_retention_days integer NOT NULL DEFAULT 0 CHECK (activity_retention_days >= 0);
ALTER TABLE projects ADD COLUMN payload_retention_days integer NOT NULL DEFAULT 0 CHECK (payload_retention_days >= 0);
ALTER TABLE projects ADD COLUMN events_retention_days integer NOT NULL DEFAULT 0 CHECK (events_retention_days >= 0);
ALTER TABLE projects ADD COLUMN notification_format text NOT NULL DEFAULT 'standard'
    CHECK (notification_format IN ('standard', 'slack'));

CREATE TABLE alert_rules (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     bigint           NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name           text             NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind           text             NOT NULL CHECK (kind IN ('failure_ratio', 'reason_spike', 'silence')),
    webhook_id     text             NOT NULL DEFAULT '',
    reason         text             NOT NULL DEFAULT '',
    threshold      double precision NOT NULL,
    window_minutes integer          NOT NULL CHECK (window_minutes BETWEEN 1 AND 1440),
    min_requests   bigint           NOT NULL DEFAULT 0 CHECK (min_requests >= 0),
    enabled        boolean          NOT NULL DEFAULT true,
    created_at     timestamptz      NOT NULL DEFAULT now(),
    updated_at     timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_project ON alert_rules (project_id, id);

CREATE TABLE alerts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint           NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    rule_id     bigint           REFERENCES alert_rules (id) ON DELETE SET NULL,
    source_id   uuid             UNIQUE,
    kind        text             NOT NULL,
    webhook_id  text             NOT NULL DEFAULT '',
    message     text             NOT NULL,
    value       double precision NOT NULL DEFAULT 0,
    fired_at    timestamptz      NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, webhook_id) WHERE resolved_at IS NULL AND rule_id IS NOT NULL;
CREATE INDEX alerts_project ON alerts (project_id, id DESC);

CREATE TABLE notification_deliveries (
    id              uuid        PRIMARY KEY,
    project_id      bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    alert_id        bigint      REFERENCES alerts (id) ON DELETE SET NULL,
    event           text        NOT NULL,
    payload         json        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed', 'skipped')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notification_deliveries_project ON notification_deliveries (project_id, created_at DESC);

CREATE TABLE notification_attempts (
    delivery_id uuid        NOT NULL REFERENCES notification_deliveries (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    url         text        NOT NULL,
    status_code integer     NOT NULL DEFAULT 0,
    error       text        NOT NULL DEFAULT '',
    duration_ms integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (delivery_id, attempt)
);

-- +goose Down
DROP TABLE notification_attempts;
DROP TABLE notification_deliveries;
DROP TABLE alerts;
DROP TABLE alert_rules;
ALTER TABLE projects DROP COLUMN events_retention_days;
ALTER TABLE projects DROP COLUMN payload_retention_days;
ALTER TABLE projects DROP COLUMN activity_retention_days;
ALTER TABLE webhooks DROP COLUMN sensitive;
ALTER TABLE projects DROP COLUMN mask_key_ciphertext;
ALTER TABLE projects DROP COLUMN notification_format;
ALTER TABLE projects DROP COLUMN signing_secret_ciphertext;
