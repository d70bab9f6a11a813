#!/usr/bin/env bash
# scripts/pipe_bench.sh FILE [ROUNDS] [BIN]: a large backlog through a pipe against the same
# file given with --input, both into a new database, alternated ROUNDS times (default 5).
# Prints each wall time, the medians and their ratio (the pipe should be within 10%), and
# checks that both databases hold the same number of rows and that the pipe stayed in its
# historical phase to its end.
#
#   target/release/sse-gen --seed 1 --bytes 1G --out big.jsonl && scripts/pipe_bench.sh big.jsonl
#
# The pipe's historical phase ends once it has caught up (see --idle-secs): with `cat`
# pouring a page-cached file faster than it is ingested, it stays historical to the end.
set -euo pipefail
file=$(realpath "$1"); rounds=${2:-5}
bin=$(realpath "${3:-$(dirname "${BASH_SOURCE[0]}")/../target/release/ingestor}")
work=$(mktemp -d "$(dirname "$file")/pipe_bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Wall seconds of the command line "$@" (bash's `time` covers a whole pipeline).
secs() { { TIMEFORMAT=%R; time bash -c "$1" >/dev/null; } 2>&1; }

cat "$file" >/dev/null # into the page cache for both
: >pipe.times; : >file.times; switched=0
echo "$(basename "$file"): $(du -h "$file" | cut -f1), $(wc -l <"$file") lines; $rounds rounds"
for r in $(seq "$rounds"); do
    rm -f pipe.db* file.db*
    tp=$(secs "cat '$file' | '$bin' --db pipe.db 2>pipe.err")
    if grep -q "live on standard input" pipe.err; then
        echo "  round $r: the pipe switched to live mode before its end:" >&2
        tr '\r' '\n' <pipe.err | grep "ingestor:" >&2
        switched=1
    fi
    tf=$(secs "'$bin' --input '$file' --db file.db -q")
    echo "  round $r: cat | ingestor $tp s, --input $tf s"
    echo "$tp" >>pipe.times; echo "$tf" >>file.times
done
rp=$(sqlite3 pipe.db "SELECT count(*) FROM sse_lines" 2>/dev/null || echo "?")
rf=$(sqlite3 file.db "SELECT count(*) FROM sse_lines" 2>/dev/null || echo "?")
mp=$(median <pipe.times); mf=$(median <file.times)
echo "median: cat | ingestor $mp s, --input $mf s, ratio $(awk -v a="$mp" -v b="$mf" 'BEGIN { printf "%.3f", a / b }')"
echo "rows: pipe $rp, file $rf"
[ "$rp" = "$rf" ] || { echo "row counts differ" >&2; exit 1; }
[ "$switched" = 0 ] || { echo "the pipe left its historical phase early in some rounds" >&2; exit 1; }
