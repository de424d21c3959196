package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// system is Inlet as internal/compose assembles it, running in this process on this test's PostgreSQL
// and ClickHouse databases, with two projects, A and B. With the data path, the ingestor serves on a
// port of its own and the pipeline consumes this test's Kafka topics.
type system struct {
	t          *testing.T
	consoleURL string // the admin server: API and console
	ingestURL  string // the edge, with the data path; also the console's public base URL
	keyA, keyB string
	projA      int64
	projB      int64
	stores     *store.Bundle // the test's own, as another process's would be
	ch         driver.Conn   // the test's own connection to this test's ClickHouse database
	cfg        config.Config // the settings the processes run with
	kafka      kafka.Config  // this test's topics, with the data path
	// restartPipeline stops the pipeline (with the data path) and starts a new one on the same
	// settings, as a restart of its process would; between the two it calls between (nil: nothing).
	restartPipeline func(between func())
}

// newStack is the whole system — ingestor, pipeline, admin — with projects "Shop A" and "Shop B".
func newStack(t *testing.T) *system {
	t.Helper()
	return start(t, [2]string{"Shop A", "Shop B"}, true, func(cfg *config.Config) {
		cfg.Pipeline.Group = testenv.Name("console")
		cfg.Pipeline.FlushInterval = 200 * time.Millisecond
	}, compose.Deps{})
}

// newEnv is the admin server alone, with projects "A" and "B", and with room for the refused keys some
// tests send from 127.0.0.1 (the failed-authentication limit has tests of its own, in admin).
func newEnv(t *testing.T) *system {
	t.Helper()
	return start(t, [2]string{"A", "B"}, false, func(cfg *config.Config) {
		cfg.Admin.AuthFailureBurst = 1_000_000
	}, compose.Deps{})
}

// start runs the system on fresh databases (and, with dataPath, fresh topics) with the default settings
// changed by set and the components built with deps (its Logger: the test's), and stops it when the
// test ends.
func start(t *testing.T, projects [2]string, dataPath bool, set func(*config.Config), deps compose.Deps) *system {
	t.Helper()
	log := testenv.Logger()
	pgcfg, _ := testenv.Postgres(t)
	chcfg, ch := testenv.ClickHouse(t)
	cfg := config.Defaults()
	cfg.Postgres, cfg.ClickHouse = pgcfg, chcfg
	var ln net.Listener
	if dataPath {
		cfg.Kafka = kafkaTopicsWithRetry(t)
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		cfg.Admin.PublicBaseURL = "http://" + ln.Addr().String()
	}
	set(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Errorf("stack did not stop within 60s")
		}
	})
	// goRun runs a component until the test ends, then closes it.
	goRun := func(name string, run func(context.Context) error, close func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}

	stores, err := compose.OpenStores(ctx, &cfg, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stores.Close)
	s := &system{t: t, ingestURL: cfg.Admin.PublicBaseURL, stores: stores, ch: ch, cfg: cfg, kafka: cfg.Kafka}
	a, keyA, err := stores.Projects.Create(ctx, projects[0])
	if err != nil {
		t.Fatal(err)
	}
	b, keyB, err := stores.Projects.Create(ctx, projects[1])
	if err != nil {
		t.Fatal(err)
	}
	s.projA, s.keyA, s.projB, s.keyB = a.ID, keyA, b.ID, keyB

	deps.Logger = log
	if dataPath {
		ing, err := compose.NewIngestor(ctx, &cfg, deps)
		if err != nil {
			t.Fatal(err)
		}
		goRun("ingestor", func(ctx context.Context) error { return ing.Serve(ctx, ln) }, ing.Close)
		runPipeline := func() (stop func()) {
			p, err := compose.NewPipeline(ctx, &cfg, deps)
			if err != nil {
				t.Fatal(err)
			}
			pctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(done)
				defer p.Close()
				if err := p.Run(pctx); err != nil && !errors.Is(err, context.Canceled) && pctx.Err() == nil {
					t.Errorf("pipeline: %v", err)
				}
			}()
			return func() { cancel(); <-done }
		}
		stop := runPipeline()
		s.restartPipeline = func(between func()) {
			stop()
			if between != nil {
				between()
			}
			stop = runPipeline()
		}
	}
	s.consoleURL = s.anotherAdmin()
	return s
}

// anotherAdmin starts one more admin process on the system's settings and databases, as a second replica
// would be, and returns its URL; it stops when the test ends.
func (s *system) anotherAdmin() string {
	s.t.Helper()
	adm, err := compose.NewAdmin(context.Background(), &s.cfg, compose.Deps{Logger: testenv.Logger()})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(adm.Close)
	// Its erasure runner, the alert evaluator and the notification worker, as the admin process runs
	// them beside the server (stopped before Close).
	ctx, cancel := context.WithCancel(context.Background())
	erased, alerted := make(chan struct{}), make(chan struct{})
	go func() { defer close(erased); _ = adm.RunErasures(ctx) }()
	go func() { defer close(alerted); _ = adm.Alerts().Run(ctx) }()
	s.t.Cleanup(func() { cancel(); <-erased; <-alerted })
	hs := httptest.NewServer(adm.Handler())
	s.t.Cleanup(hs.Close)
	return hs.URL
}

// kafkaTopicsWithRetry creates this test's topics; right after a create the broker sometimes answers
// UNKNOWN_TOPIC_OR_PARTITION to the describe that follows.
func kafkaTopicsWithRetry(t *testing.T) kafka.Config {
	t.Helper()
	cfg := testenv.KafkaConfig()
	cl, err := kafka.NewClient(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for {
		err = kafka.EnsureTopics(ctx, cl, cfg)
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		cl.Close()
		t.Fatalf("kafka topics on %v: %v (is the local stack up? make up)", cfg.Brokers, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, cfg.Topics()...)
		cl.Close()
	})
	return cfg
}

// do sends an API request with key (empty: no Authorization) and a JSON body (nil: none), and returns
// status and body.
func (s *system) do(method, path, key string, body any) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.consoleURL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// want is do, failing the test unless the answer has status.
func (s *system) want(method, path, key string, body any, status int) []byte {
	s.t.Helper()
	got, out := s.do(method, path, key, body)
	if got != status {
		s.t.Fatalf("%s %s = %d %s; want %d", method, path, got, out, status)
	}
	return out
}

// insertEvents writes events rows of one subject (see testenv.InsertEvents) and returns their ids.
func (s *system) insertEvents(project int64, kind chstore.SubjectKind, subject string, ms ...uint64) []uuid.UUID {
	s.t.Helper()
	return testenv.InsertEvents(s.t, s.ch, project, string(kind), subject, ms...)
}
