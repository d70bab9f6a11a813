#!/usr/bin/env python3
"""Concurrent reader (helper of scripts/live_3m.sh): every --interval seconds runs
`select count(*), max(id) from sse_lines` in a fresh stock `sqlite3` shell (no busy timeout,
as a person at a terminal would), and appends `epoch<TAB>ok<TAB>count<TAB>max_id<TAB>secs<TAB>wal_bytes<TAB>error`
to --out. It checks that each query succeeds and that count and max(id) never decrease.
On SIGTERM it writes a JSON summary to --summary and exits; --state always holds the latest
`epoch count` so that the driver can wait on it without querying itself.
"""
import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--sqlite3", default="sqlite3")
    args = ap.parse_args()
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    s = dict(queries=0, failures=0, decreases=0, first_failures=[], first_decreases=[],
             max_query_secs=0.0, last_count=None, last_max_id=None, started=time.time(),
             max_wal_bytes=0)
    prev_count = prev_max = -1
    sql = "select count(*), max(id) from sse_lines;"
    nxt = time.time()
    with open(args.out, "a", buffering=1) as out:
        while not stop:
            t = time.time()
            err = ""
            count = max_id = None
            try:
                r = subprocess.run([args.sqlite3, "-batch", "-separator", " ", args.db, sql],
                                   capture_output=True, text=True, timeout=30)
                if r.returncode != 0 or r.stderr.strip():
                    err = (r.stderr.strip() or f"exit status {r.returncode}")
                else:
                    a, b = r.stdout.split()
                    count, max_id = int(a), int(b)
            except subprocess.TimeoutExpired:
                err = "query took over 30 s"
            except ValueError:
                err = f"unexpected output {r.stdout!r}"
            done = time.time()
            secs = done - t
            try:
                wal = os.stat(args.db + "-wal").st_size
            except OSError:
                wal = 0
            s["max_wal_bytes"] = max(s["max_wal_bytes"], wal)
            s["queries"] += 1
            s["max_query_secs"] = max(s["max_query_secs"], secs)
            if err:
                s["failures"] += 1
                if len(s["first_failures"]) < 5:
                    s["first_failures"].append(f"{t:.3f}: {err}")
            else:
                if count < prev_count or max_id < prev_max:
                    s["decreases"] += 1
                    if len(s["first_decreases"]) < 5:
                        s["first_decreases"].append(
                            f"{t:.3f}: count {prev_count}->{count}, max(id) {prev_max}->{max_id}")
                prev_count, prev_max = count, max_id
                s["last_count"], s["last_max_id"] = count, max_id
                tmp = args.state + ".tmp"
                with open(tmp, "w") as f:
                    f.write(f"{done:.3f} {count}\n")
                os.replace(tmp, args.state)
            out.write(f"{done:.3f}\t{0 if err else 1}\t{count if count is not None else ''}\t"
                      f"{max_id if max_id is not None else ''}\t{secs:.4f}\t{wal}\t{err}\n")
            nxt += args.interval
            delay = nxt - time.time()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.time()
    s["stopped"] = time.time()
    # CPU time of all the sqlite3 shells run (reaped children), to compare with the ingestor's.
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    s["children_cpu_s"] = ru.ru_utime + ru.ru_stime
    with open(args.summary, "w") as f:
        json.dump(s, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
