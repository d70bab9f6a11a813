# shellcheck shell=bash disable=SC2154
# Helpers shared by scripts/live_3m.sh and scripts/latency.sh (sourced, not run).
# The caller sets `prog` (its name in messages) before sourcing, and `root`, `bin`,
# `bin_dir`, `wait_quiet`, `max_load` before calling the functions that use them.

die() {
    printf '%s: error: %s\n' "$prog" "$*" >&2
    exit 2
}
usage_error() {
    printf '%s: %s (see --help)\n' "$prog" "$*" >&2
    exit 2
}
say() { printf '%s: [%s] %s\n' "$prog" "$(date +%T)" "$*"; }
need_value() { (($# >= 2)) || usage_error "$1 needs a value"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

alive() {
    # A child that exited stays a zombie until waited for: not alive.
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}
stop_pid() { # pid: SIGTERM, then SIGKILL after 10 s
    local p=$1 i
    [[ -n $p ]] || return 0
    kill -TERM "$p" 2>/dev/null || return 0
    for ((i = 0; i < 200; i++)); do
        alive "$p" || break
        sleep 0.05
    done
    alive "$p" && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null || true
}

# Builds (unless --bin-dir was given) and copies ingestor and sse-gen into $bin, so that a
# rebuild by someone else during the run cannot change what is measured.
copy_binaries() {
    if [[ -z $bin_dir ]]; then
        say "cargo build --release"
        cargo build --release --quiet --workspace
        bin_dir=$root/target/release
    fi
    mkdir -p "$bin"
    local b
    for b in ingestor sse-gen; do
        [[ -x $bin_dir/$b ]] || die "$bin_dir/$b not found"
        cp "$bin_dir/$b" "$bin/$b.tmp"
        mv -f "$bin/$b.tmp" "$bin/$b"
    done
}

# Waits up to $wait_quiet seconds for the 1-minute load average to drop below $max_load.
wait_for_quiet() {
    ((wait_quiet > 0)) || return 0
    local deadline=$((SECONDS + wait_quiet))
    while awk -v l="$(load1)" -v m="$max_load" 'BEGIN { exit !(l >= m) }' && ((SECONDS < deadline)); do
        say "load average $(load1) >= $max_load, waiting (up to ${wait_quiet} s)"
        sleep 15
    done
}
