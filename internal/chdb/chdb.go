// Package chdb opens ClickHouse connections over the native protocol. The HTTP protocol is not used: the
// ClickHouse that Debian ships (18.16) does not speak the form clickhouse-go v2 needs over HTTP.
package chdb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config is the ClickHouse connection.
type Config struct {
	// Addrs of native-protocol endpoints. Default ["127.0.0.1:19000"] (the local stack).
	Addrs []string `yaml:"addrs"`
	// Database holding Inlet's tables; the migrate command creates it. Default "inlet".
	Database string `yaml:"database"`
	// Username. Default "default".
	Username string `yaml:"username"`
	// Password; prefer INLET_CLICKHOUSE_PASSWORD. Default empty.
	Password string `yaml:"password"`
	// DialTimeout bounds one connection attempt. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// MaxOpenConns bounds the connection pool. Default 8.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		Addrs:        []string{"127.0.0.1:19000"},
		Database:     "inlet",
		Username:     "default",
		DialTimeout:  5 * time.Second,
		MaxOpenConns: 8,
	}
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Validate reports the first invalid field, named as in the YAML file.
func (c *Config) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("addrs: must list at least one host:port")
	case !identRE.MatchString(c.Database):
		return fmt.Errorf("database: %q is not a plain identifier", c.Database)
	case c.DialTimeout <= 0:
		return fmt.Errorf("dial_timeout: %s must be positive", c.DialTimeout)
	case c.MaxOpenConns < 1:
		return fmt.Errorf("max_open_conns: %d must be at least 1", c.MaxOpenConns)
	}
	return nil
}

// Open connects to the configured database and checks that the server answers.
func Open(ctx context.Context, c Config) (driver.Conn, error) {
	return open(ctx, c, c.Database)
}

// OpenServer connects without selecting Inlet's database, for creating it.
func OpenServer(ctx context.Context, c Config) (driver.Conn, error) {
	return open(ctx, c, "default")
}

func open(ctx context.Context, c Config, database string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         c.Addrs,
		Auth:         clickhouse.Auth{Database: database, Username: c.Username, Password: c.Password},
		DialTimeout:  c.DialTimeout,
		MaxOpenConns: c.MaxOpenConns,
		MaxIdleConns: c.MaxOpenConns,
		Protocol:     clickhouse.Native,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %v: %w", c.Addrs, err)
	}
	pctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse ping %v: %w", c.Addrs, err)
	}
	return conn, nil
}
