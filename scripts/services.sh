#!/usr/bin/env bash
# Real services for development and tests, started and stopped by the project itself:
#   - Apache Kafka (KRaft, one node with the broker and controller roles) from Apache Kafka's own jars,
#     resolved from Maven Central with Maven;
#   - moto server (the AWS API emulator: DynamoDB, DynamoDB Streams, S3, ECS) from PyPI in a virtualenv, started
#     by scripts/moto_server.py so that DynamoDB requests are served one at a time (moto's backend loses writes
#     under concurrent requests).
#
# Usage: scripts/services.sh up|down|status|env|classpath
#   up         start what is not running yet (downloads on first use, cached), wait until both answer;
#              `up kafka` or `up moto` starts one
#   down       stop what `up` started (by pid), nothing else; `down kafka` or `down moto` stops one
#   status     print what runs where; exit 0 when both run, 3 otherwise
#   env        print shell exports for clients: eval "$(scripts/services.sh env)"; BARRAGE_AWS_PYTHON is the
#              emulator's Python, which has boto3 (tests use it as a client that is not Barrage's)
#   classpath  print the Kafka classpath (broker and Kafka's tools, e.g. org.apache.kafka.tools.ProducerPerformance)
#
# Everything lives under "${XDG_CACHE_HOME:-$HOME/.cache}/barrage"; every socket is bound to 127.0.0.1.
# Settings (environment): BARRAGE_KAFKA_PORT (9092), BARRAGE_KAFKA_CONTROLLER_PORT (9093), BARRAGE_MOTO_PORT (5000),
# BARRAGE_KAFKA_SASL_PORT (9094), BARRAGE_KAFKA_HEAP ("-Xms256m -Xmx1g"), BARRAGE_SERVICES_TIMEOUT (readiness bound
# in seconds, 90), BARRAGE_SERVICES_INSTANCE (a name for a second, independent set of services with their own pid
# files, configuration and logs under run-NAME/ and logs-NAME/; give it other ports too).
#
# The broker has two client listeners: PLAINTEXT on BARRAGE_KAFKA_PORT and SASL_PLAINTEXT on BARRAGE_KAFKA_SASL_PORT
# (mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512) with two test users, for tests only:
#   barrage-plain / barrage-plain-secret   PLAIN (in the listener's JAAS configuration)
#   barrage-scram / barrage-scram-secret   SCRAM-SHA-256 and SCRAM-SHA-512 (created with Kafka's ConfigCommand
#                                          after the broker is ready; idempotent)
# A broker started by an older version of this script has no SASL listener; it gets one when it is next started
# (`down kafka`, then `up`): the storage it formatted keeps working.
#
# Four TLS listeners from BARRAGE_KAFKA_TLS_PORT (9095) on, with certificates of a test CA that
# scripts/tls-material.sh makes once under the cache (tls/; `env` exports BARRAGE_KAFKA_TLS_CA and the others):
#   SSL        (9095)  certificate for 127.0.0.1 and localhost
#   SASL_SSL   (9096)  the same, with the SASL users above
#   WRONGHOST  (9097)  SSL, certificate for wrong-host.invalid only (host-name verification must refuse it)
#   EXPIRED    (9098)  SSL, certificate valid only on 2020-01-01 (must be refused as expired)
# A broker started without them gets them when it is next started, as for SASL.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

# Pinned versions. Kafka 4.x needs Java 17 or newer for the broker.
KAFKA_VERSION="4.4.0"
SCALA_BINARY="2.13"
LOG4J_VERSION="2.26.1"
MAVEN_DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MOTO_VERSION="5.2.5"

HOST="127.0.0.1"
KAFKA_PORT="${BARRAGE_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${BARRAGE_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_SASL_PORT="${BARRAGE_KAFKA_SASL_PORT:-9094}"
KAFKA_TLS_PORT="${BARRAGE_KAFKA_TLS_PORT:-9095}"
MOTO_PORT="${BARRAGE_MOTO_PORT:-5000}"
KAFKA_HEAP="${BARRAGE_KAFKA_HEAP:--Xms256m -Xmx1g}"
READY_TIMEOUT="${BARRAGE_SERVICES_TIMEOUT:-90}"

for port_var in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_SASL_PORT KAFKA_TLS_PORT MOTO_PORT READY_TIMEOUT; do
    if ! [[ "${!port_var}" =~ ^[0-9]+$ ]]; then
        barrage_die "$port_var must be a number (got '${!port_var}')"
    fi
done

INSTANCE="${BARRAGE_SERVICES_INSTANCE:-}"
if [[ -n "$INSTANCE" && ! "$INSTANCE" =~ ^[A-Za-z0-9_-]+$ ]]; then
    barrage_die "BARRAGE_SERVICES_INSTANCE must be letters, digits, '-' or '_' (got '$INSTANCE')"
fi

# Test users of the SASL listener (see the header).
SASL_PLAIN_USER="barrage-plain"
SASL_PLAIN_PASSWORD="barrage-plain-secret"
SASL_SCRAM_USER="barrage-scram"
SASL_SCRAM_PASSWORD="barrage-scram-secret"

