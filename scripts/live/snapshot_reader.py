#!/usr/bin/env python3
"""How late a line lands while a reader holds a snapshot: the probe behind
tests/live.rs `a_reader_holding_a_snapshot_does_not_hold_up_live_mode`, with figures.

Usage: scripts/live/snapshot_reader.py [--lines N] [--pause SECS] [INGESTOR ...]

For each binary (default target/release/ingestor): follows a new file with
`--follow --no-exec-live`, opens a second connection that runs BEGIN and a SELECT and keeps
that read transaction open, then N times waits --pause seconds (more than the 1 s after which
live mode rests and runs its checkpoint) and appends one line, timing how long until another
connection sees it. Prints the median and the maximum. Nothing is asserted.
"""
import argparse
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time


def count(db):
    while True:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                return conn.execute("SELECT count(*) FROM sse_lines").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error:
            time.sleep(0.01)  # not created yet


def wait_rows(db, n, deadline=60.0):
    started = time.monotonic()
    while count(db) < n:
        if time.monotonic() - started > deadline:
            raise SystemExit(f"snapshot_reader: {n} rows not seen within {deadline} s")
        time.sleep(0.005)
    return time.monotonic() - started


def probe(binary, lines, pause):
    with tempfile.TemporaryDirectory() as d:
        src, db = os.path.join(d, "in.jsonl"), os.path.join(d, "x.db")
        with open(src, "w") as f:
            f.write('{"event":"first"}\n')
        proc = subprocess.Popen([binary, "--input", src, "--db", db, "--follow",
                                 "--no-exec-live", "--quiet"])
        try:
            wait_rows(db, 1)
            reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM sse_lines").fetchone()
            late = []
            for k in range(lines):
                time.sleep(pause)
                with open(src, "a") as f:
                    f.write('{"event":"line %d"}\n' % k)
                late.append(wait_rows(db, k + 2))
            reader.execute("COMMIT")
            reader.close()
        finally:
            proc.terminate()
            proc.wait()
    print(f"{binary}: {lines} lines, each {pause} s after the last, a reader holding a "
          f"snapshot: median {statistics.median(late) * 1000:.0f} ms, "
          f"max {max(late) * 1000:.0f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=5)
    ap.add_argument("--pause", type=float, default=2.0)
    ap.add_argument("binaries", nargs="*", default=["target/release/ingestor"])
    args = ap.parse_args()
    for binary in args.binaries:
        probe(binary, args.lines, args.pause)


if __name__ == "__main__":
    main()
