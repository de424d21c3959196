-- Several admin processes (issue 15). Console sessions and the failed-authentication limiter move from
-- one admin process's memory to PostgreSQL, so that every replica behind one address sees them.
--
-- console_sessions: one row per signed-in console. The cookie holds a random 256-bit id; the row keeps
-- only its SHA-256 (id_digest), so a copy of the table gives no usable cookie. The session's CSRF token
-- is kept as is: it is worthless without the cookie. A session is looked up by digest joined with its
-- key (still active?) in one indexed query; rows past expires_at are never accepted and are deleted a
-- few at a time by later sign-ins (expires_at index). The key_id index serves revocation, the
-- (project_id, expires_at) one the per-project bound.
--
-- auth_failures: the token bucket of each client address (IPv6: its /64) that presented a refused API
-- key and whose bucket has not refilled since. tokens may be negative (a debt); updated_at is the time
-- of the last failure, when tokens was computed. Rows whose bucket has refilled are deleted by later
-- failures (updated_at index), and the table is trimmed to admin.auth_limiter_max_ips rows.

-- +goose Up
CREATE TABLE console_sessions (
    id_digest  bytea       PRIMARY KEY,
    project_id bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key_id     bigint      NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf       text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
CREATE INDEX console_sessions_key ON console_sessions (key_id);
CREATE INDEX console_sessions_project ON console_sessions (project_id, expires_at);

CREATE TABLE auth_failures (
    addr       inet             PRIMARY KEY,
    tokens     double precision NOT NULL,
    updated_at timestamptz      NOT NULL
);
CREATE INDEX auth_failures_updated ON auth_failures (updated_at);

-- +goose Down
DROP TABLE auth_failures;
DROP TABLE console_sessions;
