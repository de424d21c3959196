package delivery_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/delivery"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// BenchmarkClaim measures the pipeline's one round trip per poll: a call with 1000 claims of new
// deliveries (each an original, stored), and a call whose 1000 claims all repeat deliveries stored
// already (each a duplicate, nothing stored). ns/op is per call; ns/claim per request.
func BenchmarkClaim(b *testing.B) {
	_, pool := testenv.Postgres(b)
	s := delivery.NewStore(pool)
	const perCall = 1000
	ctx := context.Background()
	now := time.Now().UnixMilli()
	var offset int64
	batch := func(keyFrom int) []delivery.Claim {
		cs := make([]delivery.Claim, perCall)
		for i := range cs {
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], uint64(keyFrom+i))
			offset++
			cs[i] = delivery.Claim{WebhookID: "wh_bench", Key: sha256.Sum256(k[:]), RequestID: uuid.Must(uuid.NewV7()),
				Partition: 0, Offset: offset, ReceivedMs: now, Window: 24 * time.Hour}
		}
		return cs
	}
	verdicts := make([]delivery.Verdict, perCall)
	b.Run("originals", func(b *testing.B) {
		keys := 0
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			cs := batch(keys)
			keys += perCall
			b.StartTimer()
			if err := s.Claim(ctx, cs, verdicts); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perCall), "ns/claim")
	})
	b.Run("duplicates", func(b *testing.B) {
		if err := s.Claim(ctx, batch(-perCall), verdicts); err != nil { // the originals repeated below
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			cs := batch(-perCall)
			b.StartTimer()
			if err := s.Claim(ctx, cs, verdicts); err != nil {
				b.Fatal(err)
			}
			if !verdicts[0].Duplicate() {
				b.Fatal("a repeat was decided an original")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perCall), "ns/claim")
	})
}
