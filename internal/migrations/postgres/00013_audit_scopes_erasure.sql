-- Issue 17: scoped API keys, the audit log, erasure jobs.
--
-- api_keys.scopes: what a key may do (read, webhooks:write, directory:write, admin; docs/api.md). Keys
-- made before this migration keep full access: the default is every scope.
--
-- audit_log: every change to projects, API keys, events, webhooks (their routes are columns of the
-- webhook), users and devices, written by triggers in the transaction that makes the change, so that a
-- change and its entry commit or roll back together whatever code path wrote it. Who: the session
-- setting inlet.actor (JSON {"via": "api"|"console"|"cli", "key_id": …, "key_name": …}), which the
-- admin API and the CLI set on their connections (internal/pgdb); a change made without it is the
-- system's (a migration), except on users and devices, where a change without
-- an actor is the pipeline creating an unknown user and is not recorded. What: before and after as
-- JSON, only the changed columns for an update; secret columns are never recorded (hidden by name, and
-- by a pattern on column names, inlet_audit_visible), and the
-- directory's email and phone are recorded as "(redacted)" so that an erased user's personal data does
-- not outlive the erasure here. The table is append-only: UPDATE, DELETE and TRUNCATE are refused by
-- triggers (a superuser could drop them; the admin API and every process only append).
--
-- erasures: one row per erased user or device, the tracked job that deletes the subject's rows from
-- ClickHouse (internal/erasure). identifiers holds the values the job matches (email, phone) while it
-- runs and is emptied when it is done; identifier_digests (SHA-256 of "kind:value") stay, so that a
-- replay of a request received before the erasure can be refused (erasure.Store.Erased).

-- +goose Up
ALTER TABLE api_keys ADD COLUMN scopes text[] NOT NULL DEFAULT '{read,webhooks:write,directory:write,admin}'
    CHECK (cardinality(scopes) BETWEEN 1 AND 4 AND scopes <@ '{read,webhooks:write,directory:write,admin}');

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint      NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    via        text        NOT NULL,
    key_id     bigint,
    key_name   text        NOT NULL DEFAULT '',
    target     text        NOT NULL,
    target_id  text        NOT NULL,
    action     text        NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    before     jsonb,
    after      jsonb
);
CREATE INDEX audit_log_project ON audit_log (project_id, id);
CREATE INDEX audit_log_target ON audit_log (project_id, target, target_id, id);

-- +goose StatementBegin
CREATE FUNCTION inlet_audit_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION inlet_audit_refuse();

-- inlet_audit_visible drops from a row's JSON every column whose name says it holds a secret (secret,
-- digest, token, password, ciphertext, private key), but not their times (…_at): a column added later
-- (a signing secret of some new feature) is kept out of the log without anyone having to remember it.
-- +goose StatementBegin
CREATE FUNCTION inlet_audit_visible(r jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb) FROM jsonb_each(r)
    WHERE NOT (key ~ '(secret|digest|token|password|ciphertext|private_key)' AND key !~ '_at$')
$$;
-- +goose StatementEnd

-- inlet_audit_row(target, id column, project column, hidden columns, redacted columns, actor required)
-- +goose StatementBegin
CREATE FUNCTION inlet_audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_target  text   := TG_ARGV[0];
    id_col    text   := TG_ARGV[1];
    proj_col  text   := TG_ARGV[2];
    hidden    text[] := TG_ARGV[3]::text[];
    redacted  text[] := TG_ARGV[4]::text[];
    need_actor boolean := TG_ARGV[5]::boolean;
    ignored   text[] := '{updated_at,version,last_used_at}';
    actor     jsonb  := nullif(current_setting('inlet.actor', true), '')::jsonb;
    o jsonb; n jsonb; b jsonb; a jsonb; r jsonb; act text; k text;
