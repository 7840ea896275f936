# shellcheck shell=bash
# Small helpers shared by the project's scripts. Source it; it defines functions only.

# Seconds since the epoch with millisecond precision, for elapsed-time reports.
barrage_now() {
    date +%s.%N | cut -c1-14
}

# barrage_elapsed START -> "12.3" (seconds since START, one decimal).
barrage_elapsed() {
    awk -v s="$1" -v e="$(barrage_now)" 'BEGIN { printf "%.1f", e - s }'
}

barrage_log() {
    printf '%s\n' "$*" >&2
}

barrage_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# The folder where every download, virtualenv, data directory, pid file and log of the project lives.
barrage_cache_dir() {
    printf '%s/barrage\n' "${XDG_CACHE_HOME:-$HOME/.cache}"
}
