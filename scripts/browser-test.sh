#!/usr/bin/env bash
# Browser check of report.html: renders the sample reports (Rust tests), opens them in headless
# Chromium (Debian's `chromium`, installed with apt-get when missing), saves screenshots to
# target/report-screenshot.png (a Produce run) and target/report-consume-screenshot.png (a
# Consume run) and checks they are not blank and show the charts, the Consume one its consumer
# lag chart.
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
lag_shot="$target/report-consume-screenshot.png"
lag_html="$target/tmp/report-sample-consume/report.html"

if ! command -v chromium >/dev/null 2>&1; then
    barrage_log "Installing Debian's chromium (apt-get)."
    sudo_cmd=""
    if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

# --workspace, not -p barrage-operator: the workspace's feature set, so after `cargo test
# --workspace` (scripts/test.sh) the test binary is reused instead of rebuilding the dependencies
# with one package's features (that rebuild took 384 s of a CI run on 2026-12-05).
barrage_log "Rendering the sample reports (a Produce run, and a Consume run with consumer lag)."
rm -f "$html" "$shot" "$lag_html" "$lag_shot"
cargo test -q --workspace --test report_render -- sample_report_for_the_browser_check >/dev/null
[ -s "$html" ] || barrage_die "the sample report was not written to $html"
[ -s "$lag_html" ] || barrage_die "the Consume sample report was not written to $lag_html"

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
# screenshot HTML PNG: one headless Chromium screenshot of the page.
screenshot() {
    barrage_log "Opening $1 in headless Chromium."
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --screenshot="$2" --window-size=1400,2400 \
        "file://$1" >/dev/null 2>&1 || true
    [ -s "$2" ] || barrage_die "Chromium wrote no screenshot to $2"
}
screenshot "$html" "$shot"
python3 "$root/tests/browser/check_png.py" "$shot"
screenshot "$lag_html" "$lag_shot"
python3 "$root/tests/browser/check_png.py" "$lag_shot" --consumer-lag
barrage_log "Screenshots: $shot $lag_shot"
