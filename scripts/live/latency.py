#!/usr/bin/env python3
"""Append -> visible latency probe (helper of scripts/latency.sh), in three subcommands:

  writer  appends --rate lines per second for --seconds to --dst, one write() per line, each
          a valid envelope (the Claude "current" layout, ~500 bytes, like sse-gen's deltas)
          with an extra top-level key "seq":K (K = 1, 2, ...); records time.time() right
          after each write() returned (O_APPEND, unbuffered: the write is the flush) in --log
          as `seq<TAB>epoch`.
  reader  a separate sqlite3 connection (stdlib module; the database is in WAL mode) polls
          the newest row every --poll-ms: `SELECT extra FROM sse_lines ORDER BY id DESC
          LIMIT 1`, reads its seq and, since rows are committed in file order, records for
          every seq up to it not seen before the time the poll returned, in --log as
          `seq<TAB>epoch`. Stops at --last, at --deadline (epoch) or on SIGTERM.
  report  joins both logs and prints count, p50/p90/p99/max latency and the rest.
"""
import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import sys
import time


def writer(args):
    rng = random.Random(args.seed)
    words = ("the data stream line reader writer commit page WAL index cargo Rust async "
             "thread value json row batch sqlite ingestor follow append flush café zoë "
             "naïve lock rotate offset").split() + [r'\\\"quoted\\\"']
    sid = "%08x-%04x-4%03x-a%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16),
                                            rng.getrandbits(12), rng.getrandbits(12),
                                            rng.getrandbits(48))
    rnd = "019a4edf-%04x-7%03x-8%03x-%012x" % (rng.getrandbits(16), rng.getrandbits(12),
                                               rng.getrandbits(12), rng.getrandbits(48))
    flow = "msg_01" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
                                         "0123456789") for _ in range(22))
    meta = json.dumps({"ver": "claude.2.0.31", "pid": os.getpid(),
                       "cwd": "/Users/sotola/Projects/ingestor"}, separators=(",", ":"))
    meta_s = json.dumps(meta)
    # Text padded so that a whole line is about 500 bytes, like most real deltas.
    texts = []
    for _ in range(64):
        t = []
        while len(" ".join(t)) < 140:
            t.append(rng.choice(words))
        texts.append(" ".join(t))
    total = int(args.rate * args.seconds)
    fd = os.open(args.dst, os.O_WRONLY | os.O_APPEND)
    stamps = [0.0] * total
    start = time.time() + 0.2
    max_behind = 0.0
    for k in range(total):
        due = start + k / args.rate
        now = time.time()
        if now < due:
            time.sleep(due - now)
        else:
            max_behind = max(max_behind, now - due)
        seq = k + 1
        now = time.time()
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)) + ".%03d" % int(now % 1 * 1000)
        payload = ('data: {\\"type\\":\\"content_block_delta\\",\\"index\\":0,\\"delta\\":'
                   '{\\"type\\":\\"text_delta\\",\\"text\\":\\"%s \\"}}' % texts[k % 64])
        line = ('{"event":"claude.content_block_delta","t":"%s","line":"%s","round":"%s",'
                '"metadata":%s,"flow_id":"%s","data_count":%d,"sid":"%s","seq":%d}\n'
                % (t, payload, rnd, meta_s, flow, seq, sid, seq)).encode("utf-8")
        os.write(fd, line)
        stamps[k] = time.time()
    os.close(fd)
    with open(args.log, "w") as f:
        for k, s in enumerate(stamps):
            f.write(f"{k + 1}\t{s:.6f}\n")
    span = stamps[-1] - stamps[0] if total > 1 else 0.0
    with open(args.log + ".json", "w") as f:
        json.dump({"lines": total, "first": stamps[0], "last": stamps[-1],
                   "achieved_rate": (total - 1) / span if span else 0.0,
                   "max_behind_schedule_s": max_behind}, f)
    return 0


