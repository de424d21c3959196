package bench

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/inlet-dev/inlet/bench/load"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// signedHook is one webhook of a signedSource: its URL, and its requests' headers when the scheme
// signs a fixed body the same way every time.
type signedHook struct {
	url             string
	good, bad       *verify.Signer
	goodPath        string
	badPath         string
	goodHdr, badHdr []load.Header
}

// signedSource spreads requests round-robin over hooks, all connected as one sender, each request
// authenticated exactly as that sender does it (verify.Signer); wrongPct of every 100, evenly spaced,
// are signed with another secret. The signing happens in the generator, whose CPU is not the
// ingestor's: a scheme without a timestamp or id signs each webhook's fixed body once, the others
// sign every request as it is sent. Every request carries a delivery id of its own in the sender's
// delivery-id header (X-Shopify-Webhook-Id, …), as real deliveries do, so that dedup drops none.
func signedSource(hooks []Hook, addr string, body []byte, wrongPct int) (load.Source, error) {
	if len(hooks) == 0 {
		return nil, fmt.Errorf("signed source: no webhooks")
	}
	snd, ok := webhook.LookupSender(hooks[0].Sender)
	if !ok {
		return nil, fmt.Errorf("signed source: sender %q not in the catalog", hooks[0].Sender)
	}
	base := "http://" + addr
	hs := make([]signedHook, len(hooks))
	static := true
	for i, h := range hooks {
		if h.Sender != snd.Name {
			return nil, fmt.Errorf("signed source: webhook %s is %s, not %s", h.ID, h.Sender, snd.Name)
		}
		good, err := verify.NewSigner(snd.Verification, []byte(h.Secret))
		if err != nil {
			return nil, fmt.Errorf("signed source: webhook %s: %w", h.ID, err)
		}
		bad, err := verify.NewSigner(snd.Verification, []byte(newSigningSecret()))
		if err != nil {
			return nil, err
		}
		hs[i] = signedHook{url: base + "/hooks/" + h.ID, good: good, bad: bad}
		static = static && good.Static()
		if !static {
			continue
		}
		m := verify.Message{URL: hs[i].url, Body: body}
		g, err := good.Sign(m)
		if err != nil {
			return nil, err
		}
		b, err := bad.Sign(m)
		if err != nil {
			return nil, err
		}
		hs[i].goodPath, hs[i].goodHdr = strings.TrimPrefix(g.URL, base), loadHeaders(g.Header)
		hs[i].badPath, hs[i].badHdr = strings.TrimPrefix(b.URL, base), loadHeaders(b.Header)
	}
	idHeader := ""
	if kind, name := snd.Dedup.Source(); kind == "header" {
		idHeader = name
	}
	// Delivery ids unique across rounds and runs: a random prefix and a sequence.
	var seq atomic.Int64
	rnd := make([]byte, 6)
	_, _ = rand.Read(rnd)
	prefix := "bench-" + hex.EncodeToString(rnd) + "-"

	return func(i int64) *load.Request {
		h := &hs[i%int64(len(hs))]
		wrong := wrongPct > 0 && (i*int64(wrongPct))%100 < int64(wrongPct)
		id := prefix + strconv.FormatInt(seq.Add(1), 10)
		r := &load.Request{ContentType: "application/json", Body: body}
		var hdr []load.Header
		if static {
			r.Path, hdr = h.goodPath, h.goodHdr
			if wrong {
				r.Path, hdr = h.badPath, h.badHdr
			}
		} else {
			signer := h.good
			if wrong {
				signer = h.bad
			}
			signed, err := signer.Sign(verify.Message{URL: h.url, Body: body, Time: time.Now(), ID: id})
			if err != nil {
				panic(err) // only a missing id fails, and there is one
			}
			r.Path, hdr = strings.TrimPrefix(signed.URL, base), loadHeaders(signed.Header)
		}
		r.Headers = make([]load.Header, len(hdr), len(hdr)+1)
		copy(r.Headers, hdr)
		if idHeader != "" && !hasHeader(hdr, idHeader) {
			r.Headers = append(r.Headers, load.Header{Name: idHeader, Value: id})
		}
		return r
	}, nil
}

func loadHeaders(fs []verify.Field) []load.Header {
	out := make([]load.Header, len(fs))
	for i, f := range fs {
		out[i] = load.Header{Name: f.Name, Value: f.Value}
	}
	return out
}

func hasHeader(hs []load.Header, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}
