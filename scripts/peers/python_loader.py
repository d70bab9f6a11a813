#!/usr/bin/env python3
"""Peer for scripts/bench.sh: the loader a Python user would write in ten minutes.

Reads a sse_lines.jsonl file line by line, `json.loads` each line, computes the same columns as
the `sse_lines` table of shared/spec/schema.md (meta_* from the metadata JSON text, falling back
to the top level; `extra` = the other top-level keys), and inserts with `executemany` in batches,
all in one transaction, into a fresh database with the contract's table and no indexes.

The stdlib sqlite3 module is used with its defaults (rollback journal, synchronous=FULL): what a
user gets without tuning. Lines that are not a JSON object are counted and skipped (the real
ingestor stores them in bad_lines; this peer does not try).

--commit-every-line turns it into the naive loader that commits after each row (one fsync per
line); bench.sh runs that mode on the first few thousand lines only and extrapolates.

Prints one summary line on stderr: `python_loader: N lines (R rows, B bad, E blank) in S s`.
"""

import argparse
import json
import os
import sqlite3
import sys
import time

DDL = """
CREATE TABLE sse_lines (
    id INTEGER PRIMARY KEY,
    event TEXT,
    t TEXT,
    flow_id TEXT,
    round TEXT,
    data_count INTEGER,
    sid TEXT,
    meta_ver TEXT,
    meta_pid INTEGER,
    meta_cwd TEXT,
    meta_turn_id TEXT,
    metadata TEXT,
    extra TEXT,
    line TEXT
)
"""

INSERT = (
    "INSERT INTO sse_lines (event, t, flow_id, round, data_count, sid, meta_ver, meta_pid,"
    " meta_cwd, meta_turn_id, metadata, extra, line) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)

# Top-level keys that have a column of their own; every other key goes to `extra`.
KNOWN = frozenset(("event", "t", "flow_id", "round", "data_count", "sid", "metadata", "line"))


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def text(value):
    """A JSON value as a TEXT column: strings as they are, anything else as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return compact(value)


def integer(value):
    """A number, or a numeric string, as an INTEGER column; anything else as it is."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return text(value)


def to_row(obj):
    meta = obj.get("metadata")
    if isinstance(meta, str):
        metadata = meta
        try:
            inner = json.loads(meta)
        except ValueError:
            inner = None
    else:
        metadata = text(meta)
        inner = meta
    if not isinstance(inner, dict):
        inner = {}

    def pick(key):
        value = inner.get(key)
        return obj.get(key) if value is None else value

    extra = {k: v for k, v in obj.items() if k not in KNOWN}
    return (
        text(obj.get("event")),
        text(obj.get("t")),
        text(obj.get("flow_id")),
        text(obj.get("round")),
        integer(obj.get("data_count")),
        text(obj.get("sid")),
        text(pick("ver")),
        integer(pick("pid")),
        text(pick("cwd")),
        text(pick("turn_id")),
        metadata,
        compact(extra) if extra else None,
        text(obj.get("line")),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("db", help="created afresh (an existing file is removed)")
    ap.add_argument("--batch", type=int, default=10_000, help="rows per executemany call")
    ap.add_argument("--limit", type=int, default=0, help="stop after this many lines (0: all)")
    ap.add_argument("--commit-every-line", action="store_true",
                    help="one transaction per row instead of one for the whole file")
    args = ap.parse_args()

    for suffix in ("", "-journal", "-wal", "-shm"):
        try:
            os.remove(args.db + suffix)
        except FileNotFoundError:
            pass

    started = time.perf_counter()
    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.execute(DDL)
    lines = rows = bad = blank = 0
    pending = []
    cur = conn.cursor()
    if not args.commit_every_line:
        cur.execute("BEGIN")
    with open(args.input, "rb") as f:
        for raw in f:
            if args.limit and lines >= args.limit:
                break
            lines += 1
            if not raw.strip():
                blank += 1
                continue
            try:
                obj = json.loads(raw)
            except ValueError:  # includes UnicodeDecodeError
                bad += 1
                continue
            if not isinstance(obj, dict):
                bad += 1
                continue
            row = to_row(obj)
            rows += 1
            if args.commit_every_line:
                cur.execute("BEGIN")
                cur.execute(INSERT, row)
                cur.execute("COMMIT")
            else:
                pending.append(row)
                if len(pending) >= args.batch:
                    cur.executemany(INSERT, pending)
                    pending.clear()
    if pending:
        cur.executemany(INSERT, pending)
    if not args.commit_every_line:
        cur.execute("COMMIT")
    conn.close()
    secs = time.perf_counter() - started
    print(f"python_loader: {lines} lines ({rows} rows, {bad} bad, {blank} blank) in {secs:.3f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
