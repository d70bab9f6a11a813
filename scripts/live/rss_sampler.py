#!/usr/bin/env python3
"""RSS sampler for one process (helper of scripts/live_3m.sh and scripts/latency.sh).

Appends `elapsed_s<TAB>rss_kb<TAB>phase<TAB>cpu_s<TAB>idle_s` to --out every --interval seconds
until the process is gone (or SIGTERM). cpu_s is the process's CPU time so far (user + system,
/proc/PID/stat) and idle_s the machine's idle time summed over all cores (/proc/stat), so that
the report can tell an ingestor that is slow from one that is starved of CPU. elapsed_s is counted from --t0 (a time.time() epoch). phase is
`historical` until /proc/PID/cmdline contains --no-exec-live (the re-executed live
process keeps the PID), then `live`.

rss_kb is the resident set size in KiB, the number `ps -o rss= -p PID` prints: by default it
is read from /proc/PID/statm (resident pages x page size, the same source ps uses, without
forking a process per sample); --via-ps runs ps itself for each sample.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_proc(pid):
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE_KB


TICK = os.sysconf("SC_CLK_TCK")


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        # Fields after the command name, which may hold spaces: utime and stime are 14 and 15.
        rest = f.read().rsplit(b")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def machine_idle_secs():
    with open("/proc/stat", "rb") as f:
        cpu = f.readline().split()
    # idle + iowait
    return (int(cpu[4]) + int(cpu[5])) / TICK


def rss_ps(pid):
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        raise FileNotFoundError(pid)
    return int(out.stdout.split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--t0", type=float, required=True)
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--out", required=True)
    ap.add_argument("--via-ps", action="store_true")
    args = ap.parse_args()
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    read_rss = rss_ps if args.via_ps else rss_proc
    phase = "historical"
    with open(args.out, "a", buffering=1) as out:
        if out.tell() == 0:
            out.write("elapsed_s\trss_kb\tphase\tcpu_s\tidle_s\n")
        nxt = time.time()
        while not stop:
            try:
                if phase == "historical":
                    with open(f"/proc/{args.pid}/cmdline", "rb") as f:
                        if b"--no-exec-live" in f.read():
                            phase = "live"
                rss = read_rss(args.pid)
                cpu = cpu_secs(args.pid)
                idle = machine_idle_secs()
                now = time.time()
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                # Gone (or a zombie with an empty statm): the run is over.
                if not os.path.exists(f"/proc/{args.pid}"):
                    break
                rss = None
            if rss == 0:
                # Exited and not yet reaped by its parent (a zombie has no memory).
                break
            if rss is not None:
                out.write(f"{now - args.t0:.3f}\t{rss}\t{phase}\t{cpu:.2f}\t{idle:.2f}\n")
            nxt += args.interval
            delay = nxt - time.time()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.time()
    return 0


if __name__ == "__main__":
    sys.exit(main())
