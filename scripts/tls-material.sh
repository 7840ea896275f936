#!/usr/bin/env bash
# TLS material for the local broker's TLS listeners (scripts/services.sh), for tests only. Idempotent: what exists
# and is valid for 30 more days is kept; `--force` makes everything again.
#
# Usage: scripts/tls-material.sh DIR [--force]
#
# Writes into DIR (PEM files; the private keys are unencrypted PKCS#8, readable only by their owner):
#   ca.pem            the test CA ("Barrage test CA") that clients trust (spec.kafka.security.ssl.caLocation)
#   other-ca.pem      an unrelated CA: a client trusting only it must fail with an unknown-CA error
#   broker.pem        key + certificate for 127.0.0.1 and localhost, signed by ca.pem (SSL and SASL_SSL listeners)
#   wrong-host.pem    key + certificate for wrong-host.invalid only, signed by ca.pem (host-name mismatch listener)
#   expired.pem       key + certificate for 127.0.0.1, signed by ca.pem, valid only on 2020-01-01 (expired listener)
set -euo pipefail
DIR="${1:?usage: scripts/tls-material.sh DIR [--force]}"
FORCE="${2:-}"
DAYS=825
mkdir -p "$DIR"
chmod 700 "$DIR"
cd "$DIR"

log() { echo "tls-material: $*" >&2; }

# True when FILE holds a certificate valid for 30 more days.
fresh() {
    [[ -z "$FORCE" && -s "$1" ]] && openssl x509 -in "$1" -noout -checkend $((30 * 86400)) >/dev/null 2>&1
}

new_ca() { # name subject
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$DAYS" -subj "/CN=$2" \
        -keyout "$1.key" -out "$1.pem" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# A key and a CSR for SAN $2, then the certificate signed by ca.pem with `openssl ca` (which takes explicit dates).
new_leaf() { # name san startdate enddate
    local name="$1" san="$2" start="$3" end="$4" work
    work="$(mktemp -d)"
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=${name}" -keyout "$work/key.pem" -out "$work/req.csr" 2>/dev/null
    : >"$work/index.txt"
    printf '%s\n' "$(openssl rand -hex 8)" >"$work/serial"
    cat >"$work/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $work/index.txt
serial = $work/serial
new_certs_dir = $work
certificate = $DIR/ca.pem
private_key = $DIR/ca.key
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
unique_subject = no
[any]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
CNF
    openssl ca -batch -notext -config "$work/ca.cnf" -startdate "$start" -enddate "$end" \
        -in "$work/req.csr" -out "$work/cert.pem" 2>/dev/null
    # The keystore Kafka reads (ssl.keystore.type=PEM): the key, then the chain.
    cat "$work/key.pem" "$work/cert.pem" "$DIR/ca.pem" >"$name.pem.partial"
    chmod 600 "$name.pem.partial"
    mv "$name.pem.partial" "$name.pem"
    rm -rf "$work"
}

if ! fresh ca.pem || [[ ! -s ca.key ]]; then
    log "new test CA in $DIR"
    new_ca ca "Barrage test CA"
    rm -f broker.pem wrong-host.pem expired.pem
fi
fresh other-ca.pem || { new_ca other-ca "Some other CA"; rm -f other-ca.key; }
chmod 600 ca.key
start="$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)"
end="$(date -u -d "$DAYS days" +%Y%m%d%H%M%SZ)"
fresh broker.pem || new_leaf broker "IP:127.0.0.1,DNS:localhost" "$start" "$end"
fresh wrong-host.pem || new_leaf wrong-host "DNS:wrong-host.invalid" "$start" "$end"
# Expired on purpose: `fresh` would always redo it, so it is kept once made (unless --force).
[[ -z "$FORCE" && -s expired.pem ]] || new_leaf expired "IP:127.0.0.1,DNS:localhost" 20200101000000Z 20200102000000Z
log "ready: $DIR (CA $(openssl x509 -in ca.pem -noout -enddate))"
