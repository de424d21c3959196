package migrations_test

import (
	"context"
	"testing"

	"github.com/inlet-dev/inlet/internal/migrations"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestPostgresTwiceIsNoop(t *testing.T) {
	_, pool := testenv.Postgres(t) // applies once
	ctx := context.Background()
	var before int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM inlet_schema_version").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Postgres(ctx, pool, testenv.Logger()); err != nil {
		t.Fatalf("second run: %v", err)
	}
	var after int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM inlet_schema_version").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("version rows = %d after second run; want %d", after, before)
	}
	for _, table := range []string{"projects", "api_keys", "events", "webhooks", "users", "devices"} {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}
