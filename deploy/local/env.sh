# shellcheck shell=bash
# Settings of the local Inlet stack (Kafka, ClickHouse, PostgreSQL on 127.0.0.1).
#
# Sourced by deploy/local/{up,down,status,install,logs}; also fine to source from an
# interactive shell or a test harness to get the addresses:
#   . deploy/local/env.sh && echo "$INLET_POSTGRES_DSN"
# Every variable can be overridden from the environment. Only variables are defined here
# (no `set -e`, no functions), so sourcing it never changes the caller's shell behaviour.

INLET_REPO_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"

# All data, logs, pid files and downloaded jars live here; `deploy/local/down --purge` deletes it.
: "${INLET_STATE_DIR:=${INLET_REPO_DIR}/.state}"

# Kafka (KRaft, one node acting as broker and controller).
: "${KAFKA_VERSION:=4.1.1}"
: "${INLET_KAFKA_PORT:=19092}"
: "${INLET_KAFKA_CONTROLLER_PORT:=19093}"
: "${INLET_KAFKA_HEAP_OPTS:=${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}}"
: "${INLET_KAFKA_READY_TIMEOUT:=90}" # seconds

# ClickHouse (native protocol on INLET_CLICKHOUSE_PORT; the HTTP port is configured as well).
: "${INLET_CLICKHOUSE_PORT:=19000}"
: "${INLET_CLICKHOUSE_HTTP_PORT:=18123}"
: "${INLET_CLICKHOUSE_READY_TIMEOUT:=60}" # seconds

# PostgreSQL (its own cluster, owned by the `postgres` OS user, trust auth on 127.0.0.1).
: "${INLET_POSTGRES_PORT:=15432}"
: "${INLET_POSTGRES_VERSION:=15}"
: "${INLET_POSTGRES_BIN:=/usr/lib/postgresql/${INLET_POSTGRES_VERSION}/bin}"
: "${INLET_POSTGRES_READY_TIMEOUT:=60}" # seconds

# Addresses, under the names the Inlet processes and internal/testenv read (kafka.brokers,
# clickhouse.addrs, postgres.dsn). Derived from the ports above unless already set; the scripts
# themselves only use the ports.
: "${INLET_KAFKA_BROKERS:=127.0.0.1:${INLET_KAFKA_PORT}}"
: "${INLET_CLICKHOUSE_ADDRS:=127.0.0.1:${INLET_CLICKHOUSE_PORT}}"
: "${INLET_POSTGRES_DSN:=postgres://postgres@127.0.0.1:${INLET_POSTGRES_PORT}/inlet?sslmode=disable}"
: "${INLET_POSTGRES_TEST_DSN:=postgres://postgres@127.0.0.1:${INLET_POSTGRES_PORT}/inlet_test?sslmode=disable}"

export INLET_REPO_DIR INLET_STATE_DIR KAFKA_VERSION \
	INLET_KAFKA_PORT INLET_KAFKA_CONTROLLER_PORT INLET_KAFKA_HEAP_OPTS INLET_KAFKA_READY_TIMEOUT \
	INLET_CLICKHOUSE_PORT INLET_CLICKHOUSE_HTTP_PORT INLET_CLICKHOUSE_READY_TIMEOUT \
	INLET_POSTGRES_PORT INLET_POSTGRES_VERSION INLET_POSTGRES_BIN INLET_POSTGRES_READY_TIMEOUT \
	INLET_KAFKA_BROKERS INLET_CLICKHOUSE_ADDRS INLET_POSTGRES_DSN INLET_POSTGRES_TEST_DSN
