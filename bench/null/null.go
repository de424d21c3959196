// Package null is the bench suite's ceiling: the cheapest fasthttp server that still does what any
// webhook receiver must — read the whole request body — and answers 202 with a body shaped like the
// ingestor's. Whatever the ingestor does beyond it (auth, checks, Kafka) is the difference the suite
// measures.
package null

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// MaxBodyBytes is the largest body read, the ingestor's default limit.
const MaxBodyBytes = 1 << 20

// answer has the ingestor's shape and size.
const answer = `{"request_id":"01900000-0000-7000-8000-000000000000"}`

// Server answers every request 202 after reading its body. Requests counts the requests answered.
type Server struct {
	Requests atomic.Int64
	http     *fasthttp.Server
}

// New returns a null server.
func New() *Server {
	s := &Server{}
	s.http = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			_ = ctx.PostBody()
			s.Requests.Add(1)
			ctx.SetStatusCode(fasthttp.StatusAccepted)
			ctx.SetContentType("application/json")
			ctx.SetBodyString(answer)
		},
		Name:                         "null",
		MaxRequestBodySize:           MaxBodyBytes,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
	}
	return s
}

// Serve answers on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	done := make(chan error, 1)
	go func() { done <- s.http.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("null server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	if err := s.http.Shutdown(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("null server shutdown: %w", err)
	}
	return nil
}
