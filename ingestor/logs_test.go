package ingestor

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink safe for the edge's concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoSecretsInLogs drives the paths that log — lookup failures, produce failures, ack timeouts —
// with secrets in the Authorization header, at debug level, and checks that no secret or Authorization
// value reaches the log.
func TestNoSecretsInLogs(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := tableConfig()
	cfg.AckTimeout = 100 * time.Millisecond
	hooks := tableHooks()
	prod := &fakeProducer{}
	e := startEdgeLogging(t, cfg, hooks, prod, "requests", log)
	body := []byte(`{"user_id":"12345"}`)
	for _, r := range []req{
		{path: "/hooks/" + idOk, auth: "Bearer whsec_wrong-secret-value", body: body},
		{path: "/hooks/" + idOk, auth: secretOf(idOk), body: []byte(`{"broken`)},
		{path: "/hooks/" + idBroken, auth: secretOf(idBroken), body: body},
		{path: "/hooks/" + idUnavailable, auth: secretOf(idUnavailable), body: body},
	} {
		e.do(t, r)
	}
	prod.mu.Lock()
	prod.err = errors.New("broker refused")
	prod.mu.Unlock()
	e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: body})
	prod.mu.Lock()
	prod.err, prod.hold = nil, true
	prod.mu.Unlock()
	e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: body}) // ack timeout
	prod.release()
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}

	got := logs.String()
	for _, must := range []string{"webhook lookup failed", "request not acknowledged by kafka"} {
		if !strings.Contains(got, must) {
			t.Fatalf("the test did not reach the %q log line, so it proves nothing; logs:\n%s", must, got)
		}
	}
	for _, secret := range []string{"whsec_", "Bearer", strings.TrimPrefix(secretOf(idOk), "Bearer ")} {
		if strings.Contains(got, secret) {
			t.Errorf("logs contain %q:\n%s", secret, got)
		}
	}
}
