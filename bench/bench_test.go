package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/bench/load"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Every scenario file shipped parses, validates, and the suite's default run stays short.
func TestScenarioFiles(t *testing.T) {
	scs, err := LoadScenarios("scenarios")
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	names := map[string]bool{}
	for _, sc := range scs {
		names[sc.Name] = true
		if m := sc.Max; m != nil {
			total += time.Duration(m.Rounds*(1+len(sc.Compare))) * (m.Duration.D() + m.Warmup.D())
		}
		total += time.Duration(len(sc.Levels)*(1+len(sc.Compare))) * sc.LevelDuration.D()
		for _, p := range sc.Phases {
			total += p.Duration.D()
		}
		if !json.Valid(sc.Body.Bytes()) {
			t.Errorf("%s: body is not JSON", sc.Name)
		}
	}
	for _, want := range []string{"seed", "body-1k", "body-64k", "webhooks-10k", "wrong-secrets", "burst", "sustained", "signed-1k", "fan-out",
		"webhooks-1", "webhooks-1k", "webhooks-100k", "directory-10k", "directory-1m",
		"bodies-172b", "bodies-1k", "bodies-16k", "bodies-64k", "bodies-512k"} {
		if !names[want] {
			t.Errorf("scenario %q missing", want)
		}
	}
	if total > 5*time.Minute {
		t.Errorf("default load time %s; want the suite to finish in a few minutes", total)
	}
}

func TestBodySizes(t *testing.T) {
	for _, size := range []int{1024, 65536} {
		b := Body{Size: size}.Bytes()
		if len(b) != size || !json.Valid(b) {
			t.Errorf("size %d: got %d bytes, valid JSON %v", size, len(b), json.Valid(b))
		}
	}
	if got := string(Body{Sample: "seed"}.Bytes()); got != SeedSample {
		t.Errorf("seed body %s", got)
	}
}

func TestScenarioValidation(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown-key":   "name: x\nbody: {sample: seed}\nphases: [{load: 0.5, duration: 1s}]\nbogus: 1\n",
		"no-body":       "name: x\nphases: [{load: 0.5, duration: 1s}]\n",
		"two-bodies":    "name: x\nbody: {sample: seed, size: 1024}\nphases: [{load: 0.5, duration: 1s}]\n",
		"nothing":       "name: x\nbody: {sample: seed}\n",
		"levels":        "name: x\nbody: {sample: seed}\nlevels: [0.5]\nphases: [{load: 0.5, duration: 1s}]\n",
		"huge-load":     "name: x\nbody: {sample: seed}\nphases: [{load: 50, duration: 1s}]\n",
		"long":          "name: x\nbody: {sample: seed}\nphases: [{load: 0.5, duration: 2h}]\n",
		"compare":       "name: x\nbody: {sample: seed}\ncompare: [nginx]\nmax: {}\n",
		"sender":        "name: x\nbody: {sample: seed}\nsender: paypal\nmax: {}\n",
		"bearer":        "name: x\nbody: {sample: seed}\ncompare: [bearer]\nmax: {}\n",
		"fan-out body":  "name: x\nfan_out: 10\nbody: {sample: seed}\nmax: {}\n",
		"fan-out order": "name: x\nfan_out: 10\nbody: {sample: order}\nmax: {}\n",
		"order alone":   "name: x\nbody: {sample: order}\nmax: {}\n",
		"fan-out big":   "name: x\nfan_out: 1001\nmax: {}\n",
		"fan-out neg":   "name: x\nfan_out: -1\nmax: {}\n",
		"fan-out sign":  "name: x\nfan_out: 10\nsender: shopify\nmax: {}\n",
	} {
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadScenario(path); err == nil {
			t.Errorf("%s: accepted; want an error", name)
		}
	}
}

