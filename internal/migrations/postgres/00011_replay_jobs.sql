-- Replay jobs (issue 13). A job runs again every failed request of one webhook matching its filter
-- (a receive-time range, and a reason or every reason), or one request (request_id). total is counted
-- when the job is created; the runner (package replay, in the admin process) pages through the matching
-- requests in ClickHouse in (received_ms, request id) order and saves its position (cursor_ms,
-- cursor_id) and its counters after each page whose attempts Kafka has acknowledged, under a lease
-- (lease_owner, lease_until) any admin process can take over once it has expired.
--
-- replay_claims holds each attempt a job produced, (request id, attempt number): the attempt number is
-- the request's latest attempt in ClickHouse + 1, so only one attempt of a request is in flight (a second
-- job finds that number claimed, and skips the request until ClickHouse shows the attempt); a runner that
-- resumes a page finds its own claim and produces the same attempt again rather than the next one (the
-- pipeline runs an attempt produced twice once); and a job's produced count is its claims.

-- +goose Up
CREATE TABLE replay_jobs (
    id          text        PRIMARY KEY,
    project_id  bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    webhook_id  text        NOT NULL,
    since_ms    bigint      NOT NULL,
    until_ms    bigint      NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    request_id  uuid,
    total       bigint      NOT NULL DEFAULT 0,
    produced    bigint      NOT NULL DEFAULT 0,
    expired     bigint      NOT NULL DEFAULT 0,
    truncated   bigint      NOT NULL DEFAULT 0,
    skipped     bigint      NOT NULL DEFAULT 0,
    state       text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'cancelled', 'failed')),
    error       text        NOT NULL DEFAULT '',
    cursor_ms   bigint      NOT NULL DEFAULT 0,
    cursor_id   uuid,
    lease_owner text        NOT NULL DEFAULT '',
    lease_until timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK (since_ms <= until_ms)
);
CREATE INDEX replay_jobs_project ON replay_jobs (project_id, created_at DESC);
CREATE INDEX replay_jobs_runnable ON replay_jobs (created_at) WHERE state IN ('pending', 'running');

CREATE TABLE replay_claims (
    request_id uuid        NOT NULL,
    attempt    integer     NOT NULL CHECK (attempt BETWEEN 1 AND 65535),
    job_id     text        NOT NULL REFERENCES replay_jobs (id) ON DELETE CASCADE,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, attempt)
);
CREATE INDEX replay_claims_job ON replay_claims (job_id);

-- +goose Down
DROP TABLE replay_claims;
DROP TABLE replay_jobs;
