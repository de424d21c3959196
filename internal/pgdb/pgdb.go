// Package pgdb opens the PostgreSQL pool that holds Inlet's configuration and user directory.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/audit"
)

// Config is the PostgreSQL connection.
type Config struct {
	// DSN in libpq URL form. Default "postgres://postgres@127.0.0.1:15432/inlet?sslmode=disable" (the local
	// stack). Put credentials in INLET_POSTGRES_DSN rather than the file.
	DSN string `yaml:"dsn"`
	// MaxConns bounds the pool. Default 10; each connection costs ~10 MB on the server.
	MaxConns int32 `yaml:"max_conns"`
	// ConnectTimeout bounds one connection attempt. Default 5s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// Defaults returns the settings used when the file says nothing.
func Defaults() Config {
	return Config{
		DSN:            "postgres://postgres@127.0.0.1:15432/inlet?sslmode=disable",
		MaxConns:       10,
		ConnectTimeout: 5 * time.Second,
	}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c *Config) Validate() error {
	if c.DSN == "" {
		return errors.New("dsn: must not be empty")
	}
	if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	if c.MaxConns < 1 {
		return fmt.Errorf("max_conns: %d must be at least 1", c.MaxConns)
	}
	if c.ConnectTimeout <= 0 {
		return fmt.Errorf("connect_timeout: %s must be positive", c.ConnectTimeout)
	}
	return nil
}

// Open builds the pool and checks that the server answers. The pool reconnects by itself later.
func Open(ctx context.Context, c Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(c.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres dsn: %w", err)
	}
	pc.MaxConns = c.MaxConns
	pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	pc.PrepareConn = setActor
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres ping %s:%d: %w", pc.ConnConfig.Host, pc.ConnConfig.Port, err)
	}
	return pool, nil
}

// actorData is where a connection remembers the inlet.actor it was last given.
const actorData = "inlet.actor"

// setActor gives an acquired connection the audit actor of the context that acquires it (none: the
// empty setting), so that the audit triggers record whom a change is made by, in its own transaction.
// The setting is the session's: it costs a round trip only when it changes, which on the data path
// (no actor) is never.
func setActor(ctx context.Context, c *pgx.Conn) (bool, error) {
	var want string
	if a, ok := audit.ActorFrom(ctx); ok {
		want = a.Setting()
	}
	data := c.PgConn().CustomData()
	if have, _ := data[actorData].(string); have == want {
		return true, nil
	}
	if _, err := c.Exec(ctx, "SELECT set_config('inlet.actor', $1, false)", want); err != nil {
		// The connection's setting is unknown now: drop it, fail the query.
		return false, fmt.Errorf("set the audit actor: %w", err)
	}
	data[actorData] = want
	return true, nil
}
