package prometheus_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestAlertRules checks alerts.yml with promtool (syntax, PromQL, templates) and runs its unit tests,
// alerts_test.yml, which holds a case that fires and one that must not for every rule.
func TestAlertRules(t *testing.T) {
	if out, ok := runPromtool(t, "check", "rules", "alerts.yml"); !ok {
		t.Fatalf("promtool check rules alerts.yml:\n%s", out)
	}
	if out, ok := runPromtool(t, "test", "rules", "alerts_test.yml"); !ok {
		t.Fatalf("promtool test rules alerts_test.yml:\n%s", out)
	}
}

// ruleFile is the part of a Prometheus rule file these tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	return f
}

// TestAlertsHaveRunbooks: every alert has a severity, a summary and a runbook_url whose anchor is a
// heading of docs/operations.md, and is tested in alerts_test.yml.
func TestAlertsHaveRunbooks(t *testing.T) {
	ops, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	heading := regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`)
	for _, m := range heading.FindAllStringSubmatch(string(ops), -1) {
		anchors[githubAnchor(m[1])] = true
	}
	tests, err := os.ReadFile("alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "https://github.com/inlet-dev/inlet/blob/main/docs/operations.md#"
	n := 0
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if r.Labels["severity"] != "critical" && r.Labels["severity"] != "warning" {
				t.Errorf("%s: severity %q; want critical or warning", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary annotation", r.Alert)
			}
			url := r.Annotations["runbook_url"]
			if !strings.HasPrefix(url, prefix) || !anchors[strings.TrimPrefix(url, prefix)] {
				t.Errorf("%s: runbook_url %q; want %s<a heading of docs/operations.md>", r.Alert, url, prefix)
			}
			if strings.TrimPrefix(url, prefix) != strings.ToLower(r.Alert) {
				t.Errorf("%s: runbook anchor %q; want %q (its heading is the alert's name)", r.Alert, strings.TrimPrefix(url, prefix), strings.ToLower(r.Alert))
			}
			if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
				t.Errorf("%s: not tested in alerts_test.yml", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("alerts.yml has no alert")
	}
}

// githubAnchor is the fragment GitHub gives a heading: lower case, spaces to hyphens, punctuation other
// than hyphens and underscores dropped.
func githubAnchor(h string) string {
	h = strings.ToLower(strings.ReplaceAll(h, "`", ""))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}
