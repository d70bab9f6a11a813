#!/usr/bin/env bash
# scripts/live/backlog_line_rss.sh [--mb M] [--runs R] INGESTOR [INGESTOR...]: peak RSS of a live
# follower that meets one long line inside a backlog (20,000 short lines, one line of about M MB,
# 20,000 short lines, appended at once). Prints, per binary, the live process's own peak RSS
# (VmHWM, from its summary line) for each run, the median, and the median in multiples of the
# line's length above the median idle RSS; and, from a 5 ms RSS sampler, how long after its
# peak RSS was back within the default 12 MiB budget (the follower frees memory, then
# re-executes if it must). Binaries are alternated run by run, so that several builds are
# compared in the same conditions. Needs python3 and sqlite3.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/linux_only.sh"
mb=32
runs=3
while (($#)); do
    case $1 in
    --mb) mb=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) break ;;
    esac
done
(($#)) || { echo "usage: $0 [--mb M] [--runs R] INGESTOR [INGESTOR...]" >&2; exit 2; }
bins=()
for b in "$@"; do bins+=("$(cd "$(dirname "$b")" && pwd)/$(basename "$b")"); done
work=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
line_bytes=$(python3 - "$mb" <<'PY'
import json, sys
c = (",", ":")
def small(i):
    return json.dumps({"event": "claude.ping", "t": "2025-11-04T12:37:20.414", "line": "data: {}",
                       "sid": "s", "data_count": i}, separators=c) + "\n"
with open("start.jsonl", "w") as f:
    f.write("".join(small(i) for i in range(1000)))
unit = 'line of captured output \\"pid\\":1\n'
# Each unit is escaped twice on its way into the envelope.
encoded = len(json.dumps(json.dumps(unit))) - 4
out = unit * (int(float(sys.argv[1]) * 1e6) // encoded)
big = json.dumps({"event": "turn.exec.end", "t": "2025-11-04T12:37:21.000",
                  "line": "data: " + json.dumps({"stdout": out}), "sid": "s"}, separators=c) + "\n"
with open("more.jsonl", "w") as f:
    f.write("".join(small(i) for i in range(20000)) + big + "".join(small(i) for i in range(20000)))
print(len(big))
PY
)
echo "long line: $line_bytes bytes, inside a backlog of 40,000 short lines"
one_run() {
    rm -f f.jsonl r.db r.db-wal r.db-shm err
    cp start.jsonl f.jsonl
    "$1" --input f.jsonl --db r.db --follow 2>err &
    pid=$!
    until grep -qa -- --no-exec-live "/proc/$pid/cmdline" 2>/dev/null; do sleep 0.05; done
    sleep 1.5
    idle=$(awk '{ print $2 * 4 }' "/proc/$pid/statm")
    python3 - "$pid" >samples.txt <<'PY' &
import os, sys, time
pid = sys.argv[1]
page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
while True:
    try:
        with open(f"/proc/{pid}/statm") as f:
            kb = int(f.read().split()[1]) * page_kb
    except (OSError, IndexError, ValueError):
        break
    if kb == 0:
        break
    print(f"{time.monotonic():.4f} {kb}", flush=True)
    time.sleep(0.005)
PY
    sampler=$!
    cat more.jsonl >>f.jsonl
    for _ in $(seq 1 300); do
        [[ $(sqlite3 r.db "select count(*) from sse_lines" 2>/dev/null) == 41001 ]] && break
        sleep 0.1
    done
    sleep 1.5
    kill -TERM "$pid"
    wait "$pid"
    pid=
    wait "$sampler" || true
    peak=$(grep -o 'peak RSS [0-9.]* MB' err | tail -1 | awk '{ print $3 }')
    # Milliseconds from the sampled peak to the first sample back within 12 MiB.
    back=$(awk 'NR == 1 || $2 > m { m = $2; tm = $1; back = "" }
                back == "" && $2 <= 12288 && tm != "" && $1 > tm { back = ($1 - tm) * 1000 }
                END { print (back == "" ? "never" : sprintf("%.0f", back)) }' samples.txt)
    reexec=$(grep -c 're-executing' err || true)
    echo "$idle $peak $back $reexec"
}
declare -A results
for ((r = 1; r <= runs; r++)); do
    for b in "${bins[@]}"; do
        results[$b]+="$(one_run "$b");"
    done
done
for b in "${bins[@]}"; do
    python3 - "$b" "${results[$b]}" "$line_bytes" <<'PY'
import statistics, sys
b, runs, line = sys.argv[1], [r.split() for r in sys.argv[2].split(";") if r], int(sys.argv[3])
idle = statistics.median(int(r[0]) * 1024 / 1e6 for r in runs)
peaks = [float(r[1]) for r in runs]
med = statistics.median(peaks)
print(f"{b}: peak RSS {', '.join(f'{p:.1f}' for p in peaks)} MB (median {med:.1f}); idle "
      f"{idle:.1f} MB; (peak - idle) / line = {(med - idle) * 1e6 / line:.2f}")
print(f"  back within 12 MiB after the peak: {', '.join(r[2] + ' ms' for r in runs)}; "
      f"re-executions: {', '.join(r[3] for r in runs)}")
PY
done
