-- Routes (issue 12). A webhook has one or more routes, tried in order: a condition (a CEL expression,
-- webhooks.route_when), an optional fan-out over an array (route_for_each), the event, how to identify
-- the user and the mappings. The first route lives where the single mapping always lived — event_id
-- (with its foreign key), identify_kind, identify_field, mappings — plus its name, condition and
-- fan-out below, so every existing webhook is already a webhook with one route that always matches.
-- Further routes are webhooks.routes, a JSON array of {name, when, for_each, event_id, identify,
-- mappings}; their events are kept from deletion by the application (DeleteEvent counts them, under
-- the event's row lock that saving a webhook shares), as there is no foreign key into a JSON array.
--
-- A mapping is {attribute, field} or {attribute, expr}: an expression in place of the field path.
-- Existing mappings all have a field.

-- +goose Up
ALTER TABLE webhooks ADD COLUMN route_name text NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN route_when text NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN route_for_each text NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN routes jsonb NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE webhooks DROP COLUMN routes;
ALTER TABLE webhooks DROP COLUMN route_for_each;
ALTER TABLE webhooks DROP COLUMN route_when;
ALTER TABLE webhooks DROP COLUMN route_name;
