package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/bench/load"
	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// Options are the suite's flags (see cmd/inlet/bench.go for their documentation and defaults).
type Options struct {
	Scenarios  string  // directory of scenario files
	Run        string  // regexp on scenario names; empty runs all
	Scale      float64 // multiplies every duration
	Results    string  // results root; each run writes <Results>/<timestamp>/
	Latest     string  // directory that receives a copy of the report (REPORT.md and charts); empty: none
	StateDir   string  // where webhooks' secrets and the Telegraf binary are kept
	InletBin   string  // the inlet binary started as migrate, ingestor and pipeline
	BenchBin   string  // this binary, started as the null server (bench null)
	Telegraf   string  // Telegraf binary; missing: the peer is skipped and the report says why
	SUTCPUs    string  // taskset CPU list for the processes under test; empty: not pinned
	InletAddr  string  // bench ingestor's edge
	NullAddr   string  // null server
	PeerAddr   string  // Telegraf's http_listener_v2
	Progress   bool    // draw a progress bar on stderr
	CatchUp    time.Duration
	BenchTopic string // prefix of the bench's Kafka topics and name of its ClickHouse and PostgreSQL databases
	Family     string // runs only the scenarios of this family (Scenario.Family); empty: -run decides
	Profiles   bool   // save CPU and heap profiles of the ingestor and the pipeline per scenario
}

// Ports of the bench's own ingestor and pipeline internals (metrics, readiness).
const (
	inletInternalAddr    = "127.0.0.1:18490"
	pipelineInternalAddr = "127.0.0.1:18491"
	peerPath             = "/hooks/peer"
	// topicPartitions of the bench topics, as the default layout.
	topicPartitions = 6
	// drainWait bounds an open-loop run's requests still in flight after its schedule ends.
	drainWait = 10 * time.Second
	// requestTimeout bounds one request of the generator: above the ingestor's 2 s ack timeout.
	requestTimeout = 10 * time.Second
	// openConnsFactor: open loops get this many times the closed loop's connections so that latency
	// spikes do not starve the schedule (late starts would still be counted in the latency).
	openConnsFactor = 4
	// probeDuration is the closed-loop probe of inlet's maximum for phases when no earlier scenario
	// measured it for the same body.
	probeDuration = 2 * time.Second
	// probeMin is the shortest probe and its warm-up, whatever -scale says.
	probeMin = time.Second
	// peerSettle bounds the wait for Telegraf to flush its buffer to Kafka after a run.
	peerSettle = 15 * time.Second
)

// Suite is one run of the bench suite.
type Suite struct {
	opt  Options
	cfg  *config.Config // the stack's settings (brokers, ClickHouse, PostgreSQL), from INLET_* variables
	log  *slog.Logger
	dir  string // this run's results directory
	env  []string
	prog *progress

	ingestor, pipeline, null, peer *proc
	brokerPID                      int
	adm                            *kadm.Client
	kcl                            *kgo.Client
	ch                             driver.Conn
	hooks                          []Hook
	signed                         map[string][]Hook // webhooks connected as a sender, by sender
	fanOut                         []Hook            // Bearer webhooks whose route fans out (Scenario.FanOut)
	scaleHooks                     []Hook            // the webhooks family's, over many projects
	dirHooks                       map[int]Hook      // a directory project's webhook, by its users
	peerNote                       string
	maxByBody                      map[string]float64 // inlet's median maximum per body key
	// drainByBody is the pipeline's records/s draining a backlog of the body (a scenario's closed
	// loop), per body key: when it is below the edge's maximum, it is the whole path's maximum.
	drainByBody map[string]float64

	report *Report
}

// phaseBase is the rate a scenario's phases are fractions of: the most the whole path sustains for the
// body, the edge's maximum (edgeMax) or, when lower, the pipeline's drain rate for it (drain; 0 when not
// measured). With large bodies the edge takes requests several times faster than one pipeline writes
// them, and half the edge's maximum would be a backlog growing for the whole phase, not a load. A
// scenario that overloads (a phase above 1, the burst) is about the edge, and stays against its maximum.
func phaseBase(edgeMax, drain float64, phases []Phase) (float64, string) {
	overload := slices.ContainsFunc(phases, func(p Phase) bool { return p.Load > 1 })
	if drain > 0 && drain < edgeMax && !overload {
		return drain, BasisPipeline
	}
	return edgeMax, BasisIngestor
}

// New prepares a suite; Run does the work.
func New(opt Options, cfg *config.Config, log *slog.Logger) *Suite {
	return &Suite{opt: opt, cfg: cfg, log: log, maxByBody: map[string]float64{}, drainByBody: map[string]float64{}, signed: map[string][]Hook{}, dirHooks: map[int]Hook{}}
}

// stateDir is the local stack's state directory (deploy/local), where the broker's pid file is.
func (s *Suite) stateDir() string {
	if d := os.Getenv("INLET_STATE_DIR"); d != "" {
		return d
	}
	return ".state"
}

func (s *Suite) requestsTopic() string { return s.opt.BenchTopic + ".requests" }
func (s *Suite) eventsTopic() string   { return s.opt.BenchTopic + ".events" }
func (s *Suite) peerTopic() string     { return s.opt.BenchTopic + ".telegraf" }
func (s *Suite) group() string         { return s.opt.BenchTopic + "-pipeline" }
func (s *Suite) database() string {
	return regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(s.opt.BenchTopic, "_")
}

