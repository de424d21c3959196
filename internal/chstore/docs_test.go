package chstore_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestAnalystDocQueries runs every SQL example of docs/clickhouse.md, as written but for the database
// name, against a freshly migrated database.
func TestAnalystDocQueries(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "clickhouse.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 6 {
		t.Fatalf("docs/clickhouse.md has %d SQL examples; want at least 6", len(blocks))
	}
	cfg, conn := testenv.ClickHouse(t)
	for _, b := range blocks {
		q := strings.ReplaceAll(b[1], "inlet.", cfg.Database+".")
		rows, err := conn.Query(context.Background(), q)
		if err != nil {
			t.Errorf("example fails: %v\n%s", err, b[1])
			continue
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Errorf("example fails: %v\n%s", err, b[1])
		}
		rows.Close()
	}
}
