package helm_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/inlet-dev/inlet/config"
)

const (
	chartDir  = "inlet"
	release   = "edge"
	namespace = "hooks"
	// fullname is the prefix of every object: the release's name, then the chart's.
	fullname = release + "-inlet"
)

// testSecret is the Secret the existing-secret case stands for (the operator's, outside the chart).
var testSecret = map[string]string{
	"key": "dGVzdC1tYXN0ZXIta2V5LW9mLXRoaXJ0eS10d28tYnk=",
	"dsn": "postgres://inlet:pw@postgres:5432/inlet",
}

// The matrix: each values file in testdata with what the chart must make of it.
var cases = []struct {
	values         string
	ingestors      int // Deployment replicas; 0 = left to the HPA
	pipelines      int
	admins         int    // admin Deployment replicas
	adminAffinity  string // the admin Service's sessionAffinity; "" = none (any replica serves any session)
	group          string
	image          string
	secret         string // the Secret the processes read
	pdbs           int
	migrate        bool
	serviceMonitor bool
	netPols        int
}{
	{values: "minimal.yaml", pipelines: 2, admins: 2, group: "inlet-pipeline", image: "ghcr.io/inlet-dev/inlet:0.1.0",
		secret: fullname, pdbs: 2, migrate: true},
	{values: "monitoring.yaml", pipelines: 2, admins: 2, group: "inlet-pipeline", image: "ghcr.io/inlet-dev/inlet:0.1.0",
		secret: fullname, pdbs: 2, migrate: true, serviceMonitor: true, netPols: 3},
	{values: "existing-secret.yaml", pipelines: 2, admins: 2, group: "inlet-pipeline", image: "ghcr.io/inlet-dev/inlet:0.1.0",
		secret: "inlet-secrets", pdbs: 2, migrate: true},
	{values: "no-hpa.yaml", ingestors: 4, pipelines: 2, admins: 2, group: "inlet-pipeline", image: "ghcr.io/inlet-dev/inlet:0.1.0",
		secret: fullname},
	{values: "pipelines.yaml", pipelines: 6, admins: 3, adminAffinity: "ClientIP", group: "inlet-pipeline-eu", image: "registry.example.com/inlet:v1.2.3",
		secret: fullname, pdbs: 2, migrate: true},
}

// manifests is one rendering, decoded.
type manifests struct {
	deployments     map[string]*appsv1.Deployment
	statefulSets    map[string]*appsv1.StatefulSet
	jobs            map[string]*batchv1.Job
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs            map[string]*policyv1.PodDisruptionBudget
	netPols         map[string]*networkingv1.NetworkPolicy
	serviceMonitors map[string]*unstructured.Unstructured
	prometheusRules map[string]*unstructured.Unstructured
}

