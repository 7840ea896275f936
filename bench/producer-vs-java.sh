#!/usr/bin/env bash
# Barrage's producer vs Kafka's own org.apache.kafka.tools.ProducerPerformance and librdkafka's own
# rdkafka_performance (the library Barrage drives), against the local broker.
#
# Run from a clone after `scripts/setup.sh` and `scripts/services.sh up`:
#   bench/producer-vs-java.sh
#
# What it does, in one run:
#   1. builds `barrage` (cargo build --release -p barrage), then `rdkafka_performance` from the librdkafka source
#      that build configured (rdkafka-sys's out dir), cached per librdkafka version under ~/.cache/barrage;
#   2. maximum rate, per value size (100 B and 1 KiB) and round (2): Barrage (`barrage run` of a generated
#      LoadTest at a constant rate far above what one machine does, so it runs flat out and the unsent backlog
#      is counted as "dropped"), ProducerPerformance --throughput -1 and rdkafka_performance without -r, the
#      order rotated per round (B J R | J R B | R B J …) so no tool always runs first;
#   3. fixed rate at 50 % of Java's measured maximum per size: the three tools at that rate, rate accuracy and p99;
#   4. prints the markdown tables (bench/report.py) and deletes every topic it created.
# Every case gets a fresh topic with the same layout (6 partitions, replication 1) and every producer the same
# settings: acks=all, linger 5 ms, batch.size 65536, compression none, idempotence on, no key.
# CPU seconds and peak RSS come from GNU time (user+sys, %M) around each tool's process; the broker's CPU over
# each case from /proc; the record batches each tool made from the topic's log segments, read after the case with
# Kafka's DumpLogSegments (kafka-dump-log.sh): batches, records and bytes, per case. Traffic goes only to 127.0.0.1.
#
# Settings (environment):
#   BENCH_SECONDS (15)        length of a maximum-rate case
#   BENCH_ROUNDS (2)          rounds of maximum-rate cases
#   BENCH_FIXED_SECONDS (10)  length of a fixed-rate case (0 skips the fixed-rate cases)
#   BENCH_SIZES ("100 1024")  value sizes in bytes
#   BENCH_PARTITIONS (6)      partitions of each topic
#   BENCH_MAX_RATE (2000000)  Barrage's "flat out" rate (the spec allows at most 2,000,000/s per agent)
#   BENCH_JAVA_PROPERTIES     extra producer properties for Java, "k=v k=v" (e.g. max.request.size=70000: one
#                             batch per ProduceRequest, as librdkafka sends them)
#   BENCH_BARRAGE_PROPERTIES  extra librdkafka properties for Barrage, "k=v k=v" (spec.kafka.producer.properties)
#   BENCH_RDKAFKA_PROPERTIES  extra librdkafka properties for rdkafka_performance, "k=v k=v" (each one a -X k=v)
#   BENCH_OUT                 where the per-case logs go (default ~/.cache/barrage/bench/<stamp>)
#   BARRAGE_KAFKA_PORT (9092) the local broker's port, as for scripts/services.sh
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

