package ingestor

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLz4Compressor: what the edge's compressor writes, franz-go's decompressor (the pipeline's) reads
// back, in frames whose blocks are 256 KiB at most, twice in a row (the writers are pooled).
func TestLz4Compressor(t *testing.T) {
	c := newLz4Compressor()
	src := bytes.Repeat([]byte(`{"user_id":"12345","note":"order customer shipping 2024-03-15"}`), 20_000) // ~1.3 MB: several blocks
	for i := range 2 {
		var dst bytes.Buffer
		out, codec := c.Compress(&dst, src)
		if codec != kgo.CodecLz4 {
			t.Fatalf("round %d: codec %v; want lz4", i, codec)
		}
		if len(out) >= len(src) {
			t.Errorf("round %d: %d bytes compressed to %d", i, len(src), len(out))
		}
		// Frame descriptor: magic (4 bytes), FLG, BD; BD's bits 6..4 are the block maximum size
		// (4 = 64 KiB, 5 = 256 KiB, 6 = 1 MiB, 7 = 4 MiB).
		if bd := out[5] >> 4 & 7; bd != 5 {
			t.Errorf("round %d: block size index %d; want 5 (256 KiB)", i, bd)
		}
		back, err := kgo.DefaultDecompressor().Decompress(out, kgo.CodecLz4)
		if err != nil {
			t.Fatalf("round %d: decompress: %v", i, err)
		}
		if !bytes.Equal(back, src) {
			t.Fatalf("round %d: decompressed %d bytes differ from the %d compressed", i, len(back), len(src))
		}
	}
}
