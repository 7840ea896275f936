#!/usr/bin/env bash
# Try the operator on one machine: the AWS emulator stands in for AWS, local agent processes for ECS tasks.
#
# Usage: scripts/local-operator.sh up|down|status|env
#   up      with the services up (scripts/services.sh up), create the DynamoDB table (with its stream) and the
#           S3 bucket in the emulator, then start `barrage controller --launcher process` in the background
#   down    stop the controller `up` started (by its pid file), nothing else
#   status  print whether the controller runs; exit 0 when it does, 3 otherwise
#   env     print the exports a shell needs: eval "$(scripts/local-operator.sh env)"
#
# Then:  barrage apply -f crds/examples/quickstart.yaml --wait; barrage get; barrage describe quickstart
#
# Settings (environment): BARRAGE_STORE (dynamodb://barrage), BARRAGE_BLOBS (s3://barrage-reports),
# BARRAGE_METRICS_ADDR (127.0.0.1:9464), BARRAGE_OPERATOR_TIMEOUT (readiness bound in seconds, 60).
# The pid file and the log live under "${XDG_CACHE_HOME:-$HOME/.cache}/barrage" (run/, logs/), agent logs in agents/.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

STORE="${BARRAGE_STORE:-dynamodb://barrage}"
BLOBS="${BARRAGE_BLOBS:-s3://barrage-reports}"
METRICS_ADDR="${BARRAGE_METRICS_ADDR:-127.0.0.1:9464}"
READY_TIMEOUT="${BARRAGE_OPERATOR_TIMEOUT:-60}"
[[ "$READY_TIMEOUT" =~ ^[0-9]+$ ]] || barrage_die "BARRAGE_OPERATOR_TIMEOUT must be a number (got '$READY_TIMEOUT')"

CACHE="$(barrage_cache_dir)"
RUN_DIR="$CACHE/run"
LOG_DIR="$CACHE/logs"
PID_FILE="$RUN_DIR/controller.pid"
LOG_FILE="$LOG_DIR/controller.log"
BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
BARRAGE="$BIN_DIR/barrage"

log() { barrage_log "local-operator: $*"; }

# The controller's pid when the pid file names a live `barrage controller`.
controller_pid() {
    local pid cmdline
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(tr -dc '0-9' <"$PID_FILE")"
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"barrage controller"* ]] || return 1
    printf '%s\n' "$pid"
}

# The exports of the emulator and the broker, from the services script.
services_env() {
    "$SCRIPT_DIR/services.sh" env
}

print_env() {
    services_env
    printf 'export BARRAGE_STORE=%q\n' "$STORE"
    printf 'export BARRAGE_BLOBS=%q\n' "$BLOBS"
    printf 'export PATH=%q\n' "$BIN_DIR:$PATH"
}

healthy() {
    local host="${METRICS_ADDR%:*}" port="${METRICS_ADDR##*:}"
    [[ "$host" == "0.0.0.0" ]] && host=127.0.0.1
    curl -fsS --max-time 2 "http://$host:$port/healthz" >/dev/null 2>&1
}

up() {
    local tries=0
    # The services' probes can miss once on a busy machine: ask three times before giving up.
    until "$SCRIPT_DIR/services.sh" status >/dev/null 2>&1; do
        tries=$((tries + 1))
        if ((tries >= 3)); then
            "$SCRIPT_DIR/services.sh" status >&2 || true
            barrage_die "the services are not up: run scripts/services.sh up first"
        fi
        sleep 1
    done
    eval "$(services_env)"
    export BARRAGE_STORE="$STORE" BARRAGE_BLOBS="$BLOBS"
    if [[ ! -x "$BARRAGE" || ! -x "$BIN_DIR/barrage-agent" ]]; then
        log "building barrage and barrage-agent"
        (cd "$ROOT" && cargo build --bins -p barrage -p barrage-agent) >&2
    fi
    "$BARRAGE" admin init >&2
    if pid="$(controller_pid)"; then
        log "controller already running (pid $pid, log $LOG_FILE)"
        return 0
    fi
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    log "starting barrage controller --launcher process (log $LOG_FILE)"
    BARRAGE_METRICS_ADDR="$METRICS_ADDR" BARRAGE_LOG_FORMAT="${BARRAGE_LOG_FORMAT:-compact}" \
        nohup "$BARRAGE" controller --launcher process --agent-binary "$BIN_DIR/barrage-agent" \
        >>"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    local start
    start="$(barrage_now)"
    for _ in $(seq 1 $((READY_TIMEOUT * 5))); do
        if ! controller_pid >/dev/null; then
            tail -n 20 "$LOG_FILE" >&2 || true
            barrage_die "the controller exited during start-up (log $LOG_FILE)"
        fi
        if healthy; then
            log "controller up in $(barrage_elapsed "$start")s: pid $(controller_pid), metrics http://$METRICS_ADDR/metrics"
            log "next: eval \"\$(scripts/local-operator.sh env)\" && barrage apply -f crds/examples/quickstart.yaml --wait"
            return 0
        fi
        sleep 0.2
    done
    barrage_die "the controller did not answer /healthz on $METRICS_ADDR within ${READY_TIMEOUT}s (log $LOG_FILE)"
}

down() {
    local pid
    if ! pid="$(controller_pid)"; then
        log "controller not running"
        rm -f "$PID_FILE"
        return 0
    fi
    log "stopping controller (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "controller still running after 30s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
}

status() {
    local pid
    if pid="$(controller_pid)"; then
        printf 'controller: up    pid %s  store %s  blobs %s  metrics http://%s/metrics  log %s\n' \
            "$pid" "$STORE" "$BLOBS" "$METRICS_ADDR" "$LOG_FILE"
        return 0
    fi
    printf 'controller: down  (start it with scripts/local-operator.sh up)\n'
    return 3
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    env) print_env ;;
    *)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
