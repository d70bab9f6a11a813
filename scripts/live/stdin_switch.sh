#!/usr/bin/env bash
# scripts/live/stdin_switch.sh [--lines N] [--more M] [INGESTOR]: the "same with stdin" check of
# live mode. Runs `(cat A; sleep 5; cat B) | ingestor --db x.db` with A = N generated lines and
# B = M more, samples the ingestor's RSS every 50 ms, and prints the RSS it reports after the
# pipe went idle and it switched to live settings, the sampled peak before and after that
# switch, and the oracle's verdict on every row. Exit status 1 if a row is missing, extra or
# wrong. Needs python3 and sqlite3; ingestor and sse-gen from target/release unless given.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/linux_only.sh"
lines=300000
more=100000
while (($#)); do
    case $1 in
    --lines) lines=$2; shift 2 ;;
    --more) more=$2; shift 2 ;;
    -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
    *) break ;;
    esac
done
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ing=${1:-$root/target/release/ingestor}
gen=$(dirname "$ing")/sse-gen
[[ -x $gen ]] || gen=$root/target/release/sse-gen
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$gen" --seed 11 --lines "$lines" --out "$work/a.jsonl"
"$gen" --seed 12 --lines "$more" --out "$work/b.jsonl"
cat "$work/a.jsonl" "$work/b.jsonl" >"$work/all.jsonl"
# The gap (5 s) is longer than a pipe takes to count as caught up after a backlog (2 s after
# it, then --idle-secs of waiting; see `CatchUp` in src/input/source.rs).
(cat "$work/a.jsonl"; sleep 5; cat "$work/b.jsonl") | "$ing" --db "$work/x.db" 2>"$work/err" &
pid=$!
ipid=
for _ in $(seq 1 100); do
    ipid=$(pgrep -f -n -- "--db $work/x.db" || true)
    [[ -n $ipid ]] && break
    sleep 0.05
done
python3 - "$ipid" "$work/err" >"$work/rss.txt" <<'PY' &
import os, sys, time
pid, err = int(sys.argv[1]), sys.argv[2]
before = after = 0
switched = False
while os.path.exists(f"/proc/{pid}"):
    try:
        with open(f"/proc/{pid}/statm") as f:
            kb = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, IndexError, ValueError):
        break
    if not switched:
        with open(err, errors="replace") as f:
            switched = "live on standard input" in f.read()
    if switched:
        after = max(after, kb)
    else:
        before = max(before, kb)
    time.sleep(0.05)
print(f"{before} {after}")
PY
spid=$!
wait "$pid"
wait "$spid"
read -r before after <"$work/rss.txt"
longest=$(LC_ALL=C awk '{ if (length($0) > m) m = length($0) } END { printf "%.1f", m / 1e6 }' "$work/b.jsonl")
echo "input: $lines lines, a 5 s pause, $more more lines (pipe; the longest of them $longest MB)"
grep -o 'live on standard input, RSS now [0-9.]* MB' "$work/err" | sed 's/^/switch: /'
awk -v b="$before" -v a="$after" 'BEGIN { printf "sampled peak RSS: %.1f MiB before the switch, %.1f MiB after it\n", b / 1024, a / 1024 }'
tail -1 "$work/err" | sed 's/^/last line: /'
rc=0
python3 "$root/scripts/oracle_check.py" --quiet "$work/all.jsonl" "$work/x.db" >"$work/oracle.txt" 2>&1 || rc=$?
cat "$work/oracle.txt"
exit "$rc"
