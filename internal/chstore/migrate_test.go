package chstore_test

import (
	"context"
	"testing"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestClickHouseTwiceIsNoop(t *testing.T) {
	cfg, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	count := func() uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM inlet_schema_version").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	if err := chstore.Migrate(ctx, cfg, testenv.Logger()); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if after := count(); after != before {
		t.Fatalf("version rows = %d after second run; want %d", after, before)
	}
	for _, table := range []string{"activity_log", "events", "activity_minute", "notifications"} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

// TestClickHouseRerunAfterInterruption: with the applied versions forgotten (as when a run is
// interrupted before it records its version), every migration runs again without failing: CREATE …
// IF NOT EXISTS, MODIFY COLUMN and ADD COLUMN of a column that exists (skipped) are all idempotent.
func TestClickHouseRerunAfterInterruption(t *testing.T) {
	cfg, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	if err := conn.Exec(ctx, "DROP TABLE inlet_schema_version"); err != nil {
		t.Fatal(err)
	}
	if err := chstore.Migrate(ctx, cfg, testenv.Logger()); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	var cols uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'activity_log' AND name IN ('duplicate_of', 'headers')").Scan(&cols); err != nil {
		t.Fatal(err)
	}
	if cols != 2 {
		t.Errorf("activity_log has %d of duplicate_of and headers; want 2", cols)
	}
}
