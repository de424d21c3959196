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