CACHE="$(barrage_cache_dir)"
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
MAVEN_REPO="$CACHE/maven-repository"
MOTO_VENV="$CACHE/moto-$MOTO_VERSION"
RUN_DIR="$CACHE/run${INSTANCE:+-$INSTANCE}"
LOG_DIR="$CACHE/logs${INSTANCE:+-$INSTANCE}"
KAFKA_LOG_DIR="$LOG_DIR/kafka"
KAFKA_DATA="$CACHE/kafka-data/$KAFKA_VERSION-$KAFKA_PORT-$KAFKA_CONTROLLER_PORT"
KAFKA_PID_FILE="$RUN_DIR/kafka.pid"
KAFKA_PORT_FILE="$RUN_DIR/kafka.port"
# Written when a broker starts with the SASL listener; absent for one started by an older version of this script.
KAFKA_SASL_PORT_FILE="$RUN_DIR/kafka.sasl.port"
KAFKA_SASL_CLIENT_CONFIG="$RUN_DIR/kafka-sasl-client.properties"
# Written when a broker starts with the TLS listeners (their first port).
KAFKA_TLS_PORT_FILE="$RUN_DIR/kafka.tls.port"
TLS_DIR="$CACHE/tls"
KAFKA_SSL_PORT="$KAFKA_TLS_PORT"
KAFKA_SASL_SSL_PORT=$((KAFKA_TLS_PORT + 1))
KAFKA_WRONG_HOST_PORT=$((KAFKA_TLS_PORT + 2))
KAFKA_EXPIRED_PORT=$((KAFKA_TLS_PORT + 3))
# In the data folder, so it goes with the metadata that holds the users: written once the SCRAM user exists.
KAFKA_SCRAM_MARKER="$KAFKA_DATA/.barrage-scram-users"
KAFKA_CONFIG="$RUN_DIR/kafka-server.properties"
KAFKA_LOG4J="$RUN_DIR/kafka-log4j2.properties"
TOOLS_LOG4J="$RUN_DIR/tools-log4j2.properties"
MOTO_PID_FILE="$RUN_DIR/moto.pid"
MOTO_PORT_FILE="$RUN_DIR/moto.port"
MOTO_LOG="$LOG_DIR/moto.log"

log() { barrage_log "services: $*"; }

# ---------------------------------------------------------------------------------------------------------------
# Process and port probes

# pid_of FILE MARKER -> prints the pid when FILE names a live process whose command line contains MARKER.
pid_of() {
    local file="$1" marker="$2" pid
    [[ -f "$file" ]] || return 1
    pid="$(tr -dc '0-9' <"$file")"
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    local cmdline
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"$marker"* ]] || return 1
    printf '%s\n' "$pid"
}

kafka_pid() { pid_of "$KAFKA_PID_FILE" "kafka.Kafka $KAFKA_CONFIG"; }
moto_pid() { pid_of "$MOTO_PID_FILE" "moto_server"; }

# Port of the running instance (recorded at start), else the configured one.
recorded_port() {
    local file="$1" default="$2" port=""
    [[ -f "$file" ]] && port="$(tr -dc '0-9' <"$file")"
    printf '%s\n' "${port:-$default}"
}

tcp_open() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# A real Kafka request: ApiVersions v0 (api key 18, correlation id 42, client id "barrage").
# Succeeds when the reply carries correlation id 42 and error code 0.
kafka_answers() {
    local reply
    # shellcheck disable=SC2016 # expanded by the inner shell
    reply="$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "\x00\x00\x00\x11\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x07barrage" >&3
        head -c 10 <&3 | od -An -tx1' "$HOST" "$1" 2>/dev/null)" || return 1
    reply="${reply//[[:space:]]/}"
    [[ "${#reply}" -eq 20 && "${reply:8:12}" == "0000002a0000" ]]
}

moto_python() {
    if [[ -x "$MOTO_VENV/bin/python" ]]; then
        printf '%s\n' "$MOTO_VENV/bin/python"
    else
        printf '%s\n' python3
    fi
}

# An HTTP request to moto's own API; succeeds on a 200 answer.
moto_answers() {
    "$(moto_python)" - "$HOST" "$1" <<'PY' 2>/dev/null
import sys, urllib.request
host, port = sys.argv[1], sys.argv[2]
# The dashboard page: cheap whatever the emulator holds (data.json grows with every table and bucket).
with urllib.request.urlopen(f"http://{host}:{port}/moto-api/", timeout=5) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

# stop NAME PIDFILE MARKER WAIT_SECONDS: TERM, wait, then KILL; only a process `up` started (pid file + marker).
stop_service() {
    local name="$1" file="$2" marker="$3" wait_s="$4" pid i
    if ! pid="$(pid_of "$file" "$marker")"; then
        if [[ -f "$file" ]]; then
            log "$name: not running (removing stale pid file $file)"
            rm -f "$file"
        else
            log "$name: not running"
        fi
        return 0
    fi
    log "$name: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name: still running after ${wait_s}s, sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$file"
    log "$name: stopped"
}

# Start "$@" in its own session, detached from our stdin/stdout; the child writes its own pid before exec.
spawn() {
    local pid_file="$1" out="$2"
    shift 2
    rm -f "$pid_file"
    # 9>&-: the service must not inherit the lock on services.lock (see with_lock).
    # shellcheck disable=SC2016 # expanded by the inner shell
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pid_file" "$@" </dev/null >>"$out" 2>&1 9>&- &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$pid_file" ]] && return 0
        sleep 0.1
    done
    barrage_die "could not start $1 (no pid file $pid_file)"
}

