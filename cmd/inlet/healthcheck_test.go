package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok\n"))
		case "/slow":
			<-r.Context().Done()
		default:
			http.Error(w, "kafka: not reachable", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"2xx", []string{"healthcheck", srv.URL + "/healthz"}, exitOK, "200 OK"},
		{"503 names the cause", []string{"healthcheck", srv.URL + "/readyz"}, exitFail, "kafka: not reachable"},
		{"refused", []string{"healthcheck", closed.URL + "/healthz"}, exitFail, "connect"},
		{"timeout", []string{"healthcheck", "-timeout", "50ms", srv.URL + "/slow"}, exitFail, "Timeout"},
		{"no URL", []string{"healthcheck"}, exitConfig, "want one URL"},
		{"not a URL", []string{"healthcheck", "127.0.0.1:9101/healthz"}, exitConfig, "not an http(s) URL"},
		{"needs no settings", []string{"-config", "/nonexistent.yaml", "healthcheck", srv.URL + "/healthz"}, exitOK, "200 OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, nil, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit code = %d; want %d (stdout %q, stderr %q)", code, tc.code, stdout.String(), stderr.String())
			}
			if all := stdout.String() + stderr.String(); !strings.Contains(all, tc.out) {
				t.Fatalf("output %q does not mention %q", all, tc.out)
			}
		})
	}
}