// Run runs the selected scenarios and writes the report. It returns the report (also when a
// scenario's correctness check failed: Report.OK says so) or an error that stopped the run.
func (s *Suite) Run(ctx context.Context) (*Report, error) {
	scenarios, err := LoadScenarios(s.opt.Scenarios)
	if err != nil {
		return nil, err
	}
	if s.opt.Run != "" {
		re, err := regexp.Compile(s.opt.Run)
		if err != nil {
			return nil, fmt.Errorf("-run %q: %w", s.opt.Run, err)
		}
		scenarios = slices.DeleteFunc(scenarios, func(sc *Scenario) bool { return !re.MatchString(sc.Name) })
		if len(scenarios) == 0 {
			return nil, fmt.Errorf("-run %q matches no scenario in %s", s.opt.Run, s.opt.Scenarios)
		}
	}
	if f := s.opt.Family; f != "" {
		scenarios = slices.DeleteFunc(scenarios, func(sc *Scenario) bool { return sc.Family != f })
		if len(scenarios) == 0 {
			return nil, fmt.Errorf("-family %q: no such scenario in %s (with -run %q)", f, s.opt.Scenarios, s.opt.Run)
		}
	}
	s.dir = filepath.Join(s.opt.Results, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("results directory: %w", err)
	}
	s.report = newReport(s.opt, s.dir)
	s.prog = newProgress(s.opt.Progress)
	defer s.prog.stop()

	err = s.run(ctx, scenarios)
	s.prog.clear()
	if err != nil {
		s.report.Error = err.Error()
	}
	if werr := s.report.write(s.opt.Latest); werr != nil {
		return s.report, errors.Join(err, werr)
	}
	return s.report, err
}

func (s *Suite) run(ctx context.Context, scenarios []*Scenario) error {
	defer s.stopAll()
	if err := s.prepare(ctx, scenarios); err != nil {
		return err
	}
	for _, sc := range scenarios {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.log.Info("bench: scenario", "name", sc.Name)
		res, err := s.runScenario(ctx, sc)
		if res != nil {
			s.report.Scenarios = append(s.report.Scenarios, res)
		}
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
	}
	return nil
}

// sutEnv is the environment of the bench's own ingestor and pipeline: their own topics, ClickHouse
// database, consumer group and ports, so nothing else on the machine is disturbed or counted; the
// per-webhook rate limit lifted, since the bench sends thousands of requests per second to one webhook,
// the cache's guard on lookups of never-seen ids lifted, so that the 10,000-webhook scenario
// measures what a cache miss costs rather than the guard (500/s by default) answering 503, and the
// per-address connection limit raised to what the generator opens, all from 127.0.0.1 (open loops: up
// to load.MaxConns; the default max_conns_per_ip is 1000).
func (s *Suite) sutEnv() []string {
	return []string{
		"INLET_KAFKA_REQUESTS_TOPIC=" + s.requestsTopic(),
		"INLET_KAFKA_EVENTS_TOPIC=" + s.eventsTopic(),
		"INLET_KAFKA_PARTITIONS=" + strconv.Itoa(topicPartitions),
		"INLET_KAFKA_RETENTION=1h",
		"INLET_CLICKHOUSE_DATABASE=" + s.database(),
		"INLET_INGESTOR_LISTEN_ADDR=" + s.opt.InletAddr,
		"INLET_INGESTOR_INTERNAL_ADDR=" + inletInternalAddr,
		"INLET_INGESTOR_RATE_PER_WEBHOOK=1e9",
		"INLET_INGESTOR_RATE_BURST=1000000000",
		"INLET_WEBHOOK_CACHE_MAX_MISS_RATE=1000000",
		// No warm-up of the config cache at start: a scenario's cold phase then measures misses, and
		// every process's memory grows with the webhooks the scenarios use, not with the 100,000 the
		// webhooks family keeps in the bench database.
		"INLET_WEBHOOK_CACHE_WARM_MAX=0",
		"INLET_INGESTOR_MAX_CONNS_PER_IP=" + strconv.Itoa(load.MaxConns),
		"INLET_PIPELINE_INTERNAL_ADDR=" + pipelineInternalAddr,
		"INLET_PIPELINE_GROUP=" + s.group(),
		"INLET_LOG_LEVEL=warn",
	}
}

