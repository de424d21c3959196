# shellcheck shell=bash
# Implementation shared by deploy/local/{install,up,down,status,logs}. Not meant to be run.
#
# Every service has:  <svc>_start (launch if not running), <svc>_wait (block until usable),
# <svc>_pid (print the pid if running), <svc>_addr, <svc>_stop, <svc>_logs (log files).

# shellcheck source=deploy/local/env.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/env.sh"

LOCAL_DIR="${INLET_REPO_DIR}/deploy/local"
STATE="${INLET_STATE_DIR}"
ALL_SERVICES=(kafka clickhouse postgres)

PROG="deploy/local/${0##*/}"

die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

note() {
	printf '%s: %s\n' "$PROG" "$*" >&2
}

# parse_services ARG... : sets SERVICES to the canonical names given (all when none).
parse_services() {
	SERVICES=()
	local a
	for a in "$@"; do
		case "$a" in
		kafka) SERVICES+=(kafka) ;;
		clickhouse | ch) SERVICES+=(clickhouse) ;;
		postgres | postgresql | pg) SERVICES+=(postgres) ;;
		all) SERVICES+=("${ALL_SERVICES[@]}") ;;
		*) die "unknown service '$a' (expected: kafka, clickhouse, postgres)" ;;
		esac
	done
	if [[ ${#SERVICES[@]} -eq 0 ]]; then
		SERVICES=("${ALL_SERVICES[@]}")
	fi
}

# ---------------------------------------------------------------------------------------------
# Processes

# alive PID : the process exists and is not a zombie.
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# pid_from_file FILE NEEDLE : print the pid in FILE if that process is alive and its command
# line contains NEEDLE (guards against a recycled pid after a reboot or a kill -9).
pid_from_file() {
	local file=$1 needle=$2 pid cmd
	[[ -r $file ]] || return 1
	read -r pid <"$file" 2>/dev/null || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmd == *"$needle"* ]] || return 1
	printf '%s\n' "$pid"
}

# port_open PORT : some process listens on TCP PORT (any address). Read from /proc/net rather
# than by connecting, which would leave "client sent no data" noise in the servers' logs.
port_open() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v suffix=":$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == suffix { found = 1 }
		END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# port_busy_msg PORT ENV_NAME : error message for a port taken by a process that is not ours.
port_busy_msg() {
	local port=$1 env_name=$2
	printf 'port 127.0.0.1:%s is already in use by another process; stop it or set %s' "$port" "$env_name"
}

# stop_pid PID NAME SECONDS : SIGTERM, wait up to SECONDS, then SIGKILL.
stop_pid() {
	local pid=$1 name=$2 secs=$3 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 5; i++)); do
		alive "$pid" || return 0
		sleep 0.2
	done
	note "$name (pid $pid) did not stop within ${secs}s; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || return 0
		sleep 0.2
	done
	die "$name (pid $pid) survived SIGKILL"
}

# launch PIDFILE LOG CMD... : start CMD detached (own session, no inherited stdio or lock fd)
# and record its pid. Stdio must not stay attached to the caller: `go test` and CI runners
# wait for their pipes to close.
launch() {
	local pidfile=$1 log=$2 pid self i
	shift 2
	setsid nohup "$@" >>"$log" 2>&1 </dev/null 9>&- &
	pid=$!
	printf '%s\n' "$pid" >"$pidfile"
	# Until it execs the command, the child is a fork of this shell with this shell's command line: a
	# check right after (pid_from_file looks for the command's arguments) would take the fork for a
	# server that exited during start-up. Wait for the exec (or the child's end) first.
	self=$(tr '\0' ' ' <"/proc/$$/cmdline")
	for ((i = 0; i < 200; i++)); do
		[[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) != "$self" ]] && return 0
		sleep 0.05
	done
}

# tail_logs FILE... : print the last lines of each existing file, to stderr.
tail_logs() {
	local f n=${TAIL_LINES:-40}
	for f in "$@"; do
		[[ -s $f ]] || continue
		printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
		tail -n "$n" "$f" >&2
	done
}

# fail SVC MESSAGE : print the service's log tails, then the error, and exit 1.
fail() {
	local svc=$1 _logs
	shift
	mapfile -t _logs < <("${svc}_logs")
	tail_logs "${_logs[@]}"
	die "$*"
}

# ---------------------------------------------------------------------------------------------
# State directory and locking