# ---------------------------------------------------------------------------------------------------------------
# Kafka

java_major() {
    java -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }'
}

require_java() {
    command -v java >/dev/null 2>&1 || barrage_die "java is not installed (Kafka $KAFKA_VERSION needs Java 17+); run scripts/setup.sh"
    local major
    major="$(java_major)"
    if [[ -z "$major" || "$major" -lt 17 ]]; then
        barrage_die "Kafka $KAFKA_VERSION needs Java 17 or newer (found: $(java -version 2>&1 | head -1))"
    fi
}

write_kafka_pom() {
    cat >"$KAFKA_HOME/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/services.sh: Apache Kafka's own jars with their runtime dependencies. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.barrage.services</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_BINARY</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- Logging backend: Kafka logs through SLF4J 1.7; Log4j 2 writes the files. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
}

resolve_kafka() {
    if [[ -f "$KAFKA_HOME/.resolved" ]] && compgen -G "$KAFKA_LIBS/kafka_$SCALA_BINARY-$KAFKA_VERSION.jar" >/dev/null; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || barrage_die "Maven (mvn) is not installed; run scripts/setup.sh"
    mkdir -p "$KAFKA_HOME" "$LOG_DIR"
    write_kafka_pom
    local started maven_log="$LOG_DIR/maven-kafka-$KAFKA_VERSION.log"
    started="$(barrage_now)"
    log "kafka: resolving org.apache.kafka:kafka_$SCALA_BINARY:$KAFKA_VERSION and kafka-tools with Maven (first use only; log: $maven_log)"
    rm -rf "$KAFKA_LIBS.partial"
    if ! mvn -B -q -f "$KAFKA_HOME/pom.xml" -Dmaven.repo.local="$MAVEN_REPO" \
        "$MAVEN_DEPENDENCY_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS.partial" \
        </dev/null >"$maven_log" 2>&1; then
        tail -n 30 "$maven_log" >&2
        barrage_die "Maven could not resolve Apache Kafka $KAFKA_VERSION (full log: $maven_log)"
    fi
    rm -rf "$KAFKA_LIBS"
    mv "$KAFKA_LIBS.partial" "$KAFKA_LIBS"
    touch "$KAFKA_HOME/.resolved"
    log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS ($(barrage_elapsed "$started")s)"
}

write_kafka_config() {
    mkdir -p "$RUN_DIR" "$KAFKA_LOG_DIR" "$KAFKA_DATA"
    bash "$SCRIPT_DIR/tls-material.sh" "$TLS_DIR" || barrage_die "kafka: could not make the TLS material in $TLS_DIR (openssl)"
    local TLS_LISTENERS="SSL://$HOST:$KAFKA_SSL_PORT,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT,WRONGHOST://$HOST:$KAFKA_WRONG_HOST_PORT,EXPIRED://$HOST:$KAFKA_EXPIRED_PORT"
    cat >"$KAFKA_CONFIG" <<EOF
# Generated by scripts/services.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_PLAINTEXT://$HOST:$KAFKA_SASL_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,$TLS_LISTENERS
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_PLAINTEXT://$HOST:$KAFKA_SASL_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,$TLS_LISTENERS
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,WRONGHOST:SSL,EXPIRED:SSL
# TLS for tests of Barrage's SSL support: certificates of the test CA (scripts/tls-material.sh), no client auth.
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/broker.pem
ssl.client.auth=none
listener.name.wronghost.ssl.keystore.type=PEM
listener.name.wronghost.ssl.keystore.location=$TLS_DIR/wrong-host.pem
listener.name.expired.ssl.keystore.type=PEM
listener.name.expired.ssl.keystore.location=$TLS_DIR/expired.pem
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$SASL_PLAIN_USER" password="$SASL_PLAIN_PASSWORD" user_$SASL_PLAIN_USER="$SASL_PLAIN_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# SASL for tests of Barrage's SASL support (test users only; see scripts/services.sh).
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$SASL_PLAIN_USER" password="$SASL_PLAIN_PASSWORD" user_$SASL_PLAIN_USER="$SASL_PLAIN_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$KAFKA_DATA
metadata.log.dir=$KAFKA_DATA
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=3
num.io.threads=4
# Load tests write a lot: keep at most two hours and 1 GiB per partition.
log.retention.hours=2
log.retention.bytes=1073741824
log.segment.bytes=268435456
log.retention.check.interval.ms=60000
EOF
    cat >"$KAFKA_SASL_CLIENT_CONFIG" <<EOF
# Generated by scripts/services.sh: Kafka's tools as the SCRAM test user on the SASL listener.
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-256
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$SASL_SCRAM_USER" password="$SASL_SCRAM_PASSWORD";
EOF
    cat >"$KAFKA_LOG4J" <<EOF
# Generated by scripts/services.sh: the broker logs to $KAFKA_LOG_DIR/server.log.
status = warn
name = barrage-kafka
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $KAFKA_LOG_DIR/server.log
appender.file.filePattern = $KAFKA_LOG_DIR/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.request.additivity = false
logger.request.appenderRef.file.ref = file
EOF
    cat >"$TOOLS_LOG4J" <<EOF
# Generated by scripts/services.sh: Kafka's command-line tools log warnings to stderr.
status = warn
name = barrage-kafka-tools
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = stderr
EOF
}

