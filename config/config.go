// Package config loads Inlet's settings: one YAML file, then INLET_* environment overrides, validated
// once. Each component owns its section (ingestor.Config, pipeline.Config, …) and its Validate; this
// package composes them, rejects unknown keys and names the bad field in every error.
//
// Environment overrides are named after the YAML path: kafka.brokers is INLET_KAFKA_BROKERS (lists are
// comma-separated), ingestor.max_body_bytes is INLET_INGESTOR_MAX_BODY_BYTES.
package config

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/inlet-dev/inlet/admin"
	"github.com/inlet-dev/inlet/ingestor"
	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/chdb"
	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/obs"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/tracing"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/pipeline"
)

// Profiles. Only the local profile may fall back to the development master key.
const (
	ProfileLocal      = "local"
	ProfileProduction = "production"
)

// devMasterKey encrypts webhook secrets on developer machines only. It is public (it is in this file), so
// Validate refuses it outside the local profile.
const devMasterKey = "aW5sZXQtbG9jYWwtZGV2LW1hc3Rlci1rZXktMzJieXQ="

// Config is the whole of a process's settings.
type Config struct {
	// Profile is "local" (developer machine: the development master key is allowed) or "production".
	// Default "local".
	Profile string        `yaml:"profile"`
	Log     obs.LogConfig `yaml:"log"`
	// Tracing is OpenTelemetry tracing, off by default (ingestor and pipeline).
	Tracing    tracing.Config `yaml:"tracing"`
	Kafka      kafka.Config   `yaml:"kafka"`
	ClickHouse chdb.Config    `yaml:"clickhouse"`
	Postgres   pgdb.Config    `yaml:"postgres"`
	Secrets    Secrets        `yaml:"secrets"`
	// WebhookCache is the data path's cache of webhook configs (ingestor and pipeline).
	WebhookCache webhook.CacheConfig `yaml:"webhook_cache"`
	// Directory is the user directory: phone normalisation, NDJSON import and the pipeline's resolver
	// cache.
	Directory directory.Config `yaml:"directory"`
	Ingestor  ingestor.Config  `yaml:"ingestor"`
	Pipeline  pipeline.Config  `yaml:"pipeline"`
	Admin     admin.Config     `yaml:"admin"`
	// Alerts is the evaluation of alert rules and the delivery of notifications (admin processes).
	Alerts alert.Config `yaml:"alerts"`
}

// Secrets holds the master key that encrypts webhook secrets at rest (AES-256-GCM).
type Secrets struct {
	// MasterKey is 32 bytes, base64 (standard or URL alphabet). Set it with INLET_SECRETS_MASTER_KEY or
	// master_key_file, never in a committed file. Default: none outside the local profile.
	MasterKey string `yaml:"master_key"`
	// MasterKeyFile names a file holding the base64 key (trailing newline ignored). Default none.
	MasterKeyFile string `yaml:"master_key_file"`
	// PreviousMasterKeys are earlier master keys (base64, as master_key), used only to open secrets
	// sealed before a key rotation: new secrets are sealed with master_key. Keep one here until `inlet
	// secrets reseal` has reported no secret left under it, then remove it. Every key costs a failed
	// decryption per secret sealed before key ids existed, once per reload. Default none; the
	// variable INLET_SECRETS_PREVIOUS_MASTER_KEYS takes them comma-separated.
	PreviousMasterKeys []string `yaml:"previous_master_keys"`
	// PreviousMasterKeysFile names a file holding previous keys, one per line (blank lines ignored),
	// added to previous_master_keys. Default none.
	PreviousMasterKeysFile string `yaml:"previous_master_keys_file"`
	key                    []byte
	previous               [][]byte
}

// Key is the decoded master key; valid after Validate.
func (s *Secrets) Key() []byte { return s.key }

// PreviousKeys are the decoded previous master keys, in the order given; valid after Validate.
func (s *Secrets) PreviousKeys() [][]byte { return s.previous }

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		Profile:      ProfileLocal,
		Log:          obs.LogConfig{Level: "info", Format: "json"},
		Tracing:      tracing.Defaults(),
		Kafka:        kafka.Defaults(),
		ClickHouse:   chdb.Defaults(),
		Postgres:     pgdb.Defaults(),
		WebhookCache: webhook.DefaultCacheConfig(),
		Directory:    directory.Defaults(),
		Ingestor:     ingestor.Defaults(),
		Pipeline:     pipeline.Defaults(),
		Admin:        admin.Defaults(),
		Alerts:       alert.Defaults(),
	}
}

// Load reads path (empty: defaults only), applies the INLET_* variables in environ and validates the
// result.
func Load(path string, environ []string) (*Config, error) {
	c := Defaults()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := decode(b, &c); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&c, environ); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &c, nil
}

func decode(b []byte, c *Config) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField())
	if err := dec.Decode(c); err != nil {
		return errors.New(yaml.FormatError(err, false, true))
	}
	return nil
}

