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
	// Cluster names the ClickHouse cluster (remote_servers) whose replicas addrs lists, all of one shard;
	// empty: a single server. With it, migrate creates Replicated*MergeTree tables on every replica, the
	// pipeline inserts with insert_quorum and reads its high-water marks with
	// select_sequential_consistency, and connections go to the replicas in turn (docs/cluster.md).
	// Default empty.
	Cluster string `yaml:"cluster"`
	// InsertQuorum is how many replicas must have an insert before it succeeds, with cluster set; 0
	// means every replica addrs lists (the exactly-once argument in docs/architecture.md needs a quorum
	// insert to be on the replica every later read may go to). Default 0.
	InsertQuorum int `yaml:"insert_quorum"`
}

// Replicated reports whether the settings name a cluster of replicas.
func (c *Config) Replicated() bool { return c.Cluster != "" }

// Quorum is the insert_quorum of the cluster's inserts: InsertQuorum, or every replica when 0.
func (c *Config) Quorum() int {
	if c.InsertQuorum > 0 {
		return c.InsertQuorum
	}
	return len(c.Addrs)
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
	case c.Cluster != "" && !identRE.MatchString(c.Cluster):
		return fmt.Errorf("cluster: %q is not a plain identifier", c.Cluster)
	case c.InsertQuorum < 0 || c.InsertQuorum > len(c.Addrs):
		return fmt.Errorf("insert_quorum: %d is outside 0..%d (the replicas addrs lists)", c.InsertQuorum, len(c.Addrs))
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

// OpenReplicas connects to the configured database on each address separately, in the order of Addrs:
// what must be checked on every replica (running inserts) or done on each (migrations).
func OpenReplicas(ctx context.Context, c Config) ([]driver.Conn, error) {
	var out []driver.Conn
	for _, a := range c.Addrs {
		one := c
		one.Addrs = []string{a}
		conn, err := Open(ctx, one)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		out = append(out, conn)
	}
	return out, nil
}

func open(ctx context.Context, c Config, database string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         c.Addrs,
		Auth:         clickhouse.Auth{Database: database, Username: c.Username, Password: c.Password},
		DialTimeout:  c.DialTimeout,
		MaxOpenConns: c.MaxOpenConns,
		MaxIdleConns: c.MaxOpenConns,
		Protocol:     clickhouse.Native,
		// A cluster's replicas take connections in turn, so that reads and inserts do go to either.
		ConnOpenStrategy: strategy(c),
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

func strategy(c Config) clickhouse.ConnOpenStrategy {
	if c.Replicated() {
		return clickhouse.ConnOpenRoundRobin
	}
	return clickhouse.ConnOpenInOrder
}
