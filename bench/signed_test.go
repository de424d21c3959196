package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/bench/load"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// loadRequest is a generated request as the edge reads it (verify.Request).
type loadRequest struct {
	addr string
	r    *load.Request
}

func (l loadRequest) Method() []byte { return []byte("POST") }
func (l loadRequest) URI() []byte    { return []byte("http://" + l.addr + l.r.Path) }
func (l loadRequest) Body() []byte   { return l.r.Body }
func (l loadRequest) Header(name string) []byte {
	for _, h := range l.r.Headers {
		if strings.EqualFold(h.Name, name) {
			return []byte(h.Value)
		}
	}
	return nil
}
func (l loadRequest) Query(string) []byte { return nil }

// TestSignedSource: every generated request is accepted by the Verifier the edge builds for its
// webhook, except the wrong-secret ones, which are refused as a mismatch; each carries a delivery id
// of its own in the sender's delivery-id header; a scheme with a timestamp is signed as it is sent.
func TestSignedSource(t *testing.T) {
	const addr = "127.0.0.1:18480"
	body := Body{Size: 1024}.Bytes()
	for _, sender := range []string{"shopify", "stripe", "standard_webhooks", "hubspot", "github"} {
		t.Run(sender, func(t *testing.T) {
			snd, _ := webhook.LookupSender(sender)
			hooks := []Hook{{ID: "a", Sender: sender, Secret: newSigningSecret()}, {ID: "b", Sender: sender, Secret: newSigningSecret()}}
			src, err := signedSource(hooks, addr, body, 5)
			if err != nil {
				t.Fatal(err)
			}
			verifiers := map[string]*verify.Verifier{}
			for _, h := range hooks {
				v, err := verify.New(snd.Verification, [][]byte{[]byte(h.Secret)})
				if err != nil {
					t.Fatal(err)
				}
				verifiers["/hooks/"+h.ID] = v
			}
			idHeader := ""
			if kind, name := snd.Dedup.Source(); kind == "header" {
				idHeader = name
			}
			ids := map[string]bool{}
			wrong := 0
			for i := int64(0); i < 200; i++ {
				r := src(i)
				if !bytes.Equal(r.Body, body) || r.ContentType != "application/json" {
					t.Fatalf("request %d: body of %d bytes as %q", i, len(r.Body), r.ContentType)
				}
				res := verifiers[r.Path].Verify(loadRequest{addr, r}, time.Now())
				switch res {
				case verify.OK:
				case verify.SignatureMismatch:
					wrong++
				default:
					t.Fatalf("request %d to %s: %s (%v)", i, r.Path, res, r.Headers)
				}
				if idHeader != "" {
					id := string(loadRequest{addr, r}.Header(idHeader))
					if id == "" || ids[id] {
						t.Fatalf("request %d: delivery id %q in %s is missing or repeated", i, id, idHeader)
					}
					ids[id] = true
				}
			}
			if wrong != 10 {
				t.Errorf("%d of 200 refused; want the 5 %% signed with another secret", wrong)
			}
		})
	}
	if _, err := signedSource([]Hook{{ID: "a", Sender: "shopify", Secret: "s"}, {ID: "b", Sender: "github", Secret: "s"}}, addr, body, 0); err == nil {
		t.Error("webhooks of two senders in one source: no error")
	}
}

// TestSigningReport: a signing scenario's ratio to its Bearer baseline is computed round by round and
// reported with the target.
func TestSigningReport(t *testing.T) {
	sc := &ScenarioResult{Name: "signed-1k", Sender: "shopify"}
	for round, v := range [][2]float64{{900, 1000}, {950, 1000}, {800, 1000}} {
		for i, tg := range []string{TargetInlet, TargetBearer} {
			r := &Run{Target: tg, Phase: "max", Round: round + 1, AcceptedPerSec: v[i], Accepted: int64(v[i]), CPUSeconds: 1}
			r.finish()
			sc.Runs = append(sc.Runs, r)
		}
	}
	sc.summarizeMax()
	signed, bearer, ra, ok := sc.Signing()
	if !ok || signed != 900 || bearer != 1000 || ra.Median != 0.9 || ra.Min != 0.8 || ra.Max != 0.95 {
		t.Fatalf("Signing() = %v, %v, %+v, %v; want 900, 1000, 0.8/0.9/0.95", signed, bearer, ra, ok)
	}
	var md bytes.Buffer
	(&Report{}).scenarioMarkdown(&md, sc)
	for _, want := range []string{"connected as shopify", "shopify ÷ Bearer = **0.90** (min 0.80, max 0.95): target ≥ 0.90 met"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	refused := &ScenarioResult{Name: "signed-1k", Sender: "shopify", MaxMedian: map[string]float64{TargetBearer: 1000}}
	md.Reset()
	(&Report{}).scenarioMarkdown(&md, refused)
	if !strings.Contains(md.String(), "Signing cost: **not measured**") {
		t.Errorf("a signing scenario whose signed requests were all refused does not say so:\n%s", md.String())
	}
	if _, _, _, ok := (&ScenarioResult{Name: "seed"}).Signing(); ok {
		t.Error("a scenario without a Bearer baseline reports a signing cost")
	}
}
