package verify

import (
	"encoding/base64"
	"testing"
	"time"
)

type modeCase struct {
	name string
	v    *Verifier
	req  *fakeRequest
}

var benchNow = time.Unix(1_750_000_000, 0)

// perMode is one correctly signed request per mode and per preset.
func perMode(t testing.TB) []modeCase {
	const sec = "whsec_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	tok := newRequest(payload)
	tok.query = []kv{{"token", []byte(sec)}}
	rows := []modeCase{
		{"bearer", mustNew(t, Config{}, sec), newRequest(payload, "Authorization", "Bearer "+sec)},
		{"basic", mustNew(t, Config{Mode: ModeBasic, Username: "shop"}, sec),
			newRequest(payload, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("shop:"+sec)))},
		{"token", mustNew(t, Config{Mode: ModeToken}, sec), tok},
	}
	for _, name := range PresetNames() {
		s := signers[name]
		rows = append(rows, modeCase{"hmac_" + name, mustNew(t, preset(name), s.secret), s.sign(t, s.secret, benchNow)})
	}
	return rows
}

// TestVerifyAllocs holds Verify to no allocation in every mode, accepted or refused.
func TestVerifyAllocs(t *testing.T) {
	for _, c := range perMode(t) {
		if got := c.v.Verify(c.req, benchNow); got != OK {
			t.Fatalf("%s: got %s; want ok", c.name, got)
		}
		bad := c.req.withBodyChanged()
		for what, r := range map[string]*fakeRequest{"accepted": c.req, "refused": bad} {
			if n := testing.AllocsPerRun(200, func() { c.v.Verify(r, benchNow) }); n != 0 {
				t.Errorf("%s %s: %v allocs per Verify; want 0", c.name, what, n)
			}
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, c := range perMode(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.req.body)))
			for b.Loop() {
				if c.v.Verify(c.req, benchNow) != OK {
					b.Fatal("not ok")
				}
			}
		})
	}
}

// FuzzVerify: Verify never panics, whatever the headers and the body, in any mode.
func FuzzVerify(f *testing.F) {
	for _, c := range perMode(f) {
		for _, h := range c.req.headers {
			f.Add(h.k, string(h.v), string(c.req.body))
		}
	}
	f.Add("Stripe-Signature", "t=,v1=,,v1", "")
	f.Add("webhook-signature", "v1, v1,v1,=", "{}")
	f.Add("Authorization", "Basic ====", "")
	verifiers := perMode(f)
	f.Fuzz(func(t *testing.T, name, value, body string) {
		for _, c := range verifiers {
			r := *c.req
			r.body = []byte(body)
			r.headers = append([]kv{{name, []byte(value)}}, c.req.headers...) // the fuzzed header wins
			r.query = []kv{{"token", []byte(value)}}
			c.v.Verify(&r, benchNow)
			c.v.Verify(r.without(name), benchNow)
		}
	})
}