func TestChart(t *testing.T) {
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.values, ".yaml"), func(t *testing.T) {
			vals := readValues(t, tc.values)
			m := render(t, vals)

			if got := len(m.deployments); got != 2 {
				t.Errorf("deployments: got %d; want 2 (ingestor, admin)", got)
			}
			ing := mustGet(t, m.deployments, fullname+"-ingestor")
			adm := mustGet(t, m.deployments, fullname+"-admin")
			sts := mustGet(t, m.statefulSets, fullname+"-pipeline")

			// Every long-running process: probes on its internal port, non-root, settings loadable.
			for _, p := range []struct {
				name     string
				spec     *corev1.PodTemplateSpec
				settings func(*config.Config) (internal string, public string)
			}{
				{"ingestor", &ing.Spec.Template, func(c *config.Config) (string, string) {
					return c.Ingestor.InternalAddr, c.Ingestor.ListenAddr
				}},
				{"admin", &adm.Spec.Template, func(c *config.Config) (string, string) { return c.Admin.InternalAddr, c.Admin.ListenAddr }},
				{"pipeline", &sts.Spec.Template, func(c *config.Config) (string, string) { return c.Pipeline.InternalAddr, "" }},
			} {
				checkPod(t, p.name, p.spec, tc.image)
				ctr := p.spec.Spec.Containers[0]
				checkProbes(t, p.name, ctr)
				cfg := loadSettings(t, m, p.spec, tc.secret, p.name+"-0")
				internal, public := p.settings(cfg)
				if got, want := addrPort(t, internal), containerPort(ctr, "internal"); got != want {
					t.Errorf("%s: internal_addr port %d; the container's internal port is %d", p.name, got, want)
				}
				if public != "" {
					if got, want := addrPort(t, public), containerPort(ctr, "http"); got != want {
						t.Errorf("%s: listen_addr port %d; the container's http port is %d", p.name, got, want)
					}
				}
				checkSettings(t, p.name, cfg, vals)
				if !slices.Equal(ctr.Args, []string{p.name}) {
					t.Errorf("%s: args %q; want [%s]", p.name, ctr.Args, p.name)
				}
			}

			// Ingestors: a fixed count or the HPA's.
			hpa, hasHPA := m.hpas[fullname+"-ingestor"]
			switch {
			case tc.ingestors == 0 && !hasHPA:
				t.Errorf("no HPA for the ingestor; want one")
			case tc.ingestors == 0 && ing.Spec.Replicas != nil:
				t.Errorf("ingestor replicas %d with an HPA; want none (the HPA owns the count)", *ing.Spec.Replicas)
			case tc.ingestors == 0 && (hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != ing.Name):
				t.Errorf("HPA targets %s %s; want Deployment %s", hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name, ing.Name)
			case tc.ingestors != 0 && hasHPA:
				t.Errorf("an HPA with autoscaling off")
			case tc.ingestors != 0 && (ing.Spec.Replicas == nil || int(*ing.Spec.Replicas) != tc.ingestors):
				t.Errorf("ingestor replicas %v; want %d", ing.Spec.Replicas, tc.ingestors)
			}

			// Pipelines: replicas as asked, each with a stable, distinct instance id.
			if sts.Spec.Replicas == nil || int(*sts.Spec.Replicas) != tc.pipelines {
				t.Errorf("pipeline replicas %v; want %d", sts.Spec.Replicas, tc.pipelines)
			}
			if svc := mustGet(t, m.services, sts.Spec.ServiceName); svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("pipeline service %s: clusterIP %q; want None (headless)", svc.Name, svc.Spec.ClusterIP)
			}
			ids := make(map[string]bool)
			for i := range tc.pipelines {
				cfg := loadSettings(t, m, &sts.Spec.Template, tc.secret, fmt.Sprintf("%s-%d", sts.Name, i))
				want := fmt.Sprintf("%s.%s-%d", namespace, sts.Name, i)
				if cfg.Pipeline.InstanceID != want {
					t.Errorf("pipeline %d: instance_id %q; want %q", i, cfg.Pipeline.InstanceID, want)
				}
				if cfg.Pipeline.Group != tc.group {
					t.Errorf("pipeline %d: group %q; want %q", i, cfg.Pipeline.Group, tc.group)
				}
				ids[cfg.Pipeline.InstanceID] = true
			}
			if len(ids) != tc.pipelines {
				t.Errorf("pipelines: %d distinct instance ids; want %d", len(ids), tc.pipelines)
			}
			if again := render(t, vals); !equalJSON(t, again.statefulSets[sts.Name], sts) {
				t.Errorf("pipeline StatefulSet differs between two renderings of the same values")
			}

			// Admins: several by default, behind a Service with no affinity (sessions and the failed-
			// authentication limiter are in PostgreSQL); affinity only when the values ask for it.
			if adm.Spec.Replicas == nil || int(*adm.Spec.Replicas) != tc.admins {
				t.Errorf("admin replicas %v; want %d", adm.Spec.Replicas, tc.admins)
			}
			if got := mustGet(t, m.services, fullname+"-admin").Spec.SessionAffinity; string(got) != tc.adminAffinity {
				t.Errorf("admin service sessionAffinity %q; want %q", got, tc.adminAffinity)
			}

			// Services: each selects pods of the chart and names ports they have.
			pods := []*corev1.PodTemplateSpec{&ing.Spec.Template, &adm.Spec.Template, &sts.Spec.Template}
			for _, name := range []string{"-ingestor", "-admin", "-pipeline", "-metrics"} {
				checkService(t, mustGet(t, m.services, fullname+name), pods)
			}
			for _, p := range []string{"-ingestor", "-admin"} {
				for _, port := range m.services[fullname+p].Spec.Ports {
					if port.TargetPort.StrVal != "http" {
						t.Errorf("service %s%s exposes %q; want only http (the internal port stays inside)", fullname, p, port.TargetPort.StrVal)
					}
				}
			}

			// Disruption budgets select the pods they protect.
			if len(m.pdbs) != tc.pdbs {
				t.Errorf("PDBs: got %d; want %d", len(m.pdbs), tc.pdbs)
			}
			for _, pdb := range m.pdbs {
				if !selects(pdb.Spec.Selector.MatchLabels, &ing.Spec.Template) && !selects(pdb.Spec.Selector.MatchLabels, &sts.Spec.Template) {
					t.Errorf("PDB %s selects neither the ingestors nor the pipelines", pdb.Name)
				}
			}

			// The Secret: the chart's, with the values' keys, or none.
			_, chartSecret := m.secrets[fullname]
			if chartSecret != (tc.secret == fullname) {
				t.Errorf("chart Secret present %v; want %v", chartSecret, tc.secret == fullname)
			}

			checkMigrate(t, m, tc.migrate, tc.secret, tc.image)
			checkServiceMonitor(t, m, tc.serviceMonitor)
			// monitoring.yaml turns the dashboards and the rules on with the ServiceMonitor.
			checkDashboards(t, m, tc.serviceMonitor)
			checkPrometheusRule(t, m, tc.serviceMonitor)
			if len(m.netPols) != tc.netPols {
				t.Errorf("NetworkPolicies: got %d; want %d", len(m.netPols), tc.netPols)
			}
			for _, np := range m.netPols {
				if !selects(np.Spec.PodSelector.MatchLabels, &ing.Spec.Template) && !selects(np.Spec.PodSelector.MatchLabels, &adm.Spec.Template) &&
					!selects(np.Spec.PodSelector.MatchLabels, &sts.Spec.Template) {
					t.Errorf("NetworkPolicy %s selects no Inlet pod", np.Name)
				}
			}
		})
	}
}

