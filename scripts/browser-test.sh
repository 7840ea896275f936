#!/usr/bin/env bash
# Browser check of report.html: renders the sample report (a Rust test), opens it in headless
# Chromium (Debian's `chromium`, installed with apt-get when missing), saves a screenshot to
# target/report-screenshot.png and checks it is not blank and shows the charts.
#
# Usage: scripts/browser-test.sh            (from anywhere in the repository)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

target="${CARGO_TARGET_DIR:-$root/target}"
shot="$target/report-screenshot.png"
html="$target/tmp/report-sample/report.html"

if ! command -v chromium >/dev/null 2>&1; then
    barrage_log "Installing Debian's chromium (apt-get)."
    sudo_cmd=""
    if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

barrage_log "Rendering the sample report."
rm -f "$html" "$shot"
# --workspace, not -p barrage-operator: the workspace's feature set, so after `cargo test
# --workspace` (scripts/test.sh) the test binary is reused instead of rebuilding the dependencies
# with one package's features (that rebuild took 384 s of a CI run on 2026-12-05).
cargo test -q --workspace --test report_render -- sample_report_for_the_browser_check >/dev/null
[ -s "$html" ] || barrage_die "the sample report was not written to $html"

barrage_log "Opening $html in headless Chromium."
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --screenshot="$shot" --window-size=1400,2400 \
    "file://$html" >/dev/null 2>&1 || true
[ -s "$shot" ] || barrage_die "Chromium wrote no screenshot to $shot"

python3 "$root/tests/browser/check_png.py" "$shot"
barrage_log "Screenshot: $shot"
