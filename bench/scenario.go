// Package bench is Inlet's bench suite: it starts its own ingestor and pipeline (on their own topics and
// ClickHouse database, so nothing else running on the machine is disturbed or counted), a null fasthttp
// server (the ceiling) and Telegraf (the peer), loads them with package load as the scenario files in
// bench/scenarios say, checks that every accepted request reached Kafka and ClickHouse exactly once,
// and writes a Markdown report with PNG charts.
package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// Target names: what a load is sent to.
const (
	TargetInlet   = "inlet"   // the ingestor under test (with the pipeline behind it)
	TargetCeiling = "ceiling" // the null fasthttp handler
	TargetPeer    = "peer"    // Telegraf http_listener_v2 → kafka
	// TargetBearer is the same ingestor as inlet loaded with Bearer webhooks: the baseline of a
	// scenario whose webhooks are connected as another sender (Scenario.Sender).
	TargetBearer = "bearer"
)

// Scenario is one file of bench/scenarios. Durations are before the suite's -scale.
type Scenario struct {
	// Name identifies the scenario in the report and in -run. Required, unique.
	Name string `yaml:"name"`
	// Title is one line saying what the scenario shows.
	Title string `yaml:"title"`
	// Body is what every request carries. Leave it out with FanOut: the body is then the order.
	Body Body `yaml:"body"`
	// FanOut, when set, makes every request an order with this many line_items (Body sample
	// "order", OrderSample), sent to the bench's fan-out webhooks (bench-fanout-000000 and on): their
	// single route fires one ItemOrdered event per line item (ForEach "line_items"), identified by
	// the order's $.user_id, with sku, quantity and price from the item and order_id from
	// $.order_number. The correctness check then wants FanOut events per successful request, each
	// with the id wire.ElementEventID(request id, index). Only with the inlet sender. Default 0: the
	// seed's webhooks, one event per successful request. At most webhook.MaxFanOut.
	FanOut int `yaml:"fan_out"`
	// Webhooks the requests are spread over, round-robin. Default 1. More webhooks than the config
	// cache holds measure the cache misses. In family webhooks they are the bulk-seeded webhooks,
	// hooksPerProject to a project.
	Webhooks int `yaml:"webhooks"`
	// Family makes the scenario a point of a scaling curve (FamilyWebhooks, FamilyDirectory,
	// FamilyBodies): the report draws each family's cost against its size (webhooks, users, body
	// bytes) and divides every point by the family's smallest. Default none.
	Family string `yaml:"family"`
	// Users, with family directory, is the size of the directory project the requests go to: that many
	// users with a device each (seeded with COPY), the requests spread over them in order (user i mod
	// Users), each body the seed payload about its user.
	Users int `yaml:"users"`
	// WrongSecretPercent of the requests carry a wrong secret (answered 401). Default 0.
	WrongSecretPercent int `yaml:"wrong_secret_percent"`
	// Sender is the catalog sender (internal/webhook) inlet's webhooks are connected as, e.g. "shopify":
	// every request is signed as that sender signs it, by verify.Signer in the generator (a fixed body
	// is signed once). Default "inlet", the Bearer secret.
	Sender string `yaml:"sender"`
	// Compare lists the targets loaded beside inlet, interleaved round by round: ceiling, peer, and
	// bearer (with a Sender: the same ingestor, the same bodies to Bearer webhooks).
	Compare []string `yaml:"compare"`
	// Max, when set, finds each target's maximum with a closed loop, Rounds times, interleaved.
	Max *MaxSpec `yaml:"max"`
	// Levels are open-loop loads, as fractions of each target's maximum (median over the rounds), at
	// which latency is measured. They need Max.
	Levels []float64 `yaml:"levels"`
	// LevelDuration is how long each level runs. Default 4s.
	LevelDuration Duration `yaml:"level_duration"`
	// Phases are open-loop loads of inlet alone, one after the other, as fractions of inlet's maximum
	// for this body (from Max, an earlier scenario with the same body, or a short probe).
	Phases []Phase `yaml:"phases"`
	// Conns is the number of keep-alive connections of the closed loops (open loops get 4× as many).
	// Default 256: enough requests in flight for the ingestor to share produce requests among them,
	// as under many concurrent senders; fewer measures mostly the producer's linger.
	Conns int `yaml:"conns"`
}

