package compose

import (
	"context"
	"log/slog"
	"net"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/ingestor"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/tracing"
)

// Ingestor is the ingestor process's component: the edge (ingestor.Server), the Kafka client it
// produces with, and the config plane it reads webhooks through.
type Ingestor struct {
	plane    *configPlane
	producer *kgo.Client
	edge     *ingestor.Server
	tracing  *tracing.Provider // nil: tracing off
	log      *slog.Logger
}

// NewIngestor builds the ingestor from cfg: the config plane, the producer (ingestor.ProducerOpts on
// cfg.Kafka, its client metrics on d.Registry) and the edge appending to cfg.Kafka.RequestsTopic.
func NewIngestor(ctx context.Context, cfg *config.Config, d Deps) (*Ingestor, error) {
	d = d.withDefaults()
	plane, err := openConfigPlane(ctx, cfg, d.Registry, d.Logger, true)
	if err != nil {
		return nil, err
	}
	tp, err := tracing.New(cfg.Tracing, "ingestor", tracing.Options{Exporter: d.SpanExporter})
	if err != nil {
		plane.close()
		return nil, err
	}
	cl, err := kafka.NewClient(cfg.Kafka, "ingestor", append(ingestor.ProducerOpts(cfg.Ingestor), kafka.Metrics(d.Registry))...)
	if err != nil {
		shutdownTracing(tp, d.Logger)
		plane.close()
		return nil, err
	}
	edge, err := ingestor.New(cfg.Ingestor, ingestor.Deps{
		Hooks:    plane.hooks,
		Producer: cl,
		Topic:    cfg.Kafka.RequestsTopic,
		Registry: d.Registry,
		Logger:   d.Logger,
		Tracer:   tp.Tracer("github.com/inlet-dev/inlet/ingestor"),
	})
	if err != nil {
		cl.Close()
		shutdownTracing(tp, d.Logger)
		plane.close()
		return nil, err
	}
	return &Ingestor{plane: plane, producer: cl, edge: edge, tracing: tp, log: d.Logger}, nil
}

// ReadyChecks: the edge (not ready once it drains) and Kafka.
func (i *Ingestor) ReadyChecks() ReadyChecks {
	return ReadyChecks{
		"edge":  i.edge.Ready,
		"kafka": func(ctx context.Context) error { return kafka.Ping(ctx, i.producer) },
	}
}

// Run listens on ingestor.listen_addr and serves until ctx is done; see Serve.
func (i *Ingestor) Run(ctx context.Context) error { return i.run(ctx, i.edge.Run) }

// Serve serves the edge on ln until ctx is done, with the config listener and the cache's warm-up
// beside it. On shutdown the edge stops accepting, drains its in-flight requests and flushes the
// producer (ingestor.Server.Serve logs each step); only then does the config listener stop, so that
// configs stay fresh during the drain. Close releases the rest.
func (i *Ingestor) Serve(ctx context.Context, ln net.Listener) error {
	return i.run(ctx, func(ctx context.Context) error { return i.edge.Serve(ctx, ln) })
}

func (i *Ingestor) run(ctx context.Context, serve func(context.Context) error) error {
	// The config listener outlives the edge's drain (see Serve).
	background, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return i.plane.notifier.Run(background) })
	g.Go(func() error { return i.plane.warm(gctx) })
	g.Go(func() error {
		defer stopBackground()
		return serve(gctx)
	})
	return g.Wait()
}

// Close closes the Kafka client, exports the spans still queued (within traceFlushTimeout), then
// closes the cache and the pool. Call it after Run or Serve has returned.
func (i *Ingestor) Close() {
	i.producer.Close()
	i.log.Info("ingestor shutdown: kafka client closed")
	shutdownTracing(i.tracing, i.log)
	i.plane.close()
}
