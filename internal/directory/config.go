package directory

import (
	"errors"
	"fmt"
	"time"

	"github.com/inlet-dev/inlet/internal/phone"
)

// Config is the directory's settings, shared by the Store and the Resolver (both must normalise phone
// numbers the same way).
type Config struct {
	// DefaultRegion is the ISO 3166-1 alpha-2 region (e.g. "US", "GB") whose national numbering plan
	// reads phone numbers written without a country code, on write and on lookup alike. Default ""
	// (none): such numbers are invalid on write and match nothing on lookup. A project's phone_region,
	// when set, takes its place for that project. Changing either later does not rewrite numbers
	// already stored.
	DefaultRegion string `yaml:"default_region"`

	// ImportBatch is how many NDJSON lines go to PostgreSQL in one round trip. Default 1000; raising it
	// saves round trips but makes the per-line fallback after a bad batch longer, and holds more lines
	// in memory.
	ImportBatch int `yaml:"import_batch"`
	// MaxLineBytes bounds one NDJSON line; a longer line is reported as an error and skipped. Default
	// 64 KiB; it is also the import's read buffer.
	MaxLineBytes int `yaml:"max_line_bytes"`
	// MaxLineErrors bounds the per-line errors an import returns (the total is always counted). Default
	// 1000.
	MaxLineErrors int `yaml:"max_line_errors"`
	// MaxHWIDs bounds the hwids returned for one user by lookups and the resolver (most recently updated
	// first) and by ListDevices. Default 1000; each one travels in every fired event of that user.
	MaxHWIDs int `yaml:"max_hwids"`

	// CacheMaxBytes bounds the resolver cache's memory (approximate, by entry size). Default 64 MiB.
	CacheMaxBytes int64 `yaml:"cache_max_bytes"`
	// TTL is how long a found subject is served without asking PostgreSQL again. Changes are pushed
	// (LISTEN/NOTIFY) within a second; the TTL is only the backstop should a notification be lost.
	// Default 60s.
	TTL time.Duration `yaml:"ttl"`
	// NegativeTTL is how long "not found" is remembered, so that a flood of requests for unknown users
	// costs one query per value per NegativeTTL. Default 5s; a user created meanwhile is pushed anyway.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// MaxStale is how long an entry stays in memory after it was fetched, to be served when PostgreSQL
	// is unreachable (stale-if-error). Default 1h; the cache's cost bound applies too.
	MaxStale time.Duration `yaml:"max_stale"`
	// QueryTimeout bounds one resolver query, so that an unreachable PostgreSQL turns into stale answers
	// quickly. Default 2s.
	QueryTimeout time.Duration `yaml:"query_timeout"`
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		ImportBatch:   1000,
		MaxLineBytes:  64 << 10,
		MaxLineErrors: 1000,
		MaxHWIDs:      1000,
		CacheMaxBytes: 64 << 20,
		TTL:           60 * time.Second,
		NegativeTTL:   5 * time.Second,
		MaxStale:      time.Hour,
		QueryTimeout:  2 * time.Second,
	}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c *Config) Validate() error {
	switch {
	case !phone.ValidRegion(c.DefaultRegion):
		return fmt.Errorf("default_region: %q is not a known ISO 3166-1 alpha-2 region", c.DefaultRegion)
	case c.ImportBatch < 1 || c.ImportBatch > 100_000:
		return fmt.Errorf("import_batch: %d must be between 1 and 100000", c.ImportBatch)
	case c.MaxLineBytes < 1<<10 || c.MaxLineBytes > 16<<20:
		return fmt.Errorf("max_line_bytes: %d must be between 1 KiB and 16 MiB", c.MaxLineBytes)
	case c.MaxLineErrors < 0:
		return fmt.Errorf("max_line_errors: %d must not be negative", c.MaxLineErrors)
	case c.MaxHWIDs < 1:
		return fmt.Errorf("max_hwids: %d must be at least 1", c.MaxHWIDs)
	case c.CacheMaxBytes < 1<<20:
		return fmt.Errorf("cache_max_bytes: %d must be at least 1 MiB", c.CacheMaxBytes)
	case c.TTL <= 0:
		return fmt.Errorf("ttl: %s must be positive", c.TTL)
	case c.NegativeTTL <= 0:
		return fmt.Errorf("negative_ttl: %s must be positive", c.NegativeTTL)
	case c.MaxStale < c.TTL:
		return fmt.Errorf("max_stale: %s must be at least ttl (%s)", c.MaxStale, c.TTL)
	case c.QueryTimeout <= 0:
		return errors.New("query_timeout: must be positive")
	}
	return nil
}
