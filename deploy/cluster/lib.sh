# shellcheck shell=bash
# Implementation shared by deploy/cluster/{up,down,status,ctl}. Not meant to be run.
#
# Every unit of the cluster (zk, kafka1..3, ch1..2, pg, ingestor1..2, pipeline1..2, admin, haproxy) has a
# pid file under $INLET_CLUSTER_STATE_DIR and is started, stopped, killed and checked by name:
#   unit_start NAME   launch if not running        unit_wait NAME   block until it serves
#   unit_pid NAME     print the pid if running     unit_stop NAME   SIGTERM, then SIGKILL after a while
#   unit_kill NAME    SIGKILL (the fault matrix)   unit_freeze/unit_thaw NAME   SIGSTOP/SIGCONT
# The Kafka jar fetch, PostgreSQL and the process helpers are deploy/local/lib.sh's, run with this
# cluster's state directory and ports.

# shellcheck source=deploy/cluster/env.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/env.sh"

# deploy/local/lib.sh with this cluster's state directory, PostgreSQL port and addresses (its env.sh keeps
# values already set).
export INLET_STATE_DIR="$INLET_CLUSTER_STATE_DIR"
export INLET_POSTGRES_PORT="$INLET_CLUSTER_PG_PORT"
export INLET_KAFKA_BROKERS="$INLET_CLUSTER_KAFKA_BROKERS"
export INLET_CLICKHOUSE_ADDRS="$INLET_CLUSTER_CLICKHOUSE_ADDRS"
export INLET_POSTGRES_DSN="$INLET_CLUSTER_POSTGRES_DSN"
export INLET_POSTGRES_TEST_DSN="postgres://postgres@127.0.0.1:${INLET_CLUSTER_PG_PORT}/inlet_test?sslmode=disable"
read -r -a KPORTS <<<"$INLET_CLUSTER_KAFKA_PORTS"
read -r -a KCPORTS <<<"$INLET_CLUSTER_KAFKA_CONTROLLER_PORTS"
read -r -a CHTCP <<<"$INLET_CLUSTER_CH_TCP_PORTS"
read -r -a CHHTTP <<<"$INLET_CLUSTER_CH_HTTP_PORTS"
read -r -a CHIS <<<"$INLET_CLUSTER_CH_INTERSERVER_PORTS"
read -r -a INGP <<<"$INLET_CLUSTER_INGESTOR_PORTS"
read -r -a INGIP <<<"$INLET_CLUSTER_INGESTOR_INTERNAL_PORTS"
read -r -a PIPIP <<<"$INLET_CLUSTER_PIPELINE_INTERNAL_PORTS"
export INLET_KAFKA_PORT="${KPORTS[0]}" INLET_KAFKA_CONTROLLER_PORT="${KCPORTS[0]}"
export INLET_CLICKHOUSE_PORT="${CHTCP[0]}" INLET_CLICKHOUSE_HTTP_PORT="${CHHTTP[0]}"
# shellcheck source=deploy/local/lib.sh
. "$INLET_REPO_DIR/deploy/local/lib.sh"
PROG="deploy/cluster/${0##*/}"
CLUSTER_DIR="$INLET_REPO_DIR/deploy/cluster"
BIN="${INLET_BIN:-$INLET_REPO_DIR/bin/inlet}"

SERVICE_UNITS=(zk kafka1 kafka2 kafka3 ch1 ch2 pg)
INLET_UNITS=(admin pipeline1 pipeline2 ingestor1 ingestor2 haproxy)
ALL_UNITS=("${SERVICE_UNITS[@]}" "${INLET_UNITS[@]}")

ensure_state_dir() {
	mkdir -p -- "$STATE" || die "cannot create state directory $STATE"
	[[ -f $STATE/.inlet-state ]] ||
		printf 'Local Inlet cluster state (deploy/cluster). Safe to delete when stopped.\n' >"$STATE/.inlet-state"
}

