-- The first route's create_email and create_phone (webhook.CreateFrom): the payload fields the
-- unknown-user policy create reads the new user's e-mail and phone from. Further routes keep theirs in
-- webhooks.routes (JSON). Empty: not read. Both are columns of the webhook's row, already recorded by
-- its audit trigger.

-- +goose Up
ALTER TABLE webhooks ADD COLUMN route_create_email text NOT NULL DEFAULT '',
    ADD COLUMN route_create_phone text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE webhooks DROP COLUMN route_create_email, DROP COLUMN route_create_phone;
