-- Configuration plane and user directory. Every row belongs to a project; every query is scoped by it.

-- +goose Up
CREATE TABLE projects (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    notification_url text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- API keys are shown once and stored only as a SHA-256 digest.
CREATE TABLE api_keys (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    prefix     text        NOT NULL,
    digest     bytea       NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Events catalog: attributes is a JSON array of {"name": …, "type": …}.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    description text        NOT NULL DEFAULT '',
    attributes  jsonb       NOT NULL DEFAULT '[]',
    version     bigint      NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE webhooks (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id              text        NOT NULL UNIQUE,
    project_id             bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                   text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    event_id               bigint      NOT NULL REFERENCES events (id) ON DELETE RESTRICT,
    identify_kind          text        NOT NULL CHECK (identify_kind IN ('user_id', 'email', 'phone', 'hwid')),
    identify_field         text        NOT NULL,
    mappings               jsonb       NOT NULL DEFAULT '[]',
    enabled                boolean     NOT NULL DEFAULT false,
    sample_payload         text        NOT NULL DEFAULT '',
    secret_digest          bytea       NOT NULL,
    secret_ciphertext      bytea       NOT NULL,
    prev_secret_digest     bytea,
    prev_secret_expires_at timestamptz,
    secret_rotated_at      timestamptz NOT NULL DEFAULT now(),
    version                bigint      NOT NULL DEFAULT 1,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    deleted_at             timestamptz
);
CREATE INDEX webhooks_project ON webhooks (project_id, name) WHERE deleted_at IS NULL;
CREATE INDEX webhooks_event ON webhooks (event_id) WHERE deleted_at IS NULL;

-- User directory. Emails are stored as given and matched lower-cased; phones are stored in E.164.
CREATE TABLE users (
    project_id bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    text        NOT NULL CHECK (length(user_id) BETWEEN 1 AND 256),
    email      text        NOT NULL DEFAULT '',
    phone      text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE UNIQUE INDEX users_email ON users (project_id, lower(email)) WHERE email <> '';
CREATE UNIQUE INDEX users_phone ON users (project_id, phone) WHERE phone <> '';

CREATE TABLE devices (
    project_id bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    hwid       text        NOT NULL CHECK (length(hwid) BETWEEN 1 AND 256),
    user_id    text        NOT NULL DEFAULT '',
    platform   text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, hwid)
);
CREATE INDEX devices_user ON devices (project_id, user_id) WHERE user_id <> '';

-- Push invalidation: every change to a webhook, an event or a project's directory row is announced on
-- one channel, delivered to listeners when the writing transaction commits. The payload names what
-- changed: "webhook:<public id>", "event:<id>", "user:<project>:<user id>", "device:<project>:<hwid>".
-- +goose StatementBegin
CREATE FUNCTION inlet_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_TABLE_NAME = 'webhooks' THEN
        PERFORM pg_notify('inlet_config', 'webhook:' || r.public_id);
    ELSIF TG_TABLE_NAME = 'events' THEN
        PERFORM pg_notify('inlet_config', 'event:' || r.id);
    ELSIF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('inlet_config', 'user:' || r.project_id || ':' || r.user_id);
        IF TG_OP = 'UPDATE' THEN
            PERFORM pg_notify('inlet_config', 'user:' || OLD.project_id || ':' || OLD.user_id);
        END IF;
    ELSIF TG_TABLE_NAME = 'devices' THEN
        PERFORM pg_notify('inlet_config', 'device:' || r.project_id || ':' || r.hwid);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER webhooks_notify AFTER INSERT OR UPDATE OR DELETE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION inlet_notify_change();
CREATE TRIGGER events_notify AFTER UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION inlet_notify_change();
CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION inlet_notify_change();
CREATE TRIGGER devices_notify AFTER INSERT OR UPDATE OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION inlet_notify_change();

-- +goose Down
DROP TABLE devices;
DROP TABLE users;
DROP TABLE webhooks;
DROP TABLE events;
DROP TABLE api_keys;
DROP TABLE projects;
DROP FUNCTION inlet_notify_change();
