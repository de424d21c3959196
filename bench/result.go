package bench

import (
	"fmt"
	"slices"
	"time"

	"github.com/inlet-dev/inlet/bench/load"
)

// Report is one run of the suite; results.json is this, REPORT.md its rendering.
type Report struct {
	Started     time.Time         `json:"started"`
	Finished    time.Time         `json:"finished"`
	Host        Host              `json:"host"`
	Options     Options           `json:"options"`
	SUTSettings []string          `json:"sut_settings"`
	PeerNote    string            `json:"peer_note,omitempty"`
	Scenarios   []*ScenarioResult `json:"scenarios"`
	Seeding     []string          `json:"seeding,omitempty"` // what bulk seeding did and how long it took
	Curves      []Curve           `json:"curves,omitempty"`  // the scaling families (buildCurves)
	Error       string            `json:"error,omitempty"`
	dir         string
}

// OK is true when the run finished and every correctness check passed.
func (r *Report) OK() bool {
	if r.Error != "" {
		return false
	}
	for _, sc := range r.Scenarios {
		if sc.Correctness == nil || !sc.Correctness.OK {
			return false
		}
	}
	return true
}

// Host describes the machine the run was on.
type Host struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit"`
}

// ScenarioResult is one scenario's measures.
type ScenarioResult struct {
	Name               string  `json:"name"`
	Title              string  `json:"title"`
	Body               string  `json:"body"`
	BodyBytes          int     `json:"body_bytes"`
	Webhooks           int     `json:"webhooks"`
	WrongSecretPercent int     `json:"wrong_secret_percent"`
	Sender             string  `json:"sender,omitempty"` // inlet's webhooks' sender, when not Bearer
	Conns              int     `json:"conns"`
	FanOut             int     `json:"fan_out,omitempty"` // events per request of the fan-out webhooks (Scenario.FanOut)
	Family             string  `json:"family,omitempty"`  // Scenario.Family
	Users              int     `json:"users,omitempty"`   // Scenario.Users
	Size               float64 `json:"size,omitempty"`    // Scenario.Size: the point's place on its family's curve
	// PhasesPipelineCPUPer1k is the pipeline's CPU-seconds per 1,000 records from the start of the
	// phases until it wrote the last of their records to ClickHouse.
	PhasesPipelineCPUPer1k float64  `json:"phases_pipeline_cpu_s_per_1k,omitempty"`
	Profiles               []string `json:"profiles,omitempty"` // files under profiles/
	// PhaseBase is the rate (requests/s) the phases' loads are fractions of, and PhaseBasis what it
	// is: BasisIngestor or BasisPipeline.
	// PhaseIngestorMax is the ingestor's maximum for the body, whichever basis.
	PhaseBase        float64            `json:"phase_base_per_s,omitempty"`
	PhaseBasis       string             `json:"phase_basis,omitempty"`
	PhaseIngestorMax float64            `json:"phase_ingestor_max_per_s,omitempty"`
	Runs             []*Run             `json:"runs"`
	MaxMedian        map[string]float64 `json:"max_median"` // target → median accepted/s of the max rounds
	Ratios           []Ratio            `json:"ratios"`
	Pipeline         *PipelineRate      `json:"pipeline,omitempty"`
	E2E              *E2E               `json:"end_to_end,omitempty"`
	Correctness      *Correctness       `json:"correctness"`
	Notes            []string           `json:"notes,omitempty"`
}

// What a scenario's phases are loaded against (ScenarioResult.PhaseBasis).
const (
	// BasisIngestor: inlet's maximum for the body (closed loop, pipeline stopped).
	BasisIngestor = "ingestor maximum"
	// BasisPipeline: the pipeline's drain rate for the body, lower than the ingestor's maximum.
	BasisPipeline = "pipeline drain rate"
)

