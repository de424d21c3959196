package ingestor

import (
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// verifyRequest is what package verify reads of a request (verify.Request), over fasthttp's parsed
// request without copying: the headers, the query and the body are fasthttp's own bytes. Only the URI
// is built, into the adapter's own buffer and only when a scheme signs it (HubSpot v3, Twilio).
// Adapters are pooled (verifyRequests), so that a request's verification allocates nothing; none
// outlives its Verify call.
type verifyRequest struct {
	ctx   *fasthttp.RequestCtx
	base  []byte // Config.PublicURL without a trailing '/'; nil: "http://" + Host
	uri   []byte
	built bool
}

func (r *verifyRequest) Method() []byte            { return r.ctx.Method() }
func (r *verifyRequest) Body() []byte              { return r.ctx.PostBody() }
func (r *verifyRequest) Header(name string) []byte { return r.ctx.Request.Header.Peek(name) }
func (r *verifyRequest) Query(name string) []byte  { return r.ctx.QueryArgs().Peek(name) }

// URI is the full URL the sender called: the public URL (or "http://" + Host), then the path and the
// query exactly as the request line has them, escapes undecoded.
func (r *verifyRequest) URI() []byte {
	if r.built {
		return r.uri
	}
	u := r.uri[:0]
	if r.base != nil {
		u = append(u, r.base...)
	} else {
		u = append(u, "http://"...)
		u = append(u, r.ctx.Request.Header.Host()...)
	}
	uri := r.ctx.URI()
	u = append(u, uri.PathOriginal()...)
	if q := uri.QueryString(); len(q) > 0 {
		u = append(u, '?')
		u = append(u, q...)
	}
	r.uri, r.built = u, true
	return u
}

// verifyRequests pools the adapters of one Server.
type verifyRequests struct {
	pool sync.Pool
	base []byte
}

func newVerifyRequests(publicURL string) *verifyRequests {
	v := &verifyRequests{}
	if publicURL != "" {
		v.base = []byte(strings.TrimRight(publicURL, "/"))
	}
	return v
}

// verify runs the webhook's verification of the request at now.
func (v *verifyRequests) verify(ctx *fasthttp.RequestCtx, h *webhook.Hook, now time.Time) verify.Result {
	r, _ := v.pool.Get().(*verifyRequest)
	if r == nil {
		r = &verifyRequest{}
	}
	r.ctx, r.base, r.built = ctx, v.base, false
	res := h.Verify(r, now)
	r.ctx = nil
	if cap(r.uri) > 4<<10 {
		r.uri = nil // a request line near max_header_bytes: not worth keeping
	}
	v.pool.Put(r)
	return res
}

// signsBody reports whether the webhook's verification covers the body: then a body the edge did not
// read (over max_body_bytes) cannot be verified.
func signsBody(h *webhook.Hook, now time.Time) bool {
	v := h.Verifier(now)
	return v != nil && v.Mode() == verify.ModeHMAC
}

// authDetails are the details of auth_rejected records, one per verify.Result, made once so that a
// refusal writes its detail without allocating: the activity log says which way the request failed
// while the sender gets the one identical 401.
var authDetails = func() map[verify.Result][]byte {
	m := map[verify.Result][]byte{}
	for _, r := range []verify.Result{
		verify.SignatureHeaderMissing, verify.SignatureMalformed, verify.SignatureMismatch,
		verify.TimestampMissing, verify.TimestampOutsideTolerance,
		verify.CredentialsMissing, verify.CredentialsMismatch,
	} {
		m[r] = []byte(r)
	}
	return m
}()

// detailUnverified is the detail of a payload_too_large record whose signature could not be checked:
// it covers the body, which was not read.
var detailUnverified = []byte("signature_not_verified: it covers the body, which is over the limit and was not read")