SECONDS_MAX="${BENCH_SECONDS:-15}"
ROUNDS="${BENCH_ROUNDS:-2}"
SECONDS_FIXED="${BENCH_FIXED_SECONDS:-10}"
SIZES="${BENCH_SIZES:-100 1024}"
PARTITIONS="${BENCH_PARTITIONS:-6}"
MAX_RATE="${BENCH_MAX_RATE:-2000000}"
read -r -a JAVA_PROPERTIES <<<"${BENCH_JAVA_PROPERTIES:-}"
read -r -a BARRAGE_PROPERTIES <<<"${BENCH_BARRAGE_PROPERTIES:-}"
read -r -a RDKAFKA_PROPERTIES <<<"${BENCH_RDKAFKA_PROPERTIES:-}"
for p in "${JAVA_PROPERTIES[@]}" "${BARRAGE_PROPERTIES[@]}" "${RDKAFKA_PROPERTIES[@]}"; do
    [[ "$p" =~ ^[a-z.]+=[^[:space:]\"]+$ ]] || barrage_die "extra properties are k=v words (got '$p')"
done
PORT="${BARRAGE_KAFKA_PORT:-9092}"
BOOTSTRAP="127.0.0.1:$PORT"
for v in SECONDS_MAX ROUNDS SECONDS_FIXED PARTITIONS MAX_RATE PORT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || barrage_die "$v must be a whole number (got '${!v}')"
done
for s in $SIZES; do
    [[ "$s" =~ ^[0-9]+$ && "$s" -gt 0 ]] || barrage_die "BENCH_SIZES must hold positive whole numbers (got '$s')"
done

CACHE="$(barrage_cache_dir)"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
OUT="${BENCH_OUT:-$CACHE/bench/$STAMP}"
TOPIC_PREFIX="barrage-bench-$STAMP"
TOOLS_LOG4J="$CACHE/run/tools-log4j2.properties"
KAFKA_PID_FILE="$CACHE/run/kafka.pid"
KAFKA_CONFIG="$CACHE/run/kafka-server.properties"
STARTED="$(barrage_now)"

log() { barrage_log "bench: $*"; }

# ---------------------------------------------------------------------------------------------------------------
# Prerequisites

apt_install() {
    # apt_install PACKAGE: Debian's package, with sudo unless root.
    local sudo=()
    [[ "$(id -u)" -ne 0 ]] && sudo=(sudo)
    "${sudo[@]}" apt-get update -q </dev/null >/dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "$1" </dev/null >/dev/null ||
        barrage_die "could not install Debian's '$1' package"
}
if [[ ! -x /usr/bin/time ]] || ! /usr/bin/time -f '%U' true >/dev/null 2>&1; then
    log "GNU time is missing; installing Debian's 'time' package"
    apt_install time
fi
if ! command -v cc >/dev/null; then
    log "no C compiler (cc) for rdkafka_performance; installing Debian's 'gcc' package"
    apt_install gcc
fi
command -v python3 >/dev/null || barrage_die "python3 is needed for the report (scripts/setup.sh installs it)"
command -v java >/dev/null || barrage_die "java is needed for ProducerPerformance (scripts/setup.sh installs it)"

# `status` exits 3 when moto is down too; only Kafka matters here.
status="$("$ROOT/scripts/services.sh" status 2>/dev/null || true)"
if ! grep -q '^kafka: *up' <<<"$status"; then
    barrage_die "the local Kafka broker is not running; start it with scripts/services.sh up"
fi
CLASSPATH_KAFKA="$("$ROOT/scripts/services.sh" classpath)"
[[ -f "$TOOLS_LOG4J" ]] || barrage_die "missing $TOOLS_LOG4J (scripts/services.sh up writes it)"
KAFKA_PID="$(tr -dc '0-9' <"$KAFKA_PID_FILE" 2>/dev/null || true)"
# Where the running broker keeps its partitions (scripts/services.sh writes its configuration).
KAFKA_LOG_DIRS="$(sed -n 's/^log\.dirs=//p' "$KAFKA_CONFIG" 2>/dev/null | tail -n 1)"
[[ -d "$KAFKA_LOG_DIRS" ]] || log "no broker log dir in $KAFKA_CONFIG; records per batch will be n/a"

log "building barrage (release)"
(cd "$ROOT" && cargo build --release -q -p barrage) || barrage_die "cargo build --release failed"
BARRAGE="${CARGO_TARGET_DIR:-$ROOT/target}/release/barrage"
[[ -x "$BARRAGE" ]] || barrage_die "no binary at $BARRAGE after the build"

newest_dir_with() {
    # newest_dir_with FILE DIR…: the DIR whose DIR/FILE exists and is the newest, or nothing.
    local file="$1" best="" d
    shift
    for d in "$@"; do
        [[ -f "$d/$file" ]] || continue
        if [[ -z "$best" || "$d/$file" -nt "$best/$file" ]]; then best="$d"; fi
    done
    printf '%s' "$best"
}

rdkafka_version_of() {
    # rdkafka_version_of BINARY: the librdkafka version its usage text names ("librdkafka version 2.12.1 (0x…)").
    local usage
    usage="$("$1" 2>&1 </dev/null || true)"
    sed -n 's/^librdkafka version \([^ ]*\) .*/\1/p' <<<"$usage" | head -n 1
}

config_words() {
    # config_words VAR FILE: the words of every "VAR+=" line of librdkafka's Makefile.config, one per line.
    local line words=()
    while IFS= read -r line; do
        read -r -a words <<<"$line"
        [[ "${#words[@]}" -gt 0 ]] && printf '%s\n' "${words[@]}"
    done < <(sed -n "s/^$1+=//p" "$2")
    return 0
}

# rdkafka_performance from the librdkafka source rdkafka-sys bundles, as this build configured and compiled it
# (src/librdkafka.a; Makefile.config's LIBS+= lines are its link flags, its LDFLAGS+= name zstd-sys's out dir of the
# same build, holding libzstd.a). Cached under the cache dir per librdkafka version; built only when missing.
build_rdkafka_performance() {
    local build="${CARGO_TARGET_DIR:-$ROOT/target}/release/build" src zstd="" w
    src="$(newest_dir_with src/librdkafka.a "$build"/rdkafka-sys-*/out)"
    [[ -n "$src" && -f "$src/examples/rdkafka_performance.c" && -f "$src/Makefile.config" ]] ||
        barrage_die "no configured librdkafka source under $build/rdkafka-sys-*/out (src/librdkafka.a," \
            "examples/rdkafka_performance.c, Makefile.config); the release build of barrage should have left it there"
    while IFS= read -r w; do
        [[ "$w" == -L* && -f "${w#-L}/libzstd.a" ]] && zstd="${w#-L}"
    done < <(config_words LDFLAGS "$src/Makefile.config")
    [[ -n "$zstd" ]] || zstd="$(newest_dir_with libzstd.a "$build"/zstd-sys-*/out)"
    [[ -n "$zstd" ]] || barrage_die "no libzstd.a under $build/zstd-sys-*/out for linking rdkafka_performance"
    # RD_KAFKA_VERSION is 0xMMmmrrpp (major, minor, revision, pre-release).
    local hex version
    hex="$(sed -n 's/^#define RD_KAFKA_VERSION *\(0x[0-9a-fA-F]*\).*/\1/p' "$src/src/rdkafka.h" | head -n 1)"
    [[ -n "$hex" ]] || barrage_die "no RD_KAFKA_VERSION in $src/src/rdkafka.h"
    version="$(((hex >> 24) & 255)).$(((hex >> 16) & 255)).$(((hex >> 8) & 255))"
    local dir="$CACHE/rdkafka-performance/$version"
    RDKAFKA_PERF="$dir/rdkafka_performance"
    if [[ -x "$RDKAFKA_PERF" && "$(rdkafka_version_of "$RDKAFKA_PERF")" == "$version" ]]; then
        log "rdkafka_performance of librdkafka $version: $RDKAFKA_PERF (cached)"
        return 0
    fi
    log "building rdkafka_performance of librdkafka $version from $src"
    local libs=()
    while IFS= read -r w; do libs+=("$w"); done < <(config_words LIBS "$src/Makefile.config")
    [[ "${#libs[@]}" -gt 0 ]] || libs=(-lm -lzstd -lssl -lcrypto -lz -ldl -lpthread -lrt)
    mkdir -p "$dir"
    local tmp="$dir/rdkafka_performance.tmp.$$"
    cc -O2 -I "$src/src" "$src/examples/rdkafka_performance.c" -o "$tmp" "$src/src/librdkafka.a" \
        -L "$zstd" "${libs[@]}" 2>"$dir/build.log" ||
        { rm -f "$tmp"; barrage_die "could not build rdkafka_performance (see $dir/build.log)"; }
    local built
    built="$(rdkafka_version_of "$tmp")"
    if [[ "$built" != "$version" ]]; then
        rm -f "$tmp"
        barrage_die "the rdkafka_performance built from $src says librdkafka '$built', rdkafka.h says $version"
    fi
    mv -f "$tmp" "$RDKAFKA_PERF"
    log "rdkafka_performance of librdkafka $version: $RDKAFKA_PERF"
}
RDKAFKA_PERF=""
build_rdkafka_performance
RDKAFKA_VERSION="$(rdkafka_version_of "$RDKAFKA_PERF")"

mkdir -p "$OUT"
log "logs of every case: $OUT"
CASES_STARTED="$(barrage_now)"

kafka_tool() {
    java -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$CLASSPATH_KAFKA" "$@"
}

# ---------------------------------------------------------------------------------------------------------------
# Clean-up: the topics this run created, and a tool still running if the script is interrupted.

CHILD=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$CHILD" ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    log "deleting the topics $TOPIC_PREFIX-*"
    if ! timeout 60 java -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$CLASSPATH_KAFKA" \
        org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
        --delete --if-exists --topic "$TOPIC_PREFIX-.*" >"$OUT/delete-topics.log" 2>&1; then
        log "could not delete the topics (see $OUT/delete-topics.log); delete $TOPIC_PREFIX-* by hand"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

create_topic() {
    timeout 60 java -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$CLASSPATH_KAFKA" \
        org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --create --topic "$1" \
        --partitions "$PARTITIONS" --replication-factor 1 >/dev/null 2>"$OUT/create-$1.log" ||
        barrage_die "could not create topic $1 (see $OUT/create-$1.log)"
}

broker_ticks() {
    # utime + stime of the broker process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
    if [[ -n "$KAFKA_PID" && -r "/proc/$KAFKA_PID/stat" ]]; then
        awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$KAFKA_PID/stat"
    else
        echo 0
    fi
}

dump_batches() {
    # dump_batches TOPIC DIR: "batches records bytes" of the topic's log segments into DIR/batches, and whether
    # the first records carry headers into DIR/headers (the first 64 KiB of partition 0, record by record).
    local topic="$1" dir="$2" files=()
    [[ -d "$KAFKA_LOG_DIRS" ]] || return 0
    files=("$KAFKA_LOG_DIRS/$topic"-*/*.log)
    [[ -e "${files[0]}" ]] || return 0
    local list
    list="$(IFS=,; echo "${files[*]}")"
    if ! timeout 120 java -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$CLASSPATH_KAFKA" \
        org.apache.kafka.tools.DumpLogSegments --files "$list" 2>"$dir/dump-log.err" |
        awk '/^baseOffset:/ { for (i = 1; i < NF; i++) { if ($i == "count:") r += $(i + 1); if ($i == "size:") b += $(i + 1) } n++ }
             END { printf "%.0f %.0f %.0f\n", n, r, b }' >"$dir/batches"; then
        log "could not read the log segments of $topic (see $dir/dump-log.err)"
    fi
    timeout 60 java -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$CLASSPATH_KAFKA" \
        org.apache.kafka.tools.DumpLogSegments --deep-iteration --max-bytes 65536 \
        --files "$KAFKA_LOG_DIRS/$topic-0/00000000000000000000.log" 2>/dev/null |
        awk '/headerKeys:/ { n++; if ($0 !~ /headerKeys: \[\]/) h++ } END { printf "%d %d\n", n, h }' >"$dir/headers" || true
}

# ---------------------------------------------------------------------------------------------------------------
# One case: a fresh topic, the tool under GNU time, its output, the broker's CPU meanwhile.

SEQ=0
CASE_DIR=""
# run_case PHASE TOOL SIZE ROUND RATE SECONDS RECORDS; sets CASE_DIR to the case's folder.
run_case() {
    local phase="$1" tool="$2" size="$3" round="$4" rate="$5" seconds="$6" records="$7"
    SEQ=$((SEQ + 1))
    local name
    name="$(printf '%02d-%s-%s-%s-r%s' "$SEQ" "$phase" "$tool" "$size" "$round")"
    local dir="$OUT/$name" topic="$TOPIC_PREFIX-$name"
    mkdir -p "$dir"
    {
        echo "seq=$SEQ"
        echo "phase=$phase"
        echo "tool=$tool"
        echo "size=$size"
        echo "round=$round"
        echo "target=$rate"
        echo "seconds=$seconds"
        echo "records=$records"
        echo "topic=$topic"
    } >"$dir/meta"
    create_topic "$topic"
    local cmd
    if [[ "$tool" == barrage ]]; then
        # At maximum rate the run is stopped at its end (maxDuration = the load), and the backlog the machine
        # could not send is counted as dropped; at a fixed rate it gets room to send every scheduled record.
        local max_duration=$seconds
        [[ "$phase" != max ]] && max_duration=$((seconds + 20))
        local properties="" p
        for p in "${BARRAGE_PROPERTIES[@]}"; do
            properties+=$'\n'"        \"${p%%=*}\": \"${p#*=}\""
        done
        [[ -n "$properties" ]] && properties=$'\n'"      properties:$properties"
        cat >"$dir/loadtest.yaml" <<EOF
apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata:
  name: bench-$name
spec:
  kafka:
    bootstrapServers: "$BOOTSTRAP"
    producer:
      acks: all
      linger: 5ms
      batchSize: 65536
      compression: none
      idempotence: true$properties
  topic:
    name: $topic
  workload:
    kind: Produce
    records:
      value: {size: $size}
  load:
    steps:
      - constant: {rate: $rate, for: ${seconds}s}
    maxDuration: ${max_duration}s
  report:
    interval: 5s
EOF
        cmd=("$BARRAGE" run "$dir/loadtest.yaml" --out "$dir/run" --progress-every 5s)
    elif [[ "$tool" == rdkafka ]]; then
        # Random partition (no -p), no key, delivery reports on (its default); its summary's last line is the result.
        # -r is its per-message rate limiter (a poll loop of 1e6/RATE whole µs after each produce).
        local limit=() p
        [[ "$phase" == fixed ]] && limit=(-r "$rate")
        local extra=()
        for p in "${RDKAFKA_PROPERTIES[@]}"; do extra+=(-X "$p"); done
        cmd=("$RDKAFKA_PERF" -P -t "$topic" -b "$BOOTSTRAP" -s "$size" -c "$records" -a -1 "${limit[@]}"
            -X linger.ms=5 -X batch.size=65536 -X compression.codec=none -X enable.idempotence=true "${extra[@]}")
    else
        local throughput="$rate"
        [[ "$phase" != fixed ]] && throughput=-1
        # The JVM options kafka-producer-perf-test.sh runs with (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS).
        cmd=(java -Xmx512M -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
            -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$CLASSPATH_KAFKA"
            org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$records"
            --record-size "$size" --throughput "$throughput" --reporting-interval 5000
            --command-property acks=all linger.ms=5 batch.size=65536 compression.type=none
            enable.idempotence=true "bootstrap.servers=$BOOTSTRAP" "${JAVA_PROPERTIES[@]}" --print-metrics)
    fi
    printf '%s\n' "${cmd[*]}" >"$dir/command"
    local what="$rate/s"
    [[ "$phase" == max ]] && what="maximum rate"
    [[ "$phase" == startup ]] && what="start-up cost (1,000 records)"
    log "$name: $tool, ${size} B values, $what$([[ "$tool" != barrage ]] && echo ", $records records")"
    local before after rc=0
    before="$(broker_ticks)"
    # Hard bound: the case's length plus room for start-up and the final flush.
    /usr/bin/time -o "$dir/time" -f '%U %S %M %e' timeout -k 5 $((seconds + 25)) "${cmd[@]}" \
        >"$dir/stdout" 2>"$dir/stderr" </dev/null &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=""
    after="$(broker_ticks)"
    echo "$before $after" >"$dir/broker"
    echo "$rc" >"$dir/rc"
    dump_batches "$topic" "$dir"
    if [[ "$rc" -ne 0 ]]; then
        log "$name: exit code $rc (see $dir/stderr)"
    fi
    CASE_DIR="$dir"
}

case_rate() { python3 "$BENCH_DIR/report.py" rate "$1" || true; }

# ---------------------------------------------------------------------------------------------------------------
# Start-up cost: each tool sending 1,000 records (100 B), so the table can also show CPU per record without it
# (the JVM's start-up and JIT are a fixed cost of a few CPU seconds, Barrage's a fraction of one).

run_case startup barrage 100 1 1000 1 0
run_case startup java 100 1 -1 1 1000
run_case startup rdkafka 100 1 -1 1 1000

# ---------------------------------------------------------------------------------------------------------------
# Maximum rate: per round and size, the three tools in an order rotated by one each round (B J R, J R B, R B J),
# so over the rounds every tool runs first, second and last alike.

TOOLS=(barrage java rdkafka)
declare -A JAVA_RATES=() BARRAGE_RATE=() RDKAFKA_RATE=()
for ((round = 1; round <= ROUNDS; round++)); do
    order=()
    for ((i = 0; i < ${#TOOLS[@]}; i++)); do
        order+=("${TOOLS[$(((round - 1 + i) % ${#TOOLS[@]}))]}")
    done
    for size in $SIZES; do
        for tool in "${order[@]}"; do
            if [[ "$tool" == barrage ]]; then
                run_case max barrage "$size" "$round" "$MAX_RATE" "$SECONDS_MAX" 0
                BARRAGE_RATE[$size]="$(case_rate "$CASE_DIR")"
            elif [[ "$tool" == rdkafka ]]; then
                # Records for about BENCH_SECONDS: from its own last measured rate, else Barrage's, else Java's.
                last="${RDKAFKA_RATE[$size]:-0}"
                [[ "$last" -gt 0 ]] || last="${BARRAGE_RATE[$size]:-0}"
                if [[ "$last" -le 0 ]]; then
                    last="${JAVA_RATES[$size]:-}"
                    last="${last##* }"
                    last="${last:-0}"
                fi
                [[ "$last" -gt 0 ]] || last=$((3000000 / size + 50000))
                run_case max rdkafka "$size" "$round" -1 "$SECONDS_MAX" $((last * SECONDS_MAX))
                r="$(case_rate "$CASE_DIR")"
                [[ -n "$r" && "$r" != 0 ]] && RDKAFKA_RATE[$size]="$r"
            else
                # Records for about BENCH_SECONDS: from Java's last measured rate, else 0.8 × Barrage's.
                last="${JAVA_RATES[$size]:-}"
                last="${last##* }"
                if [[ -z "$last" || "$last" == 0 ]]; then
                    last=$((${BARRAGE_RATE[$size]:-0} * 8 / 10))
                fi
                [[ "$last" -gt 0 ]] || last=$((3000000 / size + 50000))
                records=$((last * SECONDS_MAX))
                run_case max java "$size" "$round" -1 "$SECONDS_MAX" "$records"
                r="$(case_rate "$CASE_DIR")"
                [[ -n "$r" && "$r" != 0 ]] && JAVA_RATES[$size]="${JAVA_RATES[$size]:-} $r"
            fi
        done
    done
done

# ---------------------------------------------------------------------------------------------------------------
# Fixed rate: 50 % of Java's mean measured maximum, the three tools at that rate.

if ((SECONDS_FIXED > 0)); then
    for size in $SIZES; do
        rates="${JAVA_RATES[$size]:-}"
        if [[ -z "${rates// /}" ]]; then
            log "no Java maximum measured for ${size} B values; skipping its fixed-rate cases"
            continue
        fi
        target="$(awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%d", s / NF / 2 }' <<<"$rates")"
        run_case fixed barrage "$size" 1 "$target" "$SECONDS_FIXED" 0
        run_case fixed java "$size" 1 "$target" "$SECONDS_FIXED" $((target * SECONDS_FIXED))
        run_case fixed rdkafka "$size" 1 "$target" "$SECONDS_FIXED" $((target * SECONDS_FIXED))
    done
fi

# ---------------------------------------------------------------------------------------------------------------
# The table.

{
    echo "## Barrage vs Kafka ProducerPerformance and librdkafka rdkafka_performance — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $(nproc) CPU(s) ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), shared with the broker" \
        "(Kafka 4.4.0, one KRaft node on $BOOTSTRAP) and anything else running; figures are noisy."
    echo "All three producers: acks=all, linger 5 ms, batch.size 65536, compression none, idempotence on, no key;" \
        "one fresh topic per case ($PARTITIONS partitions, replication 1). Maximum-rate cases last ~${SECONDS_MAX} s."
    [[ -n "${BENCH_JAVA_PROPERTIES:-}" ]] && echo "Java also: ${BENCH_JAVA_PROPERTIES}."
    [[ -n "${BENCH_BARRAGE_PROPERTIES:-}" ]] && echo "Barrage also: ${BENCH_BARRAGE_PROPERTIES}."
    [[ -n "${BENCH_RDKAFKA_PROPERTIES:-}" ]] && echo "rdkafka_performance also: ${BENCH_RDKAFKA_PROPERTIES}."
    echo "Barrage $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet -- agent controller crds 2>/dev/null || echo ' (with uncommitted changes)'); $(java -version 2>&1 | head -1); rdkafka_performance of librdkafka $RDKAFKA_VERSION (the source rdkafka-sys bundles, built by this run or cached)."
    echo
    python3 "$BENCH_DIR/report.py" table "$OUT"
    echo "Notes: records/s is each tool's own count of acknowledged records over its own elapsed time (Barrage: acked /"
    echo "elapsed including the final flush; Java: its final line; rdkafka_performance: delivered over first produce to last"
    echo "delivery report, its final line). MB/s = records/s × value size / 10^6 (Java prints MiB/s)."
    echo "rdkafka_performance hands librdkafka one static value buffer without a copy (its default, no -D); Barrage has it"
    echo "copied (RD_KAFKA_MSG_F_COPY). Its -r limiter polls librdkafka in a loop for 1e6/RATE µs after each message, cut to"
    echo "whole µs (350,000/s: 2 µs), so it holds the target only roughly and its CPU at a fixed rate is mostly that loop."
    echo "CPU s is user+sys of the tool's whole process (start-up, JVM JIT and GC included), from GNU time; peak RSS is %M."
    echo "Barrage's p99 from the intended send time is coordinated-omission free; Java's p99 is from its send() call, in"
    echo "whole milliseconds, like Barrage's service time. Broker CPU s is the broker process's user+sys over the case"
    echo "(its idle work included); per M records it is divided by the records stored in the topic. Records / batch and"
    echo "batch KiB are the record batches in the topic's log segments (DumpLogSegments). Logs: $OUT"
} | tee "$OUT/table.md"
log "done in $(barrage_elapsed "$STARTED")s (the cases: $(barrage_elapsed "$CASES_STARTED")s, the rest is the build)"