// Run is one load against one target.
type Run struct {
	Target           string        `json:"target"`
	Phase            string        `json:"phase"` // max, level, phase N, probe
	Round            int           `json:"round,omitempty"`
	Level            float64       `json:"level,omitempty"` // fraction of the maximum (open loop)
	Mode             load.Mode     `json:"mode"`
	Rate             float64       `json:"rate,omitempty"` // requested, open loop
	Seconds          float64       `json:"seconds"`
	Sent             int64         `json:"sent"`
	Accepted         int64         `json:"accepted"`
	Unsent           int64         `json:"unsent,omitempty"`
	Errors           int64         `json:"errors,omitempty"`
	Statuses         map[int]int64 `json:"statuses"`
	AcceptedPerSec   float64       `json:"accepted_per_s"`
	P50              float64       `json:"p50_ms"`
	P99              float64       `json:"p99_ms"`
	P999             float64       `json:"p999_ms"`
	Max              float64       `json:"max_ms"`
	CPUSeconds       float64       `json:"cpu_s"`
	BrokerCPUSeconds float64       `json:"broker_cpu_s"`
	CPUPer1k         float64       `json:"cpu_s_per_1k"`        // target's CPU-seconds per 1,000 accepted
	BrokerCPUPer1k   float64       `json:"broker_cpu_s_per_1k"` // Kafka broker's, same run
	AcceptedPerCPU   float64       `json:"accepted_per_cpu_s"`
	RSSMiB           float64       `json:"rss_mib"`
	// PipelineCPUSeconds and PipelineRSSMiB are the pipeline's over an inlet run with the pipeline
	// running (phases): its CPU from the run's start until it has written the run's last record (the
	// next phase waits for that), its peak RSS; PipelineCPUPer1k per 1,000 of the run's records.
	PipelineCPUSeconds float64 `json:"pipeline_cpu_s,omitempty"`
	PipelineCPUPer1k   float64 `json:"pipeline_cpu_s_per_1k,omitempty"`
	PipelineRSSMiB     float64 `json:"pipeline_rss_mib,omitempty"`
	// E2EP50 and E2EP99 are the 202 → ClickHouse percentiles of the requests sampled in this run (open
	// loops with the pipeline running: the phases), E2ESamples how many.
	E2ESamples int64   `json:"e2e_samples,omitempty"`
	E2EP50     float64 `json:"e2e_p50_ms,omitempty"`
	E2EP99     float64 `json:"e2e_p99_ms,omitempty"`
}

