package admin

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/testenv"
)

// TestOpenAPIMatchesRouter: the checked-in spec and the router list the same operations.
func TestOpenAPIMatchesRouter(t *testing.T) {
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.1") {
		t.Errorf("openapi = %q; want 3.1.x", spec.OpenAPI)
	}
	var inSpec []string
	for path, ops := range spec.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			inSpec = append(inSpec, strings.ToUpper(method)+" "+path)
		}
	}
	s := New(Defaults(), Deps{Logger: testenv.Logger(), Registry: prometheus.NewRegistry()})
	var inRouter []string
	for _, r := range s.routes {
		inRouter = append(inRouter, r.method+" "+r.path)
	}
	sort.Strings(inSpec)
	sort.Strings(inRouter)
	if strings.Join(inSpec, "\n") != strings.Join(inRouter, "\n") {
		t.Fatalf("spec operations:\n%s\n\nrouter operations:\n%s", strings.Join(inSpec, "\n"), strings.Join(inRouter, "\n"))
	}
}
