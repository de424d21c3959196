package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		code int
		out  string
	}{
		{"example file", []string{"-config", "../../deploy/inlet.example.yaml", "-check-config"}, nil, exitOK, "config ok"},
		{"defaults", []string{"-check-config"}, nil, exitOK, "config ok"},
		{"unknown key", []string{"-config", "../../config/testdata/unknown_key.yaml", "-check-config"}, nil, exitConfig, "partitons"},
		{"bad env", []string{"-check-config"}, []string{"INLET_INGESTOR_MAX_BODY_BYTES=12"}, exitConfig, "ingestor.max_body_bytes"},
		{"no command", nil, nil, exitConfig, "usage"},
		{"unknown command", []string{"frobnicate"}, nil, exitConfig, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, tc.env, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit code = %d; want %d (stderr %s)", code, tc.code, stderr.String())
			}
			if all := stdout.String() + stderr.String(); !strings.Contains(all, tc.out) {
				t.Fatalf("output %q does not mention %q", all, tc.out)
			}
		})
	}
}

func TestKeygen(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"keygen"}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("keygen exit %d: %s", code, stderr.String())
	}
	key := strings.TrimSpace(stdout.String())
	if code := run([]string{"-check-config"}, []string{"INLET_PROFILE=production", "INLET_SECRETS_MASTER_KEY=" + key}, &stdout, &stderr); code != exitOK {
		t.Fatalf("a keygen key is refused: %s", stderr.String())
	}
}

// TestHelpAndVersion: every way of asking for help prints usage on stdout and exits 0, without needing
// settings; a command that takes no arguments refuses them instead of ignoring them.
func TestHelpAndVersion(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // in stdout ("" = stdout empty)
		err  string // in stderr
	}{
		{[]string{"--help"}, exitOK, "commands:", ""},
		{[]string{"-h"}, exitOK, "  pipeline ", ""},
		{[]string{"help"}, exitOK, "  version ", ""},
		{[]string{"help", "migrate"}, exitOK, "  migrate ", ""},
		{[]string{"pipeline", "--help"}, exitOK, "  pipeline ", ""},
		{[]string{"project", "-h"}, exitOK, "project key-revoke PROJECT_ID KEY_ID", ""},
		{[]string{"version"}, exitOK, "inlet ", ""},
		{[]string{"help", "webhook"}, exitOK, "-admin-url", ""},
		{[]string{"webhook", "--help"}, exitOK, "webhook test -webhook ID", ""},
		{[]string{"webhook", "test", "-h"}, exitOK, "-secret", ""},
		{[]string{"webhook", "test", "-webhook", "x", "--help"}, exitOK, "-sender", ""},
		{[]string{"help", "nope"}, exitConfig, "", `unknown command "nope"`},
		{[]string{"admin", "extra"}, exitConfig, "", "inlet admin: takes no arguments"},
		{[]string{"ingestor", "x"}, exitConfig, "", "takes no arguments"},
		{[]string{"nope"}, exitConfig, "", `unknown command "nope"`},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		// An unreadable config file proves help and version never load settings.
		code := run(tt.args, []string{"INLET_CONFIG=/nonexistent/inlet.yaml"}, &stdout, &stderr)
		if tt.args[0] == "nope" {
			code = run(tt.args, nil, &stdout, &stderr)
		}
		if code != tt.code {
			t.Errorf("inlet %v: exit %d; want %d (stderr %q)", tt.args, code, tt.code, stderr.String())
		}
		if tt.out != "" && !strings.Contains(stdout.String(), tt.out) {
			t.Errorf("inlet %v: stdout %q; want it to contain %q", tt.args, stdout.String(), tt.out)
		}
		if tt.out == "" && stdout.Len() != 0 {
			t.Errorf("inlet %v: stdout %q; want nothing", tt.args, stdout.String())
		}
		if !strings.Contains(stderr.String(), tt.err) {
			t.Errorf("inlet %v: stderr %q; want it to contain %q", tt.args, stderr.String(), tt.err)
		}
	}
}
