#!/usr/bin/env bash
# scripts/bench.sh: one benchmark session of `ingestor`, on one generated input, printing figures.
#
# It measures, on the same file and with a warm page cache:
#   - the raw read (`cat FILE > /dev/null`),
#   - scan only and the SQLite ceiling (benches/ceiling.rs, built with `cargo bench --no-run` and
#     run as `cargo bench --bench ceiling -- --input FILE --db DB --by-hand` would: rows
#     pre-extracted in memory, inserted with ingestor's settings (the insert-only baseline), then
#     the seven indexes by ingestor's create_indexes and, on the same database, by hand under a
#     few settings (SQLite's own CREATE INDEX; the best of them is the index baseline), the
#     order rotated from run to run, then the fsync of the database file),
#   - `ingestor` end to end (wall time and peak RSS), plus a memory run on a file with one
#     100 MiB line under `--historical-cache-mb 8`,
#   - peers: DuckDB read_ndjson, the sqlite3 shell (.import + INSERT ... SELECT with ->>),
#     a plain Python loader, sqlite-utils, and a commit-per-line loader (extrapolated).
# The binaries are built once and copied to $BENCH_DIR/bin, so that rebuilds by others during a
# session cannot change what is measured. It never asserts a timing: it reports medians and ratios, on stdout and as markdown in
# $BENCH_DIR/bench-report.md. Run `scripts/bench.sh --help` for the options.
#
# Needs bash, coreutils, awk, python3, /usr/bin/time and cargo. Peers install what they need
# themselves (a venv under $BENCH_DIR/venv from PyPI; sqlite3 from apt when missing) and are
# reported as "skipped: <why>" when that fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/linux_only.sh"
export LC_ALL=C

usage() {
    cat <<'EOF'
Usage: scripts/bench.sh [options]

Generates one input with sse-gen (kept and reused for the same seed and size), then measures
raw read, scan only, the SQLite ceiling, ingestor end to end and a 100 MiB-line memory run,
--runs times each (medians reported), then each peer tool once on the same file.

Options:
  --size SIZE          input size for sse-gen --bytes (K/M/G suffixes, powers of 1024) [1G]
  --seed N             sse-gen seed [1]
  --runs N             repetitions of the ingestor-side measurements; medians are reported [3]
  --skip-peers         do not run DuckDB, sqlite3 shell, Python, sqlite-utils, commit-per-line
  --duckdb-only        of the peers, run only DuckDB (index-free load and the same job)
  --skip-huge          do not run the 100 MiB-line memory run
  --peer-timeout SECS  a peer still running after this is killed and reported "> SECS" [600]
  --wait-quiet SECS    before measuring, wait up to SECS for other cargo/rustc/ingestor
                       processes on this machine to finish (0: only warn) [0]
  --keep               keep the databases in the work directory (inputs are always kept)
  -h, --help           this text

Environment:
  BENCH_DIR            work directory [target/bench]; inputs, databases, logs, report
  BENCH_CEILING_CMD    replaces `cargo bench --bench ceiling --` (testing aid); it is run as
                       `bash -c "$BENCH_CEILING_CMD \"\$@\"" -- --input FILE --db DB` and must print
                       scan_secs:, ceiling_load_secs:, ceiling_index_secs:, lines:, bytes:
EOF
}

die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}
usage_error() {
    printf 'bench: %s (see --help)\n' "$*" >&2
    exit 2
}
say() { printf '%s\n' "$*"; }

# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------
size=1G
seed=1
runs=3
skip_peers=0
duckdb_only=0
skip_huge=0
keep=0
peer_timeout=600
wait_quiet=0

need_value() { (($# >= 2)) || usage_error "$1 needs a value"; }
while (($#)); do
    case $1 in
    --size) need_value "$@"; size=$2; shift 2 ;;
    --size=*) size=${1#*=}; shift ;;
    --seed) need_value "$@"; seed=$2; shift 2 ;;
    --seed=*) seed=${1#*=}; shift ;;
    --runs) need_value "$@"; runs=$2; shift 2 ;;
    --runs=*) runs=${1#*=}; shift ;;
    --peer-timeout) need_value "$@"; peer_timeout=$2; shift 2 ;;
    --peer-timeout=*) peer_timeout=${1#*=}; shift ;;
    --wait-quiet) need_value "$@"; wait_quiet=$2; shift 2 ;;
    --wait-quiet=*) wait_quiet=${1#*=}; shift ;;
    --skip-peers) skip_peers=1; shift ;;
    --duckdb-only) duckdb_only=1; shift ;;
    --skip-huge) skip_huge=1; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
    esac
done

[[ $size =~ ^[0-9]+([KkMmGgTt]([Ii]?[Bb])?|[Bb])?$ ]] || usage_error "invalid --size: $size (e.g. 50M, 1G)"
[[ $seed =~ ^[0-9]+$ ]] || usage_error "invalid --seed: $seed"
[[ $runs =~ ^[1-9][0-9]*$ ]] || usage_error "invalid --runs: $runs (a positive integer)"
[[ $peer_timeout =~ ^[1-9][0-9]*$ ]] || usage_error "invalid --peer-timeout: $peer_timeout (seconds)"
[[ $wait_quiet =~ ^[0-9]+$ ]] || usage_error "invalid --wait-quiet: $wait_quiet (seconds)"