func (s *Suite) prepare(ctx context.Context, scenarios []*Scenario) error {
	// The bench's own PostgreSQL database, beside the stack's: its projects, 100,000 webhooks and
	// million-user directories stay out of everyone else's.
	dsn, err := benchDSN(ctx, s.cfg.Postgres.DSN, s.database())
	if err != nil {
		return err
	}
	s.cfg.Postgres.DSN = dsn
	s.env = append(s.sutEnv(), "INLET_POSTGRES_DSN="+dsn)
	s.report.SUTSettings = slices.DeleteFunc(slices.Clone(s.env), func(e string) bool { return strings.HasPrefix(e, "INLET_POSTGRES_DSN=") })
	s.report.SUTSettings = append(s.report.SUTSettings, "INLET_POSTGRES_DSN=<the stack's server, database "+s.database()+">")

	// Topics and schema of the bench's own namespace, emptied and made again with the same migrate
	// command as production.
	s.prog.status("empty the bench's topics and ClickHouse database")
	if err := s.resetNamespace(ctx); err != nil {
		return err
	}
	s.prog.status("migrate the bench topics and database")
	mig, err := startProc("migrate", []string{s.opt.InletBin, "migrate"}, s.env, filepath.Join(s.dir, "migrate.log"), "")
	if err != nil {
		return err
	}
	select {
	case err := <-mig.done:
		mig.log.Close()
		if err != nil {
			return fmt.Errorf("inlet migrate for the bench (see %s): %w", mig.log.Name(), err)
		}
	case <-ctx.Done():
		_ = mig.stop()
		return ctx.Err()
	}

	kcl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Kafka.Brokers...), kgo.ClientID("inlet-bench"))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	s.kcl, s.adm = kcl, kadm.NewClient(kcl)
	chcfg := s.cfg.ClickHouse
	chcfg.Database = s.database()
	if s.ch, err = chdb.Open(ctx, chcfg); err != nil {
		return err
	}

	needPeer, needCeiling, hooks, fanOut := false, false, 1, 0
	signed := map[string]int{} // sender → webhooks
	scaleHooks, dirs := 0, map[int]bool{}
	for _, sc := range scenarios {
		switch sc.Family {
		case FamilyWebhooks:
			scaleHooks = max(scaleHooks, sc.Webhooks)
			continue
		case FamilyDirectory:
			dirs[sc.Users] = true
			continue
		}
		if sc.FanOut > 0 {
			fanOut = max(fanOut, sc.Webhooks)
		} else if sc.Sender == webhook.SenderInlet || slices.Contains(sc.Compare, TargetBearer) {
			hooks = max(hooks, sc.Webhooks)
		}
		if sc.Sender != webhook.SenderInlet {
			signed[sc.Sender] = max(signed[sc.Sender], sc.Webhooks)
		}
		needPeer = needPeer || slices.Contains(sc.Compare, TargetPeer)
		needCeiling = needCeiling || slices.Contains(sc.Compare, TargetCeiling)
	}
	s.prog.status(fmt.Sprintf("bench webhooks: ensure %d", hooks))
	statePath := filepath.Join(s.opt.StateDir, "webhooks.json")
	projectID, bearer, err := ensureHooks(ctx, s.cfg, hooks, statePath, s.log)
	if err != nil {
		return err
	}
	s.hooks = bearer
	for sender, n := range signed {
		s.prog.status(fmt.Sprintf("bench webhooks: ensure %d connected as %s", n, sender))
		path := filepath.Join(s.opt.StateDir, "webhooks-"+sender+".json")
		if s.signed[sender], err = ensureSignedHooks(ctx, s.cfg, projectID, sender, n, path, s.log); err != nil {
			return err
		}
	}
	if fanOut > 0 {
		s.prog.status(fmt.Sprintf("bench webhooks: ensure %d fanning out", fanOut))
		path := filepath.Join(s.opt.StateDir, "webhooks-fanout.json")
		if s.fanOut, err = ensureFanOutHooks(ctx, s.cfg, projectID, fanOut, path, s.log); err != nil {
			return err
		}
	}

	if scaleHooks > 0 {
		s.prog.status(fmt.Sprintf("bench webhooks: ensure %d over %d projects", scaleHooks, projectsFor(scaleHooks)))
		t0 := time.Now()
		if s.scaleHooks, err = ensureScaleHooks(ctx, s.cfg, scaleHooks, filepath.Join(s.opt.StateDir, "webhooks-scale.json"), s.log); err != nil {
			return err
		}
		s.report.Seeding = append(s.report.Seeding, fmt.Sprintf("%d webhooks over %d projects: %s", scaleHooks, projectsFor(scaleHooks), time.Since(t0).Round(time.Millisecond)))
	}
	for _, users := range slices.Sorted(maps.Keys(dirs)) {
		s.prog.status(fmt.Sprintf("bench directory: ensure %d users with devices", users))
		t0 := time.Now()
		path := filepath.Join(s.opt.StateDir, fmt.Sprintf("directory-%d.json", users))
		if s.dirHooks[users], err = ensureDirectory(ctx, s.cfg, users, path, s.log); err != nil {
			return err
		}
		s.report.Seeding = append(s.report.Seeding, fmt.Sprintf("directory of %d users and %d devices: %s", users, users, time.Since(t0).Round(time.Millisecond)))
	}

	for _, a := range []string{s.opt.InletAddr, inletInternalAddr, pipelineInternalAddr, s.opt.NullAddr, s.opt.PeerAddr} {
		if err := portFree(a); err != nil {
			return err
		}
	}
	s.prog.status("start the ingestor")
	if err := s.startIngestor(ctx); err != nil {
		return err
	}
	if err := s.startPipeline(ctx); err != nil {
		return err
	}
	if needCeiling {
		s.prog.status("start the null server")
		s.null, err = startProc("null", []string{s.opt.BenchBin, "null", "-listen", s.opt.NullAddr}, nil,
			filepath.Join(s.dir, "null.log"), s.opt.SUTCPUs)
		if err != nil {
			return err
		}
		if err := s.null.waitReady(ctx, postAnswers("http://"+s.opt.NullAddr+"/hooks/ready", "null", 202)); err != nil {
			return err
		}
	}
	if needPeer {
		s.prog.status("start Telegraf")
		if err := s.startPeer(ctx); err != nil {
			s.peerNote = err.Error()
			s.report.PeerNote = "peer skipped: " + err.Error()
			s.log.Warn("bench: peer skipped", "err", err)
		}
	}
	return nil
}

func (s *Suite) startIngestor(ctx context.Context) error {
	var err error
	s.ingestor, err = startProc("ingestor", []string{s.opt.InletBin, "ingestor"}, s.env, filepath.Join(s.dir, "ingestor.log"), s.opt.SUTCPUs)
	if err != nil {
		return err
	}
	return s.ingestor.waitReady(ctx, httpOK("http://"+inletInternalAddr+"/readyz"))
}