// TestChartLint runs Helm's linter over the chart's defaults (`helm lint deploy/helm/inlet`: required
// values missing are not errors in lint mode) and over each values file: no warnings, no errors.
func TestChartLint(t *testing.T) {
	for _, values := range append([]string{""}, valuesFiles()...) {
		name := strings.TrimSuffix(values, ".yaml")
		if values == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			var vals map[string]any
			if values != "" {
				vals = readValues(t, values)
			}
			res := lint.RunAll(chartDir, vals, namespace)
			for _, msg := range res.Messages {
				if msg.Severity >= support.WarningSev {
					t.Errorf("lint: %v", msg)
				} else {
					t.Logf("lint: %v", msg)
				}
			}
		})
	}
}

// TestChartRequired: without the addresses or the secrets the chart refuses to render, naming the value.
func TestChartRequired(t *testing.T) {
	for _, tc := range []struct {
		drop string // a dotted path removed from minimal.yaml
		want string
	}{
		{"kafka.brokers", "kafka.brokers is required"},
		{"clickhouse.addrs", "clickhouse.addrs is required"},
		{"publicURL", "publicURL is required"},
		{"secret.masterKey", "secret.masterKey is required"},
		{"secret.postgresDSN", "secret.postgresDSN is required"},
	} {
		t.Run(tc.drop, func(t *testing.T) {
			vals := readValues(t, "minimal.yaml")
			m := vals
			parts := strings.Split(tc.drop, ".")
			for _, p := range parts[:len(parts)-1] {
				m = m[p].(map[string]any)
			}
			delete(m, parts[len(parts)-1])
			_, err := renderErr(t, vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render without %s: got %v; want an error containing %q", tc.drop, err, tc.want)
			}
		})
	}
}

