-- A webhook's name is how the user tells it apart in the list: unique per project among live webhooks,
-- ignoring case. Deleted webhooks keep their rows (and names) without blocking a new one.

-- +goose Up
CREATE UNIQUE INDEX webhooks_project_name ON webhooks (project_id, lower(name)) WHERE deleted_at IS NULL;

-- +goose Down
DROP INDEX webhooks_project_name;