ensure_state_dir() {
	if [[ ! -d $STATE ]]; then
		mkdir -p -- "$STATE" || die "cannot create state directory $STATE"
	fi
	[[ -f $STATE/.inlet-state ]] ||
		printf 'Local Inlet stack state (deploy/local). Safe to delete when stopped.\n' >"$STATE/.inlet-state"
}

# lock_state : serialise up/down/purge (e.g. parallel test packages restarting a service).
# The lock is fd 9; `launch` closes it in the daemons so they do not hold it forever.
lock_state() {
	ensure_state_dir
	exec 9>>"$STATE/.lock"
	flock -w 600 9 || die "timed out waiting for the lock $STATE/.lock"
}

# as_postgres CMD... : run CMD as the postgres OS user (PostgreSQL refuses to run as root),
# from / so that the caller's unreadable cwd does not matter. Non-root users run it as themselves.
as_postgres() {
	if [[ $EUID -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@" 9>&-)
	else
		("$@" 9>&-)
	fi
}

# ---------------------------------------------------------------------------------------------
# Installation of OS packages

# missing_packages COMPONENT... : print the Debian packages needed for the components
# (kafka clickhouse postgres browser make buildah) whose programs are not installed.
missing_packages() {
	local c pkgs=()
	for c in "$@"; do
		case "$c" in
		kafka)
			command -v java >/dev/null && command -v javac >/dev/null || pkgs+=(openjdk-17-jdk-headless)
			command -v mvn >/dev/null || pkgs+=(maven)
			;;
		clickhouse)
			command -v clickhouse-server >/dev/null || pkgs+=(clickhouse-server)
			command -v clickhouse-client >/dev/null || pkgs+=(clickhouse-client)
			command -v python3 >/dev/null || pkgs+=(python3)
			;;
		postgres)
			local b ok=1
			for b in initdb pg_ctl postgres psql; do
				[[ -x $INLET_POSTGRES_BIN/$b ]] || ok=0
			done
			((ok)) || pkgs+=(postgresql "postgresql-${INLET_POSTGRES_VERSION}")
			;;
		browser)
			command -v chromium >/dev/null || pkgs+=(chromium)
			command -v chromedriver >/dev/null || pkgs+=(chromium-driver)
			;;
		make)
			command -v make >/dev/null || pkgs+=(make)
			;;
		buildah)
			command -v buildah >/dev/null || pkgs+=(buildah)
			[[ -s /etc/ssl/certs/ca-certificates.crt ]] || pkgs+=(ca-certificates)
			;;
		*) die "internal: unknown component $c" ;;
		esac
	done
	# Tools the scripts themselves use (util-linux and coreutils are Essential on Debian).
	command -v flock >/dev/null && command -v runuser >/dev/null && command -v setsid >/dev/null ||
		pkgs+=(util-linux)
	((${#pkgs[@]} == 0)) || printf '%s\n' "${pkgs[@]}" | sort -u
}

# install_components COMPONENT... : apt-get install whatever the components lack (apt-get update
# first). Service start-up by the packages' maintainer scripts is suppressed with a temporary
# policy-rc.d, so the distribution's own clickhouse/postgresql services stay down.
install_components() {
	local pkgs
	mapfile -t pkgs < <(missing_packages "$@")
	((${#pkgs[@]} > 0)) || return 0
	[[ $EUID -eq 0 ]] || die "missing packages: ${pkgs[*]} (run as root, or install them with apt-get)"
	command -v apt-get >/dev/null || die "missing packages: ${pkgs[*]}, and no apt-get to install them"
	ensure_state_dir
	local log="$STATE/apt.log"
	note "installing ${pkgs[*]} (log: $log)"
	(
		export DEBIAN_FRONTEND=noninteractive
		policy=/usr/sbin/policy-rc.d
		if [[ ! -e $policy ]]; then
			trap 'rm -f "$policy"' EXIT
			printf '#!/bin/sh\n# Temporary, from deploy/local/install: no service starts during apt-get.\nexit 101\n' >"$policy"
			chmod 755 "$policy"
		fi
		: >"$log"
		for attempt in 1 2 3; do # mirrors hiccup
			apt-get update -q >>"$log" 2>&1 && break
			if ((attempt == 3)); then
				tail -n 30 "$log" >&2
				exit 1
			fi
			sleep 5
		done
		for attempt in 1 2; do
			apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
				"${pkgs[@]}" >>"$log" 2>&1 && break
			# Also reached when a maintainer script fails (e.g. trying to start its service):
			# what counts is whether the programs are there, checked below.
			note "apt-get install reported an error (attempt $attempt; log: $log)"
			tail -n 15 "$log" >&2
			sleep 3
		done
	) || die "apt-get update failed (log: $log)"
	mapfile -t pkgs < <(missing_packages "$@")
	((${#pkgs[@]} == 0)) || die "still missing after apt-get install: ${pkgs[*]} (log: $log)"
}

# ---------------------------------------------------------------------------------------------
# Kafka (KRaft, single node: broker + controller)

KAFKA_DIR="$STATE/kafka"
KAFKA_LIB="$KAFKA_DIR/lib"
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_READY_TOPIC="_inlet_ready"

kafka_pid() { pid_from_file "$KAFKA_PIDFILE" "$KAFKA_PROPS"; }
kafka_addr() { printf '127.0.0.1:%s' "$INLET_KAFKA_PORT"; }
kafka_logs() { printf '%s\n' "$KAFKA_LOGS/stdout.log" "$KAFKA_LOGS/server.log" "$KAFKA_LOGS/tools.log"; }
kafka_extra() { printf 'controller 127.0.0.1:%s' "$INLET_KAFKA_CONTROLLER_PORT"; }

kafka_java() {
	java -XX:TieredStopAtLevel=1 -Xmx256m -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$LOCAL_DIR/kafka/log4j2-tools.xml" -Dkafka.logs.dir="$KAFKA_LOGS" \
		-cp "$KAFKA_DIR/classes:$KAFKA_LIB/*" "$@" 9>&-
}

# Jars from Maven Central, re-fetched only when KAFKA_VERSION or the pom changes.
kafka_fetch() {
	local pom="$LOCAL_DIR/kafka/pom.xml" stamp tmp="$KAFKA_DIR/lib.tmp"
	stamp="$KAFKA_VERSION $(sha256sum <"$pom" | cut -c1-16)"
	if [[ -f $KAFKA_LIB/.stamp && $(<"$KAFKA_LIB/.stamp") == "$stamp" ]]; then
		return 0
	fi
	command -v mvn >/dev/null || die "mvn not found (needed to fetch Kafka from Maven Central)"
	note "fetching Apache Kafka $KAFKA_VERSION from Maven Central (once; log: $KAFKA_LOGS/mvn.log)"
	rm -rf -- "$tmp"
	if ! (cd "$LOCAL_DIR/kafka" && mvn -q -B -Dstyle.color=never -f pom.xml \
		dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime \
		-Dkafka.version="$KAFKA_VERSION" >"$KAFKA_LOGS/mvn.log" 2>&1 9>&-); then
		tail_logs "$KAFKA_LOGS/mvn.log"
		die "could not fetch Kafka $KAFKA_VERSION jars with Maven"
	fi
	compgen -G "$tmp/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null ||
		die "Maven did not produce kafka_2.13-$KAFKA_VERSION.jar in $tmp"
	rm -rf -- "$KAFKA_LIB" "$KAFKA_DIR/classes"
	mv -- "$tmp" "$KAFKA_LIB"
	printf '%s\n' "$stamp" >"$KAFKA_LIB/.stamp"
}

# The readiness probe, compiled once against the fetched jars.
kafka_compile_probe() {
	local src="$LOCAL_DIR/kafka/ReadyCheck.java" out="$KAFKA_DIR/classes"
	if [[ -f $out/ReadyCheck.class && $out/ReadyCheck.class -nt $src ]]; then
		return 0
	fi
	command -v javac >/dev/null || die "javac not found (install a JDK, e.g. openjdk-17-jdk-headless)"
	mkdir -p -- "$out"
	javac -nowarn -d "$out" -cp "$KAFKA_LIB/*" "$src" >"$KAFKA_LOGS/javac.log" 2>&1 9>&- ||
		fail kafka "could not compile $src (see $KAFKA_LOGS/javac.log)"
}

kafka_configure() {
	local cluster_id_file="$KAFKA_DIR/cluster.id" id
	if [[ ! -s $cluster_id_file ]]; then
		# A Kafka Uuid is 16 random bytes in URL-safe base64 without padding (22 chars).
		# Like Kafka's Uuid.randomUuid, draw again when it starts with '-': the storage
		# tool's argument parser would take such an id for an option (1 start in 64).
		id=-
		while [[ $id == -* ]]; do
			id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
		done
		[[ ${#id} -eq 22 ]] || die "could not generate a Kafka cluster id"
		printf '%s\n' "$id" >"$cluster_id_file"
	fi
	cat >"$KAFKA_PROPS.tmp" <<EOF
# Generated by deploy/local/up on every start; edit deploy/local/lib.sh instead.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${INLET_KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${INLET_KAFKA_PORT},CONTROLLER://127.0.0.1:${INLET_KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${INLET_KAFKA_PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=${KAFKA_DATA}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
EOF
	mv -- "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"
	if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
		mkdir -p -- "$KAFKA_DATA"
		kafka_java kafka.tools.StorageTool format --cluster-id="$(<"$cluster_id_file")" -c "$KAFKA_PROPS" \
			>"$KAFKA_LOGS/format.log" 2>&1 || {
			tail_logs "$KAFKA_LOGS/format.log"
			die "kafka storage format failed"
		}
	fi
}

kafka_start() {
	kafka_pid >/dev/null && return 0
	rm -f -- "$KAFKA_DIR/ready"
	mkdir -p -- "$KAFKA_LOGS"
	command -v java >/dev/null || die "java not found (Kafka needs Java 17+)"
	port_open "$INLET_KAFKA_PORT" && die "$(port_busy_msg "$INLET_KAFKA_PORT" INLET_KAFKA_PORT)"
	port_open "$INLET_KAFKA_CONTROLLER_PORT" &&
		die "$(port_busy_msg "$INLET_KAFKA_CONTROLLER_PORT" INLET_KAFKA_CONTROLLER_PORT)"
	kafka_fetch
	kafka_configure
	local heap
	read -r -a heap <<<"$INLET_KAFKA_HEAP_OPTS"
	printf '\n===== %s starting kafka =====\n' "$(date -u +%FT%TZ)" >>"$KAFKA_LOGS/stdout.log"
	launch "$KAFKA_PIDFILE" "$KAFKA_LOGS/stdout.log" \
		java "${heap[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
		-Djava.awt.headless=true -Dkafka.logs.dir="$KAFKA_LOGS" \
		-Dlog4j2.configurationFile="$LOCAL_DIR/kafka/log4j2.xml" \
		-cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_PROPS"
}

kafka_wait() {
	local pid
	pid=$(kafka_pid) || fail kafka "kafka exited during start-up"
	# A broker that already passed the round trip is only checked for its port.
	if [[ -f $KAFKA_DIR/ready && $(<"$KAFKA_DIR/ready") == "$pid" ]] && port_open "$INLET_KAFKA_PORT"; then
		return 0
	fi
	kafka_compile_probe
	local out rc=0
	out=$(kafka_java ReadyCheck "$(kafka_addr)" "$KAFKA_READY_TOPIC" "$INLET_KAFKA_READY_TIMEOUT" "$pid" 2>&1) || rc=$?
	((rc == 0)) || fail kafka "kafka produce/consume round trip failed: ${out:-exit $rc}"
	printf '%s\n' "$pid" >"$KAFKA_DIR/ready"
}

kafka_stop() {
	local pid
	rm -f -- "$KAFKA_DIR/ready"
	pid=$(kafka_pid) || {
		rm -f -- "$KAFKA_PIDFILE"
		return 1
	}
	stop_pid "$pid" kafka 25
	rm -f -- "$KAFKA_PIDFILE"
}

# ---------------------------------------------------------------------------------------------
# ClickHouse (Debian's clickhouse-server, private config and data)

CH_DIR="$STATE/clickhouse"
CH_ETC="$CH_DIR/etc"
CH_CONFIG="$CH_ETC/config.xml"
CH_PIDFILE="$CH_DIR/clickhouse.pid"
CH_LOGS="$CH_DIR/logs"

clickhouse_pid() { pid_from_file "$CH_PIDFILE" "$CH_CONFIG"; }
clickhouse_addr() { printf '127.0.0.1:%s' "$INLET_CLICKHOUSE_PORT"; }
clickhouse_logs() { printf '%s\n' "$CH_LOGS/stdout.log" "$CH_LOGS/clickhouse-server.err.log" "$CH_LOGS/clickhouse-server.log"; }
clickhouse_extra() { printf 'http 127.0.0.1:%s' "$INLET_CLICKHOUSE_HTTP_PORT"; }

clickhouse_query() {
	clickhouse-client --host 127.0.0.1 --port "$INLET_CLICKHOUSE_PORT" --connect_timeout 2 -q "$1" 9>&-
}

clickhouse_start() {
	clickhouse_pid >/dev/null && return 0
	command -v clickhouse-server >/dev/null || die "clickhouse-server not found (run deploy/local/install)"
	command -v python3 >/dev/null || die "python3 not found (needed to write the ClickHouse config)"
	port_open "$INLET_CLICKHOUSE_PORT" && die "$(port_busy_msg "$INLET_CLICKHOUSE_PORT" INLET_CLICKHOUSE_PORT)"
	port_open "$INLET_CLICKHOUSE_HTTP_PORT" &&
		die "$(port_busy_msg "$INLET_CLICKHOUSE_HTTP_PORT" INLET_CLICKHOUSE_HTTP_PORT)"
	mkdir -p -- "$CH_ETC" "$CH_LOGS"
	python3 "$LOCAL_DIR/clickhouse/mkconfig.py" --src "${INLET_CLICKHOUSE_SOURCE_CONFIG:-/etc/clickhouse-server}" \
		--dst "$CH_ETC" --root "$CH_DIR" \
		--tcp-port "$INLET_CLICKHOUSE_PORT" --http-port "$INLET_CLICKHOUSE_HTTP_PORT" ||
		die "could not write the ClickHouse config"
	printf '\n===== %s starting clickhouse =====\n' "$(date -u +%FT%TZ)" >>"$CH_LOGS/stdout.log"
	launch "$CH_PIDFILE" "$CH_LOGS/stdout.log" clickhouse-server --config-file="$CH_CONFIG"
}

clickhouse_wait() {
	local pid deadline=$((SECONDS + INLET_CLICKHOUSE_READY_TIMEOUT)) out
	while :; do
		pid=$(clickhouse_pid) || fail clickhouse "clickhouse-server exited during start-up"
		out=$(clickhouse_query 'SELECT 1' 2>/dev/null) && [[ $out == 1 ]] && return 0
		((SECONDS < deadline)) || fail clickhouse "clickhouse (pid $pid) did not answer SELECT 1 within ${INLET_CLICKHOUSE_READY_TIMEOUT}s"
		sleep 0.3
	done
}

clickhouse_stop() {
	local pid
	pid=$(clickhouse_pid) || {
		rm -f -- "$CH_PIDFILE"
		return 1
	}
	stop_pid "$pid" clickhouse 25
	rm -f -- "$CH_PIDFILE"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL (own cluster owned by the postgres OS user)

PG_DIR="$STATE/postgres"
PG_DATA="$PG_DIR/data"
PG_RUN="$PG_DIR/run"
PG_LOG="$PG_DIR/postgres.log"
PG_DATABASES=(inlet inlet_test)

postgres_pid() {
	local pid
	[[ -r $PG_DATA/postmaster.pid ]] || return 1
	read -r pid <"$PG_DATA/postmaster.pid" 2>/dev/null || return 1
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
	# The postmaster's working directory is its data directory.
	[[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$(cd "$PG_DATA" && pwd -P)" ]] || return 1
	printf '%s\n' "$pid"
}
postgres_addr() { printf '127.0.0.1:%s' "$INLET_POSTGRES_PORT"; }
postgres_logs() { printf '%s\n' "$PG_LOG"; }
postgres_extra() { printf 'databases %s' "${PG_DATABASES[*]}"; }

postgres_psql() {
	PGCONNECT_TIMEOUT=3 "$INLET_POSTGRES_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 \
		-p "$INLET_POSTGRES_PORT" -U postgres "$@" 9>&-
}

# The postgres user must own its directories and be able to reach them.
postgres_prepare_dirs() {
	mkdir -p -- "$PG_DIR" "$PG_RUN"
	[[ $EUID -eq 0 ]] || return 0
	id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (is the postgresql package installed?)"
	chown postgres:postgres -- "$PG_DIR" "$PG_RUN"
	[[ ! -d $PG_DATA ]] || chown postgres:postgres -- "$PG_DATA"
	[[ ! -e $PG_LOG ]] || chown postgres:postgres -- "$PG_LOG"
	if ! as_postgres test -w "$PG_DIR"; then
		chmod o+x -- "$STATE"
		as_postgres test -w "$PG_DIR" ||
			die "the postgres user cannot reach $PG_DIR: make its parent directories searchable (chmod o+x) or set INLET_STATE_DIR elsewhere"
	fi
}

postgres_start() {
	postgres_pid >/dev/null && return 0
	local b
	for b in initdb pg_ctl postgres psql; do
		[[ -x $INLET_POSTGRES_BIN/$b ]] || die "$INLET_POSTGRES_BIN/$b not found (run deploy/local/install)"
	done
	port_open "$INLET_POSTGRES_PORT" && die "$(port_busy_msg "$INLET_POSTGRES_PORT" INLET_POSTGRES_PORT)"
	postgres_prepare_dirs
	if [[ ! -s $PG_DATA/PG_VERSION ]]; then
		if [[ -d $PG_DATA ]] && [[ -n $(ls -A -- "$PG_DATA") ]]; then
			die "$PG_DATA exists but is not a PostgreSQL cluster; remove it (deploy/local/down --purge postgres)"
		fi
		as_postgres "$INLET_POSTGRES_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 \
			--locale=C.UTF-8 --no-sync >"$PG_DIR/initdb.log" 2>&1 || {
			tail_logs "$PG_DIR/initdb.log"
			die "initdb failed"
		}
	fi
	# A postmaster killed with SIGKILL leaves postmaster.pid (and the socket lock file in our
	# private socket directory) behind, and while its zombie is not
	# reaped (containers whose PID 1 does not reap) PostgreSQL takes it for a live postmaster.
	# postgres_pid just said that pid is not a live postmaster of this data directory; the shared
	# memory interlock still protects against orphaned backends.
	rm -f -- "$PG_DATA/postmaster.pid" "$PG_RUN"/.s.PGSQL.*
	# fsync/full_page_writes only matter for an OS crash, not for a killed server: off for speed.
	# (synchronous_commit stays on: a commit is still written to the kernel before it returns.)
	local opts="-p $INLET_POSTGRES_PORT -k $PG_RUN -c listen_addresses=127.0.0.1 -c max_connections=200"
	opts+=" -c fsync=off -c full_page_writes=off"
	as_postgres "$INLET_POSTGRES_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -o "$opts" \
		-w -t "$INLET_POSTGRES_READY_TIMEOUT" -s >/dev/null 2>&1 ||
		fail postgres "pg_ctl start failed"
}

postgres_wait() {
	local pid deadline=$((SECONDS + INLET_POSTGRES_READY_TIMEOUT)) have db
	while :; do
		pid=$(postgres_pid) || fail postgres "postgres exited during start-up"
		have=$(postgres_psql -d postgres -At -c "SELECT string_agg(datname, ' ') FROM pg_database" 2>/dev/null) && break
		((SECONDS < deadline)) || fail postgres "postgres (pid $pid) did not answer within ${INLET_POSTGRES_READY_TIMEOUT}s"
		sleep 0.3
	done
	for db in "${PG_DATABASES[@]}"; do
		[[ " $have " == *" $db "* ]] && continue
		postgres_psql -d postgres -c "CREATE DATABASE $db" >/dev/null ||
			fail postgres "could not create database $db"
	done
	postgres_psql -d inlet -At -c 'SELECT 1' >/dev/null || fail postgres "database inlet not usable"
}

postgres_stop() {
	postgres_pid >/dev/null || return 1
	as_postgres "$INLET_POSTGRES_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 30 -s >/dev/null 2>&1 || {
		note "pg_ctl stop -m fast failed; trying -m immediate"
		as_postgres "$INLET_POSTGRES_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 30 -s >/dev/null 2>&1 ||
			die "could not stop postgres (data directory $PG_DATA)"
	}
}

# ---------------------------------------------------------------------------------------------
# Reporting

# service_line SVC : "<name> running <addr> pid <pid> (<extra>)" or "<name> stopped"; returns 1
# when the service is not running or not accepting connections.
service_line() {
	local svc=$1 pid port
	case "$svc" in
	kafka) port=$INLET_KAFKA_PORT ;;
	clickhouse) port=$INLET_CLICKHOUSE_PORT ;;
	postgres) port=$INLET_POSTGRES_PORT ;;
	esac
	if pid=$("${svc}_pid"); then
		if port_open "$port"; then
			printf '%-10s  running      %-16s  pid %-7s  (%s)\n' "$svc" "$("${svc}_addr")" "$pid" "$("${svc}_extra")"
			return 0
		fi
		printf '%-10s  not-serving  %-16s  pid %-7s  (process up, port closed)\n' "$svc" "$("${svc}_addr")" "$pid"
		return 1
	fi
	printf '%-10s  stopped\n' "$svc"
	return 1
}
