-- Activity log, fired events, the per-minute rollup and notifications. Every statement here runs on the
-- ClickHouse that Debian ships (18.16) and on current releases: no LowCardinality, DateTime64, Map or TTL.
-- Exactly-once: rows carry the Kafka partition/offset they came from; the pipeline reads the high-water
-- mark per partition on (re)assignment and skips what a table already has.

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS activity_log (
    project_id       UInt64,
    webhook_id       String,
    request_id       UUID,
    received_at      DateTime('UTC'),
    received_ms      UInt64,
    processed_ms     UInt64,
    status           Enum8('success' = 1, 'failed' = 2),
    reason           String,
    edge_status      UInt16,
    identifier_kind  String,
    identifier_value String,
    user_id          String,
    hwid             String,
    event_name       String,
    attributes       String,
    payload          String,
    payload_bytes    UInt32,
    payload_truncated UInt8,
    detail           String,
    config_version   UInt64,
    src_partition    Int32,
    src_offset       Int64
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(received_at)
ORDER BY (project_id, webhook_id, received_at, request_id);

-- One row per fired event, recorded on the subject it was identified by: the user profile for
-- user_id/email/phone, the device for hwid (as User Explorer shows them).
CREATE TABLE IF NOT EXISTS events (
    project_id    UInt64,
    subject_kind  Enum8('user' = 1, 'device' = 2),
    subject       String,
    occurred_at   DateTime('UTC'),
    event_id      UUID,
    event_name    String,
    webhook_id    String,
    user_id       String,
    hwid          String,
    hwids         Array(String),
    attributes    String,
    received_ms   UInt64,
    src_partition Int32,
    src_offset    Int64
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(occurred_at)
ORDER BY (project_id, subject_kind, subject, occurred_at, event_id);

-- Hits per webhook, minute, status and reason, summed by the engine: the 24-hour summary and the
-- all-time Received count read this, never the raw rows. Kept for ever (it is small).
CREATE TABLE IF NOT EXISTS activity_minute (
    project_id UInt64,
    webhook_id String,
    minute     DateTime('UTC'),
    status     Enum8('success' = 1, 'failed' = 2),
    reason     String,
    hits       UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (project_id, webhook_id, minute, status, reason);

CREATE MATERIALIZED VIEW IF NOT EXISTS activity_minute_mv TO activity_minute AS
SELECT project_id, webhook_id, toStartOfMinute(received_at) AS minute, status, reason, count() AS hits
FROM activity_log
GROUP BY project_id, webhook_id, minute, status, reason;

CREATE TABLE IF NOT EXISTS notifications (
    project_id      UInt64,
    webhook_id      String,
    notification_id UUID,
    kind            String,
    created_at      DateTime('UTC'),
    message         String,
    src_partition   Int32,
    src_offset      Int64
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(created_at)
ORDER BY (project_id, webhook_id, created_at, notification_id);

-- +goose Down
DROP TABLE IF EXISTS notifications;
DROP TABLE IF EXISTS activity_minute_mv;
DROP TABLE IF EXISTS activity_minute;
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS activity_log;
