#!/usr/bin/env python3
"""Peer for scripts/bench.sh: DuckDB's own NDJSON reader into a DuckDB database file.

Runs exactly
    SET threads = <threads>;
    CREATE TABLE t AS SELECT * FROM read_ndjson('<input>', maximum_object_size=<n>,
                                                 ignore_errors=true);
in a fresh .duckdb file. Columns are whatever DuckDB infers from the top-level keys (event, t,
line, metadata, ...): it does not compute the meta_* columns or `extra`, and builds no index.

With --same-job it then does what ingestor does beyond the load: the meta_ver, meta_pid,
meta_cwd, meta_turn_id columns taken from the metadata JSON text, and the seven indexes
(flow_id, sid, t, meta_pid, meta_cwd, round, meta_turn_id).

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
    ap.add_argument("--same-job", action="store_true",
                    help="add the meta_* columns and build the seven indexes")
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
    select = "*"
    if args.same_job:
        meta = "CAST(metadata AS VARCHAR)"
        select = (f"*, json_extract_string({meta}, '$.ver') AS meta_ver, "
                  f"TRY_CAST(json_extract_string({meta}, '$.pid') AS BIGINT) AS meta_pid, "
                  f"json_extract_string({meta}, '$.cwd') AS meta_cwd, "
                  f"json_extract_string({meta}, '$.turn_id') AS meta_turn_id")
    con.execute(
        f"CREATE TABLE t AS SELECT {select} FROM read_ndjson('{path}', "
        f"maximum_object_size={int(args.maximum_object_size)}, ignore_errors=true)"
    )
    if args.same_job:
        for col in ("flow_id", "sid", "t", "meta_pid", "meta_cwd", "round", "meta_turn_id"):
            con.execute(f"CREATE INDEX idx_{col} ON t({col})")
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    con.close()
    secs = time.perf_counter() - started
    print(f"duckdb_loader: duckdb {duckdb.__version__}, {rows} rows in {secs:.3f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
