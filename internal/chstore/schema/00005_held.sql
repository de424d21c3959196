-- The hold unknown-user policy (issue 13). A request whose user the directory does not know, on a
-- route whose unknown_user is hold, is logged with status 'held' (reason waiting_for_user) while it
-- waits; when its user appears it runs again as attempt 1 (cause release), and when its hold runs out as
-- attempt 1 with cause expire (failed/user_not_found unless the user exists by then). That attempt's row
-- replaces held: the rollup counts the request at its new outcome and no more as held (00004).
--
-- As in 00002, the rollup is widened first, so that its materialized views can write 'held' from the
-- moment activity_log takes it. Widening an Enum8 rewrites no data. activity_minute_replaced_mv casts
-- replaces_status to the enum, so it is re-created with 'held' (as 00004 says a new status must be):
-- without it, the row of a release (replaces_status held) would fail its insert. An activity_log insert
-- between the DROP and the CREATE is not counted in the rollup: migrate before the pipelines write.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE activity_minute MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4, 'held' = 5);
ALTER TABLE activity_log MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4, 'held' = 5);
DROP TABLE IF EXISTS activity_minute_replaced_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS activity_minute_replaced_mv TO activity_minute AS
SELECT project_id, webhook_id, toStartOfMinute(received_at) AS minute,
    CAST(replaces_status AS Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4, 'held' = 5)) AS status,
    replaces_reason AS reason, -toInt64(count()) AS hits
FROM activity_log
WHERE replaces_status != ''
GROUP BY project_id, webhook_id, minute, replaces_status, replaces_reason;

-- +goose Down
DROP TABLE IF EXISTS activity_minute_replaced_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS activity_minute_replaced_mv TO activity_minute AS
SELECT project_id, webhook_id, toStartOfMinute(received_at) AS minute,
    CAST(replaces_status AS Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4)) AS status,
    replaces_reason AS reason, -toInt64(count()) AS hits
FROM activity_log
WHERE replaces_status != ''
GROUP BY project_id, webhook_id, minute, replaces_status, replaces_reason;
ALTER TABLE activity_log MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4);
ALTER TABLE activity_minute MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4);
