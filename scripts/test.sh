#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what is missing, brings the real services up,
# checks formatting and lints, runs every test against the real Kafka broker and the AWS emulator,
# opens a rendered report in headless Chromium, runs the extra gates (scripts/gates.sh) when present, and stops the services it started (also on failure).
#
# Settings (environment): BARRAGE_KEEP_SERVICES=1 leaves services this script started running at the end;
# the BARRAGE_*_PORT settings of scripts/services.sh are honoured.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

if [[ ! -t 1 ]]; then
    export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
fi
# A CI clone is built once: incremental compilation data would only take disk space (gigabytes).
if [[ -n "${CI:-}" ]]; then
    export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi

# Free space where the build goes, printed before and after the build so a full disk is easy to spot.
disk_report() {
    local dir="${CARGO_TARGET_DIR:-$ROOT/target}"
    mkdir -p "$dir"
    printf 'disk: %s free on the file system of %s; target dir holds %s\n' \
        "$(df -h --output=avail "$dir" | tail -n 1 | tr -d ' ')" "$dir" "$(du -sh "$dir" 2>/dev/null | cut -f1)"
}

TOTAL_STARTED="$(barrage_now)"
STEP=""
STEP_STARTED=""
STARTED_SERVICES=()

step() {
    finish_step
    STEP="$1"
    STEP_STARTED="$(barrage_now)"
    printf '\n==== %s  (at %ss) ====\n' "$STEP" "$(barrage_elapsed "$TOTAL_STARTED")"
}

finish_step() {
    if [[ -n "$STEP" ]]; then
        printf '==== %s: ok in %ss ====\n' "$STEP" "$(barrage_elapsed "$STEP_STARTED")"
    fi
    STEP=""
}

on_exit() {
    local rc=$?
    set +e
    if [[ "$rc" -ne 0 && -n "$STEP" ]]; then
        printf '\n==== %s: FAILED (exit %s) after %ss ====\n' "$STEP" "$rc" "$(barrage_elapsed "$STEP_STARTED")"
    fi
    if [[ "${#STARTED_SERVICES[@]}" -gt 0 ]]; then
        if [[ "${BARRAGE_KEEP_SERVICES:-0}" == "1" ]]; then
            printf '\n==== %s left running (BARRAGE_KEEP_SERVICES=1); stop with scripts/services.sh down ====\n' "${STARTED_SERVICES[*]}"
        else
            printf '\n==== services down: %s (started by this run) ====\n' "${STARTED_SERVICES[*]}"
            local service
            for service in "${STARTED_SERVICES[@]}"; do
                scripts/services.sh down "$service"
            done
        fi
    fi
    if [[ "$rc" -eq 0 ]]; then
        printf '\n==== all checks passed in %ss ====\n' "$(barrage_elapsed "$TOTAL_STARTED")"
    else
        printf '\n==== FAILED (exit %s) after %ss ====\n' "$rc" "$(barrage_elapsed "$TOTAL_STARTED")"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "setup (scripts/setup.sh)"
scripts/setup.sh </dev/null

step "services up (scripts/services.sh up)"
status_before="$(scripts/services.sh status 2>/dev/null || true)"
for service in kafka moto; do
    if grep -Eq "^$service: *(up|running) " <<<"$status_before"; then
        echo "$service: already running (not started by this run; it stays up)"
    else
        # Whatever `up` starts from here on is ours to stop, even if `up` itself fails half-way.
        STARTED_SERVICES+=("$service")
    fi
done
scripts/services.sh up </dev/null
eval "$(scripts/services.sh env)"
export BARRAGE_REQUIRE_SERVICES=1
if [[ "${BARRAGE_SERVICES:-}" != "up" ]]; then
    barrage_die "scripts/services.sh env reports the services are not up"
fi
echo "BARRAGE_KAFKA_BOOTSTRAP=$BARRAGE_KAFKA_BOOTSTRAP AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=$AWS_REGION BARRAGE_REQUIRE_SERVICES=1"

step "cargo fmt --all --check"
disk_report
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace (against Kafka at $BARRAGE_KAFKA_BOOTSTRAP and moto at $AWS_ENDPOINT_URL)"
# --show-output: the figures the system, property and crash tests print appear in the CI log.
cargo test --workspace -- --show-output
disk_report

step "report in a browser (scripts/browser-test.sh: headless Chromium screenshot of report.html)"
bash scripts/browser-test.sh </dev/null

if [[ -x scripts/gates.sh ]]; then
    step "gates (scripts/gates.sh)"
    scripts/gates.sh
fi

finish_step