// MaxSpec is the closed-loop search for the maximum.
type MaxSpec struct {
	// Duration of each measured run. Default 4s.
	Duration Duration `yaml:"duration"`
	// Warmup before each measured run, not measured. Default 1s.
	Warmup Duration `yaml:"warmup"`
	// Rounds of all targets, interleaved (inlet, ceiling, peer, inlet, …). Default 3.
	Rounds int `yaml:"rounds"`
}

// Phase is one open-loop stretch.
type Phase struct {
	// Name labels the phase in the report (e.g. "cold", "burst"). Default "phase N".
	Name string `yaml:"name"`
	// Load is the rate as a fraction of inlet's maximum; above 1 is an overload (a burst).
	Load float64 `yaml:"load"`
	// Duration of the phase.
	Duration Duration `yaml:"duration"`
}

// Body describes the request body: exactly one of Sample or Size.
type Body struct {
	// Sample "seed" is the seed's sample payload (the CheckoutSuccess example), compact. Sample
	// "order" is OrderSample, set by a scenario's FanOut (not written in a scenario file).
	Sample string `yaml:"sample"`
	// Size is a body of about this many bytes: the seed payload padded with a note field.
	Size int `yaml:"size"`
	// items is the order's line items (Scenario.FanOut).
	items int
}

// Body samples.
const (
	SampleSeed  = "seed"
	SampleOrder = "order"
)

// Key names the body in the report, e.g. "seed", "1024B" or "order-10".
func (b Body) Key() string {
	switch {
	case b.Sample == SampleOrder:
		return fmt.Sprintf("%s-%d", b.Sample, b.items)
	case b.Sample != "":
		return b.Sample
	}
	return fmt.Sprintf("%dB", b.Size)
}

// Duration is a time.Duration written as "4s" in YAML.
type Duration time.Duration

// UnmarshalYAML reads "4s", "1m30s".
func (d *Duration) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// D is the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Limits of a scenario, so that a typo cannot start an hour-long run or create a million webhooks.
const (
	maxWebhooks      = 100_000
	maxRounds        = 20
	maxPhaseDuration = 10 * time.Minute
	maxLoad          = 10.0
	maxBodySize      = 1 << 20 // the ingestor's default body limit
	defaultConns     = 256
	defaultDuration  = 4 * time.Second
	defaultWarmup    = time.Second
	defaultRounds    = 3
)

// SeedSample is the seed's sample payload, compact.
const SeedSample = seed.Sample

// Bytes builds the body.
func (b Body) Bytes() []byte {
	switch b.Sample {
	case SampleOrder:
		return OrderSample(b.items)
	case SampleSeed:
		return []byte(SeedSample)
	}
	// {seed fields…,"note":"…"}: valid JSON of exactly Size bytes when Size is large enough.
	head := SeedSample[:len(SeedSample)-1] + `,"note":"`
	pad := max(0, b.Size-len(head)-len(`"}`))
	var buf bytes.Buffer
	buf.Grow(len(head) + pad + 2)
	buf.WriteString(head)
	buf.Write(padding(pad))
	buf.WriteString(`"}`)
	return buf.Bytes()
}

// padWords are what padding is made of.
var padWords = strings.Fields(`order customer shipping address line item quantity price total discount tax
	currency status pending paid fulfilled refunded note gift wrap express standard delivery window
	warehouse Paris Berlin Lisbon Austin Osaka 2024-03-15 12.50 99.99 0042 7731 sku ABC-123 XL blue`)

// padding is n bytes of words and numbers drawn from padWords by a fixed generator: text that
// compresses about as a real payload does (lz4 ≈ 2–3×), not a run of one letter (≈ 250×), which
// would make every compressed byte Kafka hands the pipeline stand for hundreds decompressed.
func padding(n int) []byte {
	out := make([]byte, 0, n+16)
	x := uint32(2463534242)
	for len(out) < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out = append(out, padWords[x%uint32(len(padWords))]...)
		out = append(out, ' ')
		if x>>28 == 0 {
			out = strconv.AppendUint(out, uint64(x%100000), 10)
			out = append(out, ' ')
		}
	}
	return out[:n]
}