// fan_out: 10 makes the body an order of 10 line items of the seed's user, and wants 10 events per
// success; other scenarios keep one.
func TestFanOutScenario(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(path, []byte("name: f\nfan_out: 10\nphases: [{load: 0.1, duration: 1s}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := ReadScenario(path)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Body.Key() != "order-10" || sc.EventsPerSuccess() != 10 || sc.Sender != webhook.SenderInlet {
		t.Errorf("body %s, %d events per success, sender %s; want order-10, 10, inlet", sc.Body.Key(), sc.EventsPerSuccess(), sc.Sender)
	}
	var order struct {
		UserID    string `json:"user_id"`
		Order     string `json:"order_number"`
		LineItems []struct {
			SKU      string  `json:"sku"`
			Quantity int     `json:"quantity"`
			Price    float64 `json:"price"`
		} `json:"line_items"`
	}
	if err := json.Unmarshal(sc.Body.Bytes(), &order); err != nil {
		t.Fatalf("order body %s: %v", sc.Body.Bytes(), err)
	}
	if order.UserID != benchUserID || order.Order == "" || len(order.LineItems) != 10 {
		t.Fatalf("order user %q number %q with %d items; want %s, a number, 10", order.UserID, order.Order, len(order.LineItems), benchUserID)
	}
	for i, it := range order.LineItems {
		if it.SKU == "" || it.Quantity < 1 || it.Price <= 0 {
			t.Errorf("line item %d = %+v; want a sku, a quantity and a price", i, it)
		}
	}
	if seed := (&Scenario{Body: Body{Sample: SampleSeed}}); seed.EventsPerSuccess() != 1 {
		t.Errorf("seed scenario: %d events per success; want 1", seed.EventsPerSuccess())
	}
	// The route fans out over the body's array and reads the order's fields from the body.
	r := fanOutRoutes()
	if len(r) != 1 || r[0].ForEach != "line_items" || r[0].Identify.Field != "$.user_id" || r[0].EventName != benchItemEvent {
		t.Errorf("fan-out routes %+v", r)
	}
	if !sameRoutes(r, fanOutRoutes()) || sameRoutes(r, []webhook.Route{{Name: "items"}}) {
		t.Error("sameRoutes does not compare the routes")
	}
}

// countEvents checks every events row against its record's request id: ElementEventID for a
// fan-out's element, the request id for a single event; duplicates, strangers and orphans are counted.
func TestCountEvents(t *testing.T) {
	req := []uuid.UUID{uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())}
	ac := &activityCount{ByRecord: map[recordKey]uuid.UUID{{0, 10}: req[0], {3, 10}: req[1], {1, 4}: req[2]}}
	var rows []eventRow
	for _, rec := range []recordKey{{0, 10}, {3, 10}} {
		for i := range 10 {
			rows = append(rows, eventRow{Record: rec, Element: int32(i), ID: wire.ElementEventID(ac.ByRecord[rec], i)})
		}
	}
	rows = append(rows, eventRow{Record: recordKey{1, 4}, Element: -1, ID: req[2]})
	if got := countEvents(ac, rows); got != (eventCount{Rows: 21, Unique: 21}) {
		t.Errorf("clean rows: got %+v; want 21 rows, 21 unique, none wrong", got)
	}
	for name, c := range map[string]struct {
		row  eventRow
		want eventCount
	}{
		"duplicate":              {rows[3], eventCount{Rows: 22, Unique: 21}},
		"element's id as single": {eventRow{Record: recordKey{1, 4}, Element: -1, ID: wire.ElementEventID(req[2], 0)}, eventCount{Rows: 22, Unique: 22, WrongID: 1}},
		"request id as element":  {eventRow{Record: recordKey{0, 10}, Element: 10, ID: req[0]}, eventCount{Rows: 22, Unique: 22, WrongID: 1}},
		"another request's":      {eventRow{Record: recordKey{3, 10}, Element: 0, ID: wire.ElementEventID(req[0], 0)}, eventCount{Rows: 22, Unique: 21, WrongID: 1}},
		"orphan":                 {eventRow{Record: recordKey{2, 10}, Element: 0, ID: uuid.New()}, eventCount{Rows: 22, Unique: 22, Orphans: 1}},
	} {
		if got := countEvents(ac, append(slices.Clone(rows), c.row)); got != c.want {
			t.Errorf("%s: got %+v; want %+v", name, got, c.want)
		}
	}
}

// 5 % wrong secrets are exactly 5 of every 100 requests, spread (never five in a row), over every webhook.
func TestInletSource(t *testing.T) {
	hooks := []Hook{{ID: "a", Authorization: "Bearer A"}, {ID: "b", Authorization: "Bearer B"}, {ID: "c", Authorization: "Bearer C"}}
	src := inletSource(hooks, []byte(`{}`), 5)
	wrong, run, longest := 0, 0, 0
	perHook := map[string]int{}
	for i := int64(0); i < 1000; i++ {
		r := src(i)
		perHook[r.Path]++
		if r.Authorization == wrongAuthorization {
			wrong++
			run++
			longest = max(longest, run)
		} else {
			run = 0
			if want := "Bearer " + strings.ToUpper(strings.TrimPrefix(r.Path, "/hooks/")); r.Authorization != want {
				t.Fatalf("request %d: %s with %s", i, r.Path, r.Authorization)
			}
		}
	}
	if wrong != 50 || longest != 1 {
		t.Errorf("wrong %d of 1000 (longest run %d); want 50, 1", wrong, longest)
	}
	if len(perHook) != 3 || perHook["/hooks/a"] < 333 {
		t.Errorf("spread %v; want round-robin", perHook)
	}
	if len(wrongAuthorization) != len("Bearer whsec_")+43 {
		t.Errorf("wrong secret has %d bytes; want the length of a real one", len(wrongAuthorization))
	}
}