func (s *Suite) startPipeline(ctx context.Context) error {
	var err error
	s.pipeline, err = startProc("pipeline", []string{s.opt.InletBin, "pipeline"}, s.env, filepath.Join(s.dir, "pipeline.log"), s.opt.SUTCPUs)
	if err != nil {
		return err
	}
	return s.pipeline.waitReady(ctx, httpOK("http://"+pipelineInternalAddr+"/readyz"))
}

func (s *Suite) stopPipeline() error {
	err := s.pipeline.stop()
	s.pipeline = nil
	return err
}

func (s *Suite) stopAll() {
	for _, p := range []*proc{s.peer, s.null, s.pipeline, s.ingestor} {
		if err := p.stop(); err != nil {
			s.log.Warn("bench: stop", "err", err)
		}
	}
	if s.kcl != nil {
		s.kcl.Close()
	}
	if s.ch != nil {
		_ = s.ch.Close()
	}
}

// target is one server a load can go to.
type target struct {
	name string
	addr string
	proc *proc
	src  load.Source
}

// collectIDs: the request ids of the ingestor's 2xx answers are checked against Kafka and ClickHouse.
func (t target) collectIDs() bool { return t.name == TargetInlet || t.name == TargetBearer }

func (s *Suite) targets(sc *Scenario) ([]target, error) {
	body := sc.Body.Bytes()
	src, err := s.inletSource(sc, sc.Webhooks, sc.WrongSecretPercent)
	if err != nil {
		return nil, err
	}
	out := []target{{name: TargetInlet, addr: s.opt.InletAddr, proc: s.ingestor, src: src}}
	for _, c := range sc.Compare {
		switch {
		case c == TargetBearer:
			out = append(out, target{name: c, addr: s.opt.InletAddr, proc: s.ingestor, src: inletSource(s.hooks[:sc.Webhooks], body, sc.WrongSecretPercent)})
		case c == TargetCeiling && s.null != nil:
			out = append(out, target{name: c, addr: s.opt.NullAddr, proc: s.null, src: inletSource(s.hooks[:sc.Webhooks], body, sc.WrongSecretPercent)})
		case c == TargetPeer && s.peer != nil:
			r := &load.Request{Path: peerPath, Authorization: s.hooks[0].Authorization, ContentType: "application/json", Body: body}
			out = append(out, target{name: c, addr: s.opt.PeerAddr, proc: s.peer, src: func(int64) *load.Request { return r }})
		}
	}
	return out, nil
}

// inletSource is the load of inlet in sc over its first n webhooks: Bearer secrets (to the fan-out
// webhooks with sc.FanOut), or signed as sc.Sender signs.
func (s *Suite) inletSource(sc *Scenario, n, wrongPct int) (load.Source, error) {
	body := sc.Body.Bytes()
	switch sc.Family {
	case FamilyWebhooks:
		return inletSource(s.scaleHooks[:n], body, wrongPct), nil
	case FamilyDirectory:
		return usersSource(s.dirHooks[sc.Users], sc.Users), nil
	}
	if sc.FanOut > 0 {
		return inletSource(s.fanOut[:n], body, wrongPct), nil
	}
	if sc.Sender == webhook.SenderInlet {
		return inletSource(s.hooks[:n], body, wrongPct), nil
	}
	return signedSource(s.signed[sc.Sender][:n], s.opt.InletAddr, body, wrongPct)
}

// wrongAuthorization has the shape and length of a real one, so the ingestor does the same work.
const wrongAuthorization = "Bearer whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// inletSource spreads requests round-robin over hooks; wrongPct of every 100 requests, evenly spaced,
// carry a wrong secret.
func inletSource(hooks []Hook, body []byte, wrongPct int) load.Source {
	good := make([]load.Request, len(hooks))
	bad := make([]load.Request, len(hooks))
	for i, h := range hooks {
		good[i] = load.Request{Path: "/hooks/" + h.ID, Authorization: h.Authorization, ContentType: "application/json", Body: body}
		bad[i] = good[i]
		bad[i].Authorization = wrongAuthorization
	}
	return func(i int64) *load.Request {
		h := i % int64(len(hooks))
		if wrongPct > 0 && (i*int64(wrongPct))%100 < int64(wrongPct) {
			return &bad[h]
		}
		return &good[h]
	}
}

