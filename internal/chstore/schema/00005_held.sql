-- The hold unknown-user policy (issue 13). A request whose user the directory does not know, on a
-- route whose unknown_user is hold, is logged with status 'held' (reason waiting_for_user) while it
-- waits; when its user appears it runs again as a new attempt of the same request, and when its hold
-- runs out it is logged failed/user_not_found. The rollup counts it as held until then (the attempt's
-- row moves it to its new outcome: see the replay migration).
--
-- As in 00002, the rollup is widened first, so that its materialized view can write 'held' from the
-- moment activity_log takes it. Widening an Enum8 rewrites no data.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE activity_minute MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4, 'held' = 5);
ALTER TABLE activity_log MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4, 'held' = 5);

-- +goose Down
ALTER TABLE activity_log MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4);
ALTER TABLE activity_minute MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4);
