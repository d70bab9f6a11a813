#!/usr/bin/env python3
"""Burst appender (helper of scripts/live_3m.sh): appends the lines of --src to --dst in
chunks of a random number of lines (uniform in [--chunk-min, --chunk-max], seeded), each
chunk written as fast as possible (one buffer, write() until done), with a random pause
uniform in [0, --pause-max-ms] ms between chunks. Writes per-chunk lines
`start_epoch<TAB>end_epoch<TAB>lines<TAB>bytes<TAB>pause_ms` to --log and a JSON summary
(first append, last append end, totals) to --summary.
"""
import argparse
import itertools
import json
import os
import random
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk-min", type=int, default=1000)
    ap.add_argument("--chunk-max", type=int, default=50000)
    ap.add_argument("--pause-max-ms", type=float, default=500)
    ap.add_argument("--log", required=True)
    ap.add_argument("--summary", required=True)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    s = dict(chunks=0, lines=0, bytes=0, pause_secs=0.0, first_append=None, last_append_end=None,
             max_chunk_bytes=0)
    fd = os.open(args.dst, os.O_WRONLY | os.O_APPEND)
    try:
        with open(args.src, "rb", buffering=1 << 20) as src, open(args.log, "w") as log:
            while True:
                n = rng.randint(args.chunk_min, args.chunk_max)
                pause = rng.uniform(0, args.pause_max_ms) / 1000
                buf = b"".join(itertools.islice(src, n))
                if not buf:
                    break
                lines = buf.count(b"\n") + (0 if buf.endswith(b"\n") else 1)
                t = time.time()
                if s["first_append"] is None:
                    s["first_append"] = t
                view = memoryview(buf)
                while view:
                    w = os.write(fd, view)
                    view = view[w:]
                e = time.time()
                s["last_append_end"] = e
                s["chunks"] += 1
                s["lines"] += lines
                s["bytes"] += len(buf)
                s["max_chunk_bytes"] = max(s["max_chunk_bytes"], len(buf))
                log.write(f"{t:.3f}\t{e:.3f}\t{lines}\t{len(buf)}\t{pause * 1000:.0f}\n")
                del buf, view
                # No pause after the last chunk.
                if src.peek(1):
                    s["pause_secs"] += pause
                    time.sleep(pause)
    finally:
        os.close(fd)
    with open(args.summary, "w") as f:
        json.dump(s, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