func newRun(target string, res *load.Result) *Run {
	h := res.Latency
	return &Run{Target: target, Mode: res.Mode, Rate: res.Rate, Seconds: res.Elapsed.Seconds(), Sent: res.Sent,
		Accepted: res.Accepted(), Unsent: res.Unsent, Errors: res.Errors, Statuses: res.Statuses,
		AcceptedPerSec: res.AcceptedPerSecond(),
		P50:            ms(h.ValueAtQuantile(50)), P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
}

func (r *Run) finish() {
	if r.Accepted > 0 {
		r.CPUPer1k = r.CPUSeconds / float64(r.Accepted) * 1000
		r.BrokerCPUPer1k = r.BrokerCPUSeconds / float64(r.Accepted) * 1000
		r.PipelineCPUPer1k = r.PipelineCPUSeconds / float64(r.Accepted) * 1000
	}
	if r.CPUSeconds > 0 {
		r.AcceptedPerCPU = float64(r.Accepted) / r.CPUSeconds
	}
}

// Ratio is inlet's figure over another target's, one value per round.
type Ratio struct {
	Name   string    `json:"name"`
	Values []float64 `json:"values"`
	Min    float64   `json:"min"`
	Median float64   `json:"median"`
	Max    float64   `json:"max"`
}

// PipelineRate is the pipeline draining the backlog of the closed-loop rounds.
type PipelineRate struct {
	Records   int64   `json:"records"`
	PerSecond float64 `json:"per_second"`
	// Events is the events the records fired (sum of activity_log.events_fired), EventsPerSecond the
	// same over the same span: the events rows written to ClickHouse per second (×10 the records with a
	// 10-element fan-out).
	Events          int64   `json:"events"`
	EventsPerSecond float64 `json:"events_per_second"`
	CPUPer1k        float64 `json:"cpu_s_per_1k"` // pipeline process CPU-seconds per 1,000 records while draining
	RSSMiB          float64 `json:"rss_mib"`      // after draining
	PeakRSSMiB      float64 `json:"peak_rss_mib"` // highest sampled while draining
}

// E2E is the time from the 202 to the row being visible in ClickHouse, for a sample of requests.
type E2E struct {
	Samples int64   `json:"samples"`
	Dropped int64   `json:"dropped,omitempty"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

// Correctness compares what the generator was told with what Kafka and ClickHouse hold.
type Correctness struct {
	Answered2xx         int64            `json:"answered_2xx"` // distinct request ids answered 2xx by inlet
	DuplicateAnswers    int64            `json:"duplicate_answers"`
	IDErrors            int64            `json:"id_errors"`           // 2xx answers without a readable request id
	TopicRecords        int64            `json:"topic_records"`       // every record the scenario appended
	TopicOutcomes       map[string]int64 `json:"topic_outcomes"`      // …by edge outcome
	TopicAccepted2xx    int64            `json:"topic_accepted_2xx"`  // 2xx request ids found in the topic
	MissingInTopic      int64            `json:"missing_in_topic"`    // 2xx, not in the topic: lost
	DuplicateInTopic    int64            `json:"duplicate_in_topic"`  // extra copies of 2xx records
	ExtraInTopic        int64            `json:"extra_in_topic"`      // accepted records never answered 2xx
	Unanswered          int64            `json:"unanswered"`          // 503s and transport errors: allowed extras
	ActivityRows        int64            `json:"activity_rows"`       // rows from the scenario's offsets
	ActivityStatuses    map[string]int64 `json:"activity_statuses"`   // …by status
	Activity2xx         int64            `json:"activity_2xx"`        // 2xx request ids with a row
	MissingInActivity   int64            `json:"missing_in_activity"` // 2xx without a row
	DuplicateInActivity int64            `json:"duplicate_in_activity"`
	E2EUnseen           int64            `json:"e2e_unseen"` // end-to-end samples never seen in ClickHouse
	// EventsPerSuccess is the events each successful request must have fired (Scenario.EventsPerSuccess);
	// 0: the events were not checked.
	EventsPerSuccess int   `json:"events_per_success,omitempty"`
	Successes        int64 `json:"successes"`    // activity rows with status success
	EventsFired      int64 `json:"events_fired"` // sum of the activity rows' events_fired
	EventRows        int64 `json:"event_rows"`   // events rows from the span's records
	EventIDsUnique   int64 `json:"event_ids_unique"`
	// EventIDsWrong counts events rows whose id is not the request id (a single event) or
	// wire.ElementEventID(request id, element) (a fan-out's element), every row checked.
	EventIDsWrong    int64    `json:"event_ids_wrong"`
	EventOrphans     int64    `json:"event_orphans"` // events rows whose record has no activity row
	Peer             bool     `json:"peer"`
	Peer2xx          int64    `json:"peer_2xx,omitempty"`
	PeerTopicRecords int64    `json:"peer_topic_records,omitempty"`
	OK               bool     `json:"ok"`
	Problems         []string `json:"problems,omitempty"`
}

// check decides OK: nothing answered 2xx is missing or doubled in Kafka or ClickHouse; the topic holds
// no accepted record beyond those answered 2xx, except for requests answered 503 or not at all (the
// ingestor may write a record whose ack came after its deadline: the sender retries, the id dedupes);
// ClickHouse has exactly one row per record of the span; and, when EventsPerSuccess is set, every event
// exactly once: events rows = sum(events_fired) = EventsPerSuccess × successful requests, each with a
// distinct id derived from its request's.
func (c *Correctness) check() {
	add := func(format string, a ...any) { c.Problems = append(c.Problems, fmt.Sprintf(format, a...)) }
	if c.IDErrors > 0 {
		add("%d 2xx answers without a request id", c.IDErrors)
	}
	if c.DuplicateAnswers > 0 {
		add("%d request ids answered twice", c.DuplicateAnswers)
	}
	if c.MissingInTopic > 0 {
		add("%d requests answered 2xx are not in the topic", c.MissingInTopic)
	}
	if c.DuplicateInTopic > 0 {
		add("%d duplicate records of 2xx requests in the topic", c.DuplicateInTopic)
	}
	if c.ExtraInTopic > c.Unanswered {
		add("%d accepted records in the topic were never answered 2xx (only %d were answered 503 or not at all)", c.ExtraInTopic, c.Unanswered)
	}
	if c.MissingInActivity > 0 {
		add("%d requests answered 2xx have no activity row", c.MissingInActivity)
	}
	if c.DuplicateInActivity > 0 {
		add("%d duplicate activity rows of 2xx requests", c.DuplicateInActivity)
	}
	if c.ActivityRows != c.TopicRecords {
		add("%d activity rows for %d topic records", c.ActivityRows, c.TopicRecords)
	}
	if c.EventsPerSuccess > 0 {
		if want := int64(c.EventsPerSuccess) * c.Successes; c.EventsFired != want {
			add("activity rows fired %d events; want %d × %d successful requests = %d", c.EventsFired, c.EventsPerSuccess, c.Successes, want)
		}
		if c.EventRows != c.EventsFired {
			add("%d events rows for %d events fired", c.EventRows, c.EventsFired)
		}
		if c.EventIDsUnique != c.EventRows {
			add("%d events rows with %d distinct event ids", c.EventRows, c.EventIDsUnique)
		}
		if c.EventIDsWrong > 0 {
			add("%d events rows with an id other than their request's (or its element's)", c.EventIDsWrong)
		}
		if c.EventOrphans > 0 {
			add("%d events rows without an activity row for their record", c.EventOrphans)
		}
	}
	c.OK = len(c.Problems) == 0
}

// summarizeMax computes each target's median maximum and inlet's ratios to the others, round by round.
func (sc *ScenarioResult) summarizeMax() {
	sc.MaxMedian = map[string]float64{}
	byTarget := map[string]map[int]*Run{}
	for _, r := range sc.Runs {
		if r.Phase != "max" {
			continue
		}
		if byTarget[r.Target] == nil {
			byTarget[r.Target] = map[int]*Run{}
		}
		byTarget[r.Target][r.Round] = r
	}
	for t, rounds := range byTarget {
		var v []float64
		for _, r := range rounds {
			v = append(v, r.AcceptedPerSec)
		}
		sc.MaxMedian[t] = median(v)
	}
	inlet := byTarget[TargetInlet]
	for _, other := range []string{TargetCeiling, TargetPeer, TargetBearer} {
		o := byTarget[other]
		if o == nil {
			continue
		}
		ratio := func(name string, f func(in, ot *Run) float64) {
			var v []float64
			for round, in := range inlet {
				if ot, ok := o[round]; ok {
					if x := f(in, ot); !isBad(x) {
						v = append(v, x)
					}
				}
			}
			if len(v) > 0 {
				sc.Ratios = append(sc.Ratios, newRatio(name, v))
			}
		}
		if other == TargetBearer {
			// The same ingestor: what verifying the sender's signature costs against a Bearer secret.
			ratio(fmt.Sprintf("accepted req/s, %s / bearer", sc.Sender), func(in, ot *Run) float64 { return in.AcceptedPerSec / ot.AcceptedPerSec })
			ratio(signingRatioName(sc.Sender), func(in, ot *Run) float64 { return in.AcceptedPerCPU / ot.AcceptedPerCPU })
			continue
		}
		ratio(fmt.Sprintf("accepted req/s, inlet / %s", other), func(in, ot *Run) float64 { return in.AcceptedPerSec / ot.AcceptedPerSec })
		ratio(fmt.Sprintf("accepted per CPU-second of the process, inlet / %s", other), func(in, ot *Run) float64 { return in.AcceptedPerCPU / ot.AcceptedPerCPU })
		if other == TargetPeer {
			ratio("accepted per CPU-second of process + Kafka broker, inlet / peer", func(in, ot *Run) float64 {
				a := float64(in.Accepted) / (in.CPUSeconds + in.BrokerCPUSeconds)
				b := float64(ot.Accepted) / (ot.CPUSeconds + ot.BrokerCPUSeconds)
				return a / b
			})
		}
	}
}

// SigningTarget is what a signing sender's accepted requests per CPU-second of the ingestor must be, at
// least, as a fraction of Bearer's (issue 11: HMAC ÷ Bearer ≥ 0.90).
const SigningTarget = 0.90

func signingRatioName(sender string) string {
	return fmt.Sprintf("accepted per CPU-second of the ingestor, %s / bearer (target ≥ %.2f)", sender, SigningTarget)
}

// Signing is a signing scenario's cost against Bearer on the same ingestor: accepted requests per
// CPU-second of each (medians over the max rounds) and their ratio per round; ok is false when the
// scenario compared no Bearer baseline.
func (sc *ScenarioResult) Signing() (signed, bearer float64, r Ratio, ok bool) {
	for _, ra := range sc.Ratios {
		if ra.Name == signingRatioName(sc.Sender) {
			r, ok = ra, true
		}
	}
	if !ok {
		return 0, 0, r, false
	}
	per := map[string][]float64{}
	for _, run := range sc.Runs {
		if run.Phase == "max" {
			per[run.Target] = append(per[run.Target], run.AcceptedPerCPU)
		}
	}
	return median(per[TargetInlet]), median(per[TargetBearer]), r, true
}

func isBad(x float64) bool { return x != x || x == 0 || x > 1e9 }

func newRatio(name string, v []float64) Ratio {
	s := slices.Clone(v)
	slices.Sort(s)
	return Ratio{Name: name, Values: v, Min: s[0], Median: median(s), Max: s[len(s)-1]}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Dir is the run's results directory.
func (r *Report) Dir() string { return r.dir }
