package compose

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/goccy/go-yaml"

	"github.com/inlet-dev/inlet/config"
)

// inletProcesses are the long-running Inlet services and the setting that holds each one's internal
// listener (/metrics, /healthz, /readyz).
var inletProcesses = map[string]func(*config.Config) string{
	"ingestor": func(c *config.Config) string { return c.Ingestor.InternalAddr },
	"pipeline": func(c *config.Config) string { return c.Pipeline.InternalAddr },
	"admin":    func(c *config.Config) string { return c.Admin.InternalAddr },
}

// stateful services keep their data in a named volume.
var stateful = []string{"kafka", "clickhouse", "postgres", "prometheus", "grafana"}

// load reads compose.yaml as `docker compose` would, with environ as the shell's environment, and fails on
// anything the specification's schema refuses (unknown keys included) or a dangling reference.
func load(t *testing.T, environ map[string]string) *types.Project {
	t.Helper()
	wd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  wd,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(wd, "compose.yaml")}},
		Environment: environ,
	}, func(o *loader.Options) {
		o.SetProjectName("inlet", true)
		o.ResolvePaths = true
	})
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

func TestCompose(t *testing.T) {
	production := map[string]string{
		"INLET_PROFILE":            "production",
		"INLET_SECRETS_MASTER_KEY": config.NewMasterKey(),
		"INLET_PUBLIC_URL":         "https://hooks.example.com",
		"INLET_IMAGE":              "registry.example.com/inlet:v1.2.3",
		"POSTGRES_PASSWORD":        "pg-secret",
		"CLICKHOUSE_PASSWORD":      "ch-secret",
	}
	for name, environ := range map[string]map[string]string{"defaults": {}, "production": production} {
		t.Run(name, func(t *testing.T) {
			p := load(t, environ)
			checkServices(t, p)
			checkInletSettings(t, p, environ)
		})
	}
}

func checkServices(t *testing.T, p *types.Project) {
	t.Helper()
	want := []string{"admin", "clickhouse", "grafana", "ingestor", "kafka", "migrate", "pipeline", "postgres", "prometheus"}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Fatalf("services = %v; want %v", sorted(got), want)
	}
	inletImage := p.Services["migrate"].Image
	for name, s := range p.Services {
		if s.Image == "" || s.Build != nil {
			t.Errorf("%s: image %q, build %v; want an image and no build (the image is built by make image)", name, s.Image, s.Build)
		}
		if _, ok := inletProcesses[name]; ok && s.Image != inletImage {
			t.Errorf("%s: image %q; want the one Inlet image %q", name, s.Image, inletImage)
		}
		// Health: every long-running service has a check; the one-shot migrate has none.
		switch hc := s.HealthCheck; {
		case name == "migrate":
			if hc != nil && !hc.Disable {
				t.Errorf("migrate: has a health check; a one-shot task is waited for by its exit")
			}
			if s.Restart != "no" {
				t.Errorf("migrate: restart %q; want no (a one-shot task)", s.Restart)
			}
		case hc == nil || hc.Disable || len(hc.Test) < 2:
			t.Errorf("%s: no health check", name)
		case hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL":
			t.Errorf("%s: health check %q; want CMD or CMD-SHELL", name, hc.Test)
		}
		// Start order: a dependency waited on for health has a health check.
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
				continue
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable {
					t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if target.Restart != "no" {
					t.Errorf("%s waits for %s to complete, which restarts (%q)", name, dep, target.Restart)
				}
			default:
				t.Errorf("%s depends on %s with condition %q; want service_healthy or service_completed_successfully", name, dep, d.Condition)
			}
		}
		// Volumes: named ones are declared; bind mounts are files of this repository.
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %q is not declared", name, v.Source)
				}
			case types.VolumeTypeBind:
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s is writable; want read_only", name, v.Source)
				}
				// The dashboards directory is filled by the dashboards' own change; Compose creates an
				// empty one if it is missing.
				if strings.HasSuffix(v.Source, filepath.Join("deploy", "grafana", "dashboards")) {
					continue
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount source: %v", name, err)
				}
			default:
				t.Errorf("%s: volume of type %q", name, v.Type)
			}
		}
	}
	for _, name := range stateful {
		if !slices.ContainsFunc(p.Services[name].Volumes, func(v types.ServiceVolumeConfig) bool { return v.Type == types.VolumeTypeVolume }) {
			t.Errorf("%s: keeps its data in no named volume", name)
		}
	}
	for _, dep := range []string{"kafka", "clickhouse", "postgres"} {
		if c := p.Services["migrate"].DependsOn[dep].Condition; c != types.ServiceConditionHealthy {
			t.Errorf("migrate: waits for %s with %q; want service_healthy", dep, c)
		}
	}
	for name := range inletProcesses {
		if c := p.Services[name].DependsOn["migrate"].Condition; c != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s: waits for migrate with %q; want service_completed_successfully", name, c)
		}
	}
	if s := p.Services["grafana"]; !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Target == grafanaDashboards(t) && strings.HasSuffix(v.Source, filepath.Join("deploy", "grafana", "dashboards"))
	}) {
		t.Errorf("grafana: deploy/grafana/dashboards is not mounted at %s, where its provisioning reads", grafanaDashboards(t))
	}
}