# Run one of Kafka's command-line classes with the project's classpath and quiet logging.
kafka_tool() {
    java -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" "$@"
}

format_kafka_storage() {
    if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
        log "kafka: storage $KAFKA_DATA already formatted ($(grep '^cluster.id=' "$KAFKA_DATA/meta.properties" || echo 'cluster.id unknown'))"
        return 0
    fi
    local cluster_id out attempt
    if [[ -n "$(ls -A "$KAFKA_DATA" 2>/dev/null)" ]]; then
        # Without meta.properties the folder is a leftover (an interrupted format, or logs of an older cluster);
        # a new cluster id over old metadata makes the broker exit at start-up, so start from an empty folder.
        log "kafka: $KAFKA_DATA has data but no meta.properties; wiping it before formatting"
        rm -rf "$KAFKA_DATA"
        mkdir -p "$KAFKA_DATA"
    fi
    for attempt in 1 2; do
        cluster_id="$(kafka_tool kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG_DIR/format.log" | tail -n 1)"
        [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || barrage_die "kafka: could not generate a cluster id (log: $KAFKA_LOG_DIR/format.log)"
        if out="$(kafka_tool kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$KAFKA_CONFIG" 2>&1)"; then
            printf '%s\n' "$out" >>"$KAFKA_LOG_DIR/format.log"
            log "kafka: formatted storage $KAFKA_DATA (cluster.id=$cluster_id)"
            return 0
        fi
        printf '%s\n' "$out" >>"$KAFKA_LOG_DIR/format.log"
        if [[ "$attempt" -eq 1 ]]; then
            # Our private data folder holds something half-formatted or from another cluster: start it afresh.
            log "kafka: formatting $KAFKA_DATA failed ($(printf '%s' "$out" | tail -n 1)); wiping it and retrying"
            rm -rf "$KAFKA_DATA"
            mkdir -p "$KAFKA_DATA"
        fi
    done
    printf '%s\n' "$out" | tail -n 20 >&2
    barrage_die "kafka: could not format storage $KAFKA_DATA (log: $KAFKA_LOG_DIR/format.log)"
}

kafka_up() {
    local pid running_port
    if pid="$(kafka_pid)"; then
        running_port="$(recorded_port "$KAFKA_PORT_FILE" "$KAFKA_PORT")"
        if [[ "$running_port" != "$KAFKA_PORT" ]]; then
            barrage_die "kafka: already running (pid $pid) on $HOST:$running_port, not on the requested port $KAFKA_PORT; run 'scripts/services.sh down' first"
        fi
        if ! kafka_has_sasl; then
            log "kafka: the running broker (pid $pid) was started without the SASL listener (by an older version of this script); it gets $HOST:$KAFKA_SASL_PORT when next started: scripts/services.sh down kafka && scripts/services.sh up"
        fi
        if ! kafka_has_tls; then
            log "kafka: the running broker (pid $pid) was started without the TLS listeners (by an older version of this script); it gets $HOST:$KAFKA_SSL_PORT-$KAFKA_EXPIRED_PORT when next started: scripts/services.sh down kafka && scripts/services.sh up"
        fi
        if kafka_answers "$KAFKA_PORT" && { ! kafka_has_sasl || [[ -f "$KAFKA_SCRAM_MARKER" ]]; }; then
            log "kafka: already up (pid $pid, $HOST:$KAFKA_PORT) - nothing to do"
            return 0
        fi
        log "kafka: pid $pid runs but is not ready yet; waiting"
        wait_for_kafka "$pid" "$(barrage_now)"
        return 0
    fi
    rm -f "$KAFKA_PID_FILE" "$KAFKA_SASL_PORT_FILE" "$KAFKA_TLS_PORT_FILE"
    local port
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT" "$KAFKA_SSL_PORT" "$KAFKA_SASL_SSL_PORT" "$KAFKA_WRONG_HOST_PORT" "$KAFKA_EXPIRED_PORT"; do
        if tcp_open "$port"; then
            barrage_die "kafka: port $HOST:$port is already in use by a process this script did not start; stop it or set BARRAGE_KAFKA_PORT / BARRAGE_KAFKA_CONTROLLER_PORT / BARRAGE_KAFKA_SASL_PORT / BARRAGE_KAFKA_TLS_PORT"
        fi
    done
    require_java
    resolve_kafka
    write_kafka_config
    format_kafka_storage
    local started
    started="$(barrage_now)"
    printf '\n===== %s starting Kafka %s =====\n' "$(date -u +%FT%TZ)" "$KAFKA_VERSION" >>"$KAFKA_LOG_DIR/stdout.log"
    # shellcheck disable=SC2086 # KAFKA_HEAP may hold several JVM options
    spawn "$KAFKA_PID_FILE" "$KAFKA_LOG_DIR/stdout.log" \
        java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dkafka.logs.dir="$KAFKA_LOG_DIR" -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONFIG"
    printf '%s\n' "$KAFKA_PORT" >"$KAFKA_PORT_FILE"
    printf '%s\n' "$KAFKA_SASL_PORT" >"$KAFKA_SASL_PORT_FILE"
    printf '%s\n' "$KAFKA_TLS_PORT" >"$KAFKA_TLS_PORT_FILE"
    pid="$(tr -dc '0-9' <"$KAFKA_PID_FILE")"
    log "kafka: started pid $pid (log: $KAFKA_LOG_DIR/server.log, stdout: $KAFKA_LOG_DIR/stdout.log)"
    wait_for_kafka "$pid" "$started"
}

