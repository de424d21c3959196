-- Unknown-user policy (issue 13): what a route does with a request whose user the directory does not
-- know. '' is the default, fail (user_not_found, as before); 'create' creates the user (or the
-- anonymous device) from the identifier and fires. The first route's policy lives here, beside its
-- other columns (00008); further routes carry theirs in webhooks.routes as "unknown_user". A text
-- rather than a boolean: the value space stays open (hold comes later).

-- +goose Up
ALTER TABLE webhooks ADD COLUMN route_unknown_user text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE webhooks DROP COLUMN route_unknown_user;
