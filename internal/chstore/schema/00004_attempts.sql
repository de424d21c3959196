-- Later attempts of a request (issue 13): a replay, the release or the expiry of a held request. An
-- attempt is logged as a row of its own with the request's id, received_at and received_ms (the
-- request's, not the attempt's: it is the same request, and its rows sort together), processed_ms the
-- attempt's time, attempt its number (0 for the edge's first attempt), attempt_cause why it ran
-- (replay, release, expire), attempt_job the replay job's id, and replaces_status/replaces_reason the
-- request's latest outcome before it ("" on a first attempt).
--
-- The rollup counts a request by its latest outcome: an attempt's row adds +1 at its own status and
-- reason (activity_minute_mv, as every row does) and -1 at the outcome it replaces
-- (activity_minute_replaced_mv), both in the request's minute; hits becomes signed, and a minute whose
-- sum is 0 disappears when SummingMergeTree merges. One view with an ARRAY JOIN emitting both rows does
-- not run on 18.16: its analyzer takes the source column status inside the array for the output alias
-- status (a cycle, "Unknown identifier"), and a view over a subquery fails when it is pushed to; so two
-- views, each a GROUP BY of the inserted block. A view's output types must equal the table's exactly on
-- 18.16 (count() is UInt64): hence toInt64 and the CAST, whose Enum8 must list every activity status
-- (a migration that adds a status re-creates activity_minute_replaced_mv with it; the pipeline never
-- writes a replaces_status the enum lacks). Checked on 18.16, also after DETACH/ATTACH of the views.
--
-- The views are dropped and created again: an activity_log insert between the two statements is not
-- counted in the rollup, so migrate before the pipelines write (inlet migrate, or the pipeline's own
-- start-up migration before it consumes).

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE activity_log ADD COLUMN attempt UInt16;
ALTER TABLE activity_log ADD COLUMN attempt_cause String;
ALTER TABLE activity_log ADD COLUMN attempt_job String;
ALTER TABLE activity_log ADD COLUMN replaces_status String;
ALTER TABLE activity_log ADD COLUMN replaces_reason String;
DROP TABLE IF EXISTS activity_minute_mv;
ALTER TABLE activity_minute MODIFY COLUMN hits Int64;
CREATE MATERIALIZED VIEW IF NOT EXISTS activity_minute_mv TO activity_minute AS
SELECT project_id, webhook_id, toStartOfMinute(received_at) AS minute, status, reason, toInt64(count()) AS hits
FROM activity_log
GROUP BY project_id, webhook_id, minute, status, reason;
CREATE MATERIALIZED VIEW IF NOT EXISTS activity_minute_replaced_mv TO activity_minute AS
SELECT project_id, webhook_id, toStartOfMinute(received_at) AS minute,
    CAST(replaces_status AS Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4)) AS status,
    replaces_reason AS reason, -toInt64(count()) AS hits
FROM activity_log
WHERE replaces_status != ''
GROUP BY project_id, webhook_id, minute, replaces_status, replaces_reason;

-- +goose Down
DROP TABLE IF EXISTS activity_minute_replaced_mv;
DROP TABLE IF EXISTS activity_minute_mv;
ALTER TABLE activity_minute MODIFY COLUMN hits UInt64;
CREATE MATERIALIZED VIEW IF NOT EXISTS activity_minute_mv TO activity_minute AS
SELECT project_id, webhook_id, toStartOfMinute(received_at) AS minute, status, reason, count() AS hits
FROM activity_log
GROUP BY project_id, webhook_id, minute, status, reason;
ALTER TABLE activity_log DROP COLUMN replaces_reason;
ALTER TABLE activity_log DROP COLUMN replaces_status;
ALTER TABLE activity_log DROP COLUMN attempt_job;
ALTER TABLE activity_log DROP COLUMN attempt_cause;
ALTER TABLE activity_log DROP COLUMN attempt;