func TestCorrectnessCheck(t *testing.T) {
	ok := Correctness{Answered2xx: 10, TopicAccepted2xx: 10, Activity2xx: 10, TopicRecords: 12, ActivityRows: 12}
	ok.check()
	if !ok.OK {
		t.Errorf("clean counts fail: %v", ok.Problems)
	}
	for name, c := range map[string]Correctness{
		"lost":            {MissingInTopic: 1},
		"dup topic":       {DuplicateInTopic: 1},
		"no row":          {MissingInActivity: 1},
		"dup row":         {DuplicateInActivity: 1},
		"rows != records": {TopicRecords: 3, ActivityRows: 2},
		"extra":           {ExtraInTopic: 2, Unanswered: 1},
	} {
		c.check()
		if c.OK {
			t.Errorf("%s: passes; want a failure", name)
		}
	}
	extra := Correctness{ExtraInTopic: 2, Unanswered: 2}
	extra.check()
	if !extra.OK {
		t.Errorf("records of 503-answered requests fail: %v", extra.Problems)
	}

	// Events: EventsPerSuccess per successful request, each once, with its derived id.
	events := func(edit func(*Correctness)) Correctness {
		c := Correctness{EventsPerSuccess: 10, Successes: 7, EventsFired: 70, EventRows: 70, EventIDsUnique: 70}
		edit(&c)
		c.check()
		return c
	}
	if c := events(func(*Correctness) {}); !c.OK {
		t.Errorf("clean events fail: %v", c.Problems)
	}
	for name, edit := range map[string]func(*Correctness){
		"fired fewer":     func(c *Correctness) { c.EventsFired, c.EventRows, c.EventIDsUnique = 69, 69, 69 },
		"row lost":        func(c *Correctness) { c.EventRows, c.EventIDsUnique = 69, 69 },
		"row doubled":     func(c *Correctness) { c.EventRows = 71 },
		"id repeated":     func(c *Correctness) { c.EventIDsUnique = 69 },
		"id not derived":  func(c *Correctness) { c.EventIDsWrong = 1 },
		"orphan":          func(c *Correctness) { c.EventOrphans = 1 },
		"one per success": func(c *Correctness) { c.EventsPerSuccess = 1 },
	} {
		if c := events(edit); c.OK {
			t.Errorf("events %s: passes; want a failure", name)
		}
	}
	// Unchecked (EventsPerSuccess 0): the counts are not judged.
	unchecked := Correctness{EventRows: 5}
	unchecked.check()
	if !unchecked.OK {
		t.Errorf("unchecked events fail: %v", unchecked.Problems)
	}
}

func TestRatiosPerRound(t *testing.T) {
	sc := &ScenarioResult{}
	for round, v := range [][3]float64{{100, 200, 50}, {120, 200, 60}, {90, 300, 45}} {
		for i, tg := range []string{TargetInlet, TargetCeiling, TargetPeer} {
			r := &Run{Target: tg, Phase: "max", Round: round + 1, AcceptedPerSec: v[i], Accepted: int64(v[i] * 10), CPUSeconds: 1, BrokerCPUSeconds: 1}
			r.finish()
			sc.Runs = append(sc.Runs, r)
		}
	}
	sc.summarizeMax()
	if sc.MaxMedian[TargetInlet] != 100 || sc.MaxMedian[TargetCeiling] != 200 {
		t.Errorf("medians %v", sc.MaxMedian)
	}
	got := map[string]Ratio{}
	for _, r := range sc.Ratios {
		got[r.Name] = r
	}
	c := got["accepted req/s, inlet / ceiling"]
	if c.Min != 0.3 || c.Median != 0.5 || c.Max != 0.6 {
		t.Errorf("inlet/ceiling %+v; want 0.3/0.5/0.6", c)
	}
	if p := got["accepted req/s, inlet / peer"]; p.Median != 2 || len(p.Values) != 3 {
		t.Errorf("inlet/peer %+v; want median 2 over 3 rounds", p)
	}
}