// OrderSample is an order of the seed's user (user_id, order_number and e-mail of SeedSample) with n
// line_items, each with a sku, a quantity and a price: what a fan-out scenario posts.
func OrderSample(n int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"user_id":"` + benchUserID + `","order_number":"ORD-001","email_address":"jane@example.com","line_items":[`)
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"sku":"SKU-%03d","quantity":%d,"price":%d.99}`, i, i%3+1, 5+i)
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// Size is the scenario's place on its family's curve: webhooks, users or body bytes.
func (s *Scenario) Size() float64 {
	switch s.Family {
	case FamilyWebhooks:
		return float64(s.Webhooks)
	case FamilyDirectory:
		return float64(s.Users)
	case FamilyBodies:
		return float64(len(s.Body.Bytes()))
	}
	return 0
}

// EventsPerSuccess is how many events a request that succeeded fired: FanOut, or the seed's one.
func (s *Scenario) EventsPerSuccess() int { return max(1, s.FanOut) }

func (s *Scenario) defaults() {
	if s.FanOut > 0 && s.Body == (Body{}) {
		s.Body = Body{Sample: SampleOrder, items: s.FanOut}
	}
	if s.Sender == "" {
		s.Sender = webhook.SenderInlet
	}
	if s.Webhooks == 0 {
		s.Webhooks = 1
	}
	if s.Conns == 0 {
		s.Conns = defaultConns
	}
	if s.LevelDuration == 0 {
		s.LevelDuration = Duration(defaultDuration)
	}
	if s.Max != nil {
		if s.Max.Duration == 0 {
			s.Max.Duration = Duration(defaultDuration)
		}
		if s.Max.Warmup == 0 {
			s.Max.Warmup = Duration(defaultWarmup)
		}
		if s.Max.Rounds == 0 {
			s.Max.Rounds = defaultRounds
		}
	}
}

// Validate reports the first invalid field.
func (s *Scenario) Validate() error {
	switch {
	case s.Name == "" || strings.ContainsAny(s.Name, " /\\"):
		return fmt.Errorf("name %q: required, without spaces or slashes", s.Name)
	case s.FanOut < 0 || s.FanOut > webhook.MaxFanOut:
		return fmt.Errorf("fan_out %d: outside 0..%d", s.FanOut, webhook.MaxFanOut)
	case s.FanOut > 0 && (s.Body.Sample != SampleOrder || s.Body.items != s.FanOut):
		return fmt.Errorf("body: leave it out with fan_out (the body is an order of %d line items)", s.FanOut)
	case s.FanOut > 0 && s.Sender != webhook.SenderInlet:
		return fmt.Errorf("sender %q: fan_out only with %s (the fan-out webhooks are Bearer)", s.Sender, webhook.SenderInlet)
	case (s.Body.Sample == "") == (s.Body.Size == 0):
		return errors.New("body: set exactly one of sample and size")
	case s.FanOut == 0 && s.Body.Sample != "" && s.Body.Sample != SampleSeed:
		return fmt.Errorf("body.sample %q: only \"seed\" is known (an order comes with fan_out)", s.Body.Sample)
	case s.Body.Size != 0 && (s.Body.Size < len(SeedSample)+16 || s.Body.Size > maxBodySize):
		return fmt.Errorf("body.size %d: outside %d..%d", s.Body.Size, len(SeedSample)+16, maxBodySize)
	case s.Webhooks < 1 || s.Webhooks > maxWebhooks:
		return fmt.Errorf("webhooks %d: outside 1..%d", s.Webhooks, maxWebhooks)
	case s.Family != "" && s.Family != FamilyWebhooks && s.Family != FamilyDirectory && s.Family != FamilyBodies:
		return fmt.Errorf("family %q: want %s, %s or %s", s.Family, FamilyWebhooks, FamilyDirectory, FamilyBodies)
	case s.Family != "" && (s.FanOut > 0 || s.Sender != webhook.SenderInlet || s.WrongSecretPercent > 0 || len(s.Compare) > 0):
		return fmt.Errorf("family %s: only Bearer webhooks, without fan_out, wrong secrets or compare", s.Family)
	case (s.Family == FamilyDirectory) != (s.Users > 0):
		return errors.New("users: set with family directory, and only there")
	case s.Users < 0 || s.Users > maxUsers:
		return fmt.Errorf("users %d: outside 1..%d", s.Users, maxUsers)
	case s.Family == FamilyDirectory && (s.Webhooks != 1 || s.Body.Sample != SampleSeed):
		return errors.New("family directory: one webhook and the seed body (about each user in turn)")
	case s.WrongSecretPercent < 0 || s.WrongSecretPercent > 100:
		return fmt.Errorf("wrong_secret_percent %d: outside 0..100", s.WrongSecretPercent)
	case s.Conns < 1 || s.Conns > 4096:
		return fmt.Errorf("conns %d: outside 1..4096", s.Conns)
	case len(s.Levels) > 0 && s.Max == nil:
		return errors.New("levels: need max (they are fractions of it)")
	case s.Max == nil && len(s.Phases) == 0:
		return errors.New("nothing to run: set max and/or phases")
	case s.LevelDuration.D() <= 0 || s.LevelDuration.D() > maxPhaseDuration:
		return fmt.Errorf("level_duration %s: outside (0, %s]", s.LevelDuration.D(), maxPhaseDuration)
	}
	if _, ok := webhook.LookupSender(s.Sender); !ok {
		return fmt.Errorf("sender %q: not in the catalog (internal/webhook senders)", s.Sender)
	}
	for _, c := range s.Compare {
		switch {
		case c == TargetBearer && s.Sender == webhook.SenderInlet:
			return fmt.Errorf("compare %q: only with a sender other than %s (inlet is Bearer already)", c, webhook.SenderInlet)
		case c != TargetCeiling && c != TargetPeer && c != TargetBearer:
			return fmt.Errorf("compare %q: want %s, %s or %s", c, TargetCeiling, TargetPeer, TargetBearer)
		}
	}
	if len(s.Compare) > 0 && s.Max == nil {
		return errors.New("compare: needs max")
	}
	if m := s.Max; m != nil {
		switch {
		case m.Rounds < 1 || m.Rounds > maxRounds:
			return fmt.Errorf("max.rounds %d: outside 1..%d", m.Rounds, maxRounds)
		case m.Duration.D() <= 0 || m.Duration.D() > maxPhaseDuration:
			return fmt.Errorf("max.duration %s: outside (0, %s]", m.Duration.D(), maxPhaseDuration)
		case m.Warmup.D() < 0 || m.Warmup.D() > maxPhaseDuration:
			return fmt.Errorf("max.warmup %s: outside [0, %s]", m.Warmup.D(), maxPhaseDuration)
		}
	}
	for i, l := range s.Levels {
		if l <= 0 || l > 1 {
			return fmt.Errorf("levels[%d] %g: outside (0, 1]", i, l)
		}
	}
	for i, p := range s.Phases {
		if p.Load <= 0 || p.Load > maxLoad {
			return fmt.Errorf("phases[%d].load %g: outside (0, %g]", i, p.Load, maxLoad)
		}
		if p.Duration.D() <= 0 || p.Duration.D() > maxPhaseDuration {
			return fmt.Errorf("phases[%d].duration %s: outside (0, %s]", i, p.Duration.D(), maxPhaseDuration)
		}
	}
	return nil
}

// LoadScenarios reads every *.yaml file of dir in name order; unknown keys are errors.
func LoadScenarios(dir string) ([]*Scenario, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("scenarios in %s: %w", dir, err)
	}
	slices.Sort(files)
	var out []*Scenario
	seen := map[string]string{}
	for _, f := range files {
		s, err := ReadScenario(f)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[s.Name]; ok {
			return nil, fmt.Errorf("scenario %s: name %q also used by %s", f, s.Name, prev)
		}
		seen[s.Name] = f
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no *.yaml scenario in %s", dir)
	}
	return out, nil
}

// ReadScenario reads and validates one scenario file.
func ReadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	var s Scenario
	if err := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField()).Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario %s: %s", path, yaml.FormatError(err, false, true))
	}
	s.defaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return &s, nil
}

// scaled multiplies a duration by the suite's -scale.
func scaled(d time.Duration, scale float64) time.Duration {
	return time.Duration(float64(d) * scale)
}