# cluster_install : apt-get install ZooKeeper and HAProxy when missing (the rest as deploy/local/install).
cluster_install() {
	install_components kafka clickhouse postgres
	local pkgs=()
	[[ -f /usr/share/java/zookeeper.jar ]] || pkgs+=(zookeeper)
	command -v haproxy >/dev/null || pkgs+=(haproxy)
	command -v curl >/dev/null || pkgs+=(curl)
	((${#pkgs[@]} == 0)) && return 0
	[[ $EUID -eq 0 ]] || die "missing packages: ${pkgs[*]} (run as root, or install them with apt-get)"
	note "installing ${pkgs[*]} (log: $STATE/apt.log)"
	(
		export DEBIAN_FRONTEND=noninteractive
		policy=/usr/sbin/policy-rc.d
		if [[ ! -e $policy ]]; then
			trap 'rm -f "$policy"' EXIT
			printf '#!/bin/sh\nexit 101\n' >"$policy"
			chmod 755 "$policy"
		fi
		apt-get update -q >"$STATE/apt.log" 2>&1 &&
			apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
				"${pkgs[@]}" >>"$STATE/apt.log" 2>&1
	) || {
		tail -n 20 "$STATE/apt.log" >&2
		die "apt-get install ${pkgs[*]} failed"
	}
}

# unit_dir NAME, unit_log NAME, unit_pidfile NAME
unit_dir() { printf '%s/%s' "$STATE" "$1"; }
unit_log() { printf '%s/%s/stdout.log' "$STATE" "$1"; }
unit_pidfile() { printf '%s/%s/pid' "$STATE" "$1"; }
unit_index() { printf '%s' "${1//[!0-9]/}"; }

# unit_needle NAME : a string of the unit's command line, to tell its pid from a recycled one.
unit_needle() {
	case "$1" in
	zk) printf '%s' "$(unit_dir zk)/zoo.cfg" ;;
	kafka*) printf '%s' "$(unit_dir "$1")/server.properties" ;;
	ch*) printf '%s' "$(unit_dir "$1")/etc/config.xml" ;;
	haproxy) printf '%s' "$(unit_dir haproxy)/haproxy.cfg" ;;
	*) printf '%s' "$BIN" ;;
	esac
}

unit_pid() {
	if [[ $1 == pg ]]; then
		postgres_pid
		return
	fi
	pid_from_file "$(unit_pidfile "$1")" "$(unit_needle "$1")"
}

# unit_port NAME : the port that tells the unit serves.
unit_port() {
	local i
	i=$(unit_index "$1")
	case "$1" in
	zk) printf '%s' "$INLET_CLUSTER_ZK_PORT" ;;
	kafka*) printf '%s' "${KPORTS[i - 1]}" ;;
	ch*) printf '%s' "${CHTCP[i - 1]}" ;;
	pg) printf '%s' "$INLET_CLUSTER_PG_PORT" ;;
	ingestor*) printf '%s' "${INGIP[i - 1]}" ;;
	pipeline*) printf '%s' "${PIPIP[i - 1]}" ;;
	admin) printf '%s' "$INLET_CLUSTER_ADMIN_INTERNAL_PORT" ;;
	haproxy) printf '%s' "$INLET_CLUSTER_EDGE_PORT" ;;
	esac
}

# ---------------------------------------------------------------------------------------------
# ZooKeeper (Debian's jars, one server)

zk_start() {
	local d
	d=$(unit_dir zk)
	mkdir -p -- "$d/data"
	cat >"$d/zoo.cfg" <<CFG
# Generated by deploy/cluster/up.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
clientPort=$INLET_CLUSTER_ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=200
admin.enableServer=false
4lw.commands.whitelist=ruok,stat,mntr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
CFG
	local heap
	read -r -a heap <<<"$INLET_CLUSTER_ZK_HEAP_OPTS"
	launch "$(unit_pidfile zk)" "$(unit_log zk)" java "${heap[@]}" -XX:TieredStopAtLevel=1 \
		-Dzookeeper.log.dir="$d" -cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-api.jar" \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg"
}