// TestChartSchema: values.schema.json refuses a misspelt value and a value of the wrong type.
func TestChartSchema(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		value      any
		want       string
	}{
		{"misspelt", "kafka.broker", []any{"kafka:9092"}, "broker"},
		{"wrong type", "pipeline.replicas", "3", "replicas"},
		{"no port", "clickhouse.addrs", []any{"clickhouse"}, "addrs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := readValues(t, "minimal.yaml")
			m := vals
			parts := strings.Split(tc.path, ".")
			for _, p := range parts[:len(parts)-1] {
				if m[p] == nil {
					m[p] = map[string]any{}
				}
				m = m[p].(map[string]any)
			}
			m[parts[len(parts)-1]] = tc.value
			_, err := renderErr(t, vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render with %s=%v: got %v; want a schema error naming %q", tc.path, tc.value, err, tc.want)
			}
		})
	}
}

func valuesFiles() []string {
	var names []string
	for _, tc := range cases {
		names = append(names, tc.values)
	}
	return names
}

func readValues(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func render(t *testing.T, vals map[string]any) *manifests {
	t.Helper()
	m, err := renderErr(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// renderErr renders the chart as `helm install edge deploy/helm/inlet -n hooks` would, with undefined
// values an error, and decodes every manifest strictly.
func renderErr(t *testing.T, vals map[string]any) (*manifests, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(ch, vals, common.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	files, err := engine.Engine{Strict: true}.RenderWithContext(t.Context(), ch, top)
	if err != nil {
		return nil, err
	}
	m := &manifests{
		deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{},
		jobs: map[string]*batchv1.Job{}, services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, netPols: map[string]*networkingv1.NetworkPolicy{},
		serviceMonitors: map[string]*unstructured.Unstructured{},
		prometheusRules: map[string]*unstructured.Unstructured{},
	}
	for name, content := range files {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasPrefix(filepath.Base(name), "_") {
			continue
		}
		for _, doc := range releaseutil.SplitManifests(content) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			if err := m.decode(doc); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
		}
	}
	return m, nil
}

// decode puts one manifest into its Kubernetes type, refusing any field the type does not have.
func (m *manifests) decode(doc string) error {
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		return err
	}
	var head struct{ APIVersion, Kind string }
	if err := json.Unmarshal(js, &head); err != nil {
		return err
	}
	var obj any
	var name *string
	switch head.APIVersion + " " + head.Kind {
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		obj, name = o, &o.Name
		defer func() { m.deployments[*name] = o }()
	case "apps/v1 StatefulSet":
		o := &appsv1.StatefulSet{}
		obj, name = o, &o.Name
		defer func() { m.statefulSets[*name] = o }()
	case "batch/v1 Job":
		o := &batchv1.Job{}
		obj, name = o, &o.Name
		defer func() { m.jobs[*name] = o }()
	case "v1 Service":
		o := &corev1.Service{}
		obj, name = o, &o.Name
		defer func() { m.services[*name] = o }()
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		obj, name = o, &o.Name
		defer func() { m.configMaps[*name] = o }()
	case "v1 Secret":
		o := &corev1.Secret{}
		obj, name = o, &o.Name
		defer func() { m.secrets[*name] = o }()
	case "autoscaling/v2 HorizontalPodAutoscaler":
		o := &autoscalingv2.HorizontalPodAutoscaler{}
		obj, name = o, &o.Name
		defer func() { m.hpas[*name] = o }()
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		obj, name = o, &o.Name
		defer func() { m.pdbs[*name] = o }()
	case "networking.k8s.io/v1 NetworkPolicy":
		o := &networkingv1.NetworkPolicy{}
		obj, name = o, &o.Name
		defer func() { m.netPols[*name] = o }()
	case "monitoring.coreos.com/v1 ServiceMonitor":
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(js); err != nil {
			return err
		}
		m.serviceMonitors[o.GetName()] = o
		return nil
	case "monitoring.coreos.com/v1 PrometheusRule":
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(js); err != nil {
			return err
		}
		m.prometheusRules[o.GetName()] = o
		return nil
	default:
		return fmt.Errorf("unexpected %s %s", head.APIVersion, head.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return fmt.Errorf("%s: %w", head.Kind, err)
	}
	if *name == "" {
		return fmt.Errorf("%s without a name", head.Kind)
	}
	return nil
}

func mustGet[T any](t *testing.T, m map[string]*T, name string) *T {
	t.Helper()
	v, ok := m[name]
	if !ok {
		t.Fatalf("%s: not rendered (have %v)", name, slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		}))
	}
	return v
}

// checkPod: non-root, read-only root file system, no privilege escalation, the image of the values.
func checkPod(t *testing.T, name string, p *corev1.PodTemplateSpec, image string) {
	t.Helper()
	sc := p.Spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext %+v; want runAsNonRoot and a non-zero runAsUser", name, sc)
	}
	if len(p.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers; want 1", name, len(p.Spec.Containers))
	}
	c := p.Spec.Containers[0]
	cs := c.SecurityContext
	if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem ||
		cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation || cs.Capabilities == nil || !slices.Contains(cs.Capabilities.Drop, "ALL") {
		t.Errorf("%s: container securityContext %+v; want a read-only root, no privilege escalation, all capabilities dropped", name, cs)
	}
	if c.Image != image {
		t.Errorf("%s: image %q; want %q", name, c.Image, image)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %+v; want a CPU request and a memory limit", name, c.Resources)
	}
}

