#!/usr/bin/env bash
# scripts/live/big_line_rss.sh [INGESTOR]: reproducer of a live-mode memory observation.
# Follows a small file, appends 20 lines of ~3 MB one by one (0.3 s apart) and samples the
# follower's /proc/PID/statm every 2 ms; prints the idle RSS, the highest RSS seen, and the
# ingestor's own summary (its "peak RSS" and whether it logged anything about its budget).
# Python 3 stdlib only; works in a temporary directory that is removed at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/linux_only.sh"
ing=${1:-target/release/ingestor}
ing=$(cd "$(dirname "$ing")" && pwd)/$(basename "$ing")
work=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
python3 - <<'PY'
import json
c = (",", ":")
with open("g.jsonl", "w") as f:
    for i in range(1000):
        f.write(json.dumps({"event": "claude.ping", "t": "2025-11-04T12:37:20.414",
                            "line": "data: {}", "sid": "s", "data_count": i}, separators=c) + "\n")
with open("big.jsonl", "w") as f:
    for i in range(20):
        out = ("line %d of captured output \\\"pid\\\":1\n" % i) * 60000
        line = "data: " + json.dumps({"type": "exec_command_end", "stdout": out})
        f.write(json.dumps({"event": "turn.exec.end", "t": "2025-11-04T12:37:21.000", "line": line,
                            "metadata": "{\"turn_id\":\"1\",\"ver\":\"codex.0.58.0\",\"pid\":1}",
                            "flow_id": "f", "data_count": i, "sid": "s"}, separators=c) + "\n")
PY
"$ing" --input g.jsonl --db r.db --follow 2>err &
pid=$!
until grep -qa -- --no-exec-live "/proc/$pid/cmdline"; do sleep 0.05; done
sleep 1
python3 - "$pid" <<'PY'
import os, sys, threading, time
pid = int(sys.argv[1]); mx = [0]; stop = [False]
def sample():
    while not stop[0]:
        with open(f"/proc/{pid}/statm") as f:
            mx[0] = max(mx[0], int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024)
        time.sleep(0.002)
th = threading.Thread(target=sample); th.start(); time.sleep(0.3)
print("idle RSS before:                 %6d KiB" % mx[0])
fd = os.open("g.jsonl", os.O_WRONLY | os.O_APPEND)
with open("big.jsonl", "rb") as f:
    for l in f:
        os.write(fd, l); time.sleep(0.3)
time.sleep(0.5); stop[0] = True; th.join()
print("max RSS seen by a 2 ms sampler:  %6d KiB (%.1f MB); --rss-budget-mb 12 = 12288 KiB" % (mx[0], mx[0] * 1024 / 1e6))
PY
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
echo "exit status $rc; ingestor stderr:"
cat err