zk_ready() {
	local out
	out=$(exec 3<>"/dev/tcp/127.0.0.1/$INLET_CLUSTER_ZK_PORT" && printf 'ruok' >&3 && timeout 2 cat <&3) 2>/dev/null
	[[ $out == imok ]]
}

# ---------------------------------------------------------------------------------------------
# Kafka: three KRaft nodes (broker + controller each), jars from deploy/local's Maven fetch.

kafka_node_start() {
	local name=$1 i d voters="" j id
	i=$(unit_index "$name")
	d=$(unit_dir "$name")
	mkdir -p -- "$d/data" "$d/logs" "$KAFKA_LOGS"
	for j in 1 2 3; do
		voters+="${voters:+,}$j@127.0.0.1:${KCPORTS[j - 1]}"
	done
	cat >"$d/server.properties" <<CFG
# Generated by deploy/cluster/up on every start.
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${KPORTS[i - 1]},CONTROLLER://127.0.0.1:${KCPORTS[i - 1]}
advertised.listeners=PLAINTEXT://127.0.0.1:${KPORTS[i - 1]}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$d/data
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
unclean.leader.election.enable=false
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=24
CFG
	if [[ ! -f $d/data/meta.properties ]]; then
		id=$(<"$STATE/kafka-cluster.id")
		kafka_java kafka.tools.StorageTool format --cluster-id="$id" -c "$d/server.properties" \
			>"$d/logs/format.log" 2>&1 || {
			tail_logs "$d/logs/format.log"
			die "kafka storage format of $name failed"
		}
	fi
	local heap
	read -r -a heap <<<"$INLET_CLUSTER_KAFKA_HEAP_OPTS"
	launch "$(unit_pidfile "$name")" "$(unit_log "$name")" \
		java "${heap[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
		-XX:TieredStopAtLevel=1 -Djava.awt.headless=true -Dkafka.logs.dir="$d/logs" \
		-Dlog4j2.configurationFile="$LOCAL_DIR/kafka/log4j2.xml" \
		-cp "$KAFKA_LIB/*" kafka.Kafka "$d/server.properties"
}

kafka_prepare() {
	mkdir -p -- "$KAFKA_LOGS"
	kafka_fetch
	kafka_compile_probe
	if [[ ! -s $STATE/kafka-cluster.id ]]; then
		local id=-
		while [[ $id == -* ]]; do
			id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
		done
		printf '%s\n' "$id" >"$STATE/kafka-cluster.id"
	fi
}

# ---------------------------------------------------------------------------------------------
# ClickHouse replicas

ch_start() {
	local name=$1 i d
	i=$(unit_index "$name")
	d=$(unit_dir "$name")
	mkdir -p -- "$d/etc" "$d/logs"
	python3 "$CLUSTER_DIR/chconfig.py" --src "${INLET_CLICKHOUSE_SOURCE_CONFIG:-/etc/clickhouse-server}" \
		--dst "$d/etc" --root "$d" --tcp-port "${CHTCP[i - 1]}" --http-port "${CHHTTP[i - 1]}" \
		--interserver-port "${CHIS[i - 1]}" --replica "r$i" --cluster "$INLET_CLUSTER_CH_NAME" \
		--replicas "127.0.0.1:${CHTCP[0]},127.0.0.1:${CHTCP[1]}" --zookeeper "127.0.0.1:$INLET_CLUSTER_ZK_PORT" \
		--max-memory "$INLET_CLUSTER_CH_MAX_MEMORY" || die "could not write the ClickHouse config of $name"
	launch "$(unit_pidfile "$name")" "$(unit_log "$name")" clickhouse-server --config-file="$d/etc/config.xml"
}

ch_query() { # ch_query N QUERY
	clickhouse-client --host 127.0.0.1 --port "${CHTCP[$1 - 1]}" --connect_timeout 2 -q "$2" 9>&-
}