func checkProbes(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
		{"startup", c.StartupProbe, "/healthz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", name, p.kind)
			continue
		}
		if g := p.probe.HTTPGet; g.Path != p.path || g.Port.StrVal != "internal" {
			t.Errorf("%s: %s probe GET %s on port %q; want %s on the internal port", name, p.kind, g.Path, g.Port.String(), p.path)
		}
	}
	if containerPort(c, "internal") == 0 {
		t.Errorf("%s: no container port named internal", name)
	}
}

func containerPort(c corev1.Container, name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort)
		}
	}
	return 0
}

func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

// loadSettings loads what the pod podName made from p would: its settings file from the ConfigMap it
// mounts, its environment (secret references resolved, $(VAR) expanded) through config.Load.
func loadSettings(t *testing.T, m *manifests, p *corev1.PodTemplateSpec, secret, podName string) *config.Config {
	t.Helper()
	c := p.Spec.Containers[0]
	var cmName string
	for _, v := range p.Spec.Volumes {
		if v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	cm := mustGet(t, m.configMaps, cmName)
	dir := t.TempDir()
	var mountPath string
	for _, vm := range c.VolumeMounts {
		if vm.Name == "config" {
			mountPath = vm.MountPath
		}
	}
	for k, v := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{}
	var environ []string
	for _, e := range c.Env {
		val := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != secret {
				t.Errorf("%s: from Secret %q; want %q", e.Name, ref.Name, secret)
			}
			v, ok := secretValue(t, m, ref.Name, ref.Key)
			if !ok && (ref.Optional == nil || !*ref.Optional) {
				t.Errorf("%s: Secret %s has no key %q", e.Name, ref.Name, ref.Key)
			}
			val = v
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				val = podName
			case "metadata.namespace":
				val = namespace
			default:
				t.Fatalf("%s: unexpected fieldRef %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		default:
			val = expand(val, vars)
		}
		if e.Name == "INLET_CONFIG" {
			rel, err := filepath.Rel(mountPath, val)
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Fatalf("INLET_CONFIG %q is not under the config mount %q", val, mountPath)
			}
			val = filepath.Join(dir, rel)
		}
		vars[e.Name] = val
		environ = append(environ, e.Name+"="+val)
	}
	cfg, err := config.Load(vars["INLET_CONFIG"], environ)
	if err != nil {
		t.Fatalf("the settings the chart gives %s do not load: %v\n%s", p.Labels["app.kubernetes.io/component"], err, cm.Data["inlet.yaml"])
	}
	return cfg
}