// measured runs one load against t and measures the target's (and the broker's) CPU and RSS.
func (s *Suite) measured(ctx context.Context, t target, cfg load.Config, label string) (*Run, *load.Result, error) {
	if err, ok := t.proc.exited(); ok {
		return nil, nil, fmt.Errorf("%s: %w (%v)", t.name, errStopped, err)
	}
	u0, err := readUsage(t.proc.pid())
	if err != nil {
		return nil, nil, err
	}
	// The broker may have been restarted since the last run (other work on the machine): find it again.
	s.brokerPID = kafkaPID(s.stateDir())
	var b0 usage
	if s.brokerPID != 0 {
		b0, _ = readUsage(s.brokerPID)
	}
	// The pipeline's CPU and RSS too while the ingestor is loaded with the pipeline running (phases).
	var pipe *proc
	var p0 usage
	if t.proc == s.ingestor && s.pipeline != nil {
		if p0, err = readUsage(s.pipeline.pid()); err == nil {
			pipe = s.pipeline
		}
	}
	// Peak RSS over the run, sampled.
	peak, pipePeak := u0.rss, p0.rss
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-tk.C:
				if u, err := readUsage(t.proc.pid()); err == nil && u.rss > peak {
					peak = u.rss
				}
				if pipe != nil {
					if u, err := readUsage(pipe.pid()); err == nil && u.rss > pipePeak {
						pipePeak = u.rss
					}
				}
			}
		}
	}()
	s.prog.start(label, cfg)
	res, err := load.Run(ctx, cfg, t.src, s.prog.counters())
	s.prog.done()
	stopSampling()
	<-sampled
	if err != nil {
		return nil, res, err
	}
	u1, err := readUsage(t.proc.pid())
	if err != nil {
		return nil, res, err
	}
	r := newRun(t.name, res)
	r.CPUSeconds = u1.cpu - u0.cpu
	r.RSSMiB = float64(max(peak, u1.rss)) / (1 << 20)
	if pipe != nil {
		if p1, err := readUsage(pipe.pid()); err == nil {
			r.PipelineCPUSeconds = p1.cpu - p0.cpu
			r.PipelineRSSMiB = float64(max(pipePeak, p1.rss)) / (1 << 20)
		}
	}
	if s.brokerPID != 0 {
		if b1, err := readUsage(s.brokerPID); err == nil {
			r.BrokerCPUSeconds = b1.cpu - b0.cpu
		}
	}
	r.finish()
	return r, res, nil
}

// scenarioState accumulates what the correctness check needs over a scenario's inlet runs.
type scenarioState struct {
	ids         map[[16]byte]int // request ids answered 2xx by inlet
	idErrors    int64
	unanswered  int64 // inlet requests answered 503 or not at all: their records may still be in the topic
	peer2xx     int64
	inletFrom   offsets
	peerFrom    offsets
	firstSend   time.Time
	e2e         *e2eProbe
	e2eCancel   context.CancelFunc
	e2eDone     chan error
	e2eMeasures []e2eSample
	// eventsPerSuccess is the events a successful request fires (Scenario.EventsPerSuccess).
	eventsPerSuccess int
}

func (st *scenarioState) add(t string, res *load.Result) {
	if res == nil {
		return
	}
	switch t {
	case TargetInlet, TargetBearer: // one ingestor, one topic
		for _, id := range res.IDs {
			st.ids[id]++
		}
		st.idErrors += res.IDErrors
		st.unanswered += res.Errors
		for code, n := range res.Statuses {
			if code >= 500 {
				st.unanswered += n
			}
		}
	case TargetPeer:
		st.peer2xx += res.Accepted()
	}
}