# ---------------------------------------------------------------------------------------------
# Inlet processes and HAProxy

# inlet_env NAME : the environment of an Inlet process of this cluster.
inlet_env() {
	local i
	i=$(unit_index "$1")
	printf '%s\n' INLET_KAFKA_BROKERS="$INLET_CLUSTER_KAFKA_BROKERS" INLET_KAFKA_REPLICATION_FACTOR=3 \
		INLET_CLICKHOUSE_ADDRS="$INLET_CLUSTER_CLICKHOUSE_ADDRS" INLET_CLICKHOUSE_CLUSTER="$INLET_CLUSTER_CH_NAME" \
		INLET_POSTGRES_DSN="$INLET_CLUSTER_POSTGRES_DSN" GOMEMLIMIT="$INLET_CLUSTER_GOMEMLIMIT"
	case "$1" in
	ingestor*)
		printf '%s\n' INLET_INGESTOR_LISTEN_ADDR="127.0.0.1:${INGP[i - 1]}" \
			INLET_INGESTOR_INTERNAL_ADDR="127.0.0.1:${INGIP[i - 1]}" INLET_INGESTOR_MAX_CONNS_PER_IP=0
		;;
	pipeline*)
		printf '%s\n' INLET_PIPELINE_INTERNAL_ADDR="127.0.0.1:${PIPIP[i - 1]}" \
			INLET_PIPELINE_INSTANCE_ID="cluster-pipeline-$i"
		;;
	admin)
		printf '%s\n' INLET_ADMIN_LISTEN_ADDR="127.0.0.1:$INLET_CLUSTER_ADMIN_PORT" \
			INLET_ADMIN_INTERNAL_ADDR="127.0.0.1:$INLET_CLUSTER_ADMIN_INTERNAL_PORT"
		;;
	esac
}

inlet_start() {
	local name=$1 d envs
	d=$(unit_dir "$name")
	mkdir -p -- "$d"
	[[ -x $BIN ]] || die "$BIN missing; run make build"
	mapfile -t envs < <(inlet_env "$name")
	launch "$(unit_pidfile "$name")" "$(unit_log "$name")" env "${envs[@]}" "$BIN" "${name%%[0-9]*}"
}

haproxy_start() {
	local d
	d=$(unit_dir haproxy)
	mkdir -p -- "$d"
	cat >"$d/haproxy.cfg" <<CFG
# Generated by deploy/cluster/up: the edge, in front of the two ingestors.
global
    maxconn 4096
    nbthread 1
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    # A connection refused or reset before the request was sent is retried on the other ingestor; a
    # request an ingestor received is never sent twice (it may have been produced to Kafka).
    retries 3
    option redispatch 1
    retry-on conn-failure
frontend edge
    bind 127.0.0.1:$INLET_CLUSTER_EDGE_PORT
    default_backend ingestors
backend ingestors
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
    server ingestor1 127.0.0.1:${INGP[0]} check port ${INGIP[0]}
    server ingestor2 127.0.0.1:${INGP[1]} check port ${INGIP[1]}
listen stats
    bind 127.0.0.1:$INLET_CLUSTER_HAPROXY_STATS_PORT
    stats enable
    stats uri /
CFG
	haproxy -c -q -f "$d/haproxy.cfg" || die "invalid $d/haproxy.cfg"
	launch "$(unit_pidfile haproxy)" "$(unit_log haproxy)" haproxy -db -f "$d/haproxy.cfg"
}

# ---------------------------------------------------------------------------------------------
# Generic unit control

unit_start() {
	local name=$1
	unit_pid "$name" >/dev/null && return 0
	mkdir -p -- "$(unit_dir "$name")"
	if [[ $name != pg ]] && port_open "$(unit_port "$name")"; then
		die "port 127.0.0.1:$(unit_port "$name") of $name is already in use by another process"
	fi
	case "$name" in
	zk) zk_start ;;
	kafka*) kafka_node_start "$name" ;;
	ch*) ch_start "$name" ;;
	pg) postgres_start ;;
	haproxy) haproxy_start ;;
	*) inlet_start "$name" ;;
	esac
}