// kubeVarRef is a $(NAME) reference to an earlier variable in a container's env, expanded by the kubelet.
var kubeVarRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand does what the kubelet does with $(NAME): the variable's value when defined, else left as written.
func expand(s string, vars map[string]string) string {
	return kubeVarRef.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := vars[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

// secretValue is a key of a Secret of the rendering, or of testSecret for a Secret the chart does not make.
func secretValue(t *testing.T, m *manifests, name, key string) (string, bool) {
	t.Helper()
	if s, ok := m.secrets[name]; ok {
		v, ok := s.Data[key]
		return string(v), ok
	}
	v, ok := testSecret[key]
	return v, ok
}

// checkSettings: what the processes need from the values reaches them.
func checkSettings(t *testing.T, name string, cfg *config.Config, vals map[string]any) {
	t.Helper()
	if cfg.Profile != config.ProfileProduction {
		t.Errorf("%s: profile %q; want production", name, cfg.Profile)
	}
	kafka := vals["kafka"].(map[string]any)
	if got, want := fmt.Sprint(cfg.Kafka.Brokers), fmt.Sprint(kafka["brokers"]); got != want {
		t.Errorf("%s: kafka.brokers %s; want %s", name, got, want)
	}
	if p, ok := kafka["partitions"]; ok && cfg.Kafka.Partitions != int(p.(float64)) {
		t.Errorf("%s: kafka.partitions %d; want %v", name, cfg.Kafka.Partitions, p)
	}
	if got, want := fmt.Sprint(cfg.ClickHouse.Addrs), fmt.Sprint(vals["clickhouse"].(map[string]any)["addrs"]); got != want {
		t.Errorf("%s: clickhouse.addrs %s; want %s", name, got, want)
	}
	if cfg.Postgres.DSN == "" || !strings.HasPrefix(cfg.Postgres.DSN, "postgres://") {
		t.Errorf("%s: postgres.dsn %q; want the DSN of the Secret", name, cfg.Postgres.DSN)
	}
	if len(cfg.Secrets.Key()) != 32 {
		t.Errorf("%s: master key of %d bytes; want 32", name, len(cfg.Secrets.Key()))
	}
	public := vals["publicURL"].(string)
	if cfg.Ingestor.PublicURL != public || cfg.Admin.PublicBaseURL != public {
		t.Errorf("%s: ingestor.public_url %q, admin.public_base_url %q; want %q", name, cfg.Ingestor.PublicURL, cfg.Admin.PublicBaseURL, public)
	}
	if pw := vals["secret"].(map[string]any)["clickhousePassword"]; pw != nil && cfg.ClickHouse.Password != pw {
		t.Errorf("%s: clickhouse.password %q; want %q", name, cfg.ClickHouse.Password, pw)
	}
	if cfg.Ingestor.MaxConnsPerIP != 0 {
		t.Errorf("%s: ingestor.max_conns_per_ip %d; want 0 (senders arrive through a few proxies)", name, cfg.Ingestor.MaxConnsPerIP)
	}
	// config: merged under the chart's settings.
	if c, ok := vals["config"].(map[string]any); ok {
		if p, ok := c["pipeline"].(map[string]any); ok && cfg.Pipeline.BatchRows != int(p["batch_rows"].(float64)) {
			t.Errorf("%s: pipeline.batch_rows %d; want %v from config", name, cfg.Pipeline.BatchRows, p["batch_rows"])
		}
	}
}

// checkService: it selects at least one of pods, and every target port is a port those pods name.
func checkService(t *testing.T, svc *corev1.Service, pods []*corev1.PodTemplateSpec) {
	t.Helper()
	var matched []*corev1.PodTemplateSpec
	for _, p := range pods {
		if selects(svc.Spec.Selector, p) {
			matched = append(matched, p)
		}
	}
	if len(matched) == 0 {
		t.Errorf("service %s selects no pod (selector %v)", svc.Name, svc.Spec.Selector)
		return
	}
	for _, port := range svc.Spec.Ports {
		for _, p := range matched {
			if containerPort(p.Spec.Containers[0], port.TargetPort.StrVal) == 0 {
				t.Errorf("service %s: target port %q is not a port of %s", svc.Name, port.TargetPort.String(), p.Labels["app.kubernetes.io/component"])
			}
		}
	}
}

func selects(selector map[string]string, p *corev1.PodTemplateSpec) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if p.Labels[k] != v {
			return false
		}
	}
	return true
}

