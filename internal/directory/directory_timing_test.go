package directory

import (
	"context"
	"fmt"
	"testing"

	"github.com/inlet-dev/inlet/internal/identify"
)

const benchBatch = 500

// benchValues imports 2*n lines (n users with one device each, see lineGenerator) and returns the
// identifiers of kind for all n.
func benchValues(b *testing.B, e *env, kind identify.Kind, n int) []string {
	b.Helper()
	if _, err := e.store.Import(context.Background(), e.p1, &lineGenerator{n: 2 * n}); err != nil {
		b.Fatalf("Import: %v", err)
	}
	values := make([]string, n)
	for i := range values {
		switch kind {
		case identify.ByUserID:
			values[i] = fmt.Sprintf("user-%d", i)
		case identify.ByEmail:
			values[i] = fmt.Sprintf("user%d@example.com", i)
		case identify.ByPhone:
			values[i] = fmt.Sprintf("+1 555 %07d", i)
		case identify.ByHWID:
			values[i] = fmt.Sprintf("hwid-%d", i)
		}
	}
	return values
}

// BenchmarkResolveWarm is the pipeline's steady state: a batch of 500 identifiers, all cached.
func BenchmarkResolveWarm(b *testing.B) {
	for _, kind := range kinds {
		b.Run(string(kind), func(b *testing.B) {
			e := newEnv(b, Defaults())
			r := newResolver(b, e, Defaults(), false)
			values := benchValues(b, e, kind, benchBatch)
			ctx := context.Background()
			if got := resolve(b, r, e.p1, kind, values...); len(got) != benchBatch {
				b.Fatalf("warm-up: got %d subjects; want %d", len(got), benchBatch)
			}
			b.ReportAllocs()
			for b.Loop() {
				got, err := r.Resolve(ctx, e.p1, kind, values)
				if err != nil || len(got) != benchBatch {
					b.Fatalf("Resolve: got %d, %v", len(got), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/value")
		})
	}
}

// BenchmarkResolveCold resolves a batch of 500 identifiers that are all stale, so each call is one
// query against the real PostgreSQL.
func BenchmarkResolveCold(b *testing.B) {
	for _, kind := range kinds {
		b.Run(string(kind), func(b *testing.B) {
			e := newEnv(b, Defaults())
			r := newResolver(b, e, Defaults(), false)
			values := benchValues(b, e, kind, benchBatch)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				r.Resync() // every entry stale: the whole batch is queried
				got, err := r.Resolve(ctx, e.p1, kind, values)
				if err != nil || len(got) != benchBatch {
					b.Fatalf("Resolve: got %d, %v", len(got), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/value")
		})
	}
}

// BenchmarkImport imports 10k NDJSON lines (5k users, 5k devices) per op into a new project of the
// real PostgreSQL, so every line inserts a row.
func BenchmarkImport(b *testing.B) {
	const lines = 10_000
	e := newEnv(b, Defaults())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := e.store.Import(ctx, e.project(b, "bench"), &lineGenerator{n: lines})
		if err != nil || res.Failed != 0 {
			b.Fatalf("Import: %v, %d failed", err, res.Failed)
		}
	}
	b.ReportMetric(float64(b.N*lines)/b.Elapsed().Seconds(), "lines/s")
}
