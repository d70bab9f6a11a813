#!/usr/bin/env python3
"""Peer for scripts/bench.sh: DuckDB's own NDJSON reader into a DuckDB database file.

Runs exactly
    SET threads = <threads>;
    CREATE TABLE t AS SELECT * FROM read_ndjson('<input>', maximum_object_size=<n>,
                                                 ignore_errors=true);
in a fresh .duckdb file. Columns are whatever DuckDB infers from the top-level keys (event, t,
line, metadata, ...): it does not compute the meta_* columns or `extra`, and builds no index.

Prints on stderr: `duckdb_loader: duckdb <version>, R rows in S s`.
Needs the `duckdb` Python package (bench.sh installs it into its venv).
"""

import argparse
import os
import sys
import time

import duckdb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("db", help="created afresh (an existing file is removed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--maximum-object-size", type=int, default=16 << 20,
                    help="bytes; must exceed the longest line")
    args = ap.parse_args()

    for suffix in ("", ".wal"):
        try:
            os.remove(args.db + suffix)
        except FileNotFoundError:
            pass

    started = time.perf_counter()
    con = duckdb.connect(args.db)
    con.execute(f"SET threads = {int(args.threads)}")
    path = args.input.replace("'", "''")
    con.execute(
        f"CREATE TABLE t AS SELECT * FROM read_ndjson('{path}', "
        f"maximum_object_size={int(args.maximum_object_size)}, ignore_errors=true)"
    )
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    con.close()
    secs = time.perf_counter() - started
    print(f"duckdb_loader: duckdb {duckdb.__version__}, {rows} rows in {secs:.3f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