// checkMigrate: a pre-install/pre-upgrade Job running `inlet migrate`, whose settings and Secret are
// hooks created before it.
func checkMigrate(t *testing.T, m *manifests, want bool, secret, image string) {
	t.Helper()
	job, ok := m.jobs[fullname+"-migrate"]
	if ok != want {
		t.Fatalf("migrate Job rendered %v; want %v", ok, want)
	}
	if !ok {
		return
	}
	if got := job.Annotations["helm.sh/hook"]; got != "pre-install,pre-upgrade" {
		t.Errorf("migrate Job hook %q; want pre-install,pre-upgrade", got)
	}
	p := &job.Spec.Template
	checkPod(t, "migrate", p, image)
	if !slices.Equal(p.Spec.Containers[0].Args, []string{"migrate"}) {
		t.Errorf("migrate: args %q; want [migrate]", p.Spec.Containers[0].Args)
	}
	if p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("migrate: restartPolicy %q; want Never", p.Spec.RestartPolicy)
	}
	jobWeight := job.Annotations["helm.sh/hook-weight"]
	hookSecret := secret
	if secret == fullname {
		hookSecret = fullname + "-migrate"
	}
	cfg := loadSettings(t, m, p, hookSecret, "migrate-0")
	checkSettingsHook(t, m, p, jobWeight)
	if len(cfg.Kafka.Brokers) == 0 {
		t.Errorf("migrate: no Kafka brokers")
	}
}

// checkSettingsHook: the ConfigMap and Secret the migrate Job reads are hooks of its phases with a lower
// weight, so that they exist before it on a first install.
func checkSettingsHook(t *testing.T, m *manifests, p *corev1.PodTemplateSpec, jobWeight string) {
	t.Helper()
	jw, _ := strconv.Atoi(jobWeight)
	check := func(kind, name string, ann map[string]string) {
		if ann["helm.sh/hook"] != "pre-install,pre-upgrade" {
			t.Errorf("migrate %s %s: hook %q; want pre-install,pre-upgrade", kind, name, ann["helm.sh/hook"])
		}
		if w, _ := strconv.Atoi(ann["helm.sh/hook-weight"]); w >= jw {
			t.Errorf("migrate %s %s: hook weight %d; want below the Job's %d", kind, name, w, jw)
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.ConfigMap != nil {
			check("ConfigMap", v.ConfigMap.Name, mustGet(t, m.configMaps, v.ConfigMap.Name).Annotations)
		}
	}
	for _, e := range p.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			if s, ok := m.secrets[e.ValueFrom.SecretKeyRef.Name]; ok {
				check("Secret", s.Name, s.Annotations)
			}
		}
	}
}

func checkServiceMonitor(t *testing.T, m *manifests, want bool) {
	t.Helper()
	sm, ok := m.serviceMonitors[fullname]
	if ok != want {
		t.Fatalf("ServiceMonitor rendered %v; want %v", ok, want)
	}
	if !ok {
		return
	}
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" || sm.GetKind() != "ServiceMonitor" {
		t.Errorf("ServiceMonitor: %s %s", sm.GetAPIVersion(), sm.GetKind())
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svc := mustGet(t, m.services, fullname+"-metrics")
	for k, v := range sel {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s; the metrics Service has %q", k, v, svc.Labels[k])
		}
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("ServiceMonitor endpoints: %v; want one", eps)
	}
	ep := eps[0].(map[string]any)
	if ep["port"] != "internal" || ep["path"] != "/metrics" {
		t.Errorf("ServiceMonitor endpoint %v; want port internal, path /metrics", ep)
	}
}

