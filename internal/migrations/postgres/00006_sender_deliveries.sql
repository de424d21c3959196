-- Sender deliveries (issue 11): what the pipeline remembers of the delivery keys of webhooks that
-- de-duplicate on the sender's key (webhooks.dedup). One row per *original* delivery: the first request
-- of a key, and every request of that key received after the window of the original before it. A
-- request is a duplicate when the latest original of its key before its Kafka position is still within
-- its window; repeats within the window add no row.
--   webhook_id               the webhook's public id (no foreign key: rows outlive a deleted webhook
--                            until they expire);
--   key_hash                 SHA-256 of the key (package delivery's Hasher: the header's value, the
--                            body field's value, or the body and chosen headers);
--   src_partition/src_offset the original's position in webhooks.requests. A webhook's requests share a
--                            partition (record key = webhook id), so the position orders a key's
--                            requests; deciding by position makes a replay after a crash decide as the
--                            first run did, whatever was claimed after it;
--   request_id               the original's id, which its duplicates point at;
--   received_at, expires_at  the edge's receive time of the original and the end of its window.
-- Expired rows are deleted by the pipeline in small batches (expires_at index).

-- +goose Up
CREATE TABLE sender_deliveries (
    webhook_id    text        NOT NULL,
    key_hash      bytea       NOT NULL CHECK (octet_length(key_hash) = 32),
    src_partition integer     NOT NULL,
    src_offset    bigint      NOT NULL,
    request_id    uuid        NOT NULL,
    received_at   timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (webhook_id, key_hash, src_partition, src_offset)
);
CREATE INDEX sender_deliveries_expires_at ON sender_deliveries (expires_at);

-- +goose Down
DROP TABLE sender_deliveries;
