-- The hold unknown-user policy (issue 13). A route whose unknown_user is 'hold' keeps a request whose
-- user the directory does not know waiting, for up to the route's hold_for (empty: the pipeline's
-- default, bounded by its settings), until the user appears; then it runs again as an attempt of the
-- same request (internal/replay), or, when the time runs out, it is logged user_not_found.
--
-- webhooks.route_hold_for is the first route's hold time (a Go duration, '' for the default); further
-- routes carry theirs in webhooks.routes as "hold_for".
--
-- held_requests has one row per held request, written by the pipeline before the request's activity
-- row (ON CONFLICT (request_id) DO NOTHING: a batch redone after a crash finds its rows and holds the
-- same requests). src_partition/src_offset are the first attempt's record in webhooks.requests, whose
-- body a release reads again. identifier_values are the values the directory did not know (one for a
-- single event; a fan-out's distinct unknown values), all of which must resolve before the request is
-- released; fired are the fan-out elements the first attempt fired (not fired again). state: held,
-- then released or expired once the releaser's attempt is acknowledged by Kafka.

-- +goose Up
ALTER TABLE webhooks ADD COLUMN route_hold_for text NOT NULL DEFAULT '';

CREATE TABLE held_requests (
    id                bigserial   PRIMARY KEY,
    project_id        bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    webhook_id        text        NOT NULL,
    request_id        uuid        NOT NULL UNIQUE,
    identifier_kind   text        NOT NULL,
    identifier_values text[]      NOT NULL CHECK (cardinality(identifier_values) > 0),
    fired             int[]       NOT NULL DEFAULT '{}',
    src_partition     integer     NOT NULL,
    src_offset        bigint      NOT NULL,
    received_at       timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    state             text        NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'released', 'expired')),
    done_at           timestamptz
);
-- The releaser reads held rows by project in arrival order; the bound counts a project's held rows.
CREATE INDEX held_requests_held ON held_requests (project_id, id) WHERE state = 'held';
CREATE INDEX held_requests_expiry ON held_requests (expires_at) WHERE state = 'held';
CREATE INDEX held_requests_done ON held_requests (done_at) WHERE state <> 'held';

-- +goose Down
DROP TABLE held_requests;
ALTER TABLE webhooks DROP COLUMN route_hold_for;
