package ingestor

import (
	"bytes"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lz4Blocks is the block size of the lz4 frames the edge produces. lz4's default, 4 MiB, makes every
// writer hold 4 MiB buffers and every reader (the pipeline decompressing a fetch) allocate 4 MiB per
// frame, though a produced batch is at most max_body_bytes plus framing; the heap profiles showed 12 MiB
// of each process's live heap in these pooled blocks. Matches reach back 64 KiB whatever the block
// size, so smaller blocks cost little ratio.
const lz4Blocks = lz4.Block256Kb

// lz4Compressor compresses produce batches as franz-go's lz4 codec does (fastest level), in frames of
// lz4Blocks blocks.
type lz4Compressor struct{ pool sync.Pool }

func newLz4Compressor() *lz4Compressor {
	c := &lz4Compressor{}
	c.pool.New = func() any {
		w := lz4.NewWriter(nil)
		if err := w.Apply(lz4.BlockSizeOption(lz4Blocks)); err != nil {
			panic("ingestor: lz4 block size: " + err.Error()) // a valid constant: never
		}
		return w
	}
	return c
}

// Compress implements kgo.Compressor. A failure leaves the batch uncompressed rather than failing it.
func (c *lz4Compressor) Compress(dst *bytes.Buffer, src []byte, _ ...kgo.CompressFlag) ([]byte, kgo.CompressionCodecType) {
	w := c.pool.Get().(*lz4.Writer)
	defer c.pool.Put(w)
	w.Reset(dst)
	if _, err := w.Write(src); err != nil {
		return src, kgo.CodecNone
	}
	if err := w.Close(); err != nil {
		return src, kgo.CodecNone
	}
	return dst.Bytes(), kgo.CodecLz4
}