kafka_failure() {
    log "kafka: $1"
    log "----- last errors in $KAFKA_LOG_DIR/server.log -----"
    grep -E '^\[[^]]*\] (ERROR|FATAL) ' "$KAFKA_LOG_DIR/server.log" 2>/dev/null | tail -n 10 >&2 || true
    log "----- last lines of $KAFKA_LOG_DIR/server.log -----"
    tail -n 25 "$KAFKA_LOG_DIR/server.log" >&2 2>/dev/null || true
    log "----- last lines of $KAFKA_LOG_DIR/stdout.log -----"
    tail -n 20 "$KAFKA_LOG_DIR/stdout.log" >&2 2>/dev/null || true
    log "kafka: to start again from empty storage: scripts/services.sh down && rm -rf '$KAFKA_DATA'"
    exit 1
}

wait_for_kafka() {
    local pid="$1" started="$2" deadline
    deadline=$(($(date +%s) + READY_TIMEOUT))
    until kafka_answers "$KAFKA_PORT"; do
        kill -0 "$pid" 2>/dev/null || kafka_failure "the broker (pid $pid) exited during start-up"
        if (($(date +%s) >= deadline)); then
            kafka_failure "no answer to an ApiVersions request on $HOST:$KAFKA_PORT within ${READY_TIMEOUT}s (pid $pid still runs; 'scripts/services.sh down' stops it)"
        fi
        sleep 0.5
    done
    # The socket answers; now a full client round trip (metadata) through Kafka's own admin tool.
    local remaining out
    remaining=$((deadline - $(date +%s)))
    ((remaining > 5)) || remaining=5
    if ! out="$(timeout "$remaining" java -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" \
        org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" --list 2>&1)"; then
        printf '%s\n' "$out" | tail -n 20 >&2
        kafka_failure "TopicCommand --list against $HOST:$KAFKA_PORT failed"
    fi
    log "kafka: ready at $HOST:$KAFKA_PORT after $(barrage_elapsed "$started")s (ApiVersions and TopicCommand --list answered)"
    if kafka_has_sasl; then
        ensure_sasl_users "$pid" "$deadline"
    fi
    if kafka_has_tls; then
        wait_for_tls "$pid" "$deadline"
    fi
}

# True when the running broker has the TLS listeners: it was started by this version of the script.
kafka_has_tls() {
    [[ -f "$KAFKA_TLS_PORT_FILE" ]]
}

# The TLS listener completes a handshake with a client that trusts the test CA and checks the host name.
wait_for_tls() {
    local pid="$1" deadline="$2" tls_port
    tls_port="$(recorded_port "$KAFKA_TLS_PORT_FILE" "$KAFKA_TLS_PORT")"
    until openssl s_client -connect "$HOST:$tls_port" -CAfile "$TLS_DIR/ca.pem" -verify_ip "$HOST" \
        -verify_return_error </dev/null >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || kafka_failure "the broker (pid $pid) exited during start-up"
        (($(date +%s) < deadline)) || kafka_failure "no verified TLS handshake on $HOST:$tls_port within ${READY_TIMEOUT}s"
        sleep 0.5
    done
    log "kafka: TLS listeners ready at $HOST:$tls_port-$((tls_port + 3)) (SSL, SASL_SSL, WRONGHOST, EXPIRED; CA $TLS_DIR/ca.pem)"
}

# True when the running broker has the SASL listener: it was started by this version of the script.
kafka_has_sasl() {
    [[ -f "$KAFKA_SASL_PORT_FILE" ]]
}