# ------------------------------------------------------------------------------------------
# Paths and tools
# ------------------------------------------------------------------------------------------
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p -- "${BENCH_DIR:-target/bench}" || die "cannot create ${BENCH_DIR:-target/bench}"
DIR=$(cd -- "${BENCH_DIR:-target/bench}" && pwd)
LOGS=$DIR/logs
mkdir -p "$LOGS"
rm -f -- "$LOGS"/*.err "$LOGS"/*.out "$LOGS"/*.time "$LOGS"/*.log
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET == /* ]] || TARGET=$ROOT/$TARGET
ING=$TARGET/release/ingestor
GEN=$TARGET/release/sse-gen
PEERS=$ROOT/scripts/peers
REPORT=$DIR/bench-report.md

for tool in cargo python3 awk timeout; do
    command -v "$tool" >/dev/null || die "'$tool' not found in PATH"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (apt-get install time)"
# The real interpreter, not a version-manager shim (a shim adds its own start-up to the timings).
PY=$(python3 -c 'import sys; print(sys.executable)') || die "python3 does not run"

TMPFILES=()
cleanup() { ((${#TMPFILES[@]} == 0)) || rm -f -- "${TMPFILES[@]}"; }
trap cleanup EXIT

# ------------------------------------------------------------------------------------------
# Helpers: numbers, timing, machine state
# ------------------------------------------------------------------------------------------
isnum() { [[ ${1-} =~ ^[0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?$ ]]; }

# fmt FORMAT VALUE: printf a number, or pass "n/a" through.
fmt() { if isnum "${2-}"; then awk -v v="$2" -v f="$1" 'BEGIN { printf f, v }'; else printf 'n/a'; fi; }

# div A B FORMAT: A / B, or "n/a" when either is not a number or B is 0.
div() {
    if isnum "${1-}" && isnum "${2-}"; then
        awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (b > 0) printf f, a / b; else printf "n/a" }'
    else
        printf 'n/a'
    fi
}
# mbps SECS: the input's MB/s at SECS seconds.
mbps() {
    if isnum "${1-}"; then
        awk -v b="$BYTES" -v s="$1" 'BEGIN { if (s > 0) printf "%.1f", b / 1e6 / s; else printf "n/a" }'
    else
        printf 'n/a'
    fi
}
add() { if isnum "${1-}" && isnum "${2-}"; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; else printf 'n/a'; fi; }

# median V...: median of the numeric arguments ("n/a" if none).
median() {
    printf '%s\n' "$@" | awk '$1 ~ /^[0-9]+([.][0-9]*)?$/ { print $1 }' | sort -g |
        awk '{ a[NR] = $1 } END {
            if (NR == 0) print "n/a"
            else if (NR % 2) print a[(NR + 1) / 2]
            else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# kv KEY FILE: the value of the last `KEY: value` line of FILE (empty if none).
kv() { awk -v k="$1" 'index($0, k ": ") == 1 { v = substr($0, length(k) + 3) } END { gsub(/[ \t\r]+$/, "", v); print v }' "$2"; }

# run_timed NAME STDOUT LIMIT CMD...: run CMD with stdout to STDOUT, stderr to $LOGS/NAME.err,
# killed after LIMIT seconds (0: no limit). Sets R_SECS (wall, from bash's clock), R_RSS (peak
# RSS in MB = 1e6 bytes, from /usr/bin/time; the largest process of the tree), R_STATUS.
run_timed() {
    local name=$1 out=$2 limit=$3 t0 t1 rc=0
    shift 3
    local -a pre=()
    ((limit == 0)) || pre=(timeout -k 10 "$limit")
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%e %M' -o "$LOGS/$name.time" "${pre[@]}" "$@" >"$out" 2>"$LOGS/$name.err" || rc=$?
    t1=$EPOCHREALTIME
    R_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    R_RSS=$(tail -n 1 "$LOGS/$name.time" | awk '$2 ~ /^[0-9]+$/ { printf "%.1f", $2 * 1024 / 1e6; ok = 1 } END { if (!ok) printf "n/a" }')
    if ((rc == 0)); then
        R_STATUS=ok
    elif ((limit != 0 && (rc == 124 || rc == 137))); then
        R_STATUS=timeout
    else
        R_STATUS="failed (exit $rc; see $LOGS/$name.err)"
    fi
}

# warm FILE: read it once so that the timed steps find it in the page cache.
warm() { cat -- "$1" >/dev/null; }

# Other processes that would skew the figures on a 2-core machine: builds and other benchmarks.
foreign_busy() {
    local f comm pid found=()
    for f in /proc/[0-9]*/comm; do
        pid=${f#/proc/}
        pid=${pid%/comm}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        { read -r comm <"$f"; } 2>/dev/null || continue
        case $comm in
        cargo | rustc | ingestor | sse-gen | ceiling-* | cc | ld | cc1 | lld) found+=("$pid:$comm") ;;
        esac
    done
    ((${#found[@]} == 0)) || printf '%s ' "${found[@]}"
}
loadavg() { awk '{ print $1, $2, $3 }' /proc/loadavg; }

NOISE=()
check_quiet() {
    local what=$1 busy waited=0
    busy=$(foreign_busy)
    while [[ -n $busy ]] && ((waited < wait_quiet)); do
        ((waited == 0)) && say "waiting up to ${wait_quiet}s for other processes to finish: $busy"
        sleep 5
        waited=$((waited + 5))
        busy=$(foreign_busy)
    done
    if [[ -n $busy ]]; then
        say "warning: other processes are running during $what (figures may be noisy): $busy"
        NOISE+=("$what: other processes running ($busy), load $(loadavg)")
    fi
}

# ------------------------------------------------------------------------------------------
# 1. Build and generate the inputs
# ------------------------------------------------------------------------------------------
say "== bench: size $size, seed $seed, runs $runs, work dir $DIR"
say "building: cargo build --release (log: $LOGS/build.log)"
cargo build --release --workspace >"$LOGS/build.log" 2>&1 || {
    tail -n 20 "$LOGS/build.log" >&2
    die "cargo build --release failed (log: $LOGS/build.log)"
}
[[ -x $ING ]] || die "$ING missing after the build"
[[ -x $GEN ]] || die "$GEN missing after the build"
# Run copies, so that a rebuild by someone else during the session cannot swap binaries
# between (or within) the measurements.
mkdir -p "$DIR/bin"
cp -f -- "$ING" "$DIR/bin/ingestor"
cp -f -- "$GEN" "$DIR/bin/sse-gen"
ING=$DIR/bin/ingestor
GEN=$DIR/bin/sse-gen

CEILING_WHY=""
CEIL_BIN=""
if [[ -n ${BENCH_CEILING_CMD:-} ]]; then
    say "ceiling: using BENCH_CEILING_CMD instead of cargo bench"
elif [[ ! -f benches/ceiling.rs ]]; then
    CEILING_WHY="benches/ceiling.rs does not exist"
else
    # Built once here and then run directly (as `cargo bench` would, with `--bench`), so that
    # every run measures the same build as the ingestor binary above.
    say "building: cargo bench --bench ceiling --no-run (log: $LOGS/build-ceiling.log)"
    if ! cargo bench --bench ceiling --no-run --message-format=json-render-diagnostics \
        >"$LOGS/build-ceiling.json" 2>"$LOGS/build-ceiling.log"; then
        CEILING_WHY="cargo bench --bench ceiling does not build (log: $LOGS/build-ceiling.log)"
    else
        CEIL_BIN=$("$PY" -c '
import json, sys
exe = ""
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "ceiling" \
            and m.get("executable"):
        exe = m["executable"]
print(exe)' "$LOGS/build-ceiling.json")
        if [[ -n $CEIL_BIN && -x $CEIL_BIN ]]; then
            cp -f -- "$CEIL_BIN" "$DIR/bin/ceiling"
            CEIL_BIN=$DIR/bin/ceiling
        else
            CEIL_BIN=""
            say "ceiling: cannot find the built bench executable; every run will go through cargo bench"
        fi
    fi
fi
[[ -z $CEILING_WHY ]] || say "ceiling: skipped: $CEILING_WHY"

# A generated file is reused while the generator's source is unchanged; a sidecar .meta holds
# the generator fingerprint and the longest line (for DuckDB's maximum_object_size).
GEN_SRC=(crates/sse-gen/src)
GEN_SIG=$(find "${GEN_SRC[@]}" -type f -name '*.rs' -print0 2>/dev/null | sort -z | xargs -0r cat | cksum | awk '{ print $1 "-" $2 }') ||
    die "cannot read the sse-gen sources (${GEN_SRC[*]})"

# generate FILE SSE-GEN-ARGS...: (re)create FILE unless a matching one exists.
generate() {
    local file=$1 meta=$1.meta
    shift
    if [[ -f $file && -f $meta ]] && grep -qx "gen=$GEN_SIG" "$meta"; then
        say "input: reusing $file"
        return
    fi
    say "input: generating $file (sse-gen $*)"
    rm -f -- "$file" "$meta"
    TMPFILES+=("$file.tmp")
    "$GEN" "$@" --out "$file.tmp" 2>"$LOGS/sse-gen.log" || {
        cat "$LOGS/sse-gen.log" >&2
        die "sse-gen failed"
    }
    mv -- "$file.tmp" "$file"
    printf 'gen=%s\nmaxline=%s\n' "$GEN_SIG" \
        "$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$file")" >"$meta"
}

INPUT=$DIR/input-$seed-$size.jsonl
generate "$INPUT" --seed "$seed" --bytes "$size"
BYTES=$(stat -c %s -- "$INPUT")
LINES=$(wc -l <"$INPUT")
MAXLINE=$(awk -F= '$1 == "maxline" { print $2 }' "$INPUT.meta")
((LINES > 0)) || die "$INPUT has no lines"
MB=$(div "$BYTES" 1e6 %.1f)
say "input: $INPUT: $BYTES bytes ($MB MB), $LINES lines (wc -l), longest line $MAXLINE bytes"

HUGE=$DIR/huge-$seed.jsonl
HUGE_MIB=100
HUGE_CACHE_MIB=8
HUGE_MAXLINE="n/a"
if ((!skip_huge)); then
    generate "$HUGE" --seed "$seed" --lines 200000 --huge-line-mb "$HUGE_MIB"
    HUGE_MAXLINE=$(awk -F= '$1 == "maxline" { print $2 }' "$HUGE.meta")
    say "input: $HUGE: $(stat -c %s -- "$HUGE") bytes, longest line $HUGE_MAXLINE bytes"
fi

say "all timings use a warm page cache: every input is read once (cat > /dev/null) before each timed step"
LOAD_START=$(loadavg)

# ------------------------------------------------------------------------------------------
# 2-5. Raw read, scan + ceiling, ingestor, huge-line memory run; --runs times, medians
# ------------------------------------------------------------------------------------------
CAT=() SCAN=() CLOAD=() CINDEX=() CLINES="" CBYTES=""
declare -A BYHAND=() BYHAND_NAMES=()
BYHAND_BEST=() CSYNC=() SCANCPU=() PAGE_SIZE=""
IWALL=() ILOAD=() IINDEX=() IRSS=() IRSS_EXT=() ISUMMARY=""
HRSS=() HRSS_EXT=() HWALL=() HUGE_WHY=""
if ((skip_huge)); then HUGE_WHY="--skip-huge"; fi

# parse_summary FILE: "load index rss" from ingestor's summary line on stderr.
parse_summary() {
    grep -E '^[0-9T:-]+Z INFO ' "$1" | tail -n 1 |
        sed -nE 's/.*\(load ([0-9.]+) s, indexes ([0-9.]+) s\).*peak RSS ([0-9.]+) (MB|MiB).*/\1 \2 \3 \4/p' |
        # ingestor now prints MiB; the bench reports MB (10^6 bytes).
        awk '{ m = $3; if ($4 == "MiB") m = sprintf("%.1f", $3 * 1.048576); print $1, $2, m }'
}

check_quiet "the ingestor measurements"
for ((r = 1; r <= runs; r++)); do
    # Raw read.
    warm "$INPUT"
    run_timed "cat-$r" /dev/null 0 cat -- "$INPUT"
    [[ $R_STATUS == ok ]] || die "cat $INPUT: $R_STATUS"
    CAT+=("$R_SECS")
    line="run $r/$runs: cat $R_SECS s"

    # Scan only and the ceiling.
    if [[ -z $CEILING_WHY ]]; then
        rm -f -- "$DIR"/ceiling.db "$DIR"/ceiling.db-*
        warm "$INPUT"
        if [[ -n ${BENCH_CEILING_CMD:-} ]]; then
            cmd=(bash -c "$BENCH_CEILING_CMD \"\$@\"" ceiling --input "$INPUT" --db "$DIR/ceiling.db")
        elif [[ -n $CEIL_BIN ]]; then
            cmd=("$CEIL_BIN" --input "$INPUT" --db "$DIR/ceiling.db" --by-hand --round "$r" --bench)
        else
            cmd=(cargo bench -q --bench ceiling -- --input "$INPUT" --db "$DIR/ceiling.db" --by-hand --round "$r")
        fi
        run_timed "ceiling-$r" "$LOGS/ceiling-$r.out" 0 "${cmd[@]}"
        if [[ $R_STATUS != ok ]]; then
            CEILING_WHY="the ceiling bench $R_STATUS"
            say "ceiling: $CEILING_WHY"
        else
            s=$(kv scan_secs "$LOGS/ceiling-$r.out")
            l=$(kv ceiling_load_secs "$LOGS/ceiling-$r.out")
            i=$(kv ceiling_index_secs "$LOGS/ceiling-$r.out")
            CLINES=$(kv lines "$LOGS/ceiling-$r.out")
            CBYTES=$(kv bytes "$LOGS/ceiling-$r.out")
            if isnum "$s" && isnum "$l" && isnum "$i"; then
                SCAN+=("$s") CLOAD+=("$l") CINDEX+=("$i")
                line+=" | scan $s s | ceiling load $l s, index $i s"
                # SQLite's own CREATE INDEX under each setting; the best of the run is the baseline.
                best=""
                while IFS=$'\t' read -r name secs; do
                    isnum "$secs" || continue
                    BYHAND_NAMES[$name]=1
                    BYHAND[$name]+=" $secs"
                    if [[ -z $best ]] || awk -v a="$secs" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$secs; fi
                done < <(sed -nE 's/^by_hand_index_secs\[([^]]+)\]: ([0-9.]+)$/\1\t\2/p' "$LOGS/ceiling-$r.out")
                if [[ -n $best ]]; then
                    BYHAND_BEST+=("$best")
                    line+=", SQLite's own index $best s"
                fi
                sc=$(kv scan_cpu_secs "$LOGS/ceiling-$r.out")
                isnum "$sc" && SCANCPU+=("$sc")
                sy=$(kv sync_secs "$LOGS/ceiling-$r.out")
                isnum "$sy" && CSYNC+=("$sy")
                PAGE_SIZE=$(kv page_size "$LOGS/ceiling-$r.out")
            else
                CEILING_WHY="cannot parse the ceiling output (see $LOGS/ceiling-$r.out)"
                say "ceiling: $CEILING_WHY"
            fi
        fi
    fi

    # ingestor end to end.
    rm -f -- "$DIR"/ing.db "$DIR"/ing.db-*
    warm "$INPUT"
    run_timed "ingestor-$r" "$LOGS/ingestor-$r.out" 0 "$ING" --input "$INPUT" --db "$DIR/ing.db"
    if [[ $R_STATUS != ok ]]; then
        tail -n 5 "$LOGS/ingestor-$r.err" >&2
        die "ingestor $R_STATUS"
    fi
    IWALL+=("$R_SECS") IRSS_EXT+=("$R_RSS")
    ISUMMARY=$(grep -E '^[0-9T:-]+Z INFO ' "$LOGS/ingestor-$r.err" | tail -n 1 || true)
    read -r l i m <<<"$(parse_summary "$LOGS/ingestor-$r.err")" || true
    if isnum "${l-}" && isnum "${i-}"; then
        ILOAD+=("$l") IINDEX+=("$i") IRSS+=("${m-n/a}")
        line+=" | ingestor $R_SECS s (load $l s, index $i s, peak RSS $m MB; /usr/bin/time $R_RSS MB)"
    else
        say "warning: cannot parse ingestor's summary line (see $LOGS/ingestor-$r.err)"
        line+=" | ingestor $R_SECS s (/usr/bin/time RSS $R_RSS MB)"
    fi

    # Memory: one 100 MiB line with an 8 MiB page cache.
    if [[ -z $HUGE_WHY ]]; then
        rm -f -- "$DIR"/huge.db "$DIR"/huge.db-*
        warm "$HUGE"
        run_timed "huge-$r" "$LOGS/huge-$r.out" 0 \
            "$ING" --input "$HUGE" --db "$DIR/huge.db" --historical-cache-mb "$HUGE_CACHE_MIB"
        if [[ $R_STATUS != ok ]]; then
            HUGE_WHY="ingestor on the huge-line file $R_STATUS"
            say "huge-line run: $HUGE_WHY"
        else
            read -r _ _ m <<<"$(parse_summary "$LOGS/huge-$r.err")" || true
            HRSS+=("${m-n/a}") HRSS_EXT+=("$R_RSS") HWALL+=("$R_SECS")
            line+=" | huge-line peak RSS ${m-n/a} MB (/usr/bin/time $R_RSS MB)"
        fi
    fi
    say "$line"
done
if [[ -n $CBYTES && $CBYTES != "$BYTES" ]]; then
    say "note: the ceiling bench read $CBYTES bytes, the file has $BYTES"
fi
if [[ -n $CLINES && $CLINES != "$LINES" ]]; then
    say "note: the ceiling bench counted $CLINES lines, wc -l $LINES (blank lines or a last line without newline)"
fi

CAT_S=$(median "${CAT[@]}")
SCAN_S=$(median "${SCAN[@]}")
CLOAD_S=$(median "${CLOAD[@]}")
CINDEX_S=$(median "${CINDEX[@]}")
CEIL_S=$(add "$CLOAD_S" "$CINDEX_S")
BYHAND_S=$(median "${BYHAND_BEST[@]}")
CSYNC_S=$(median "${CSYNC[@]}")
SCANCPU_S=$(median "${SCANCPU[@]}")
# The floor: insert-only load plus SQLite's own best index build.
FLOOR_S=$(add "$CLOAD_S" "$BYHAND_S")
IWALL_S=$(median "${IWALL[@]}")
ILOAD_S=$(median "${ILOAD[@]}")
IINDEX_S=$(median "${IINDEX[@]}")
IRSS_M=$(median "${IRSS[@]}")
IRSS_EXT_M=$(median "${IRSS_EXT[@]}")
HRSS_M=$(median "${HRSS[@]}")
HRSS_EXT_M=$(median "${HRSS_EXT[@]}")
HWALL_S=$(median "${HWALL[@]}")
# The ingestor's RSS column: its own peak RSS figure, else /usr/bin/time's.
IRSS_COL=$IRSS_M
isnum "$IRSS_COL" || IRSS_COL=$IRSS_EXT_M

# ------------------------------------------------------------------------------------------
# 6. Peers
# ------------------------------------------------------------------------------------------
# Table rows: what, seconds ("N", ">N" for a timeout, or a word), RSS MB. Notes go below.
T_WHAT=() T_SECS=() T_RSS=()
NOTES=()
row() { T_WHAT+=("$1") T_SECS+=("$2") T_RSS+=("$3"); }

row "cat (raw read)" "$CAT_S" "-"
if [[ -z $CEILING_WHY || ${#SCAN[@]} -gt 0 ]]; then
    row "scan only (no SQLite)" "$SCAN_S" "-"
    row "SQLite ceiling (load+index)" "$CEIL_S" "-"
else
    row "scan only (no SQLite)" "skipped" "-"
    row "SQLite ceiling (load+index)" "skipped" "-"
    NOTES+=("scan only / SQLite ceiling: skipped: $CEILING_WHY")
fi
row "ingestor all-in" "$IWALL_S" "$IRSS_COL"

# peer_row LABEL NAME: add a table row from the last run_timed of a peer.
peer_row() {
    local label=$1 name=$2
    case $R_STATUS in
    ok) row "$label" "$R_SECS" "$R_RSS" ;;
    timeout) row "$label" ">$peer_timeout" "$R_RSS" ; NOTES+=("$label: > timeout ($peer_timeout s), killed") ;;
    *) row "$label" "failed" "-" ; NOTES+=("$label: $R_STATUS: $(tail -n 1 "$LOGS/$name.err" 2>/dev/null)") ;;
    esac
}
skip_row() { row "$1" "skipped" "-"; NOTES+=("$1: skipped: $2"); say "$1: skipped: $2"; }
drop_db() { ((keep)) || rm -f -- "$1" "$1"-journal "$1"-wal "$1"-shm "$1".wal; }

VENV=$DIR/venv
VENV_WHY=""
# pip_ensure PACKAGE MODULE: make MODULE importable in the venv; returns non-zero on failure.
pip_ensure() {
    "$VENV/bin/python" -c "import $2" 2>/dev/null && return 0
    say "peers: pip install $1 into $VENV (log: $LOGS/pip.log)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$1" >>"$LOGS/pip.log" 2>&1 &&
        "$VENV/bin/python" -c "import $2" 2>/dev/null
}

# sqlite3 shell >= 3.38 (for ->>); installed with apt when missing and possible.
SQLITE3_WHY=""
sqlite3_ok() {
    command -v sqlite3 >/dev/null &&
        sqlite3 --version | awk '{ split($1, v, "."); exit !(v[1] > 3 || (v[1] == 3 && v[2] >= 38)) }'
}
ensure_sqlite3() {
    sqlite3_ok && return 0
    if ((EUID == 0)) && command -v apt-get >/dev/null; then
        say "peers: apt-get install sqlite3 (log: $LOGS/apt.log)"
        { apt-get install -y -qq sqlite3 || { apt-get update -qq && apt-get install -y -qq sqlite3; }; } >>"$LOGS/apt.log" 2>&1 || true
    fi
    sqlite3_ok && return 0
    if command -v sqlite3 >/dev/null; then
        SQLITE3_WHY="sqlite3 $(sqlite3 --version | awk '{ print $1 }') is older than 3.38 (no ->>)"
    else
        SQLITE3_WHY="no sqlite3 shell, and apt-get install sqlite3 failed"
    fi
    return 1
}

PEER_DUCK="DuckDB read_ndjson (2 threads)"
PEER_DUCK_JOB="DuckDB same job (meta columns + 7 indexes, 2 threads)"
PEER_SH="sqlite3 shell .import + INSERT...SELECT"
PEER_PY="Python json.loads + executemany"
PEER_SU="sqlite-utils insert --nl"
PEER_CPL="Python commit-per-line (extrapolated from 5k lines)"
DUCK_S="n/a" DUCK_JOB_S="n/a" SH_S="n/a" SU_S="n/a"

if ((skip_peers)); then
    NOTES+=("peers: skipped (--skip-peers)")
else
    check_quiet "the peers"
    if [[ ! -x $VENV/bin/python ]]; then
        say "peers: creating a venv in $VENV"
        "$PY" -m venv "$VENV" >"$LOGS/venv.log" 2>&1 || VENV_WHY="python3 -m venv failed (log: $LOGS/venv.log)"
    fi

    # DuckDB.
    if [[ -n $VENV_WHY ]]; then
        skip_row "$PEER_DUCK" "$VENV_WHY"
        skip_row "$PEER_DUCK_JOB" "$VENV_WHY"
    elif ! pip_ensure duckdb duckdb; then
        skip_row "$PEER_DUCK" "pip install duckdb failed (log: $LOGS/pip.log)"
        skip_row "$PEER_DUCK_JOB" "pip install duckdb failed (log: $LOGS/pip.log)"
    else
        maxobj=$(awk -v m="${MAXLINE:-0}" 'BEGIN { n = m + 4096; if (n < 16777216) n = 16777216; printf "%d", n }')
        say "peer: $PEER_DUCK"
        warm "$INPUT"
        run_timed peer-duckdb /dev/null "$peer_timeout" "$VENV/bin/python" "$PEERS/duckdb_loader.py" \
            "$INPUT" "$DIR/peer-duckdb.duckdb" --threads 2 --maximum-object-size "$maxobj"
        peer_row "$PEER_DUCK" peer-duckdb
        [[ $R_STATUS != ok ]] || { DUCK_S=$R_SECS; NOTES+=("$PEER_DUCK: $(tail -n 1 "$LOGS/peer-duckdb.err") (input: $LINES lines); columns as DuckDB infers them, no meta_*/extra, no index"); }
        drop_db "$DIR/peer-duckdb.duckdb"
        say "peer: $PEER_DUCK_JOB"
        warm "$INPUT"
        run_timed peer-duckdb-job /dev/null "$peer_timeout" "$VENV/bin/python" "$PEERS/duckdb_loader.py" \
            "$INPUT" "$DIR/peer-duckdb-job.duckdb" --threads 2 --maximum-object-size "$maxobj" --same-job
        peer_row "$PEER_DUCK_JOB" peer-duckdb-job
        [[ $R_STATUS != ok ]] || { DUCK_JOB_S=$R_SECS; NOTES+=("$PEER_DUCK_JOB: $(tail -n 1 "$LOGS/peer-duckdb-job.err"); meta_ver/pid/cwd/turn_id from the metadata text, the seven indexes, no extra"); }
        drop_db "$DIR/peer-duckdb-job.duckdb"
    fi

    # sqlite3 shell.
    if ((duckdb_only)); then
        NOTES+=("peers other than DuckDB: skipped (--duckdb-only)")
    elif ! ensure_sqlite3; then
        skip_row "$PEER_SH" "$SQLITE3_WHY"
    else
        say "peer: $PEER_SH"
        warm "$INPUT"
        run_timed peer-sqlite3 /dev/null "$peer_timeout" bash "$PEERS/sqlite3_shell.sh" "$INPUT" "$DIR/peer-sqlite3.db"
        peer_row "$PEER_SH" peer-sqlite3
        [[ $R_STATUS != ok ]] || { SH_S=$R_SECS; NOTES+=("$PEER_SH: sqlite3 $(sqlite3 --version | awk '{ print $1 }'); $(tail -n 1 "$LOGS/peer-sqlite3.err") (input: $LINES lines); same columns, no index"); }
        drop_db "$DIR/peer-sqlite3.db"
    fi

    if ((!duckdb_only)); then
        # Plain Python loader.
        say "peer: $PEER_PY"
        warm "$INPUT"
        run_timed peer-python /dev/null "$peer_timeout" "$PY" "$PEERS/python_loader.py" "$INPUT" "$DIR/peer-python.db"
        peer_row "$PEER_PY" peer-python
        [[ $R_STATUS != ok ]] || NOTES+=("$PEER_PY: $("$PY" --version 2>&1), sqlite $("$PY" -c 'import sqlite3; print(sqlite3.sqlite_version)'); $(tail -n 1 "$LOGS/peer-python.err")")
        drop_db "$DIR/peer-python.db"

        # sqlite-utils.
        if [[ -n $VENV_WHY ]]; then
            skip_row "$PEER_SU" "$VENV_WHY"
        elif ! pip_ensure sqlite-utils sqlite_utils || [[ ! -x $VENV/bin/sqlite-utils ]]; then
            skip_row "$PEER_SU" "pip install sqlite-utils failed (log: $LOGS/pip.log)"
        else
            say "peer: $PEER_SU"
            rm -f -- "$DIR/peer-sqlite-utils.db"
            warm "$INPUT"
            # --alter: the layouts differ in their keys, and without it the first unknown key aborts.
            run_timed peer-sqlite-utils /dev/null "$peer_timeout" "$VENV/bin/sqlite-utils" insert \
                "$DIR/peer-sqlite-utils.db" sse_lines "$INPUT" --nl --alter
            peer_row "$PEER_SU" peer-sqlite-utils
            if [[ $R_STATUS == ok ]]; then
                SU_S=$R_SECS
                n=$("$PY" -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM sse_lines").fetchone()[0])' "$DIR/peer-sqlite-utils.db" 2>/dev/null || echo "?")
                NOTES+=("$PEER_SU: sqlite-utils $("$VENV/bin/sqlite-utils" --version 2>/dev/null | awk '{ print $NF }'); $n rows (input: $LINES lines); one column per top-level key (--alter), no meta_*/extra, no index")
            fi
            drop_db "$DIR/peer-sqlite-utils.db"
        fi

        # Commit per line: the first 5,000 lines only, extrapolated to the whole file by line count.
        say "peer: $PEER_CPL"
        SAMPLE=$DIR/first5k-$seed-$size.jsonl
        head -n 5000 -- "$INPUT" >"$SAMPLE"
        SAMPLE_LINES=$(wc -l <"$SAMPLE")
        run_timed peer-commit-per-line /dev/null "$peer_timeout" "$PY" "$PEERS/python_loader.py" \
            --commit-every-line "$SAMPLE" "$DIR/peer-commit-per-line.db"
        if [[ $R_STATUS == ok ]]; then
            est=$(awk -v s="$R_SECS" -v n="$SAMPLE_LINES" -v N="$LINES" 'BEGIN { printf "%.3f", s * N / n }')
            row "$PEER_CPL" "$est" "-"
            NOTES+=("$PEER_CPL: measured $R_SECS s for $SAMPLE_LINES lines, x $LINES/$SAMPLE_LINES lines; one BEGIN/INSERT/COMMIT per row, sqlite3 module defaults (journal_mode=DELETE, synchronous=FULL)")
        elif [[ $R_STATUS == timeout ]]; then
            row "$PEER_CPL" ">$(awk -v s="$peer_timeout" -v n="$SAMPLE_LINES" -v N="$LINES" 'BEGIN { printf "%d", s * N / n }')" "-"
            NOTES+=("$PEER_CPL: the $SAMPLE_LINES-line sample alone took > $peer_timeout s")
        else
            row "$PEER_CPL" "failed" "-"
            NOTES+=("$PEER_CPL: $R_STATUS")
        fi
        drop_db "$DIR/peer-commit-per-line.db"
        rm -f -- "$SAMPLE"
    fi
fi
LOAD_END=$(loadavg)

if ((!keep)); then
    rm -f -- "$DIR"/ing.db "$DIR"/ing.db-* "$DIR"/ceiling.db "$DIR"/ceiling.db-* "$DIR"/huge.db "$DIR"/huge.db-*
fi

# ------------------------------------------------------------------------------------------
# 7. Report
# ------------------------------------------------------------------------------------------
# Table as tab-separated fields: what, seconds, lines/s, MB/s, RSS MB, ratio vs ingestor all-in.
table_tsv() {
    local k s v gt lps mbs ratio rss
    printf 'what\tseconds\tlines/s\tMB/s\tRSS MB\tratio vs ingestor all-in\n'
    for k in "${!T_WHAT[@]}"; do
        s=${T_SECS[k]} rss=${T_RSS[k]} gt=""
        if [[ $s == ">"* ]]; then gt=1 v=${s#>}; else v=$s; fi
        if isnum "$v"; then
            lps=$(div "$LINES" "$v" %.0f) mbs=$(mbps "$v")
            ratio=$(div "$v" "$IWALL_S" %.2f)
            s=$(fmt %.3f "$v")
            if [[ -n $gt ]]; then s="> $(fmt %.0f "$v") (timeout)" lps="< $lps" mbs="< $mbs" ratio="> $ratio"; fi
        else
            lps="-" mbs="-" ratio="-"
        fi
        isnum "$rss" && rss=$(fmt %.1f "$rss")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${T_WHAT[k]}" "$s" "$lps" "$mbs" "$rss" "$ratio"
    done
}

ratio_line() { # ratio_line LABEL SECS
    local r
    r=$(div "$2" "$IWALL_S" %.2f)
    [[ $r != n/a ]] || r="n/a (not measured)"
    printf 'ratio %s / ingestor all-in: %s\n' "$1" "$r"
}

findings() {
    local ceil_ratio huge_ratio huge_k peak
    printf 'ingestor load phase: %s s (%s lines/s)\n' "$(fmt %.3f "$ILOAD_S")" "$(div "$LINES" "$ILOAD_S" %.0f)"
    printf 'ingestor index phase: %s s\n' "$(fmt %.3f "$IINDEX_S")"
    printf 'ingestor all-in: %s s wall (exec to exit), peak RSS %s MB (own figure), %s MB (/usr/bin/time)\n' \
        "$(fmt %.3f "$IWALL_S")" "$(fmt %.1f "$IRSS_M")" "$(fmt %.1f "$IRSS_EXT_M")"
    if isnum "$CEIL_S"; then
        printf 'ceiling load: %s s (%s lines/s)\n' "$(fmt %.3f "$CLOAD_S")" "$(div "$LINES" "$CLOAD_S" %.0f)"
        printf 'ceiling index: %s s\n' "$(fmt %.3f "$CINDEX_S")"
        printf 'scan only: %s s (%s MB/s)\n' "$(fmt %.3f "$SCAN_S")" "$(mbps "$SCAN_S")"
        ceil_ratio=$(div "$IWALL_S" "$CEIL_S" %.2f)
    else
        printf 'ceiling load: n/a (%s)\nceiling index: n/a\n' "${CEILING_WHY:-not measured}"
        ceil_ratio="n/a"
    fi
    printf 'ratio ingestor all-in / ceiling (load+index): %s (target <= 1.15)\n' "$ceil_ratio"
    printf 'scan only: %s GB/s by wall time, %s GB/s by CPU time (user+sys %s s; one core, no SQLite)\n' \
        "$(div "$BYTES" "$(awk -v s="$SCAN_S" 'BEGIN { if (s + 0 > 0) printf "%.6f", s * 1e9; else print "n/a" }')" %.2f)" \
        "$(div "$BYTES" "$(awk -v s="$SCANCPU_S" 'BEGIN { if (s + 0 > 0) printf "%.6f", s * 1e9; else print "n/a" }')" %.2f)" \
        "$(fmt %.3f "$SCANCPU_S")"
    printf 'load phase vs insert-only baseline: ingestor %s s / baseline %s s = %s\n' \
        "$(fmt %.3f "$ILOAD_S")" "$(fmt %.3f "$CLOAD_S")" "$(div "$ILOAD_S" "$CLOAD_S" %.2f)"
    local name
    for name in $(printf '%s\n' "${!BYHAND_NAMES[@]}" | sort); do
        # shellcheck disable=SC2086
        printf "SQLite's own CREATE INDEX x7 [%s]: %s s (median)\n" "$name" "$(fmt %.3f "$(median ${BYHAND[$name]})")"
    done
    printf "index phase vs SQLite's own CREATE INDEX (best setting per run): ingestor %s s / by hand %s s = %s; ingestor's create_indexes in the ceiling process: %s s\n" \
        "$(fmt %.3f "$IINDEX_S")" "$(fmt %.3f "$BYHAND_S")" "$(div "$IINDEX_S" "$BYHAND_S" %.2f)" "$(fmt %.3f "$CINDEX_S")"
    printf 'fsync of the built database (ingestor does it before its rename; page size %s): %s s\n' \
        "${PAGE_SIZE:-n/a}" "$(fmt %.3f "$CSYNC_S")"
    printf 'all-in vs floor (insert-only load + SQLite own index): %s s / %s s = %s (goal <= 1.05)\n' \
        "$(fmt %.3f "$IWALL_S")" "$(fmt %.3f "$FLOOR_S")" "$(div "$IWALL_S" "$FLOOR_S" %.2f)"
    ratio_line sqlite3-shell "$SH_S"
    ratio_line sqlite-utils "$SU_S"
    ratio_line duckdb "$DUCK_S"
    ratio_line "duckdb same job" "$DUCK_JOB_S"
    if isnum "$HRSS_M" || isnum "$HRSS_EXT_M"; then
        # The ingestor's own figure when it printed one, else /usr/bin/time's.
        peak=$HRSS_M
        isnum "$peak" || peak=$HRSS_EXT_M
        huge_ratio=$(awk -v p="$peak" -v l="$HUGE_MAXLINE" \
            'BEGIN { if (p + 0 > 0 && l + 0 > 0) printf "%.2f", p * 1e6 / l; else printf "n/a" }')
        huge_k=$(awk -v p="$peak" -v l="$HUGE_MAXLINE" -v c="$HUGE_CACHE_MIB" \
            'BEGIN { if (p + 0 > 0 && l + 0 > 0) printf "%.2f", (p * 1e6 - c * 1048576) / l; else printf "n/a" }')
        printf 'huge-line memory run (longest line %s bytes = %s MiB, --historical-cache-mb %d): peak RSS %s MB (own figure), %s MB (/usr/bin/time), %s s wall\n' \
            "$HUGE_MAXLINE" "$(div "$HUGE_MAXLINE" 1048576 %.1f)" "$HUGE_CACHE_MIB" "$(fmt %.1f "$HRSS_M")" "$(fmt %.1f "$HRSS_EXT_M")" "$(fmt %.2f "$HWALL_S")"
        printf 'ratio huge-line peak RSS / longest line: %s; (peak RSS - %d MiB cache) / longest line: %s\n' \
            "$huge_ratio" "$HUGE_CACHE_MIB" "$huge_k"
    else
        printf 'huge-line memory run: n/a (%s)\n' "${HUGE_WHY:-not measured}"
    fi
}

context_lines() {
    local commit="?" cpu
    if command -v git >/dev/null && commit=$(git rev-parse --short HEAD 2>/dev/null); then
        [[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || commit+=" + uncommitted changes"
    fi
    cpu=$(awk -F': *' '$1 ~ /^model name/ { print $2; exit }' /proc/cpuinfo)
    printf -- '- date: %s; commit %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$commit"
    printf -- '- machine: %s cores (%s), %s MB RAM; load average at start %s, at end %s\n' \
        "$(nproc)" "${cpu:-?}" "$(awk '$1 == "MemTotal:" { printf "%d", $2 / 1000 }' /proc/meminfo)" "$LOAD_START" "$LOAD_END"
    printf -- '- input: sse-gen --seed %s --bytes %s: %s bytes (%s MB), %s lines, longest line %s bytes\n' \
        "$seed" "$size" "$BYTES" "$MB" "$LINES" "$MAXLINE"
    printf -- '- ingestor-side figures are medians of %s runs; peers ran once each (timeout %s s)\n' "$runs" "$peer_timeout"
    printf -- '- warm page cache: every input was read once (cat > /dev/null) before each timed step\n'
    printf -- '- all-in = wall time of the whole ingestor process (open, load, index, close); MB = 10^6 bytes; RSS = peak resident set (/usr/bin/time, largest process)\n'
    [[ -z $ISUMMARY ]] || printf -- '- last ingestor summary: %s\n' "\`$ISUMMARY\`"
    local n
    for n in "${NOISE[@]}"; do printf -- '- noise: %s\n' "$n"; done
}

say ""
say "== results"
context_lines | sed 's/^- //; s/`//g'
say ""
table_tsv | awk -F'\t' '
    { n = NR; for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
    END {
        for (r = 1; r <= n; r++) {
            s = ""
            for (i = 1; i <= 6; i++) {
                f = (i == 1) ? "%-" w[i] "s" : "%" w[i] "s"
                s = s (i > 1 ? " | " : "") sprintf(f, c[r, i])
            }
            print s
            if (r == 1) { t = s; gsub(/./, "-", t); print t }
        }
    }'
say ""
findings
for n in "${NOTES[@]}"; do say "note: $n"; done

{
    printf '## Benchmark: %s input, seed %s\n\n' "$size" "$seed"
    context_lines
    printf '\n'
    table_tsv | awk -F'\t' '
        { row = "|"; for (i = 1; i <= NF; i++) row = row " " $i " |"; print row }
        NR == 1 { print "|---|---:|---:|---:|---:|---:|" }'
    printf '\n'
    findings | sed 's/^/- /'
    for n in "${NOTES[@]}"; do printf -- '- %s\n' "$n"; done
} >"$REPORT"
say ""
say "report written to $REPORT"
