package chstore_test

import (
	"testing"

	"github.com/inlet-dev/inlet/internal/chstore"
)

func TestReplicatedEngine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"CREATE TABLE IF NOT EXISTS activity_log (a UInt8) ENGINE = MergeTree()\nPARTITION BY a ORDER BY a",
			"CREATE TABLE IF NOT EXISTS activity_log (a UInt8) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db1/activity_log', '{replica}')\nPARTITION BY a ORDER BY a"},
		{"CREATE TABLE m (a UInt8, hits UInt64) ENGINE = SummingMergeTree() ORDER BY a",
			"CREATE TABLE m (a UInt8, hits UInt64) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db1/m', '{replica}') ORDER BY a"},
		{"CREATE TABLE s (a UInt8, hits UInt64) ENGINE=SummingMergeTree((hits)) ORDER BY a",
			"CREATE TABLE s (a UInt8, hits UInt64) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db1/s', '{replica}', (hits)) ORDER BY a"},
		{"CREATE TABLE r (a UInt8) ENGINE = ReplacingMergeTree ORDER BY a",
			"CREATE TABLE r (a UInt8) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db1/r', '{replica}') ORDER BY a"},
		{"CREATE TABLE x (a UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a",
			"CREATE TABLE x (a UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a"},
		{"CREATE MATERIALIZED VIEW IF NOT EXISTS v TO m AS SELECT a, count() AS hits FROM t GROUP BY a",
			"CREATE MATERIALIZED VIEW IF NOT EXISTS v TO m AS SELECT a, count() AS hits FROM t GROUP BY a"},
		{"ALTER TABLE t ADD COLUMN b String", "ALTER TABLE t ADD COLUMN b String"},
		{"CREATE MATERIALIZED VIEW IF NOT EXISTS iv ENGINE = SummingMergeTree() ORDER BY a AS SELECT a, count() AS hits FROM t GROUP BY a",
			"CREATE MATERIALIZED VIEW IF NOT EXISTS iv ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db1/iv', '{replica}') ORDER BY a AS SELECT a, count() AS hits FROM t GROUP BY a"},
		{"CREATE TABLE l (a UInt8) ENGINE = Log", "CREATE TABLE l (a UInt8) ENGINE = Log"},
	} {
		if got := chstore.Replicated(tc.in, "db1"); got != tc.want {
			t.Errorf("replicated(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