func (s *Suite) runScenario(ctx context.Context, sc *Scenario) (*ScenarioResult, error) {
	out := &ScenarioResult{Name: sc.Name, Title: sc.Title, Body: sc.Body.Key(), BodyBytes: len(sc.Body.Bytes()),
		Webhooks: sc.Webhooks, WrongSecretPercent: sc.WrongSecretPercent, Conns: sc.Conns, FanOut: sc.FanOut,
		Family: sc.Family, Users: sc.Users, Size: sc.Size()}
	if sc.Sender != webhook.SenderInlet {
		out.Sender = sc.Sender
	}
	targets, err := s.targets(sc)
	if err != nil {
		return out, err
	}
	for _, c := range sc.Compare {
		if !slices.ContainsFunc(targets, func(t target) bool { return t.name == c }) {
			out.Notes = append(out.Notes, fmt.Sprintf("%s not compared: %s", c, s.unavailable(c)))
		}
	}
	st := &scenarioState{ids: map[[16]byte]int{}, firstSend: time.Now().Add(-time.Minute), eventsPerSuccess: sc.EventsPerSuccess()}
	if st.inletFrom, err = endOffsets(ctx, s.adm, s.requestsTopic()); err != nil {
		return out, err
	}
	if s.peer != nil && slices.Contains(sc.Compare, TargetPeer) {
		if st.peerFrom, err = endOffsets(ctx, s.adm, s.peerTopic()); err != nil {
			return out, err
		}
	}
	scale := s.opt.Scale

	// 1. The maximum: closed loop, rounds interleaved over the targets, the pipeline stopped so that it
	// competes with none of them for the two cores (the ceiling and the peer have no pipeline), until
	// the levels are done.
	var maxFrom offsets
	if m := sc.Max; m != nil {
		if s.pipeline != nil {
			s.prog.status("stop the pipeline for the closed-loop rounds")
			if err := s.stopPipeline(); err != nil {
				return out, err
			}
		}
		if maxFrom, err = endOffsets(ctx, s.adm, s.requestsTopic()); err != nil {
			return out, err
		}
		for round := 1; round <= m.Rounds; round++ {
			for _, t := range targets {
				cfg := load.Config{Addr: t.addr, Mode: load.Closed, Conns: sc.Conns, Timeout: requestTimeout,
					CollectIDs: t.collectIDs(), MaxRequests: maxRequests(max(m.Duration.D(), m.Warmup.D()), scale)}
				if w := scaled(m.Warmup.D(), scale); w > 0 {
					cfg.Duration = w
					s.prog.start(fmt.Sprintf("%s: warm-up %s round %d", sc.Name, t.name, round), cfg)
					res, err := load.Run(ctx, cfg, t.src, s.prog.counters())
					s.prog.done()
					st.add(t.name, res)
					if err != nil {
						return out, fmt.Errorf("%s warm-up: %w", t.name, err)
					}
				}
				cfg.Duration = scaled(m.Duration.D(), scale)
				r, res, err := s.measured(ctx, t, cfg, fmt.Sprintf("%s: max %s round %d/%d", sc.Name, t.name, round, m.Rounds))
				st.add(t.name, res)
				if err != nil {
					return out, fmt.Errorf("%s max round %d: %w", t.name, round, err)
				}
				r.Phase, r.Round = "max", round
				out.Runs = append(out.Runs, r)
			}
		}
		out.summarizeMax()
		if v, ok := out.MaxMedian[TargetInlet]; ok && sc.Webhooks == 1 && sc.WrongSecretPercent == 0 {
			s.maxByBody[bodyKey(sc)] = v
		}
	}

	// 2. Latency at fractions of each target's maximum: open loop, levels interleaved over the targets
	// (the end-to-end probe needs the pipeline: it runs in phases).
	for _, level := range sc.Levels {
		for _, t := range targets {
			mx := out.MaxMedian[t.name]
			if mx <= 0 {
				continue
			}
			cfg := load.Config{Addr: t.addr, Mode: load.Open, Conns: min(load.MaxConns, sc.Conns*openConnsFactor),
				Rate: level * mx, Duration: scaled(sc.LevelDuration.D(), scale), Timeout: requestTimeout,
				Drain: drainWait, CollectIDs: t.collectIDs()}
			r, res, err := s.measured(ctx, t, cfg, fmt.Sprintf("%s: %s at %.0f%% of max", sc.Name, t.name, level*100))
			st.add(t.name, res)
			if err != nil {
				return out, fmt.Errorf("%s at %.0f%%: %w", t.name, level*100, err)
			}
			r.Phase, r.Level = "level", level
			out.Runs = append(out.Runs, r)
		}
	}

	// The pipeline drains what the rounds and levels appended, at full speed: its records/s.
	if maxFrom != nil {
		maxTo, err := endOffsets(ctx, s.adm, s.requestsTopic())
		if err != nil {
			return out, err
		}
		s.prog.status("start the pipeline and drain the backlog")
		if err := s.startPipeline(ctx); err != nil {
			return out, err
		}
		u0, err := readUsage(s.pipeline.pid())
		if err != nil {
			return out, err
		}
		sp := span{topic: s.requestsTopic(), from: maxFrom, to: maxTo}
		stopPeak := sampleRSS(ctx, s.pipeline.pid())
		err = s.waitPipeline(ctx, sp, st.firstSend)
		drainPeak := stopPeak()
		if err != nil {
			return out, err
		}
		u1, err := readUsage(s.pipeline.pid())
		if err != nil {
			return out, err
		}
		pr, err := processedRate(ctx, s.ch, sp, st.firstSend)
		if err != nil {
			return out, err
		}
		pr.RSSMiB = float64(u1.rss) / (1 << 20)
		pr.PeakRSSMiB = float64(max(drainPeak, u1.rss)) / (1 << 20)
		out.Pipeline = pr
		if sc.Webhooks == 1 && sc.WrongSecretPercent == 0 && sc.FanOut == 0 && pr.PerSecond > 0 {
			s.drainByBody[bodyKey(sc)] = pr.PerSecond
		}
		n := pr.Records
		if n > 0 {
			out.Pipeline.CPUPer1k = (u1.cpu - u0.cpu) / float64(n) * 1000
		}
	}

	// 3. Phases: open loop on inlet alone, at fractions of its maximum for this body.
	if len(sc.Phases) > 0 {
		s.startE2E(ctx, st)
		mx := s.maxByBody[bodyKey(sc)]
		if mx <= 0 {
			// At least probeMin, after as long a warm-up: a probe of a just-started ingestor shorter than
			// that measures its first produce requests' metadata round trips, not its maximum.
			d := max(scaled(probeDuration, scale), probeMin)
			cfg := load.Config{Addr: s.opt.InletAddr, Mode: load.Closed, Conns: sc.Conns, Duration: probeMin,
				Timeout: requestTimeout, CollectIDs: true, MaxRequests: maxRequests(d, 1)}
			// One webhook, good secrets: the same maximum the seed scenario measures.
			src, err := s.inletSource(sc, 1, 0)
			if err != nil {
				return out, err
			}
			if sc.Family != "" {
				// The bench's own webhook: the probe touches no webhook or user the phases measure cold.
				src = inletSource(s.hooks[:1], sc.Body.Bytes(), 0)
			}
			probe := target{name: TargetInlet, addr: s.opt.InletAddr, proc: s.ingestor, src: src}
			s.prog.start(sc.Name+": warm-up before the probe", cfg)
			res, err := load.Run(ctx, cfg, src, s.prog.counters())
			s.prog.done()
			st.add(TargetInlet, res)
			if err != nil {
				return out, fmt.Errorf("probe warm-up: %w", err)
			}
			cfg.Duration = d
			r, res, err := s.measured(ctx, probe, cfg, sc.Name+": probe inlet's maximum")
			st.add(TargetInlet, res)
			if err != nil {
				return out, fmt.Errorf("probe: %w", err)
			}
			r.Phase = "probe"
			out.Runs = append(out.Runs, r)
			mx = r.AcceptedPerSec
			s.maxByBody[bodyKey(sc)] = mx
		}
		out.PhaseIngestorMax = mx
		out.PhaseBase, out.PhaseBasis = phaseBase(mx, s.drainByBody[bodyKey(sc)], sc.Phases)
		phasesFrom, err := endOffsets(ctx, s.adm, s.requestsTopic())
		if err != nil {
			return out, err
		}
		p0, err := readUsage(s.pipeline.pid())
		if err != nil {
			return out, err
		}
		for i, ph := range sc.Phases {
			label := cmp.Or(ph.Name, fmt.Sprintf("phase %d", i+1))
			st.e2e.setPhase(label)
			// The phase's pipeline cost is from its start until the pipeline has written its last
			// record, and the next phase starts only then: a backlog left by one phase (cold configs)
			// is not counted, nor its end-to-end time sampled, in the next (warm).
			phaseFrom, err := endOffsets(ctx, s.adm, s.requestsTopic())
			if err != nil {
				return out, err
			}
			pu0, err := readUsage(s.pipeline.pid())
			if err != nil {
				return out, err
			}
			var prof *profiling
			if s.opt.Profiles {
				name := sc.Name
				if len(sc.Phases) > 1 {
					name += "." + cmp.Or(ph.Name, fmt.Sprintf("phase%d", i+1))
				}
				prof = s.startProfiles(ctx, name, scaled(ph.Duration.D(), scale))
			}
			cfg := load.Config{Addr: s.opt.InletAddr, Mode: load.Open, Conns: min(load.MaxConns, sc.Conns*openConnsFactor),
				Rate: ph.Load * out.PhaseBase, Duration: scaled(ph.Duration.D(), scale), Timeout: requestTimeout, Drain: drainWait,
				CollectIDs: true, OnAccepted: st.e2e.observe}
			r, res, err := s.measured(ctx, targets[0], cfg, fmt.Sprintf("%s: phase %d/%d at %.0f%% of max", sc.Name, i+1, len(sc.Phases), ph.Load*100))
			st.add(TargetInlet, res)
			if prof != nil {
				files, perr := prof.finish(ctx)
				out.Profiles = append(out.Profiles, files...)
				if perr != nil {
					out.Notes = append(out.Notes, "profiles: "+perr.Error())
				}
			}
			if err != nil {
				return out, fmt.Errorf("phase %d: %w", i+1, err)
			}
			r.Phase, r.Level = label, ph.Load
			n, pu1, err := s.pipelineWrote(ctx, phaseFrom, st.firstSend)
			if err != nil {
				return out, err
			}
			if n > 0 && pu1 != nil {
				r.PipelineCPUSeconds = pu1.cpu - pu0.cpu
				r.PipelineCPUPer1k = r.PipelineCPUSeconds / float64(n) * 1000
				r.PipelineRSSMiB = max(r.PipelineRSSMiB, float64(pu1.rss)/(1<<20))
			}
			out.Runs = append(out.Runs, r)
		}
		// The pipeline's CPU per record over the phases: until it wrote their last record.
		n, p1, err := s.pipelineWrote(ctx, phasesFrom, st.firstSend)
		if err != nil {
			return out, err
		}
		if n > 0 && p1 != nil {
			out.PhasesPipelineCPUPer1k = (p1.cpu - p0.cpu) / float64(n) * 1000
		}
	}

	// 4. Correctness, and the end-to-end samples.
	s.prog.status(sc.Name + ": verify Kafka and ClickHouse")
	c, err := s.verify(ctx, st)
	out.Correctness = c
	if err != nil {
		return out, err
	}
	out.E2E = summarizeE2E(st.e2eMeasures, st.e2e)
	// Each phase's own end-to-end figures, on its row.
	for _, r := range out.Runs {
		if r.Target != TargetInlet || r.Mode != load.Open {
			continue
		}
		if e := summarizePhaseE2E(st.e2eMeasures, r.Phase); e != nil {
			r.E2ESamples, r.E2EP50, r.E2EP99 = e.Samples, e.P50, e.P99
		}
	}
	return out, nil
}

