#!/usr/bin/env bash
# scripts/sources_bench.sh OLD NEW FILE [ROUNDS]: what schema version 2 and WAL cost on a big file.
#
#   1. A resumed backfill: the second half of FILE added to a database holding the first half,
#      by OLD (a build before WAL: rollback journal) and by NEW (WAL), alternated, ROUNDS each
#      (default 3); prints each time and the medians.
#   2. The in-place migration of a version-1 database of the whole FILE (made by OLD, which must
#      be a version-1 build such as commit 1cfa54b) when NEW first opens it.
#
# FILE: e.g. `sse-gen --seed 1 --bytes 1G --out big.jsonl`. Works in a temporary folder beside
# FILE (it needs about 4x FILE's size), removed at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/linux_only.sh"
old=$(realpath "$1"); new=$(realpath "$2"); file=$(realpath "$3"); rounds=${4:-3}
work=$(mktemp -d "$(dirname "$file")/sources_bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
lines=$(wc -l <"$file")
head -n $((lines / 2)) "$file" >first.jsonl
tail -n +$((lines / 2 + 1)) "$file" >second.jsonl
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'; }

echo "resumed backfill of $((lines - lines / 2)) lines ($(du -h second.jsonl | cut -f1)) into a database of $((lines / 2)):"
for bin in old new; do : >"$bin.times"; done
for r in $(seq "$rounds"); do
    for bin in old new; do
        exe=${!bin}
        rm -f in.jsonl db.sqlite*
        cp first.jsonl in.jsonl
        "$exe" --input in.jsonl --db db.sqlite -q
        cat second.jsonl >>in.jsonl
        sync; sleep 1
        t=$(secs "$exe" --input in.jsonl --db db.sqlite -q)
        mode=$(sqlite3 db.sqlite "PRAGMA journal_mode")
        echo "  round $r $bin ($mode): $t s"
        echo "$t" >>"$bin.times"
    done
done
mo=$(median <old.times); mn=$(median <new.times)
echo "  median: old (rollback journal) $mo s, new (WAL) $mn s, new/old $(awk -v a="$mn" -v b="$mo" 'BEGIN { printf "%.3f", a / b }')"

echo "migration of a version-1 database of all $lines lines:"
rm -f in.jsonl db.sqlite*
"$old" --input "$file" --db v1.sqlite -q
echo "  version-1 database: $(du -h v1.sqlite | cut -f1), user_version $(sqlite3 v1.sqlite 'PRAGMA user_version')"
: >empty.jsonl
sync; sleep 1
t=$(secs "$new" --input empty.jsonl --db v1.sqlite -q)
echo "  migrated by NEW in $t s; now $(du -h v1.sqlite | cut -f1), user_version $(sqlite3 v1.sqlite 'PRAGMA user_version'), integrity $(sqlite3 v1.sqlite 'PRAGMA quick_check')"
