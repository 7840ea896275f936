#!/usr/bin/env bash
# Installs what building Barrage and running its services need, when it is missing (Debian/Ubuntu, apt-get).
# Idempotent and non-interactive; `apt-get update` runs only when something has to be installed.
#   - the Rust build: build-essential, pkg-config, libssl-dev (rdkafka's ssl feature links the system OpenSSL),
#     zlib1g-dev, cmake
#   - scripts/services.sh: a Java 17+ runtime and Maven (Apache Kafka), python3 with venv (moto server)
# Rust itself (cargo, rustc 1.95 with rustfmt and clippy) is checked, not installed: use rustup.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

export DEBIAN_FRONTEND=noninteractive
started="$(barrage_now)"
missing=()

deb_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == "ii"* ]]
}

java_major() {
    java -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }'
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    barrage_die "scripts/setup.sh supports Debian and Ubuntu (apt-get). Install by hand: a C/C++ toolchain, pkg-config, OpenSSL and zlib headers, cmake, Java 17+, Maven, python3 with venv"
fi

for pkg in build-essential pkg-config libssl-dev zlib1g-dev cmake python3-venv; do
    deb_installed "$pkg" || missing+=("$pkg")
done
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1 && [[ " ${missing[*]} " != *" python3-venv "* ]]; then
    # The python3 on PATH cannot create virtualenvs; the Debian package fixes the system python3.
    missing+=(python3-venv)
fi
major=""
command -v java >/dev/null 2>&1 && major="$(java_major)"
if [[ -z "$major" || "$major" -lt 17 ]]; then
    missing+=(default-jre-headless)
fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)
# scripts/tls-material.sh makes the broker's test certificates with the openssl command.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)

if [[ "${#missing[@]}" -eq 0 ]]; then
    echo "setup: all Debian packages present (build-essential pkg-config libssl-dev zlib1g-dev cmake python3-venv, Java $major, Maven); nothing to install"
else
    sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            barrage_die "missing Debian packages: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}"
        fi
    fi
    echo "setup: installing missing Debian packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -q </dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    if [[ " ${missing[*]} " == *" default-jre-headless "* ]]; then
        major="$(java_major)"
        if [[ -z "$major" || "$major" -lt 17 ]]; then
            barrage_die "Apache Kafka 4 needs Java 17 or newer; after installing default-jre-headless java reports: $(java -version 2>&1 | head -1)"
        fi
    fi
    echo "setup: installed ${missing[*]}"
fi

# Rust is the user's toolchain (rustup); say clearly what is missing rather than failing later.
if ! command -v cargo >/dev/null 2>&1; then
    barrage_die "cargo not found: install Rust 1.95 or newer with rustup (components rustfmt and clippy)"
fi
for tool in rustfmt clippy-driver; do
    command -v "$tool" >/dev/null 2>&1 || barrage_die "$tool not found: rustup component add ${tool%-driver}"
done
echo "setup: $(cargo --version), $(java -version 2>&1 | head -1), $(mvn -v 2>/dev/null | head -1 | tr -d '\033' | sed 's/\[[0-9;]*m//g'), $(python3 --version)"
echo "setup: done in $(barrage_elapsed "$started")s"
