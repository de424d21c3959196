package ingestor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// TestConfigPlaneSenders connects a webhook as each sender through the real webhook store
// (PostgreSQL: the provider's secret sealed, the verifiers built by the store) behind the ingestor as
// the process composes it, with the real Kafka: a request signed as the sender signs it is accepted,
// the same with its body changed by one byte is refused, Meta's subscription check is answered, and
// the records read back from the topic say so, with the kept headers and without any signature.
func TestConfigPlaneSenders(t *testing.T) {
	cfg := testConfig()
	cfg.PublicURL = testPublicURL
	cfg.RejectedLogBurst = 1000
	p := startPlane(t, cfg, webhook.DefaultCacheConfig())
	ctx := context.Background()
	type sent struct {
		mode    string
		id      string // the webhook's, the record's key
		r       req
		outcome wire.Outcome
		detail  string
		kept    string // a kept header the record must carry ("" none)
	}
	var all []sent
	for _, m := range modes() {
		in := webhook.WebhookInput{
			Name: "sender " + m.name, EventName: "CheckoutSuccess", Sender: m.sender,
			Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		}
		if m.cfg.Mode != "" && m.cfg.Mode != verify.ModeBearer {
			in.Secret = m.secret // the provider's, pasted; Inlet's own for basic and token may be given too
		}
		w, sec, err := p.store.Create(ctx, p.project, in)
		if err != nil {
			t.Fatalf("%s: create: %v", m.name, err)
		}
		if w, err = p.store.SetEnabled(ctx, p.project, w.ID, w.Version, true); err != nil {
			t.Fatalf("%s: enable: %v", m.name, err)
		}
		secret := m.secret
		if m.name == "bearer" {
			secret = sec // Inlet makes Bearer secrets
		}
		if m.name == "meta" {
			creds, err := p.store.Credentials(ctx, p.project, w.ID)
			if err != nil || creds.HandshakeToken == "" {
				t.Fatalf("meta credentials: %+v, %v", creds, err)
			}
			get := req{method: "GET", ctype: noContentType,
				path: "/hooks/" + w.ID + "?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=" + creds.HandshakeToken}
			if a := p.e.do(t, get); a.status != 200 || a.body != "1158201444" {
				t.Errorf("meta subscription check: %d %s; want 200 1158201444", a.status, a.body)
			}
		}
		now := time.Now()
		good := m.request(t, w.ID, secret, m.body, now, "")
		bad := good
		bad.body = changeOneByte(m.body)
		kept := ""
		if len(w.KeptHeaders) > 0 {
			for _, h := range good.headers {
				if strings.EqualFold(h[0], w.KeptHeaders[0]) {
					kept = w.KeptHeaders[0]
				}
			}
		}
		detail := "signature_mismatch"
		if m.cfg.Mode != verify.ModeHMAC {
			bad = m.request(t, w.ID, otherSecret(m, "wrong"), m.body, now, "")
			detail = "credentials_mismatch"
		}
		for _, s := range []sent{{m.name, w.ID, good, wire.OutcomeAccepted, "", kept}, {m.name + " changed", w.ID, bad, wire.OutcomeAuthRejected, detail, ""}} {
			want := 202
			if s.outcome != wire.OutcomeAccepted {
				want = 401
			}
			if a := p.e.do(t, s.r); a.status != want {
				t.Errorf("%s: %d %s; want %d", s.mode, a.status, a.body, want)
			}
			all = append(all, s)
		}
	}
	if err := p.e.stop(); err != nil {
		t.Fatal(err)
	}
	got := byKey(consumeAll(t, p.kcfg, p.kcfg.RequestsTopic))
	next := map[string]int{}
	for _, s := range all {
		recs := got[s.id]
		i := next[s.id]
		next[s.id]++
		if i >= len(recs) {
			t.Errorf("%s: no record in Kafka", s.mode)
			continue
		}
		rec := recs[i]
		var r wire.Request
		if bad := wire.DecodeRequest(rec, &r); bad != nil {
			t.Errorf("%s: record breaks the contract: %v", s.mode, bad)
			continue
		}
		if r.Outcome != s.outcome || string(r.Detail) != s.detail {
			t.Errorf("%s: record %s %q; want %s %q", s.mode, r.Outcome, r.Detail, s.outcome, s.detail)
		}
		if s.kept != "" {
			found := false
			for _, h := range r.Sender {
				found = found || h.Name() == s.kept
			}
			if !found {
				t.Errorf("%s: kept header %s not in the record (%v)", s.mode, s.kept, r.Sender)
			}
		}
		checkNoCredentials(t, rec, s.r)
	}
	for id, recs := range got {
		if len(recs) != next[id] {
			t.Errorf("webhook %s: %d records in Kafka; want %d", id, len(recs), next[id])
		}
	}
}
