package ingestor

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/webhook"
)

// Hooks looks a webhook up by its public id. It returns domainerr.ErrNotFound for an unknown id and
// domainerr.ErrUnavailable when the config store cannot answer and nothing usable is cached. The
// configuration plane's Cache implements it; the edge calls it on every request, so a hit must not
// allocate.
type Hooks interface {
	Get(ctx context.Context, id string) (*webhook.Hook, error)
}

// Producer is the part of *kgo.Client the edge uses. TryProduce (rather than Produce) so that a full
// buffer fails the request at once with kgo.ErrMaxBuffered instead of blocking a handler.
type Producer interface {
	TryProduce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
	Flush(ctx context.Context) error
	BufferedProduceRecords() int64
	BufferedProduceBytes() int64
}

// recordOverhead is room for the headers and batch framing on top of the largest body.
const recordOverhead = 64 << 10

// ProducerOpts are the franz-go options the edge's client needs, to pass to kafka.NewClient. Idempotent
// writes with acks=all (franz-go's default, spelled out here because the no-loss guarantee rests on it),
// batches compressed and lingering so that concurrent requests share produce requests, and bounded
// buffers so that a slow broker turns into 503s rather than memory growth.
func ProducerOpts(cfg Config) []kgo.Opt {
	codec, err := compressionCodec(cfg.Compression)
	if err != nil {
		codec = kgo.Lz4Compression() // Validate has rejected it already; never reached with valid settings
	}
	compress := kgo.ProducerBatchCompression(codec)
	if cfg.Compression == "lz4" {
		compress = kgo.WithCompressor(newLz4Compressor())
	}
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		compress,
		kgo.ProducerLinger(cfg.Linger),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		kgo.MaxBufferedBytes(cfg.MaxBufferedBytes),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxBodyBytes + recordOverhead)),
		// The linger is added so that a batch's first record does not expire its followers early.
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout + cfg.Linger),
		kgo.ProduceRequestTimeout(10 * time.Second),
	}
}
