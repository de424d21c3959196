package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestReplayCommand: each subcommand calls its admin API endpoint with the key and the filter, and
// prints the job's progress; missing arguments and a missing key are usage errors (exit 2).
func TestReplayCommand(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	job := `{"id":"rj_1","state":"done","webhook_id":"wh","total":3,"produced":3,"succeeded":2,"failed_again":1}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" "+string(b))
		mu.Unlock()
		switch {
		case r.URL.Query().Get("dry_run") == "1":
			_, _ = io.WriteString(w, `{"dry_run":true,"count":42}`)
		case r.URL.Path == "/api/v1/replays" && r.Method == http.MethodGet:
			_, _ = io.WriteString(w, `{"replays":[`+job+`]}`)
		default:
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, job)
		}
	}))
	defer srv.Close()
	env := []string{envAPIKey + "=inl_k"}
	for _, tt := range []struct {
		args      []string
		call, out string
	}{
		{[]string{"start", "-webhook", "wh", "-since", "2026-12-01T00:00:00Z", "-until", "2026-12-02T00:00:00Z", "-dry-run"},
			`POST /api/v1/replays?dry_run=1 Bearer inl_k {"since":"2026-12-01T00:00:00Z","until":"2026-12-02T00:00:00Z","webhook_id":"wh"}`, "42 requests would be replayed"},
		{[]string{"start", "-webhook", "wh", "-since", "2026-12-01T00:00:00Z", "-until", "2026-12-02T00:00:00Z", "-reason", "user_not_found", "-wait"},
			`POST /api/v1/replays Bearer inl_k {"reason":"user_not_found","since":"2026-12-01T00:00:00Z","until":"2026-12-02T00:00:00Z","webhook_id":"wh"}`,
			"rj_1 done webhook wh: 3 of 3 produced, 2 succeeded, 1 failed again"},
		{[]string{"request", "-webhook", "wh", "-request", "0190a3e5-7c1d-7b6e-9f00-3c1d2a4b5c6d"},
			"POST /api/v1/webhooks/wh/activity/0190a3e5-7c1d-7b6e-9f00-3c1d2a4b5c6d/replay Bearer inl_k ", "rj_1 done"},
		{[]string{"status", "rj_1"}, "GET /api/v1/replays/rj_1 Bearer inl_k ", "rj_1 done"},
		{[]string{"cancel", "rj_1"}, "POST /api/v1/replays/rj_1/cancel Bearer inl_k ", "rj_1 done"},
		{[]string{"list"}, "GET /api/v1/replays Bearer inl_k ", "rj_1 done"},
	} {
		calls = nil
		var stdout, stderr bytes.Buffer
		args := append([]string{"replay", tt.args[0], "-admin-url", srv.URL}, tt.args[1:]...)
		if code := run(args, env, &stdout, &stderr); code != exitOK {
			t.Errorf("%v: exit %d: %s", tt.args, code, stderr.String())
			continue
		}
		if len(calls) == 0 || calls[0] != tt.call {
			t.Errorf("%v: called %q; want %q", tt.args, calls, tt.call)
		}
		if !strings.Contains(stdout.String(), tt.out) {
			t.Errorf("%v: printed %q; want %q in it", tt.args, stdout.String(), tt.out)
		}
	}
	for _, args := range [][]string{{"replay"}, {"replay", "start", "-webhook", "wh"}, {"replay", "status"}, {"replay", "nope"}} {
		var stdout, stderr bytes.Buffer
		if code := run(append(args, "-admin-url", srv.URL), env, &stdout, &stderr); code != exitConfig {
			t.Errorf("%v: exit %d; want %d (%s)", args, code, exitConfig, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"replay", "list", "-admin-url", srv.URL}, nil, &stdout, &stderr); code != exitConfig {
		t.Errorf("without a key: exit %d; want %d", code, exitConfig)
	}
}