# The SASL listener answers, the SCRAM test user exists (created once per storage, idempotently) and a real client
# authenticates with it.
ensure_sasl_users() {
    local pid="$1" deadline="$2" sasl_port remaining out
    sasl_port="$(recorded_port "$KAFKA_SASL_PORT_FILE" "$KAFKA_SASL_PORT")"
    until kafka_answers "$sasl_port"; do
        kill -0 "$pid" 2>/dev/null || kafka_failure "the broker (pid $pid) exited during start-up"
        (($(date +%s) < deadline)) || kafka_failure "no answer to ApiVersions on the SASL listener $HOST:$sasl_port within ${READY_TIMEOUT}s"
        sleep 0.5
    done
    [[ -f "$KAFKA_SCRAM_MARKER" ]] && return 0
    remaining=$((deadline - $(date +%s)))
    ((remaining > 20)) || remaining=20
    # --alter sets the credential whether or not it exists: running it twice is harmless. One mechanism per request
    # (the broker refuses two changes to one user's credentials in one request).
    local mechanism
    for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
        if ! out="$(timeout "$remaining" java -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" \
            org.apache.kafka.tools.ConfigCommand --bootstrap-server "$HOST:$KAFKA_PORT" --alter \
            --add-config "$mechanism=[iterations=8192,password=$SASL_SCRAM_PASSWORD]" \
            --entity-type users --entity-name "$SASL_SCRAM_USER" 2>&1)"; then
            printf '%s\n' "$out" | tail -n 20 >&2
            kafka_failure "could not create the $mechanism credential of the test user $SASL_SCRAM_USER with ConfigCommand"
        fi
    done
    # The credential reaches the broker's cache through the metadata log: retry the authenticated check briefly.
    local attempt
    for attempt in 1 2 3 4 5; do
        if out="$(timeout 30 java -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" \
            org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$sasl_port" \
            --command-config "$KAFKA_SASL_CLIENT_CONFIG" --list 2>&1)"; then
            touch "$KAFKA_SCRAM_MARKER"
            log "kafka: SASL listener ready at $HOST:$sasl_port (SCRAM user $SASL_SCRAM_USER authenticated; PLAIN user $SASL_PLAIN_USER)"
            return 0
        fi
        sleep "$attempt"
    done
    printf '%s\n' "$out" | tail -n 20 >&2
    kafka_failure "the SCRAM test user could not authenticate on $HOST:$sasl_port"
}

# ---------------------------------------------------------------------------------------------------------------
# moto server

install_moto() {
    if [[ -f "$MOTO_VENV/.installed" && -x "$MOTO_VENV/bin/moto_server" ]]; then
        if "$MOTO_VENV/bin/python" -c 'import moto.server' >/dev/null 2>&1; then
            return 0
        fi
        log "moto: the virtualenv $MOTO_VENV no longer works (was python3 replaced?); recreating it"
    fi
    command -v python3 >/dev/null 2>&1 || barrage_die "python3 is not installed; run scripts/setup.sh"
    local started pip_log="$LOG_DIR/pip-moto-$MOTO_VERSION.log"
    started="$(barrage_now)"
    mkdir -p "$LOG_DIR"
    log "moto: creating virtualenv $MOTO_VENV with moto[server]==$MOTO_VERSION (first use only; log: $pip_log)"
    rm -rf "$MOTO_VENV"
    if ! python3 -m venv "$MOTO_VENV" >"$pip_log" 2>&1; then
        tail -n 20 "$pip_log" >&2
        barrage_die "python3 -m venv failed (Debian needs the python3-venv package; run scripts/setup.sh)"
    fi
    if ! "$MOTO_VENV/bin/python" -m pip install --no-input --quiet "moto[server]==$MOTO_VERSION" </dev/null >>"$pip_log" 2>&1; then
        tail -n 30 "$pip_log" >&2
        barrage_die "pip could not install moto[server]==$MOTO_VERSION (full log: $pip_log)"
    fi
    touch "$MOTO_VENV/.installed"
    log "moto: installed ($(barrage_elapsed "$started")s)"
}

moto_up() {
    local pid running_port
    if pid="$(moto_pid)"; then
        running_port="$(recorded_port "$MOTO_PORT_FILE" "$MOTO_PORT")"
        if [[ "$running_port" != "$MOTO_PORT" ]]; then
            barrage_die "moto: already running (pid $pid) on $HOST:$running_port, not on the requested port $MOTO_PORT; run 'scripts/services.sh down' first"
        fi
        if moto_answers "$MOTO_PORT"; then
            log "moto: already up (pid $pid, http://$HOST:$MOTO_PORT) - nothing to do"
            return 0
        fi
        log "moto: pid $pid runs but http://$HOST:$MOTO_PORT does not answer yet; waiting"
        wait_for_moto "$pid" "$(barrage_now)"
        return 0
    fi
    rm -f "$MOTO_PID_FILE"
    if tcp_open "$MOTO_PORT"; then
        barrage_die "moto: port $HOST:$MOTO_PORT is already in use by a process this script did not start; stop it or set BARRAGE_MOTO_PORT"
    fi
    install_moto
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    local started
    started="$(barrage_now)"
    printf '\n===== %s starting moto server %s =====\n' "$(date -u +%FT%TZ)" "$MOTO_VERSION" >>"$MOTO_LOG"
    # moto_server with DynamoDB requests served one at a time: moto's backend undoes concurrent
    # writes when a transaction is cancelled (see scripts/moto_server.py).
    spawn "$MOTO_PID_FILE" "$MOTO_LOG" "$MOTO_VENV/bin/python" "$SCRIPT_DIR/moto_server.py" -H "$HOST" -p "$MOTO_PORT"
    printf '%s\n' "$MOTO_PORT" >"$MOTO_PORT_FILE"
    pid="$(tr -dc '0-9' <"$MOTO_PID_FILE")"
    log "moto: started pid $pid (log: $MOTO_LOG)"
    wait_for_moto "$pid" "$started"
}