def reader(args):
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    con = sqlite3.connect(args.db, isolation_level=None, check_same_thread=False)
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    seen = 0
    polls = errors = 0
    first_error = ""
    out = []
    poll = args.poll_ms / 1000
    with open(args.ready, "w") as f:
        f.write(f"{mode}\n")
    t_start = time.time()
    while not stop and seen < args.last and time.time() < args.deadline:
        try:
            row = con.execute("SELECT extra FROM sse_lines ORDER BY id DESC LIMIT 1").fetchone()
            now = time.time()
            polls += 1
        except sqlite3.Error as e:
            errors += 1
            first_error = first_error or str(e)
            time.sleep(poll)
            continue
        seq = 0
        if row and row[0]:
            try:
                seq = int(json.loads(row[0]).get("seq", 0))
            except (ValueError, AttributeError, TypeError):
                seq = 0
        if seq > seen:
            out.extend((s, now) for s in range(seen + 1, seq + 1))
            seen = seq
        time.sleep(poll)
    t_end = time.time()
    con.close()
    with open(args.log, "w") as f:
        for s, t in out:
            f.write(f"{s}\t{t:.6f}\n")
    with open(args.log + ".json", "w") as f:
        json.dump({"journal_mode": mode, "polls": polls, "errors": errors,
                   "first_error": first_error, "seen": seen,
                   "mean_poll_interval_ms": (t_end - t_start) / max(polls, 1) * 1000}, f)
    return 0


def pct(xs, p):
    """Nearest-rank percentile of a sorted list."""
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, int(-(-p * len(xs) // 100)) - 1))
    return xs[k]


def report(args):
    appended = {}
    with open(args.writer_log) as f:
        for line in f:
            s, t = line.split()
            appended[int(s)] = float(t)
    visible = {}
    with open(args.reader_log) as f:
        for line in f:
            s, t = line.split()
            visible[int(s)] = float(t)
    w = json.load(open(args.writer_log + ".json"))
    r = json.load(open(args.reader_log + ".json"))
    lat = []
    with open(args.out, "w") as f:
        f.write("seq\tappended\tvisible\tlatency_ms\n")
        for s in sorted(appended):
            if s in visible:
                ms = (visible[s] - appended[s]) * 1000
                lat.append(ms)
                f.write(f"{s}\t{appended[s]:.6f}\t{visible[s]:.6f}\t{ms:.3f}\n")
    missing = len(appended) - len(lat)
    lat_sorted = sorted(lat)
    p99 = pct(lat_sorted, 99)
    print(f"lines appended    {len(appended)} at {args.rate:g}/s for {args.seconds:g} s "
          f"(achieved {w['achieved_rate']:.0f}/s, writer at most "
          f"{w['max_behind_schedule_s'] * 1000:.1f} ms behind schedule)")
    print(f"lines seen        {len(lat)} ({missing} never became visible)")
    print(f"reader            {r['polls']} polls, mean interval {r['mean_poll_interval_ms']:.2f} ms, "
          f"{r['errors']} errors{' (' + r['first_error'] + ')' if r['errors'] else ''}, "
          f"journal_mode {r['journal_mode']}")
    if lat:
        print(f"latency (ms)      p50 {pct(lat_sorted, 50):.1f}  p90 {pct(lat_sorted, 90):.1f}  "
              f"p99 {p99:.1f}  max {lat_sorted[-1]:.1f}  mean {statistics.fmean(lat):.1f}  "
              f"min {lat_sorted[0]:.1f}")
        print(f"target            p99 <= 100 ms: {'[ok]' if p99 <= 100 else '[MISSED]'}")
        over = sum(1 for x in lat if x > 100)
        print(f"                  {over} lines ({over / len(lat) * 100:.2f}%) over 100 ms")
    return 1 if missing or r["errors"] else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("writer")
    w.add_argument("--dst", required=True)
    w.add_argument("--rate", type=float, required=True)
    w.add_argument("--seconds", type=float, required=True)
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--log", required=True)
    r = sub.add_parser("reader")
    r.add_argument("--db", required=True)
    r.add_argument("--poll-ms", type=float, default=1.0)
    r.add_argument("--last", type=int, required=True)
    r.add_argument("--deadline", type=float, required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--ready", required=True)
    p = sub.add_parser("report")
    p.add_argument("--writer-log", required=True)
    p.add_argument("--reader-log", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    args = ap.parse_args()
    return {"writer": writer, "reader": reader, "report": report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
