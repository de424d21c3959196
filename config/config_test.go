package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load(defaults): %v", err)
	}
	if got := len(c.Secrets.Key()); got != 32 {
		t.Fatalf("dev master key length = %d; want 32", got)
	}
}

func TestLoadFile(t *testing.T) {
	c, err := Load("testdata/valid.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := strings.Join(c.Kafka.Brokers, ","), "127.0.0.1:29092,127.0.0.1:29093"; got != want {
		t.Errorf("brokers = %q; want %q", got, want)
	}
	if c.Kafka.Retention != 48*time.Hour {
		t.Errorf("retention = %s; want 48h", c.Kafka.Retention)
	}
	if c.Pipeline.FlushInterval != 250*time.Millisecond {
		t.Errorf("flush_interval = %s; want 250ms", c.Pipeline.FlushInterval)
	}
	if c.Ingestor.MaxBodyBytes != 2<<20 {
		t.Errorf("max_body_bytes = %d; want %d", c.Ingestor.MaxBodyBytes, 2<<20)
	}
	if c.Kafka.RequestsTopic != "webhooks.requests" {
		t.Errorf("requests_topic = %q; want the default kept", c.Kafka.RequestsTopic)
	}
}

func TestLoadErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		env        []string
		want       string
	}{
		{"unknown key", "testdata/unknown_key.yaml", nil, "partitons"},
		{"bad value", "testdata/bad_value.yaml", nil, "pipeline.batch_rows"},
		{"bad env duration", "", []string{"INLET_PIPELINE_FLUSH_INTERVAL=soon"}, "pipeline.flush_interval"},
		{"env out of range", "", []string{"INLET_KAFKA_PARTITIONS=0"}, "kafka.partitions"},
		{"production needs a key", "", []string{"INLET_PROFILE=production"}, "secrets.master_key"},
		{"production refuses the dev key", "", []string{"INLET_PROFILE=production", "INLET_SECRETS_MASTER_KEY=" + devMasterKey}, "development key"},
		{"short key", "", []string{"INLET_SECRETS_MASTER_KEY=c2hvcnQ="}, "secrets.master_key"},
		{"bad profile", "", []string{"INLET_PROFILE=staging"}, "profile"},
		{"short previous key", "", []string{"INLET_SECRETS_PREVIOUS_MASTER_KEYS=c2hvcnQ="}, "secrets.previous_master_keys[0]"},
		{"previous key is the current one", "", []string{"INLET_SECRETS_PREVIOUS_MASTER_KEYS=" + devMasterKey}, "is the current master_key"},
		{"missing previous keys file", "", []string{"INLET_SECRETS_PREVIOUS_MASTER_KEYS_FILE=testdata/nope.keys"}, "secrets.previous_master_keys_file"},
		{"body larger than a record", "", []string{"INLET_INGESTOR_MAX_BODY_BYTES=4194304"}, "kafka.max_message_bytes"},
		{"event larger than a record", "", []string{"INLET_PIPELINE_MAX_EVENT_BYTES=4194304"}, "kafka.max_message_bytes"},
		{"missing file", "testdata/nope.yaml", nil, "nope.yaml"},
		{"tracing endpoint not a URL", "", []string{"INLET_TRACING_ENDPOINT=otel:4318"}, "tracing.endpoint"},
		{"tracing ratio above 1", "", []string{"INLET_TRACING_SAMPLE_RATIO=2"}, "tracing.sample_ratio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path, tc.env)
			if err == nil {
				t.Fatalf("Load succeeded; want an error naming %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %q; want it to name %q", err, tc.want)
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	key := NewMasterKey()
	c, err := Load("testdata/valid.yaml", []string{
		"INLET_KAFKA_BROKERS=a:1, b:2",
		"INLET_INGESTOR_LISTEN_ADDR=0.0.0.0:9999",
		"INLET_POSTGRES_MAX_CONNS=3",
		"INLET_PIPELINE_FLUSH_INTERVAL=2s",
		"INLET_PROFILE=production",
		"INLET_SECRETS_MASTER_KEY=" + key,
		"INLET_STATE_DIR=/tmp/whatever", // the stack scripts' own variable: ignored
		"PATH=/usr/bin",
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := strings.Join(c.Kafka.Brokers, ","); got != "a:1,b:2" {
		t.Errorf("brokers = %q; want a:1,b:2", got)
	}
	if c.Ingestor.ListenAddr != "0.0.0.0:9999" || c.Postgres.MaxConns != 3 || c.Pipeline.FlushInterval != 2*time.Second {
		t.Errorf("overrides not applied: %+v %+v %+v", c.Ingestor.ListenAddr, c.Postgres.MaxConns, c.Pipeline.FlushInterval)
	}
	if c.Profile != ProfileProduction || len(c.Secrets.Key()) != 32 {
		t.Errorf("profile/key = %q/%d; want production/32", c.Profile, len(c.Secrets.Key()))
	}
}

func TestExampleFileIsValid(t *testing.T) {
	if _, err := Load("../deploy/inlet.example.yaml", nil); err != nil {
		t.Fatalf("the committed example must load: %v", err)
	}
}

// TestExampleListsEveryKey: the commented example is the configuration reference, so it must show every
// setting.
func TestExampleListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../deploy/inlet.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var missing []string
	var walkType func(rt reflect.Type, prefix string, node map[string]any)
	walkType = func(rt reflect.Type, prefix string, node map[string]any) {
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" || !f.IsExported() {
				continue
			}
			v, ok := node[tag]
			if !ok {
				missing = append(missing, prefix+tag)
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				sub, _ := v.(map[string]any)
				walkType(f.Type, prefix+tag+".", sub)
			}
		}
	}
	walkType(reflect.TypeOf(Config{}), "", doc)
	if len(missing) > 0 {
		t.Fatalf("deploy/inlet.example.yaml lacks:\n%s", strings.Join(missing, "\n"))
	}
}

func TestEnvNames(t *testing.T) {
	names := EnvNames()
	for _, want := range []string{"INLET_PROFILE", "INLET_KAFKA_BROKERS", "INLET_SECRETS_MASTER_KEY", "INLET_PIPELINE_INSTANCE_ID", "INLET_ADMIN_TRUST_FORWARDED_FOR"} {
		if !slices.Contains(names, want) {
			t.Errorf("EnvNames() has no %s", want)
		}
	}
	if slices.Contains(names, "INLET_STATE_DIR") || slices.Contains(names, "INLET_KAFKA") {
		t.Errorf("EnvNames() = %v; want only the settings' variables", names)
	}
	// Each name is one Load reads: a value it cannot parse is refused, naming the variable.
	for _, name := range names {
		c := Defaults()
		fv, ok := fieldOf(reflect.ValueOf(&c).Elem(), name)
		if !ok {
			t.Fatalf("%s names no field", name)
		}
		if fv.Kind() == reflect.String || fv.Kind() == reflect.Slice {
			continue
		}
		if _, err := Load("", []string{name + "=not-a-value"}); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Load with %s=not-a-value: err = %v; want one naming %s", name, err, name)
		}
	}
}