wait_for_moto() {
    local pid="$1" started="$2" deadline
    deadline=$(($(date +%s) + READY_TIMEOUT))
    until moto_answers "$MOTO_PORT"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$MOTO_LOG" >&2 || true
            barrage_die "moto: the server (pid $pid) exited during start-up (log: $MOTO_LOG)"
        fi
        if (($(date +%s) >= deadline)); then
            tail -n 30 "$MOTO_LOG" >&2 || true
            barrage_die "moto: no HTTP answer on http://$HOST:$MOTO_PORT within ${READY_TIMEOUT}s (pid $pid still runs; log: $MOTO_LOG)"
        fi
        sleep 0.3
    done
    log "moto: ready at http://$HOST:$MOTO_PORT after $(barrage_elapsed "$started")s"
}

# ---------------------------------------------------------------------------------------------------------------
# Commands

with_lock() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/services.lock"
    if ! flock -n 9; then
        log "another scripts/services.sh holds $CACHE/services.lock; waiting for it"
        flock -w 900 9 || barrage_die "timed out waiting for $CACHE/services.lock"
    fi
}

cmd_up() {
    local which="${1:-all}"
    case "$which" in
    all | kafka | moto) ;;
    *) barrage_die "up takes no argument, 'kafka' or 'moto' (got '$which')" ;;
    esac
    with_lock
    local started
    started="$(barrage_now)"
    [[ "$which" == moto ]] || kafka_up
    [[ "$which" == kafka ]] || moto_up
    log "up in $(barrage_elapsed "$started")s; clients: eval \"\$(scripts/services.sh env)\""
}

cmd_down() {
    local which="${1:-all}"
    case "$which" in
    all | kafka | moto) ;;
    *) barrage_die "down takes no argument, 'kafka' or 'moto' (got '$which')" ;;
    esac
    with_lock
    if [[ "$which" != moto ]]; then
        stop_service kafka "$KAFKA_PID_FILE" "kafka.Kafka $KAFKA_CONFIG" 60
        rm -f "$KAFKA_PORT_FILE" "$KAFKA_SASL_PORT_FILE"
    fi
    if [[ "$which" != kafka ]]; then
        stop_service moto "$MOTO_PID_FILE" "moto_server" 15
        rm -f "$MOTO_PORT_FILE"
    fi
}

cmd_status() {
    local up=0 pid port
    if pid="$(kafka_pid)"; then
        port="$(recorded_port "$KAFKA_PORT_FILE" "$KAFKA_PORT")"
        if kafka_answers "$port"; then
            printf 'kafka: up      pid %s  bootstrap %s:%s  controller %s:%s  Kafka %s  log %s\n' \
                "$pid" "$HOST" "$port" "$HOST" "$KAFKA_CONTROLLER_PORT" "$KAFKA_VERSION" "$KAFKA_LOG_DIR/server.log"
            up=$((up + 1))
        else
            printf 'kafka: running pid %s but %s:%s does not answer  log %s\n' "$pid" "$HOST" "$port" "$KAFKA_LOG_DIR/server.log"
        fi
        if ! kafka_has_sasl; then
            printf 'sasl:  none    (this broker was started without the SASL listener; it gets %s:%s when next started)\n' "$HOST" "$KAFKA_SASL_PORT"
        elif port="$(recorded_port "$KAFKA_SASL_PORT_FILE" "$KAFKA_SASL_PORT")" && kafka_answers "$port" && [[ -f "$KAFKA_SCRAM_MARKER" ]]; then
            printf 'sasl:  up      bootstrap %s:%s  SASL_PLAINTEXT  PLAIN user %s, SCRAM-SHA-256/512 user %s\n' "$HOST" "$port" "$SASL_PLAIN_USER" "$SASL_SCRAM_USER"
        else
            printf 'sasl:  not ready  %s:%s does not answer or the SCRAM user is not created yet (scripts/services.sh up)\n' "$HOST" "$port"
            up=$((up - 1))
        fi
        if kafka_has_tls; then
            printf 'tls:   up      SSL %s:%s  SASL_SSL %s:%s  wrong host %s:%s  expired %s:%s  CA %s\n' \
                "$HOST" "$KAFKA_SSL_PORT" "$HOST" "$KAFKA_SASL_SSL_PORT" "$HOST" "$KAFKA_WRONG_HOST_PORT" "$HOST" "$KAFKA_EXPIRED_PORT" "$TLS_DIR/ca.pem"
        else
            printf 'tls:   none    (this broker was started without the TLS listeners; it gets them when next started)\n'
        fi
    else
        printf 'kafka: down    (would listen on %s:%s, SASL on %s:%s, TLS on %s:%s-%s)\n' "$HOST" "$KAFKA_PORT" "$HOST" "$KAFKA_SASL_PORT" "$HOST" "$KAFKA_SSL_PORT" "$KAFKA_EXPIRED_PORT"
    fi
    if pid="$(moto_pid)"; then
        port="$(recorded_port "$MOTO_PORT_FILE" "$MOTO_PORT")"
        if moto_answers "$port"; then
            printf 'moto:  up      pid %s  endpoint http://%s:%s  moto %s  log %s\n' "$pid" "$HOST" "$port" "$MOTO_VERSION" "$MOTO_LOG"
            up=$((up + 1))
        else
            printf 'moto:  running pid %s but http://%s:%s does not answer  log %s\n' "$pid" "$HOST" "$port" "$MOTO_LOG"
        fi
    else
        printf 'moto:  down    (would listen on http://%s:%s)\n' "$HOST" "$MOTO_PORT"
    fi
    printf 'cache: %s\n' "$CACHE"
    [[ "$up" -eq 2 ]] || return 3
}