# unit_serving NAME : it answers (one probe, no waiting).
unit_serving() {
	local name=$1 i
	i=$(unit_index "$name")
	case "$name" in
	zk) zk_ready ;;
	kafka*) port_open "${KPORTS[i - 1]}" ;;
	ch*) [[ $(ch_query "$i" 'SELECT 1' 2>/dev/null) == 1 ]] ;;
	pg) postgres_psql -d postgres -At -c 'SELECT 1' >/dev/null 2>&1 ;;
	haproxy) port_open "$INLET_CLUSTER_EDGE_PORT" ;;
	*) curl -fsS -m 2 "http://127.0.0.1:$(unit_port "$name")/healthz" >/dev/null 2>&1 ;;
	esac
}

unit_wait() {
	local name=$1 secs=${2:-90} deadline
	deadline=$((SECONDS + secs))
	if [[ $name == pg ]]; then
		postgres_wait
		return
	fi
	while ! unit_serving "$name"; do
		unit_pid "$name" >/dev/null || {
			tail_logs "$(unit_log "$name")"
			die "$name exited during start-up (log: $(unit_log "$name"))"
		}
		((SECONDS < deadline)) || {
			tail_logs "$(unit_log "$name")"
			die "$name did not serve within ${secs}s (log: $(unit_log "$name"))"
		}
		sleep 0.3
	done
}

unit_stop() {
	local name=$1 pid
	if [[ $name == pg ]]; then
		postgres_stop || true
		return 0
	fi
	pid=$(unit_pid "$name") || {
		rm -f -- "$(unit_pidfile "$name")"
		return 0
	}
	stop_pid "$pid" "$name" 30
	rm -f -- "$(unit_pidfile "$name")"
}

unit_kill() {
	local name=$1 pid i
	pid=$(unit_pid "$name") || return 0
	kill -KILL "$pid"
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if [[ $name == pg ]]; then
		# The postmaster's children go with it only after they notice; wait for the port to close.
		for ((i = 0; i < 100; i++)); do
			port_open "$INLET_CLUSTER_PG_PORT" || break
			sleep 0.1
		done
	fi
}

unit_line() {
	local name=$1 pid
	if pid=$(unit_pid "$name"); then
		if unit_serving "$name"; then
			printf '%-10s running      127.0.0.1:%-6s pid %s\n' "$name" "$(unit_port "$name")" "$pid"
			return 0
		fi
		printf '%-10s not-serving  127.0.0.1:%-6s pid %s\n' "$name" "$(unit_port "$name")" "$pid"
		return 1
	fi
	printf '%-10s stopped\n' "$name"
	return 1
}

# expand_units ARG... : unit names (services, inlet, all, kafka, ch, ingestor, pipeline groups).
expand_units() {
	local a
	UNITS=()
	for a in "$@"; do
		case "$a" in
		all) UNITS+=("${ALL_UNITS[@]}") ;;
		services) UNITS+=("${SERVICE_UNITS[@]}") ;;
		inlet) UNITS+=("${INLET_UNITS[@]}") ;;
		kafka) UNITS+=(kafka1 kafka2 kafka3) ;;
		ch | clickhouse) UNITS+=(ch1 ch2) ;;
		ingestors) UNITS+=(ingestor1 ingestor2) ;;
		pipelines) UNITS+=(pipeline1 pipeline2) ;;
		zk | kafka[123] | ch[12] | pg | ingestor[12] | pipeline[12] | admin | haproxy) UNITS+=("$a") ;;
		*) die "unknown unit '$a' (expected: all, services, inlet, kafka, ch, ingestors, pipelines, zk, kafka1..3, ch1..2, pg, ingestor1..2, pipeline1..2, admin, haproxy)" ;;
		esac
	done
	((${#UNITS[@]} > 0)) || UNITS=("${ALL_UNITS[@]}")
}