func fieldOf(v reflect.Value, name string) (reflect.Value, bool) {
	var found reflect.Value
	_ = eachSetting(v, "INLET", "", func(fv reflect.Value, n, _ string) error {
		if n == name {
			found = fv
		}
		return nil
	})
	return found, found.IsValid()
}

// TestPreviousMasterKeys: previous keys come from the variable (comma-separated) and the file (one per
// line), in that order; the development key may be one in production, which is how a trial moves to a
// key of its own.
func TestPreviousMasterKeys(t *testing.T) {
	cur, a, b := NewMasterKey(), NewMasterKey(), NewMasterKey()
	file := filepath.Join(t.TempDir(), "previous.keys")
	if err := os.WriteFile(file, []byte("\n"+b+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", []string{"INLET_PROFILE=production", "INLET_SECRETS_MASTER_KEY=" + cur,
		"INLET_SECRETS_PREVIOUS_MASTER_KEYS=" + a + "," + devMasterKey, "INLET_SECRETS_PREVIOUS_MASTER_KEYS_FILE=" + file})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range c.Secrets.PreviousKeys() {
		got = append(got, base64.StdEncoding.EncodeToString(k))
	}
	if want := []string{a, devMasterKey, b}; !slices.Equal(got, want) {
		t.Errorf("PreviousKeys = %q; want %q", got, want)
	}
}