// maxRequests bounds a closed loop in count as well as in time: load.MaxRate per second of it.
func maxRequests(d time.Duration, scale float64) int64 {
	return int64(scaled(d, scale).Seconds()*load.MaxRate) + 1
}

// bodyKey: phases are fractions of inlet's maximum for the same body and sender, measured on one
// webhook with good secrets, so that scenarios varying the webhooks or the secrets load at comparable
// rates.
func bodyKey(sc *Scenario) string { return sc.Body.Key() + "/" + sc.Sender }

func (s *Suite) unavailable(name string) string {
	switch name {
	case TargetPeer:
		if s.peerNote != "" {
			return s.peerNote
		}
	}
	return "not started"
}

func (s *Suite) startE2E(ctx context.Context, st *scenarioState) {
	st.e2e = newE2EProbe(s.ch)
	pctx, cancel := context.WithCancel(ctx)
	st.e2eCancel = cancel
	st.e2eDone = make(chan error, 1)
	go func() { st.e2eDone <- st.e2e.run(pctx) }()
}

// pipelineWrote waits until the pipeline has written every record appended to the requests topic
// since from (received since since), and returns how many records that was and the pipeline's usage
// then (nil when it could not be read).
func (s *Suite) pipelineWrote(ctx context.Context, from offsets, since time.Time) (int64, *usage, error) {
	to, err := endOffsets(ctx, s.adm, s.requestsTopic())
	if err != nil {
		return 0, nil, err
	}
	sp := span{topic: s.requestsTopic(), from: from, to: to}
	if err := s.waitPipeline(ctx, sp, since); err != nil {
		return 0, nil, err
	}
	u, err := readUsage(s.pipeline.pid())
	if err != nil {
		return sp.records(), nil, nil
	}
	return sp.records(), &u, nil
}

