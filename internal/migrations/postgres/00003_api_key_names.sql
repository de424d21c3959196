-- API keys get a name the user chooses, to tell them apart in the list, and the time they were last
-- used (kept to the minute, so that authenticating stays a read nearly always). Keys created before
-- have no name.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN name text NOT NULL DEFAULT '' CHECK (length(name) <= 100);
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
CREATE INDEX api_keys_project ON api_keys (project_id, id);

-- +goose Down
DROP INDEX api_keys_project;
ALTER TABLE api_keys DROP COLUMN last_used_at;
ALTER TABLE api_keys DROP COLUMN name;
