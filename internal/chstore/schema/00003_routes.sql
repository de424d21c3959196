-- Routes, filters and fan-out (issue 12). A request no route takes is logged with status 'skipped'
-- (reason no_route, or no_elements for a fan-out over an empty or absent array): accepted and
-- authenticated, not a failure, counted apart in the rollup. route is the name (or "#<position>") of the
-- route that took the request, "" for a webhook with a single unnamed route. events_fired counts the
-- events the request fired (0, 1, or one per element of a fan-out); a fan-out request that fired some
-- elements and failed others is 'failed' with events_fired > 0, its elements' outcomes in outcomes (a
-- JSON array: index, event_id, status, reason, detail, user_id, hwid, attributes). content_type is a
-- form body's Content-Type ("" for JSON), so that stored form payloads can be read again (backtest).
-- events.element is the element's index in a fan-out, -1 for a request's single event.
--
-- Rows written before have events_fired 0: their success rows fired one event each.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE activity_minute MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4);
ALTER TABLE activity_log MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3, 'skipped' = 4);
ALTER TABLE activity_log ADD COLUMN route String;
ALTER TABLE activity_log ADD COLUMN events_fired UInt32;
ALTER TABLE activity_log ADD COLUMN outcomes String;
ALTER TABLE activity_log ADD COLUMN content_type String;
ALTER TABLE events ADD COLUMN element Int32 DEFAULT -1;

-- +goose Down
ALTER TABLE events DROP COLUMN element;
ALTER TABLE activity_log DROP COLUMN content_type;
ALTER TABLE activity_log DROP COLUMN outcomes;
ALTER TABLE activity_log DROP COLUMN events_fired;
ALTER TABLE activity_log DROP COLUMN route;
ALTER TABLE activity_log MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3);
ALTER TABLE activity_minute MODIFY COLUMN status Enum8('success' = 1, 'failed' = 2, 'duplicate' = 3);
