#!/usr/bin/env python3
"""scripts/kill9/campaign.py: the kill -9 campaign behind scripts/kill9.sh (stdlib only).

A writer thread appends a pre-generated source file to the followed file in chunks cut at
arbitrary byte positions (half-written lines are common). `ingestor --follow` is started,
SIGKILLed at a moment drawn from a seeded RNG, and restarted, KILLS times. The aims are:

  backfill   a random moment within the expected backfill (the first one into DB.building,
             from a calibration run; later ones resume a backlog, as long as the last measured);
  announced  as soon as `live from offset` is on stderr (just before the exec);
  execed     as soon as /proc/PID/cmdline shows --no-exec-live (the new image starting up);
  live       a random moment in live mode while the writer appends.

Each kill is classified by what was observed at that moment (first backfill, resumed
backfill, switch before exec, switch just after exec, live). After every kill (no ingestor
running) the database, if it exists, is checked with `sqlite3 -readonly ... PRAGMA
integrity_check` (on a copy when a hot rollback journal makes a read-only open impossible),
and what is committed is checked to be exactly the non-blank lines before the committed
offset. At the end the writer finishes, one more run takes in the whole file (offset == file
size), is stopped with SIGTERM, and the database is compared with the file: rows + bad lines
against non-blank lines, a multiset of `line` values (duplicates, missing), and
scripts/oracle_check.py.

Scope: append only, one file; rotation/truncation of the followed file is known not to be
handled yet and is not exercised.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter

PATIENCE = 120.0


class Rng:
    """splitmix64, so that the kill plan depends on the seed alone."""

    def __init__(self, seed):
        self.s = seed & (2**64 - 1)

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & (2**64 - 1)
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        return z ^ (z >> 31)

    def range(self, lo, hi):
        return lo + self.next() % (hi - lo + 1)


def log(msg):
    print(f"kill9: [{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Proc:
    def __init__(self, ingestor, inp, db, cwd):
        self.p = subprocess.Popen(
            [ingestor, "--input", inp, "--db", db, "--follow"],
            cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"},
        )
        self.pid = self.p.pid
        self.err = bytearray()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        fd = self.p.stderr.fileno()
        while True:
            b = os.read(fd, 4096)
            if not b:
                break
            with self.lock:
                self.err += b

    def stderr(self):
        with self.lock:
            return self.err.decode("utf-8", "replace")

    def alive(self):
        return self.p.poll() is None

    def execed(self):
        try:
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                return b"--no-exec-live" in f.read()
        except OSError:
            return False

    def announced(self):
        with self.lock:
            return b"live from offset" in self.err

    def spin_until(self, cond, what):
        start = time.monotonic()
        while not cond():
            if not self.alive():
                raise RuntimeError(f"ingestor ended ({self.p.returncode}) while waiting for {what}")
            if time.monotonic() - start > PATIENCE:
                raise RuntimeError(f"no {what} within {PATIENCE} s")
            time.sleep(0)

    def wait(self):
        try:
            rc = self.p.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
            raise RuntimeError("ingestor did not exit")
        self.reader.join(timeout=10)
        return rc


class Writer(threading.Thread):
    def __init__(self, path, src, start, seed):
        super().__init__(daemon=True)
        self.path, self.src, self.pos = path, src, start
        self.budget = start
        self.rng = Rng(seed)

    def run(self):
        with open(self.path, "ab", buffering=0) as f:
            while self.pos < len(self.src):
                limit = min(self.budget, len(self.src))
                if self.pos < limit:
                    n = min(self.rng.range(1, 40000), limit - self.pos)
                    f.write(self.src[self.pos:self.pos + n])
                    self.pos += n
                time.sleep(self.rng.range(0, 6) / 1000)


def line_ends(src):
    """{offset just past a line end: non-blank lines up to there} and the `line` multiset."""
    ends = {0: 0}
    stored = 0
    start = 0
    n = len(src)
    while start < n:
        nl = src.find(b"\n", start)
        if nl < 0:
            break
        if src[start:nl].strip(b" \t\r"):
            stored += 1
        ends[nl + 1] = stored
        start = nl + 1
    return ends


def line_multiset(src):
    """Hashes of the decoded `line` value of every non-blank line that json parses as an object
    (the others are bad lines), from the source file alone."""
    c = Counter()
    bad = 0
    for raw in src.split(b"\n"):
        if not raw.strip(b" \t\r"):
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            bad += 1
            continue
        if not isinstance(obj, dict):
            bad += 1
            continue
        v = obj.get("line")
        c[hashlib.blake2b(json.dumps(v).encode() if not isinstance(v, str) else v.encode("utf-8", "surrogatepass"), digest_size=16).digest()] += 1
    return c, bad


def db_line_multiset(db):
    c = Counter()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.text_factory = bytes
    for (v,) in con.execute("SELECT line FROM sse_lines ORDER BY id"):
        if v is None:
            key = b"null"
        else:
            key = v
        c[hashlib.blake2b(key if v is not None else b"null", digest_size=16).digest()] += 1
    con.close()
    return c


def integrity(db, scratch):
    """`PRAGMA integrity_check` by the sqlite3 shell, read-only; on a copy when a hot rollback
    journal prevents a read-only open. Returns (result text, offset, rows, bad, via_copy)."""
    def run(path, ro):
        args = ["sqlite3"] + (["-readonly"] if ro else []) + [
            path, "PRAGMA integrity_check;",
            "SELECT coalesce(max(offset),0) FROM ingest_sources;",
            "SELECT count(*) FROM sse_lines;", "SELECT count(*) FROM bad_lines;"]
        return subprocess.run(args, capture_output=True, text=True)

    r = run(db, True)
    via_copy = False
    if r.returncode != 0 and os.path.exists(db + "-journal"):
        via_copy = True
        copy = os.path.join(scratch, "inspect.db")
        for suf in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(copy + suf):
                os.remove(copy + suf)
        for suf in ("", "-journal", "-wal"):
            if os.path.exists(db + suf):
                shutil.copyfile(db + suf, copy + suf)
        r = run(copy, False)
        for suf in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(copy + suf):
                os.remove(copy + suf)
    if r.returncode != 0:
        return (f"sqlite3 failed ({r.returncode}): {r.stderr.strip()}", None, None, None, via_copy)
    out = r.stdout.strip().split("\n")
    try:
        bad, rows, offset = int(out[-1]), int(out[-2]), int(out[-3])
    except (ValueError, IndexError):
        return ("unparsable: " + r.stdout[-500:], None, None, None, via_copy)
    return ("\n".join(out[:-3]), offset, rows, bad, via_copy)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--lines", type=int, default=300000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--oracle", required=True)
    a = ap.parse_args()

    d = os.path.abspath(a.dir)
    ingestor = os.path.join(a.bin_dir, "ingestor")
    source = os.path.join(d, "source.jsonl")
    inp = os.path.join(d, "followed.jsonl")
    db = os.path.join(d, "kill9.db")
    scratch = os.path.join(d, "scratch")
    os.makedirs(scratch, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith(("followed.jsonl", "kill9.db", "calibrate")) or f == "stderr":
            p = os.path.join(d, f)
            if os.path.isdir(p):
                shutil.rmtree(p)
            else:
                os.remove(p)
    os.makedirs(os.path.join(d, "stderr"))

    t0 = time.monotonic()
    log(f"generating {a.lines} lines (seed {a.seed}, --max-line-mb 1)")
    subprocess.run([os.path.join(a.bin_dir, "sse-gen"), "--seed", str(a.seed), "--lines",
                    str(a.lines), "--max-line-mb", "1", "--out", source], check=True,
                   capture_output=True)
    with open(source, "rb") as f:
        src = f.read()
    assert src.endswith(b"\n")
    ends = line_ends(src)
    rng = Rng(a.seed * 0x1000193 + 7)

    initial = len(src) * 2 // 5 + 17
    with open(inp, "wb") as f:
        f.write(src[:initial])
    with open(os.path.join(d, "calibrate.jsonl"), "wb") as f:
        f.write(src[:initial])
    # Two one-shot runs on a copy; the faster one is the estimate (the first may pay for a cold
    # page cache or a busy machine, and an overestimate makes the first-build kills miss).
    backfill_time = None
    for _ in range(2):
        for suf in ("", "-journal"):
            if os.path.exists(os.path.join(d, "calibrate.db" + suf)):
                os.remove(os.path.join(d, "calibrate.db" + suf))
        t = time.monotonic()
        subprocess.run([ingestor, "--input", os.path.join(d, "calibrate.jsonl"), "--db",
                        os.path.join(d, "calibrate.db"), "--quiet"], check=True)
        took = time.monotonic() - t
        backfill_time = took if backfill_time is None else min(backfill_time, took)
    os.remove(os.path.join(d, "calibrate.jsonl"))
    os.remove(os.path.join(d, "calibrate.db"))
    log(f"{len(src)} bytes; followed file starts with {initial}; a first backfill of it takes "
        f"{backfill_time:.2f} s here")

    first_build_kills = max(1, a.kills // 10)
    writer = Writer(inp, src, initial, a.seed ^ 0xA5A5)
    writer.start()
    phases = Counter()
    aims = Counter()
    restarts = 0
    failures = []
    integrity_checks = 0
    integrity_failures = 0
    prefix_failures = 0
    via_copy = 0
    klog = open(os.path.join(d, "kills.tsv"), "w")
    klog.write("kill\taim\tphase\tms_after_start\twritten\toffset\trows\tbad\tintegrity\n")
    for k in range(a.kills):
        writer.budget = initial + (len(src) - initial) * (k + 1) // (a.kills + 2)
        if k < first_build_kills:
            aim = "backfill"
        else:
            r = rng.range(0, 99)
            aim = "backfill" if r < 25 else "announced" if r < 40 else "execed" if r < 55 else "live"
        if k >= first_build_kills and rng.range(0, 2) == 0:
            time.sleep(rng.range(20, 250) / 1000)
        first_build = not os.path.exists(db)
        spawned = time.monotonic()
        p = Proc(ingestor, inp, db, d)
        if k > 0:
            restarts += 1
        aims[aim] += 1
        try:
            if aim == "backfill":
                frac = rng.range(0, 600 if first_build else 1000) / 1000
                time.sleep(backfill_time * frac)
            elif aim == "announced":
                p.spin_until(p.announced, "`live from offset` line")
                if not first_build:
                    backfill_time = time.monotonic() - spawned
            elif aim == "execed":
                p.spin_until(p.execed, "exec into live mode")
            else:
                p.spin_until(lambda: p.execed() and p.announced(), "exec into live mode")
                time.sleep(rng.range(5, 400) / 1000)
        except RuntimeError as e:
            failures.append(f"kill #{k}: {e}")
        if p.execed():
            phase = "switch (just after exec)" if aim == "execed" else "live"
        elif p.announced():
            phase = "switch (before exec)"
        elif first_build:
            phase = "first backfill"
        else:
            phase = "resumed backfill"
        elapsed_ms = (time.monotonic() - spawned) * 1000
        alive = p.alive()
        if alive:
            os.kill(p.pid, signal.SIGKILL)
        rc = p.wait()
        if not alive or rc != -signal.SIGKILL:
            failures.append(f"kill #{k} ({phase}): ingestor ended on its own with {rc} "
                            f"(stderr in {d}/stderr/{k}.txt)")
        with open(os.path.join(d, "stderr", f"{k}.txt"), "w") as f:
            f.write(p.stderr())
        phases[phase] += 1
        offset = rows = bad = None
        res = "-"
        if os.path.exists(db):
            res, offset, rows, bad, copied = integrity(db, scratch)
            integrity_checks += 1
            via_copy += copied
            if res != "ok":
                integrity_failures += 1
                failures.append(f"kill #{k} ({phase}): integrity_check: {res[:300]}")
                keep = os.path.join(d, f"corrupt-after-kill-{k}")
                os.makedirs(keep, exist_ok=True)
                for suf in ("", "-journal", "-wal", "-shm"):
                    if os.path.exists(db + suf):
                        shutil.copyfile(db + suf, os.path.join(keep, "kill9.db" + suf))
            if offset is not None:
                want = ends.get(offset)
                if offset > writer.pos or want is None or rows + bad != want:
                    prefix_failures += 1
                    failures.append(
                        f"kill #{k} ({phase}): committed offset {offset} (written {writer.pos}) "
                        f"holds {want} non-blank lines, database has {rows} rows + {bad} bad")
        klog.write(f"{k}\t{aim}\t{phase}\t{elapsed_ms:.0f}\t{writer.pos}\t{offset}\t{rows}\t"
                   f"{bad}\t{res[:60]}\n")
        klog.flush()
        if (k + 1) % 20 == 0:
            log(f"{k + 1}/{a.kills} kills, {writer.pos} bytes written, {len(failures)} failures")

    writer.budget = len(src)
    writer.join()
    size = os.path.getsize(inp)
    log(f"writer done ({size} bytes); final run")
    p = Proc(ingestor, inp, db, d)
    restarts += 1
    start = time.monotonic()
    final_ok = False
    while True:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            off = con.execute("SELECT coalesce(max(offset),0) FROM ingest_sources").fetchone()[0]
            con.close()
        except sqlite3.Error:
            off = None
        if off == size:
            final_ok = True
            break
        if not p.alive() or time.monotonic() - start > 600:
            failures.append(f"final run did not reach offset {size} (last {off})")
            break
        time.sleep(0.05)
    if p.alive():
        p.p.send_signal(signal.SIGTERM)
    rc = p.wait()
    with open(os.path.join(d, "stderr", "final.txt"), "w") as f:
        f.write(p.stderr())
    if rc != 0:
        failures.append(f"final run exited with {rc}")

    res, offset, rows, bad, _ = integrity(db, scratch)
    if res != "ok":
        integrity_failures += 1
        failures.append(f"final integrity_check: {res[:300]}")
    nonblank = ends[len(src)]
    total_lines = src.count(b"\n")
    exp_lines, exp_bad = line_multiset(src)
    got_lines = db_line_multiset(db)
    duplicates = sum((got_lines - exp_lines).values())
    missing = sum((exp_lines - got_lines).values())
    if (rows or 0) + (bad or 0) != nonblank:
        failures.append(f"rows + bad = {rows} + {bad}, non-blank lines {nonblank}")
    if duplicates or missing:
        failures.append(f"line multiset: {duplicates} duplicated, {missing} missing")
    log("oracle: " + " ".join([a.oracle, inp, db]))
    orc = subprocess.run([sys.executable, a.oracle, inp, db, "--quiet"], capture_output=True,
                         text=True)
    with open(os.path.join(d, "oracle.txt"), "w") as f:
        f.write(orc.stdout + orc.stderr)
    if orc.returncode != 0:
        failures.append(f"oracle_check.py exited {orc.returncode} (see {d}/oracle.txt): "
                        + (orc.stdout + orc.stderr).strip()[-500:])

    order = ["first backfill", "resumed backfill", "switch (before exec)",
             "switch (just after exec)", "live"]
    report = [
        "kill -9 campaign (append-only writer on one file; rotation/truncation not exercised)",
        f"  seed {a.seed}, {a.lines} lines generated, {len(src)} bytes",
        f"  kills            {a.kills}",
        "  kills by phase   " + ", ".join(f"{ph} {phases[ph]}" for ph in order),
        "  (aims            " + ", ".join(f"{x} {aims[x]}" for x in
                                          ("backfill", "announced", "execed", "live")) + ")",
        f"  restarts         {restarts}",
        f"  lines written    {total_lines} ({nonblank} non-blank)",
        f"  rows             {rows} in sse_lines + {bad} in bad_lines "
        f"(expected {nonblank - exp_bad} + {exp_bad})",
        f"  duplicates       {duplicates}",
        f"  missing          {missing}",
        f"  integrity checks {integrity_checks} after kills ({via_copy} on a copy for a hot "
        f"journal) + 1 final; failures {integrity_failures}",
        f"  committed-prefix mismatches after kills {prefix_failures}",
        f"  final run reached end of file: {'yes' if final_ok else 'NO'}; exit {rc}",
        f"  oracle_check.py  {'ok' if orc.returncode == 0 else 'FAIL (exit %d)' % orc.returncode}",
        f"  time             {time.monotonic() - t0:.0f} s",
    ]
    if failures:
        report.append(f"FAIL: {len(failures)} failure(s):")
        report += ["  " + x for x in failures[:50]]
    else:
        report.append("PASS")
    text = "\n".join(report)
    print(text, flush=True)
    with open(os.path.join(d, "report.txt"), "w") as f:
        f.write(text + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