cmd_env() {
    local kafka_port moto_port sasl_port tls_port state=down
    kafka_port="$KAFKA_PORT"
    moto_port="$MOTO_PORT"
    sasl_port="$KAFKA_SASL_PORT"
    tls_port="$KAFKA_TLS_PORT"
    if kafka_pid >/dev/null; then
        kafka_port="$(recorded_port "$KAFKA_PORT_FILE" "$KAFKA_PORT")"
        # A broker started by an older version of this script has no SASL listener: export none.
        sasl_port=""
        if kafka_has_sasl; then sasl_port="$(recorded_port "$KAFKA_SASL_PORT_FILE" "$KAFKA_SASL_PORT")"; fi
        tls_port=""
        if kafka_has_tls; then tls_port="$(recorded_port "$KAFKA_TLS_PORT_FILE" "$KAFKA_TLS_PORT")"; fi
    fi
    if moto_pid >/dev/null; then moto_port="$(recorded_port "$MOTO_PORT_FILE" "$MOTO_PORT")"; fi
    if kafka_pid >/dev/null && moto_pid >/dev/null; then
        state=up
    else
        log "warning: the services are not both running (BARRAGE_SERVICES=down); start them with scripts/services.sh up"
    fi
    cat <<EOF
export BARRAGE_KAFKA_BOOTSTRAP=$HOST:$kafka_port
${sasl_port:+export BARRAGE_KAFKA_SASL_BOOTSTRAP=$HOST:$sasl_port
export BARRAGE_KAFKA_SASL_PLAIN_USERNAME=$SASL_PLAIN_USER
export BARRAGE_KAFKA_SASL_PLAIN_PASSWORD=$SASL_PLAIN_PASSWORD
export BARRAGE_KAFKA_SASL_SCRAM_USERNAME=$SASL_SCRAM_USER
export BARRAGE_KAFKA_SASL_SCRAM_PASSWORD=$SASL_SCRAM_PASSWORD
}${tls_port:+export BARRAGE_KAFKA_SSL_BOOTSTRAP=$HOST:$tls_port
export BARRAGE_KAFKA_SASL_SSL_BOOTSTRAP=$HOST:$((tls_port + 1))
export BARRAGE_KAFKA_SSL_WRONG_HOST_BOOTSTRAP=$HOST:$((tls_port + 2))
export BARRAGE_KAFKA_SSL_EXPIRED_BOOTSTRAP=$HOST:$((tls_port + 3))
export BARRAGE_KAFKA_TLS_CA=$TLS_DIR/ca.pem
export BARRAGE_KAFKA_TLS_OTHER_CA=$TLS_DIR/other-ca.pem
}export AWS_ENDPOINT_URL=http://$HOST:$moto_port
export BARRAGE_AWS_PYTHON=$MOTO_VENV/bin/python
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export BARRAGE_SERVICES=$state
EOF
}

cmd_classpath() {
    if [[ ! -f "$KAFKA_HOME/.resolved" ]]; then
        with_lock
        resolve_kafka
    fi
    printf '%s\n' "$KAFKA_LIBS/*"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
}

case "${1:-}" in
up) cmd_up "${2:-all}" ;;
down) cmd_down "${2:-all}" ;;
status) cmd_status ;;
env) cmd_env ;;
classpath) cmd_classpath ;;
-h | --help | help)
    usage
    exit 0
    ;;
*)
    usage
    exit 2
    ;;
esac
