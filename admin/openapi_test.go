package admin

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/audit"
	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/erasure"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/replay"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/pipeline"
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
	} // Each operation's x-scope is the scope the router requires.
	for _, r := range s.routes {
		op, _ := spec.Paths[r.path][strings.ToLower(r.method)].(map[string]any)
		if got, _ := op["x-scope"].(string); got != r.scope {
			t.Errorf("%s %s: x-scope %q in the spec; the router requires %q", r.method, r.path, got, r.scope)
		}
	}
}

// spec is the part of openapi.yaml the schema tests read.
type spec struct {
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any `yaml:"properties"`
			Enum       []string       `yaml:"enum"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func readSpec(t *testing.T) (spec, string) {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var s spec
	if err := yaml.Unmarshal(b, &s); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return s, string(b)
}

// TestOpenAPISchemasMatchTypes: each schema the API answers or reads from a Go type lists exactly that
// type's JSON fields, so that a field added to the model (or dropped from it) cannot be missing from the
// spec (or linger in it).
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	s, _ := readSpec(t)
	cases := []struct {
		schema string
		typ    any
		extra  []string // fields written by a custom MarshalJSON
	}{
		{"Webhook", webhook.Webhook{}, nil},
		{"WebhookInput", webhook.WebhookInput{}, nil},
		{"WebhookPatch", webhook.WebhookPatch{}, nil},
		{"Credentials", credentials{}, nil},
		{"Sender", senderView{}, nil},
		{"Verification", verify.Config{}, nil},
		{"HMAC", verify.HMAC{}, []string{"tolerance"}},
		{"Dedup", webhook.Dedup{}, nil},
		{"Sensitive", webhook.Sensitive{}, nil},
		{"Identify", webhook.Identify{}, nil},
		{"Mapping", webhook.Mapping{}, nil},
		{"Route", webhook.Route{}, nil},
		{"ConditionResult", pipeline.ConditionResult{}, nil},
		{"ElementEvaluation", pipeline.ElementEvaluation{}, nil},
		{"Summary", chstore.Summary{}, nil},
		{"Entry", chstore.Entry{}, nil},
		{"Replay", replay.Job{}, nil},
		{"Event", webhook.Event{}, nil},
		{"TestRequest", testRequest{}, nil},
		{"Evaluation", pipeline.Evaluation{}, nil},
		{"Identification", pipeline.Identification{}, nil},
		{"AttributeResult", pipeline.AttributeResult{}, nil},
		{"Outcome", Outcome{}, nil},
		{"Counts", Counts{}, nil},
		{"Backtest", Backtest{}, nil},
		{"Project", project.Project{}, nil},
		{"Retention", project.Retention{}, nil},
		{"AlertRuleInput", ruleInput{}, nil},
		{"AlertRule", alert.Rule{}, nil},
		{"Alert", alert.Alert{}, nil},
		{"NotificationDelivery", alert.Delivery{}, nil},
		{"NotificationAttempt", alert.Attempt{}, nil},
		{"NotificationPayload", alert.Payload{}, nil},
		{"SigningSecret", signingSecret{}, nil},
		{"APIKey", keyView{}, nil},
		{"AuditEntry", audit.Entry{}, nil},
		{"Erasure", erasure.Job{}, nil},
	}
	for _, c := range cases {
		sc, ok := s.Components.Schemas[c.schema]
		if !ok {
			t.Errorf("openapi.yaml has no schema %s", c.schema)
			continue
		}
		var inSpec []string
		for p := range sc.Properties {
			inSpec = append(inSpec, p)
		}
		inType := append(jsonFields(reflect.TypeOf(c.typ)), c.extra...)
		sort.Strings(inSpec)
		sort.Strings(inType)
		if !slices.Equal(inSpec, inType) {
			t.Errorf("schema %s has properties %v; the Go type %T has %v", c.schema, inSpec, c.typ, inType)
		}
	}
}

// jsonFields are the names encoding/json gives the fields of struct type typ, embedded structs
// flattened.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported() && !f.Anonymous:
		case f.Anonymous && name == "":
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			out = append(out, jsonFields(ft)...)
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	return out
}

// TestOpenAPIEnumsAndRefs: the enums of presets, modes and handshakes are the code's, and every $ref
// names a component that exists.
func TestOpenAPIEnumsAndRefs(t *testing.T) {
	s, raw := readSpec(t)
	enum := func(schema, prop string) []string {
		p, _ := s.Components.Schemas[schema].Properties[prop].(map[string]any)
		var out []string
		for _, v := range p["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := s.Components.Schemas["Scope"].Enum; !slices.Equal(got, project.AllScopes) {
		t.Errorf("Scope enum = %v; want the scopes %v", got, project.AllScopes)
	}
	if got, want := enum("AuditEntry", "target"), audit.Targets; !slices.Equal(got, want) {
		t.Errorf("AuditEntry.target enum = %v; want %v", got, want)
	}
	if got, want := enum("Erasure", "status"), []string{erasure.StatusPending, erasure.StatusRunning, erasure.StatusDone, erasure.StatusFailed}; !slices.Equal(got, want) {
		t.Errorf("Erasure.status enum = %v; want %v", got, want)
	}
	if got, want := enum("HMAC", "preset"), verify.PresetNames(); !slices.Equal(got, want) {
		t.Errorf("HMAC.preset enum = %v; want the presets %v", got, want)
	}
	modes := []string{string(verify.ModeBearer), string(verify.ModeBasic), string(verify.ModeToken), string(verify.ModeHMAC)}
	if got := enum("Verification", "mode"); !slices.Equal(got, modes) {
		t.Errorf("Verification.mode enum = %v; want %v", got, modes)
	}
	var handshakes []string
	for _, snd := range webhook.Senders() {
		if snd.Handshake != webhook.HandshakeNone && !slices.Contains(handshakes, string(snd.Handshake)) {
			handshakes = append(handshakes, string(snd.Handshake))
		}
	}
	for _, h := range handshakes {
		if !slices.Contains(s.Components.Schemas["Handshake"].Enum, h) {
			t.Errorf("Handshake enum %v lacks %s, which a sender makes", s.Components.Schemas["Handshake"].Enum, h)
		}
	}
	var doc struct {
		Components map[string]map[string]any `yaml:"components"`
	}
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$ref: "#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(raw, -1) {
		if _, ok := doc.Components[m[1]][m[2]]; !ok {
			t.Errorf("$ref %s/%s names no component", m[1], m[2])
		}
	}
}