// checkDashboards: with want, one ConfigMap per dashboard of deploy/grafana/dashboards, holding it
// as it is and labelled for Grafana's sidecar; none without.
func checkDashboards(t *testing.T, m *manifests, want bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "grafana", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in deploy/grafana/dashboards (%v)", err)
	}
	found := 0
	for name, cm := range m.configMaps {
		if !strings.HasPrefix(name, fullname+"-dashboard-") {
			continue
		}
		found++
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("ConfigMap %s labels %v; want grafana_dashboard=1 for the sidecar", name, cm.Labels)
		}
		if len(cm.Data) != 1 {
			t.Errorf("ConfigMap %s holds %d files; want one dashboard", name, len(cm.Data))
		}
		for file, body := range cm.Data {
			repo, err := os.ReadFile(filepath.Join("..", "grafana", "dashboards", file))
			if err != nil {
				t.Errorf("ConfigMap %s holds %s, no dashboard of deploy/grafana/dashboards: %v", name, file, err)
				continue
			}
			if strings.TrimSpace(body) != strings.TrimSpace(string(repo)) || !json.Valid([]byte(body)) {
				t.Errorf("ConfigMap %s: %s differs from deploy/grafana/dashboards/%s", name, file, file)
			}
		}
	}
	switch {
	case want && found != len(files):
		t.Errorf("dashboard ConfigMaps: %d; want one per dashboard, %d", found, len(files))
	case !want && found != 0:
		t.Errorf("dashboard ConfigMaps: %d; want none (grafanaDashboards.enabled is off)", found)
	}
}

// checkPrometheusRule: with want, a PrometheusRule whose groups are deploy/prometheus/alerts.yml's;
// none without.
func checkPrometheusRule(t *testing.T, m *manifests, want bool) {
	t.Helper()
	pr, ok := m.prometheusRules[fullname]
	if ok != want || len(m.prometheusRules) != map[bool]int{true: 1}[want] {
		t.Fatalf("PrometheusRules %d (ours %v); want ours %v only", len(m.prometheusRules), ok, want)
	}
	if !ok {
		return
	}
	raw, err := os.ReadFile(filepath.Join("..", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
	if len(rules.Groups) == 0 || !equalJSON(t, groups, rules.Groups) {
		t.Errorf("PrometheusRule groups differ from deploy/prometheus/alerts.yml's")
	}
	if pr.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule labels %v; want the values' release label", pr.GetLabels())
	}
}

// TestChartFilesAreTheRepos: the chart carries copies of the dashboards and the alert rules (Helm
// reads only files inside the chart); they are the repository's, byte for byte. After editing a
// dashboard or a rule: `make chart-files`.
func TestChartFilesAreTheRepos(t *testing.T) {
	pairs := map[string]string{filepath.Join("inlet", "files", "alerts.yml"): filepath.Join("..", "prometheus", "alerts.yml")}
	repo, _ := filepath.Glob(filepath.Join("..", "grafana", "dashboards", "*.json"))
	for _, f := range repo {
		pairs[filepath.Join("inlet", "files", "dashboards", filepath.Base(f))] = f
	}
	copies, _ := filepath.Glob(filepath.Join("inlet", "files", "dashboards", "*.json"))
	if len(copies) != len(repo) || len(repo) == 0 {
		t.Errorf("the chart has %d dashboards, the repository %d; run make chart-files", len(copies), len(repo))
	}
	for chartFile, repoFile := range pairs {
		a, err1 := os.ReadFile(chartFile)
		b, err2 := os.ReadFile(repoFile)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s is not %s (%v, %v); run make chart-files", chartFile, repoFile, err1, err2)
		}
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}
