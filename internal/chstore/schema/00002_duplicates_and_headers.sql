-- Sender retries de-duplicated and sender headers kept (issue 11). A request that repeats a delivery
-- the webhook has already taken in (the sender's key, see webhooks.dedup) is logged with status
-- 'duplicate' and the id of the first request in duplicate_of; it fires no event. headers holds the
-- sender headers the webhook keeps, as a JSON object (name → value), for every request that has them.
--
-- The rollup is altered first: from the moment activity_log takes 'duplicate', its materialized view
-- must be able to write it. Widening an Enum8 rewrites no data. The view keeps its definition: it
-- selects status from activity_log, so the new value flows through (checked on 18.16, also after the
-- view is detached and attached again, as a restart does). ClickHouse 18.16 has no ADD COLUMN IF NOT
-- EXISTS: chstore.Migrate skips an ADD COLUMN whose column exists, so a run interrupted half-way is
-- finished by the next one.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE activity_minute MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3);
ALTER TABLE activity_log MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3);
ALTER TABLE activity_log ADD COLUMN duplicate_of String;
ALTER TABLE activity_log ADD COLUMN headers String;

-- +goose Down
ALTER TABLE activity_log DROP COLUMN headers;
ALTER TABLE activity_log DROP COLUMN duplicate_of;
ALTER TABLE activity_log MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2);
ALTER TABLE activity_minute MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2);
