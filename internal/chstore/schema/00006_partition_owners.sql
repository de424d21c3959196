-- The fence of a frozen writer (issue 14). A pipeline that takes a Kafka partition over records a claim
-- here before it reads the partition's high-water marks, and every insert of the pipeline is an
-- INSERT … SELECT from the rows it sends along (an external table) that keeps only the rows of
-- partitions whose latest claim is the inserting process's own (Writer.Insert with a Gate). The claim is
-- an epoch ordered like the Kafka group's generations (see docs/architecture.md), so a process that was
-- frozen after deciding to insert and thawed after its partitions moved on inserts nothing: its rows are
-- dropped by the server in the same query that would have written them. One row per claim; the
-- ReplacingMergeTree keeps the highest epoch per partition once it merges, and every read takes max()
-- so that it is right before a merge as well. On a cluster it is ReplicatedReplacingMergeTree and its
-- rows are quorum inserts, like the other tables'.

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS partition_owners (
    topic         String,
    src_partition Int32,
    epoch         UInt64,
    member        String,
    claimed_at    DateTime('UTC')
) ENGINE = ReplacingMergeTree(epoch)
ORDER BY (topic, src_partition);

-- +goose Down
DROP TABLE IF EXISTS partition_owners;