// checkInletSettings: every INLET_* variable an Inlet service sets is a setting, the settings they make
// (over the image's own ENV) are valid, they name the services of the file, each process's health check
// asks its own internal listener, and Prometheus scrapes each one there.
func checkInletSettings(t *testing.T, p *types.Project, environ map[string]string) {
	t.Helper()
	known := append(config.EnvNames(), "INLET_CONFIG")
	imageEnv := dockerfileEnv(t)
	targets := scrapeTargets(t)
	for _, name := range []string{"migrate", "ingestor", "pipeline", "admin"} {
		s := p.Services[name]
		env := slices.Clone(imageEnv)
		for k, v := range s.Environment {
			if !strings.HasPrefix(k, "INLET_") {
				t.Errorf("%s: sets %s; want only INLET_* settings", name, k)
			}
			if !slices.Contains(known, k) {
				t.Errorf("%s: %s is not a setting Inlet reads (see config.EnvNames)", name, k)
			}
			if v == nil {
				t.Errorf("%s: %s has no value", name, k)
				continue
			}
			env = append(env, k+"="+*v)
		}
		cfg, err := config.Load("", env)
		if err != nil {
			t.Errorf("%s: the settings it is given are refused: %v", name, err)
			continue
		}
		if environ["INLET_PROFILE"] == "production" && cfg.Profile != config.ProfileProduction {
			t.Errorf("%s: profile %q; want production from INLET_PROFILE", name, cfg.Profile)
		}
		hosts := append(slices.Clone(cfg.Kafka.Brokers), cfg.ClickHouse.Addrs...)
		dsn, err := url.Parse(cfg.Postgres.DSN)
		if err != nil {
			t.Fatalf("%s: postgres.dsn: %v", name, err)
		}
		hosts = append(hosts, dsn.Host)
		for _, h := range hosts {
			host, _, err := net.SplitHostPort(h)
			if err != nil || p.Services[host].Name == "" {
				t.Errorf("%s: %s is not a service of the file", name, h)
			}
		}
		internal, ok := inletProcesses[name]
		if !ok {
			continue
		}
		_, port, err := net.SplitHostPort(internal(cfg))
		if err != nil {
			t.Fatalf("%s: internal_addr: %v", name, err)
		}
		wantHC := []string{"CMD", "/usr/local/bin/inlet", "healthcheck", "http://127.0.0.1:" + port + "/readyz"}
		if !slices.Equal(s.HealthCheck.Test, wantHC) {
			t.Errorf("%s: health check %q; want %q", name, s.HealthCheck.Test, wantHC)
		}
		if want := name + ":" + port; !slices.Contains(targets, want) {
			t.Errorf("prometheus.yml does not scrape %s (targets %v)", want, targets)
		}
	}
}

// dockerfileEnv is the INLET_* ENV of the image's Dockerfile: what every container starts with.
func dockerfileEnv(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../image/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "ENV ") {
			in, line = true, strings.TrimPrefix(line, "ENV ")
		}
		if !in {
			continue
		}
		cont := strings.HasSuffix(line, `\`)
		for _, kv := range strings.Fields(strings.TrimSuffix(line, `\`)) {
			if strings.HasPrefix(kv, "INLET_") && strings.Contains(kv, "=") {
				env = append(env, kv)
			}
		}
		in = cont
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(env) == 0 {
		t.Fatal("the Dockerfile sets no INLET_* ENV (the listeners' addresses)")
	}
	return env
}

// scrapeTargets are the targets of prometheus.yml's static configs.
func scrapeTargets(t *testing.T) []string {
	t.Helper()
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	b, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	return targets
}

// grafanaDashboards is the directory Grafana's dashboard provisioning reads.
func grafanaDashboards(t *testing.T) string {
	t.Helper()
	var cfg struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	b, err := os.ReadFile("grafana/provisioning/dashboards/inlet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil || len(cfg.Providers) != 1 || cfg.Providers[0].Type != "file" {
		t.Fatalf("grafana/provisioning/dashboards/inlet.yaml: want one file provider (%v)", err)
	}
	return cfg.Providers[0].Options.Path
}

// TestGrafanaDatasource: the provisioned data source is the file's Prometheus.
func TestGrafanaDatasource(t *testing.T) {
	var cfg struct {
		Datasources []struct {
			Type, URL, UID string
		} `yaml:"datasources"`
	}
	b, err := os.ReadFile("grafana/provisioning/datasources/prometheus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	p := load(t, nil)
	port := p.Services["prometheus"].Ports[0].Target
	want := fmt.Sprintf("http://prometheus:%d", port)
	if len(cfg.Datasources) != 1 || cfg.Datasources[0].Type != "prometheus" || cfg.Datasources[0].URL != want {
		t.Fatalf("datasources = %+v; want one prometheus at %s", cfg.Datasources, want)
	}
}

// TestVariablesHaveDefaults: every ${VAR} of compose.yaml has a default, so that `docker compose up` with
// no .env works and a missing variable is never silently empty.
func TestVariablesHaveDefaults(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ref := regexp.MustCompile(`\$\{([^}:?-]+)([^}]*)\}`)
	for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
		if !strings.HasPrefix(m[2], ":-") {
			t.Errorf("%s has no default (${%s:-…})", m[0], m[1])
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