// waitPipeline waits until the activity log holds a row for every record of the span.
func (s *Suite) waitPipeline(ctx context.Context, sp span, since time.Time) error {
	want := sp.records()
	deadline := time.Now().Add(s.opt.CatchUp)
	var got int64
	var err error
	for {
		if got, err = activityRows(ctx, s.ch, sp, since); err != nil {
			return err
		}
		s.prog.status(fmt.Sprintf("pipeline catching up: %d of %d rows", got, want))
		if got >= want {
			return nil
		}
		if time.Now().After(deadline) {
			// Not an error of the run: the correctness check reports the difference.
			s.log.Warn("bench: pipeline did not catch up", "rows", got, "records", want, "waited", s.opt.CatchUp)
			return nil
		}
		if err, ok := s.pipeline.exited(); ok {
			return fmt.Errorf("pipeline: %w (%v)", errStopped, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// verify checks that Kafka and ClickHouse hold exactly the accepted requests of the scenario.
func (s *Suite) verify(ctx context.Context, st *scenarioState) (*Correctness, error) {
	c := &Correctness{}
	to, err := endOffsets(ctx, s.adm, s.requestsTopic())
	if err != nil {
		return c, err
	}
	sp := span{topic: s.requestsTopic(), from: st.inletFrom, to: to}
	if err := s.waitPipeline(ctx, sp, st.firstSend); err != nil {
		return c, err
	}
	// End-to-end samples: the rows are in, give the probe its last polls.
	if st.e2e != nil {
		m, unseen, err := st.e2e.finish(ctx, 10*time.Second)
		st.e2eCancel()
		if perr := <-st.e2eDone; perr != nil && err == nil {
			err = perr
		}
		if err != nil {
			return c, err
		}
		st.e2eMeasures = m
		c.E2EUnseen = unseen
	}
	tc, err := countTopic(ctx, s.cfg.Kafka.Brokers, sp)
	if err != nil {
		return c, err
	}
	ac, err := countActivity(ctx, s.ch, sp, st.firstSend)
	if err != nil {
		return c, err
	}
	c.Answered2xx = int64(len(st.ids))
	for _, n := range st.ids {
		if n > 1 {
			c.DuplicateAnswers += int64(n - 1)
		}
	}
	c.IDErrors = st.idErrors
	c.TopicRecords = tc.Records
	c.TopicOutcomes = tc.Outcomes
	for id := range st.ids {
		switch n := tc.Accepted[id]; {
		case n == 0:
			c.MissingInTopic++
		case n > 1:
			c.DuplicateInTopic += int64(n - 1)
		}
		switch n := ac.ByID[id]; {
		case n == 0:
			c.MissingInActivity++
		case n > 1:
			c.DuplicateInActivity += int64(n - 1)
		}
		c.TopicAccepted2xx += min(1, int64(tc.Accepted[id]))
		c.Activity2xx += min(1, int64(ac.ByID[id]))
	}
	for id, n := range tc.Accepted {
		if _, ok := st.ids[id]; !ok {
			c.ExtraInTopic += int64(n)
		}
	}
	c.Unanswered = st.unanswered
	c.ActivityRows = ac.Rows
	c.ActivityStatuses = ac.Statuses

	evs, err := readEvents(ctx, s.ch, sp, st.firstSend)
	if err != nil {
		return c, err
	}
	ec := countEvents(ac, evs)
	c.EventsPerSuccess = st.eventsPerSuccess
	c.Successes = ac.Statuses[chstore.StatusSuccess]
	c.EventsFired = ac.EventsFired
	c.EventRows, c.EventIDsUnique, c.EventIDsWrong, c.EventOrphans = ec.Rows, ec.Unique, ec.WrongID, ec.Orphans

	if s.peer != nil && st.peerFrom != nil {
		c.Peer = true
		c.Peer2xx = st.peer2xx
		c.PeerTopicRecords, err = s.settlePeer(ctx, st)
		if err != nil {
			return c, err
		}
	}
	c.check()
	return c, nil
}

// settlePeer waits for Telegraf to flush what it answered, then counts the records in its topic.
func (s *Suite) settlePeer(ctx context.Context, st *scenarioState) (int64, error) {
	deadline := time.Now().Add(peerSettle)
	var n int64
	for {
		to, err := endOffsets(ctx, s.adm, s.peerTopic())
		if err != nil {
			return 0, err
		}
		n = span{from: st.peerFrom, to: to}.records()
		if n >= st.peer2xx || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	return n, nil
}

// summarizeE2E turns the probe's samples into percentiles.
func summarizeE2E(m []e2eSample, p *e2eProbe) *E2E {
	if p == nil {
		return nil
	}
	e := percentilesE2E(m, func(e2eSample) bool { return true })
	e.Dropped = p.lost
	return e
}

// summarizePhaseE2E is summarizeE2E over the samples of one phase; nil when it has none.
func summarizePhaseE2E(m []e2eSample, phase string) *E2E {
	e := percentilesE2E(m, func(s e2eSample) bool { return s.phase == phase })
	if e.Samples == 0 {
		return nil
	}
	return e
}

func percentilesE2E(m []e2eSample, keep func(e2eSample) bool) *E2E {
	e := &E2E{}
	h := load.NewHistogram()
	for _, s := range m {
		if keep(s) {
			e.Samples++
			_ = h.RecordValue(max(1, s.d.Microseconds()))
		}
	}
	if e.Samples == 0 {
		return e
	}
	e.P50 = ms(h.ValueAtQuantile(50))
	e.P99 = ms(h.ValueAtQuantile(99))
	e.Max = ms(h.Max())
	return e
}

func ms(micros int64) float64 { return math.Round(float64(micros)/10) / 100 }