// Validate checks every section and decodes the master key. Errors name the field by its YAML path.
func (c *Config) Validate() error {
	if c.Profile != ProfileLocal && c.Profile != ProfileProduction {
		return fmt.Errorf("profile: %q is not %q or %q", c.Profile, ProfileLocal, ProfileProduction)
	}
	sections := []struct {
		name string
		v    interface{ Validate() error }
	}{
		{"log", &c.Log}, {"tracing", &c.Tracing}, {"kafka", &c.Kafka}, {"clickhouse", &c.ClickHouse}, {"postgres", &c.Postgres},
		{"webhook_cache", &c.WebhookCache}, {"directory", &c.Directory},
		{"ingestor", &c.Ingestor}, {"pipeline", &c.Pipeline}, {"admin", &c.Admin}, {"alerts", &c.Alerts},
	}
	for _, s := range sections {
		if err := s.v.Validate(); err != nil {
			return fmt.Errorf("%s.%w", s.name, err)
		}
	}
	// The edge appends whole bodies: the topic must take the largest one plus its headers.
	if need := c.Ingestor.MaxBodyBytes + 64<<10; c.Kafka.MaxMessageBytes < need {
		return fmt.Errorf("kafka.max_message_bytes: %d is below ingestor.max_body_bytes + 64 KiB (%d)", c.Kafka.MaxMessageBytes, need)
	}
	if need := c.Pipeline.MaxEventBytes + 64<<10; c.Kafka.MaxMessageBytes < need {
		return fmt.Errorf("kafka.max_message_bytes: %d is below pipeline.max_event_bytes + 64 KiB (%d)", c.Kafka.MaxMessageBytes, need)
	}
	return c.Secrets.resolve(c.Profile)
}

func (s *Secrets) resolve(profile string) error {
	raw := s.MasterKey
	switch {
	case raw != "" && s.MasterKeyFile != "":
		return errors.New("secrets.master_key_file: set either master_key or master_key_file, not both")
	case s.MasterKeyFile != "":
		b, err := os.ReadFile(s.MasterKeyFile)
		if err != nil {
			return fmt.Errorf("secrets.master_key_file: %w", err)
		}
		raw = strings.TrimSpace(string(b))
	case raw == "" && profile == ProfileLocal:
		raw = devMasterKey
	case raw == "":
		return errors.New("secrets.master_key: required outside the local profile (INLET_SECRETS_MASTER_KEY or master_key_file)")
	}
	if profile != ProfileLocal && raw == devMasterKey {
		return errors.New("secrets.master_key: the development key is refused outside the local profile")
	}
	key, err := decodeKey(raw)
	if err != nil {
		return fmt.Errorf("secrets.master_key: %w", err)
	}
	s.key = key
	return s.resolvePrevious()
}

// resolvePrevious decodes the previous keys. The development key may be one: it is how a trial that
// ran with it moves to a key of its own.
func (s *Secrets) resolvePrevious() error {
	raws := slices.Clone(s.PreviousMasterKeys)
	if s.PreviousMasterKeysFile != "" {
		b, err := os.ReadFile(s.PreviousMasterKeysFile)
		if err != nil {
			return fmt.Errorf("secrets.previous_master_keys_file: %w", err)
		}
		for line := range strings.Lines(string(b)) {
			if line = strings.TrimSpace(line); line != "" {
				raws = append(raws, line)
			}
		}
	}
	s.previous = nil
	for i, raw := range raws {
		k, err := decodeKey(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("secrets.previous_master_keys[%d]: %w", i, err)
		}
		if bytes.Equal(k, s.key) {
			return fmt.Errorf("secrets.previous_master_keys[%d]: is the current master_key", i)
		}
		for j, p := range s.previous {
			if bytes.Equal(k, p) {
				return fmt.Errorf("secrets.previous_master_keys[%d]: repeats key %d", i, j)
			}
		}
		s.previous = append(s.previous, k)
	}
	return nil
}

func decodeKey(raw string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(raw); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("decodes to %d bytes; want 32", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("is not base64")
}

// NewMasterKey returns a fresh random key in the form master_key expects.
func NewMasterKey() string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// applyEnv sets every field whose INLET_<PATH> variable is present. Variables that name no field are
// left alone: the local stack scripts use INLET_* names of their own (INLET_STATE_DIR, ports).
func applyEnv(c *Config, environ []string) error {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "INLET_") {
			env[k] = v
		}
	}
	return eachSetting(reflect.ValueOf(c).Elem(), "INLET", "", func(fv reflect.Value, name, path string) error {
		raw, ok := env[name]
		if !ok {
			return nil
		}
		if err := setField(fv, raw); err != nil {
			return fmt.Errorf("%s (from %s): %w", path, name, err)
		}
		return nil
	})
}

// EnvNames returns the INLET_* variable of every setting, in the order of the settings file. Load
// ignores other INLET_* variables (they may be the local stack's), so a deployment that sets one
// should check it against this list: a misspelt variable is otherwise silently without effect.
func EnvNames() []string {
	var names []string
	c := Defaults()
	_ = eachSetting(reflect.ValueOf(&c).Elem(), "INLET", "", func(_ reflect.Value, name, _ string) error {
		names = append(names, name)
		return nil
	})
	return names
}

// eachSetting calls fn with every leaf setting of v, its INLET_<PATH> variable and its YAML path: the
// one place the variables' names are made.
func eachSetting(v reflect.Value, envPrefix, yamlPath string, fn func(fv reflect.Value, name, path string) error) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name := envPrefix + "_" + strings.ToUpper(tag)
		path := strings.TrimPrefix(yamlPath+"."+tag, ".")
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			if err := eachSetting(fv, name, path, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(fv, name, path); err != nil {
			return err
		}
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func setField(fv reflect.Value, raw string) error {
	switch {
	case fv.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
	case fv.Kind() == reflect.String:
		fv.SetString(raw)
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case fv.CanInt():
		n, err := strconv.ParseInt(raw, 10, fv.Type().Bits())
		if err != nil {
			return err
		}
		fv.SetInt(n)
	case fv.CanUint():
		n, err := strconv.ParseUint(raw, 10, fv.Type().Bits())
		if err != nil {
			return err
		}
		fv.SetUint(n)
	case fv.CanFloat():
		n, err := strconv.ParseFloat(raw, fv.Type().Bits())
		if err != nil {
			return err
		}
		fv.SetFloat(n)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		var parts []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		fv.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment (%s)", fv.Type())
	}
	return nil
}