// A report renders to Markdown, JSON and PNG charts from results alone (no services).
func TestReportWrite(t *testing.T) {
	dir, latest := t.TempDir(), filepath.Join(t.TempDir(), "latest")
	r := newReport(Options{Scale: 1}, dir)
	h := load.NewHistogram()
	_ = h.RecordValues(1500, 100)
	res := &load.Result{Mode: load.Closed, Elapsed: time.Second, Sent: 100, Statuses: map[int]int64{202: 99, 503: 1}, Latency: h}
	sc := &ScenarioResult{Name: "seed", Title: "t", Body: "seed"}
	for _, tg := range []string{TargetInlet, TargetCeiling} {
		run := newRun(tg, res)
		run.Phase, run.Round, run.CPUSeconds = "max", 1, 0.5
		run.finish()
		sc.Runs = append(sc.Runs, run)
		lv := newRun(tg, &load.Result{Mode: load.Open, Rate: 50, Elapsed: time.Second, Sent: 50, Statuses: map[int]int64{202: 50}, Latency: h})
		lv.Phase, lv.Level = "level", 0.5
		sc.Runs = append(sc.Runs, lv)
	}
	sc.summarizeMax()
	sc.E2E = &E2E{Samples: 10, P50: 500, P99: 900, Max: 950}
	sc.Correctness = &Correctness{Answered2xx: 99, TopicAccepted2xx: 99, Activity2xx: 99, TopicRecords: 99, ActivityRows: 99}
	sc.Correctness.check()
	r.Scenarios = append(r.Scenarios, sc)
	fan := &ScenarioResult{Name: "fan-out", Title: "t", Body: "order-10", FanOut: 10,
		Pipeline: &PipelineRate{Records: 100, PerSecond: 2000, Events: 1000, EventsPerSecond: 20000},
		Correctness: &Correctness{Answered2xx: 100, TopicAccepted2xx: 100, Activity2xx: 100, TopicRecords: 100, ActivityRows: 100,
			EventsPerSuccess: 10, Successes: 100, EventsFired: 1000, EventRows: 1000, EventIDsUnique: 1000}}
	fan.Correctness.check()
	r.Scenarios = append(r.Scenarios, fan)
	if err := r.write(latest); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(latest, reportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**PASS**", "accepted req/s, inlet / ceiling | 1.00 | 1.00 | 1.00", "503×1", "![throughput](throughput.png)", "p50 **500 ms**",
		"| fan-out | — | 2000 (20000 events/s) |", "**20000 events/s** into ClickHouse", "| 1000 / 1000 / 1000 |", "| 1000 / 0 / 0 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("REPORT.md lacks %q", want)
		}
	}
	for _, f := range []string{"throughput.png", "latency.png", "end-to-end.png", resultsFile} {
		if st, err := os.Stat(filepath.Join(latest, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// The scaling families: the sizes the issue asks for, and the rules a family scenario must keep.
func TestScenarioFamilies(t *testing.T) {
	scs, err := LoadScenarios("scenarios")
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string][]float64{}
	for _, sc := range scs {
		if sc.Family != "" {
			sizes[sc.Family] = append(sizes[sc.Family], sc.Size())
		}
	}
	want := map[string][]float64{
		FamilyWebhooks:  {1, 1000, 10_000, 100_000},
		FamilyDirectory: {10_000, 1_000_000},
		FamilyBodies:    {172, 1024, 16384, 65536, 524288},
	}
	for f, w := range want {
		if !slices.Equal(sizes[f], w) {
			t.Errorf("family %s: sizes %v, want %v", f, sizes[f], w)
		}
	}
	base := Scenario{Name: "x", Body: Body{Sample: SampleSeed}, Phases: []Phase{{Load: 0.5, Duration: Duration(time.Second)}}}
	for name, c := range map[string]struct {
		mod     func(*Scenario)
		wantErr string
	}{
		"unknown family":        {func(s *Scenario) { s.Family = "size" }, "family"},
		"users without family":  {func(s *Scenario) { s.Users = 10 }, "users"},
		"directory, no users":   {func(s *Scenario) { s.Family = FamilyDirectory }, "users"},
		"directory, 2 webhooks": {func(s *Scenario) { s.Family, s.Users, s.Webhooks = FamilyDirectory, 10, 2 }, "one webhook"},
		"family with compare":   {func(s *Scenario) { s.Family, s.Compare = FamilyBodies, []string{TargetCeiling} }, "compare"},
		"family, wrong secrets": {func(s *Scenario) { s.Family, s.WrongSecretPercent = FamilyWebhooks, 5 }, "wrong secrets"},
		"too many users":        {func(s *Scenario) { s.Family, s.Users = FamilyDirectory, maxUsers+1 }, "users"},
		"directory ok":          {func(s *Scenario) { s.Family, s.Users = FamilyDirectory, 1_000_000 }, ""},
	} {
		sc := base
		c.mod(&sc)
		sc.defaults()
		err := sc.Validate()
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want one about %q", name, err, c.wantErr)
		}
	}
}