BEGIN
    IF actor IS NULL THEN
        IF need_actor THEN RETURN NULL; END IF;
        actor := '{"via": "system"}';
    END IF;
    IF TG_OP <> 'INSERT' THEN o := inlet_audit_visible(to_jsonb(OLD) - hidden); END IF;
    IF TG_OP <> 'DELETE' THEN n := inlet_audit_visible(to_jsonb(NEW) - hidden); END IF;
    act := lower(TG_OP);
    IF TG_OP = 'INSERT' THEN act := 'create'; a := n;
    ELSIF TG_OP = 'DELETE' THEN b := o;
    ELSE
        SELECT jsonb_object_agg(nv.key, ov.value), jsonb_object_agg(nv.key, nv.value) INTO b, a
        FROM jsonb_each(n) nv JOIN jsonb_each(o) ov USING (key)
        WHERE nv.value IS DISTINCT FROM ov.value AND NOT nv.key = ANY (ignored);
        IF a IS NULL THEN RETURN NULL; END IF;
        -- A webhook is deleted by marking it.
        IF a ? 'deleted_at' AND b->'deleted_at' = 'null'::jsonb THEN act := 'delete'; END IF;
    END IF;
    FOREACH k IN ARRAY redacted LOOP
        IF b ? k AND b->>k <> '' THEN b := jsonb_set(b, ARRAY[k], '"(redacted)"'); END IF;
        IF a ? k AND a->>k <> '' THEN a := jsonb_set(a, ARRAY[k], '"(redacted)"'); END IF;
    END LOOP;
    r := coalesce(n, o);
    INSERT INTO audit_log (project_id, via, key_id, key_name, target, target_id, action, before, after)
    VALUES ((r->>proj_col)::bigint, coalesce(actor->>'via', 'system'), (actor->>'key_id')::bigint,
            coalesce(actor->>'key_name', ''), v_target, r->>id_col, act, b, a);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER projects_audit AFTER INSERT OR UPDATE OR DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_row('project', 'id', 'id', '{}', '{}', 'false');
CREATE TRIGGER api_keys_audit AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_row('api_key', 'id', 'project_id', '{digest}', '{}', 'false');
CREATE TRIGGER events_audit AFTER INSERT OR UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_row('event', 'id', 'project_id', '{}', '{}', 'false');
CREATE TRIGGER webhooks_audit AFTER INSERT OR UPDATE OR DELETE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_row('webhook', 'public_id', 'project_id',
        '{secret_digest,secret_ciphertext,prev_secret_digest,prev_secret_ciphertext,handshake_token}', '{}', 'false');
CREATE TRIGGER users_audit AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_row('user', 'user_id', 'project_id', '{}', '{email,phone}', 'true');
CREATE TRIGGER devices_audit AFTER INSERT OR UPDATE OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_row('device', 'hwid', 'project_id', '{}', '{}', 'true');

CREATE TABLE erasures (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id         bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    subject_kind       text        NOT NULL CHECK (subject_kind IN ('user', 'device')),
    subject            text        NOT NULL,
    identifiers        jsonb       NOT NULL DEFAULT '{}',
    identifier_digests bytea[]     NOT NULL,
    status             text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts           integer     NOT NULL DEFAULT 0,
    error              text        NOT NULL DEFAULT '',
    requested_at       timestamptz NOT NULL DEFAULT now(),
    lease_until        timestamptz,
    finished_at        timestamptz
);
CREATE INDEX erasures_project ON erasures (project_id, id);
CREATE INDEX erasures_todo ON erasures (id) WHERE status IN ('pending', 'running');
CREATE INDEX erasures_digests ON erasures USING gin (identifier_digests);

-- +goose Down
DROP TABLE erasures;
DROP TRIGGER devices_audit ON devices;
DROP TRIGGER users_audit ON users;
DROP TRIGGER webhooks_audit ON webhooks;
DROP TRIGGER events_audit ON events;
DROP TRIGGER api_keys_audit ON api_keys;
DROP TRIGGER projects_audit ON projects;
DROP FUNCTION inlet_audit_row();
DROP FUNCTION inlet_audit_visible(jsonb);
DROP TABLE audit_log;
DROP FUNCTION inlet_audit_refuse();
ALTER TABLE api_keys DROP COLUMN scopes;
