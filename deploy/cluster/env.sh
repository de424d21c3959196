# shellcheck shell=bash
# Settings of the local Inlet cluster (deploy/cluster): three Kafka brokers, ZooKeeper, two ClickHouse
# replicas of one shard, PostgreSQL, two ingestors behind HAProxy, two pipelines and the admin, all on
# 127.0.0.1, on ports and in a state directory of their own, so that it runs beside deploy/local's
# single-node stack. Sourced by deploy/cluster/{up,down,status,ctl} and by the cluster tests; only
# variables are defined here, every one can be overridden from the environment.

INLET_REPO_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"

# Everything the cluster writes (data, logs, pids, jars) lives here; `deploy/cluster/down --purge` deletes it.
: "${INLET_CLUSTER_STATE_DIR:=${INLET_REPO_DIR}/.state-cluster}"

# Kafka: three KRaft nodes, each broker and controller.
: "${INLET_CLUSTER_KAFKA_PORTS:=29092 29093 29094}"
: "${INLET_CLUSTER_KAFKA_CONTROLLER_PORTS:=29192 29193 29194}"
: "${INLET_CLUSTER_KAFKA_HEAP_OPTS:=-Xms128m -Xmx384m}"

# ZooKeeper (one server), for the ClickHouse replicas.
: "${INLET_CLUSTER_ZK_PORT:=22181}"
: "${INLET_CLUSTER_ZK_HEAP_OPTS:=-Xms64m -Xmx192m}"

# ClickHouse: two replicas of shard 01 of cluster "inlet" (native, HTTP and interserver ports).
: "${INLET_CLUSTER_CH_TCP_PORTS:=29001 29002}"
: "${INLET_CLUSTER_CH_HTTP_PORTS:=28123 28124}"
: "${INLET_CLUSTER_CH_INTERSERVER_PORTS:=29009 29010}"
: "${INLET_CLUSTER_CH_NAME:=inlet}"
: "${INLET_CLUSTER_CH_MAX_MEMORY:=1000000000}" # bytes, per query (max_memory_usage)

# PostgreSQL: its own server (so that the fault matrix can stop it without touching deploy/local's).
: "${INLET_CLUSTER_PG_PORT:=25432}"

# HAProxy (the edge, in front of the ingestors) and the Inlet processes.
: "${INLET_CLUSTER_EDGE_PORT:=28080}"
: "${INLET_CLUSTER_HAPROXY_STATS_PORT:=28404}"
: "${INLET_CLUSTER_INGESTOR_PORTS:=28081 28082}"
: "${INLET_CLUSTER_INGESTOR_INTERNAL_PORTS:=29111 29112}"
: "${INLET_CLUSTER_PIPELINE_INTERNAL_PORTS:=29121 29122}"
: "${INLET_CLUSTER_ADMIN_PORT:=28090}"
: "${INLET_CLUSTER_ADMIN_INTERNAL_PORT:=29131}"
: "${INLET_CLUSTER_GOMEMLIMIT:=384MiB}"

# Addresses, as the Inlet processes and the cluster tests read them.
read -r -a _kp <<<"$INLET_CLUSTER_KAFKA_PORTS"
read -r -a _cp <<<"$INLET_CLUSTER_CH_TCP_PORTS"
: "${INLET_CLUSTER_KAFKA_BROKERS:=127.0.0.1:${_kp[0]},127.0.0.1:${_kp[1]},127.0.0.1:${_kp[2]}}"
: "${INLET_CLUSTER_CLICKHOUSE_ADDRS:=127.0.0.1:${_cp[0]},127.0.0.1:${_cp[1]}}"
: "${INLET_CLUSTER_POSTGRES_DSN:=postgres://postgres@127.0.0.1:${INLET_CLUSTER_PG_PORT}/inlet?sslmode=disable}"
: "${INLET_CLUSTER_EDGE_URL:=http://127.0.0.1:${INLET_CLUSTER_EDGE_PORT}}"
unset _kp _cp

export INLET_REPO_DIR INLET_CLUSTER_STATE_DIR INLET_CLUSTER_KAFKA_PORTS INLET_CLUSTER_KAFKA_CONTROLLER_PORTS \
	INLET_CLUSTER_KAFKA_HEAP_OPTS INLET_CLUSTER_ZK_PORT INLET_CLUSTER_ZK_HEAP_OPTS INLET_CLUSTER_CH_TCP_PORTS \
	INLET_CLUSTER_CH_HTTP_PORTS INLET_CLUSTER_CH_INTERSERVER_PORTS INLET_CLUSTER_CH_NAME INLET_CLUSTER_CH_MAX_MEMORY \
	INLET_CLUSTER_PG_PORT INLET_CLUSTER_EDGE_PORT INLET_CLUSTER_HAPROXY_STATS_PORT INLET_CLUSTER_INGESTOR_PORTS \
	INLET_CLUSTER_INGESTOR_INTERNAL_PORTS INLET_CLUSTER_PIPELINE_INTERNAL_PORTS INLET_CLUSTER_ADMIN_PORT \
	INLET_CLUSTER_ADMIN_INTERNAL_PORT INLET_CLUSTER_GOMEMLIMIT INLET_CLUSTER_KAFKA_BROKERS \
	INLET_CLUSTER_CLICKHOUSE_ADDRS INLET_CLUSTER_POSTGRES_DSN INLET_CLUSTER_EDGE_URL
