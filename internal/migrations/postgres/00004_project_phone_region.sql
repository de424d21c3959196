-- Each project may read phone numbers written without a country code in its own region (a UK shop sends
-- "07700 900123", a US shop "(555) 123-4567"): phone_region is an ISO 3166-1 alpha-2 code, or '' for
-- the process-wide directory.default_region. The application checks the code is one libphonenumber
-- knows; the CHECK only keeps the column's shape.
--
-- A change is announced as "project:<id>" on the config channel: the resolvers cache each project's
-- region and its phone lookups, and both mean something else once the region changes.

-- +goose Up
ALTER TABLE projects ADD COLUMN phone_region text NOT NULL DEFAULT ''
    CHECK (phone_region = '' OR phone_region ~ '^[A-Z]{2}$');

-- +goose StatementBegin
CREATE FUNCTION inlet_notify_project_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('inlet_config', 'project:' || NEW.id);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER projects_phone_region_notify AFTER UPDATE OF phone_region ON projects
    FOR EACH ROW WHEN (OLD.phone_region IS DISTINCT FROM NEW.phone_region)
    EXECUTE FUNCTION inlet_notify_project_change();

-- +goose Down
DROP TRIGGER projects_phone_region_notify ON projects;
DROP FUNCTION inlet_notify_project_change();
ALTER TABLE projects DROP COLUMN phone_region;
