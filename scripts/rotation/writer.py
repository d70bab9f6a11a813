#!/usr/bin/env python3
"""Rotating writer (helper of scripts/rotation.sh).

Appends the lines of --src (JSON objects; a "seq" key numbering them is added to each) to --dst at --rate lines/s, in chunks written by one write() each,
opening --dst for each chunk as loggers that append per event do (so after a rename or a
delete the next chunk creates a new file). A rotator thread rotates --dst every --every
seconds, cycling through --kinds:

  rename        os.rename(dst, dst.N): the writer's next chunk creates a new dst.
  delete        os.unlink(dst): the same, and the old file lives on only in open handles.
  copytruncate  copy dst to dst.N, then truncate dst to 0, as logrotate's copytruncate does,
                WITHOUT pausing the writer: lines appended between the end of the copy and the
                truncation are in neither file (--copy-gap-ms widens that window, as a slow
                rotator would).

Writes `written.tsv` (per chunk: write time, first line number, line count) and
`rotations.tsv` (kind, start, end of the rotation) into --out.
"""
import argparse
import itertools
import os
import shutil
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--chunk", type=int, default=25)
    ap.add_argument("--every", type=float, default=2.0)
    ap.add_argument("--kinds", default="rename,copytruncate,delete")
    ap.add_argument("--copy-gap-ms", type=float, default=0,
                    help="pause between a copytruncate's copy and its truncation")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    lock = threading.Lock()  # a rotation and a chunk write never interleave mid-call
    done = threading.Event()
    rotations = open(os.path.join(args.out, "rotations.tsv"), "w")

    def rotator():
        n = 0
        while not done.wait(args.every):
            kind = kinds[n % len(kinds)]
            n += 1
            t0 = time.time()
            if kind == "rename":
                with lock:
                    os.rename(args.dst, f"{args.dst}.{n}")
            elif kind == "delete":
                with lock:
                    os.unlink(args.dst)
            else:
                # Like logrotate: the copy runs while the writer goes on.
                shutil.copyfile(args.dst, f"{args.dst}.{n}")
                time.sleep(args.copy_gap_ms / 1000)
                os.truncate(args.dst, 0)
            rotations.write(f"{kind}\t{t0:.6f}\t{time.time():.6f}\n")
            rotations.flush()

    rot = threading.Thread(target=rotator)
    rot.start()
    period = args.chunk / args.rate
    start = time.time()
    line_no = 0
    with open(args.src, "rb") as src, open(os.path.join(args.out, "written.tsv"), "w") as log:
        for i in itertools.count():
            # Each line gets a sequence number (it lands in `extra`), so that the report can
            # match every row to the line it came from.
            buf = b"".join(
                b'{"seq":%d,' % (line_no + k) + raw[1:]
                for k, raw in enumerate(itertools.islice(src, args.chunk))
            )
            if not buf:
                break
            n = buf.count(b"\n")
            delay = start + i * period - time.time()
            if delay > 0:
                time.sleep(delay)
            with lock:
                fd = os.open(args.dst, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    view = memoryview(buf)
                    while view:
                        view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
                t = time.time()
            log.write(f"{t:.6f}\t{line_no}\t{n}\n")
            line_no += n
    done.set()
    rot.join()
    rotations.close()


if __name__ == "__main__":
    main()
