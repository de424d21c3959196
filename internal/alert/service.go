package alert

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// Rollup is the ClickHouse read the evaluator makes (chstore.Reader).
type Rollup interface {
	WindowCounts(ctx context.Context, projectID int64, webhookID, reason string, baseline, from, to time.Time) ([]chstore.WindowCounts, error)
}

// Service runs the evaluator and the delivery worker. Build it with NewService, run it with Run.
type Service struct {
	cfg    Config
	store  *Store
	rollup Rollup
	sender *Sender
	log    *slog.Logger
	m      *metrics
}

type metrics struct {
	fired, resolved             *prometheus.CounterVec
	delivered, retried, failed  prometheus.Counter
	evaluations, evaluateErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_alerts_fired_total", Help: "Alerts fired, by rule kind.",
		}, []string{"kind"}),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inlet_alerts_resolved_total", Help: "Alerts resolved, by rule kind.",
		}, []string{"kind"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_notifications_delivered_total", Help: "Notifications a receiver acknowledged (2xx).",
		}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_notifications_retried_total", Help: "Notification attempts that failed and will be retried.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_notifications_failed_total", Help: "Notifications given up on (last attempt failed, or the target was refused).",
		}),
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_alert_evaluations_total", Help: "Rounds of rule evaluation this process ran (it held the lock).",
		}),
		evaluateErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inlet_alert_evaluation_errors_total", Help: "Rounds of rule evaluation that failed.",
		}),
	}
	reg.MustRegister(m.fired, m.resolved, m.delivered, m.retried, m.failed, m.evaluations, m.evaluateErrors)
	return m
}

// NewService builds the evaluator and the worker on store, reading the rollup through rollup. reg
// gets the metrics (nil: a registry of their own); log the logs (nil: discarded).
func NewService(cfg Config, store *Store, rollup Rollup, reg prometheus.Registerer, log *slog.Logger) *Service {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, store: store, rollup: rollup, sender: NewSender(cfg.DeliveryTimeout, cfg.AllowPrivateTargets),
		log: log, m: newMetrics(reg)}
}

// Run evaluates the rules every evaluate_interval and delivers due notifications until ctx is done.
// A POST under way when ctx ends is abandoned; its lease runs out and it is attempted again.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.evaluateLoop(gctx) })
	g.Go(func() error { return s.deliverLoop(gctx) })
	return g.Wait()
}

func (s *Service) evaluateLoop(ctx context.Context) error {
	t := time.NewTicker(s.cfg.EvaluateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ran, err := s.Evaluate(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.m.evaluateErrors.Inc()
			s.log.Warn("alert rules not evaluated; retried at the next interval", "err", err)
		case ran:
			s.m.evaluations.Inc()
		}
	}
}

func (s *Service) deliverLoop(ctx context.Context) error {
	t := time.NewTicker(s.cfg.DeliveryInterval)
	defer t.Stop()
	lastForget := time.Time{}
	for {
		n, err := s.DeliverDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("notification delivery round failed; retried", "err", err)
		}
		if time.Since(lastForget) > time.Hour {
			lastForget = time.Now()
			if _, err := s.store.forget(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("old notifications not deleted; retried in an hour", "err", err)
			}
		}
		if n == s.cfg.Concurrency && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
