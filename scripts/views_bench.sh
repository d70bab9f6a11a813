#!/usr/bin/env bash
# scripts/views_bench.sh: answer times of the views of views.md (issue 11) on a database of
# generated lines, printed; it never asserts a timing.
#
# It generates `sse-gen --flows` lines (coherent Claude messages and Codex responses, kept and
# reused for the same seed and size), ingests them with `ingestor`, gives the database its
# views, then times, --runs times each (medians reported):
#   - `SELECT * FROM` each whole view (target: <= 2 s on 1 M lines),
#   - one session's requests, `SELECT * FROM requests WHERE sid = ?` (target: <= 50 ms), for
#     the session with the most lines,
# through the bundled SQLite (the library of `ingestor report`, via
# crates/sse-gen/examples/sql_time.rs, a fresh connection per run, every column of every row
# read) and through the system `sqlite3` shell when there is one (output to /dev/null). Both
# use SQLite's default settings (2 MiB page cache, no mmap), as a user's connection would.
# Run `scripts/views_bench.sh --help` for the options.
set -euo pipefail
export LC_ALL=C

usage() {
    cat <<'EOF'
Usage: scripts/views_bench.sh [options]

Options:
  --lines N    lines of the generated input [1000000]
  --seed N     sse-gen seed [1]
  --runs N     repetitions of each query; medians are reported [3]
  -h, --help   this text

Environment:
  BENCH_DIR    work directory [target/views-bench]: input, database, report
EOF
}

die() {
    printf 'views_bench: error: %s\n' "$*" >&2
    exit 1
}

lines=1000000
seed=1
runs=3
while (($#)); do
    case $1 in
    --lines) lines=${2:?--lines needs a value}; shift 2 ;;
    --seed) seed=${2:?--seed needs a value}; shift 2 ;;
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'views_bench: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${BENCH_DIR:-$root/target/views-bench}
mkdir -p "$dir/bin"
target=${CARGO_TARGET_DIR:-$root/target}

say() { printf '%s\n' "$*"; }

# Built once and copied, so that rebuilds by others during the session change nothing.
(cd "$root" && cargo build --release --workspace --quiet &&
    cargo build --release -p sse-gen --example sql_time --quiet) || die "build failed"
cp "$target/release/ingestor" "$target/release/sse-gen" "$target/release/examples/sql_time" "$dir/bin/"
bin=$dir/bin

input=$dir/flows-seed$seed-$lines.jsonl
if [[ ! -s $input ]]; then
    say "generating $lines lines (sse-gen --flows --seed $seed) ..."
    "$bin/sse-gen" --flows --seed "$seed" --lines "$lines" --out "$input.tmp"
    mv "$input.tmp" "$input"
fi
db=$dir/views.db
rm -f "$db" "$db-wal" "$db-shm"
say "ingesting $(du -h "$input" | cut -f1) ..."
"$bin/ingestor" --input "$input" --db "$db"

# `ingestor` created the views (schema version 3) when it opened the database.
value() { "$bin/sql_time" "$db" --value "$@"; }

# The session with the most lines.
sid=$(value "SELECT sid FROM sse_lines GROUP BY sid ORDER BY count(*) DESC LIMIT 1")
sid_lines=$(value "SELECT count(*) FROM sse_lines WHERE sid = ?1" "$sid")
sid_requests=$(value "SELECT count(*) FROM requests WHERE sid = ?1" "$sid")
total_lines=$(value "SELECT count(*) FROM sse_lines")

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# bundled SQL [PARAM]: `wall_seconds cpu_seconds rows` of each run.
bundled() { "$bin/sql_time" "$db" "$runs" "$@" 2>/dev/null; }
# shell SQL: `wall_seconds cpu_seconds` of each run of `sqlite3 DB SQL > /dev/null` (the
# process included; CPU at the 10 ms resolution of /usr/bin/time).
shell() {
    local i t0 t1 cpu
    for ((i = 0; i < runs; i++)); do
        t0=$EPOCHREALTIME
        cpu=$({ /usr/bin/time -f '%U %S' sqlite3 "$db" "$1" >/dev/null; } 2>&1 | tail -1)
        t1=$EPOCHREALTIME
        awk -v a="$t0" -v b="$t1" -v c="$cpu" 'BEGIN {split(c, x, " "); printf "%.4f %.2f\n", b - a, x[1] + x[2]}'
    done
}
# both: "wall (cpu)" medians of `wall cpu ...` lines.
both() {
    local runs_out=$1
    printf '%s (%s)' "$(awk '{print $1}' <<<"$runs_out" | median)" "$(awk '{print $2}' <<<"$runs_out" | median)"
}

have_shell=0
shell_version=-
if command -v sqlite3 >/dev/null; then
    have_shell=1
    shell_version=$(sqlite3 -version | cut -d' ' -f1)
fi
bundled_version=$("$bin/sql_time" "$db" 1 "SELECT 1" 2>&1 >/dev/null | awk '{print $2}')

report=$dir/views-report.md
{
    say "# Views answer times ($(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
    say
    say "Database: $total_lines lines of \`sse-gen --flows --seed $seed\`, $(du -h "$db" | cut -f1); medians of $runs runs: wall seconds (CPU seconds, user + system)."
    say "Session: \`$sid\` ($sid_lines lines, $sid_requests requests)."
    say
    say "| query | rows | bundled SQLite $bundled_version | sqlite3 shell $shell_version | target |"
    say "|---|---:|---:|---:|---:|"
} >"$report"
for view in requests tool_calls sessions usage_daily; do
    sql="SELECT * FROM $view"
    out=$(bundled "$sql")
    n=$(head -1 <<<"$out" | awk '{print $3}')
    b=$(both "$out")
    s=-
    ((have_shell)) && s=$(both "$(shell "$sql")")
    say "| \`SELECT * FROM $view\` | $n | $b | $s | 2 |" >>"$report"
done
b=$(both "$(bundled "SELECT * FROM requests WHERE sid = ?1" "$sid")")
s=-
((have_shell)) && s=$(both "$(shell "SELECT * FROM requests WHERE sid = '$sid'")")
say "| \`SELECT * FROM requests WHERE sid = ?\` | $sid_requests | $b | $s | 0.050 |" >>"$report"
say >>"$report"
say "The machine's load average is in the title: on a shared machine, wall time includes waiting for a core; CPU time is what the query itself cost." >>"$report"
cat "$report"
