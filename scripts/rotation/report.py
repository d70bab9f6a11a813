#!/usr/bin/env python3
"""Compares what the rotating writer wrote with what the database holds (helper of
scripts/rotation.sh). The writer numbers every line (a "seq" key, stored in `extra`), so each
row is matched to the line it came from. Prints rotations by kind, lines written, rows,
duplicates, rows out of order, and missing lines split by cause: written between a
copy-truncate's start and the truncation (the copy window), or earlier (written before the
copy but not yet read by the follower when the file was cut). Exit 1 on any duplicate, any
row out of order, or any missing line that no copy-truncate explains.
"""
import bisect
import collections
import sqlite3
import sys


def main():
    out, db = sys.argv[1:3]
    written = []  # (time, first, count)
    for row in open(f"{out}/written.tsv"):
        t, first, n = row.split()
        written.append((float(t), int(first), int(n)))
    total = sum(n for _, _, n in written)
    rotations = [r.split("\t") for r in open(f"{out}/rotations.tsv").read().splitlines()]
    rotations = [(k, float(a), float(b)) for k, a, b in rotations]
    kinds = collections.Counter(k for k, _, _ in rotations)

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    got = [
        -1 if v is None else v
        for (v,) in con.execute("SELECT json_extract(extra, '$.seq') FROM sse_lines ORDER BY id")
    ]
    unknown = sum(1 for g in got if g < 0)
    dup = len(got) - len(set(got))
    disorder = sum(1 for a, b in zip(got, got[1:]) if b <= a)
    seen = set(got)
    when = {}
    for t, first, n in written:
        for i in range(first, first + n):
            when[i] = t
    missing = [i for i in range(total) if i not in seen]
    cuts = sorted((a, b) for k, a, b in rotations if k == "copytruncate")
    starts = [a for a, _ in cuts]
    all_starts = sorted((a, k) for k, a, _ in rotations)
    in_window = lag = unexplained = 0
    for i in missing:
        t = when[i]
        j = bisect.bisect_right(starts, t) - 1
        if j >= 0 and t <= cuts[j][1]:
            in_window += 1
            continue
        # Written shortly before a cut, and lost with it: the follower had not read it yet.
        k = bisect.bisect_left(all_starts, (t, ""))
        if k < len(all_starts) and all_starts[k][1] == "copytruncate" and all_starts[k][0] - t < 1:
            lag += 1
        else:
            unexplained += 1
    windows = [(b - a) * 1000 for a, b in cuts]
    print(f"rotations: {dict(kinds)} ({len(rotations)} in all)")
    print(f"lines written: {total}; rows: {len(got)}; unknown rows: {unknown}")
    print(f"duplicates: {dup}; rows out of order: {disorder}")
    print(f"missing: {len(missing)}: {in_window} written inside a copy-truncate window, "
          f"{lag} written before one but not yet read when the file was cut, "
          f"{unexplained} unexplained")
    if windows:
        windows.sort()
        print(f"copy-truncate window (copy start to truncation): median "
              f"{windows[len(windows) // 2]:.1f} ms, max {windows[-1]:.1f} ms; lost per "
              f"copy-truncate: {len(missing) / len(cuts):.1f} lines")
    ok = dup == 0 and disorder == 0 and unexplained == 0 and unknown == 0
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
