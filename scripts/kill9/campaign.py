#!/usr/bin/env python3
"""scripts/kill9/campaign.py: the kill -9 campaign behind scripts/kill9.sh (stdlib only).

A writer thread appends a pre-generated source file to the followed file DIR/logs/followed.jsonl
in chunks cut at arbitrary byte positions (half-written lines are common). Every ROTATE_EVERY
lines on average (seeded, uniform in half to one and a half times that) it completes the line
it is writing and rotates the file, dealing the kinds from a deck shuffled each round:

  rename           `mv f f.N`, a 0-20 ms pause, a new `f`; allowed while no ingestor runs, but
                   not before ingest_sources has a row for the current file (after a restart
                   only the predecessor the database last knew can be found again, by inode);
  delete+recreate  `rm f`, a 0-20 ms pause, a new `f`;
  copy-truncate    `cp f f.N; truncate -s 0 f`, appends going on in `f`;
  copy-truncate (no wait)
                   the same while the follower may be behind or not running (as a rename, only
                   once ingest_sources has a row for the current file): it reads on in the copy
                   (named from the file's stem, same head, same bytes before its position)
                   before taking the cut file from 0.

A delete+recreate and a plain copy-truncate lose whatever the follower had not read (what was
first promised for copy-truncate), so the writer does them only while an ingestor runs (the
harness's kill waits until they are done) and the committed offset of the latest ingest_sources
row, which must be the current file's, equals the file's size. No copy-truncate appends anything
between the copy and the truncation. --no-rotate keeps the one file, append only.

`ingestor --follow` is started, SIGKILLed at a moment drawn from a seeded RNG, and restarted,
KILLS times. The aims are:

  backfill   a random moment within the expected backfill (the first one into DB.building,
             from a calibration run; later ones resume a backlog, as long as the last measured);
  announced  as soon as `live from offset` is on stderr (just before the exec);
  execed     as soon as /proc/PID/cmdline shows --no-exec-live (the new image starting up);
  live       a random moment in live mode while the writer appends and rotates.

Each kill is classified by what was observed at that moment (first backfill, resumed
backfill, switch before exec, switch just after exec, live). After every kill (no ingestor
running) the database, if it exists, is checked with `sqlite3 -readonly ... PRAGMA
integrity_check` (on a copy when a hot rollback journal makes a read-only open impossible),
and what is committed is checked to be exactly the lines written before the committed
position: the latest ingest_sources row is matched with the file it describes (inode, stored
head and tail bytes) and the rows must be every non-blank line of the earlier files plus
those of that file before its offset. At the end the ingestor is started once more, the writer
finishes, the run takes in the last file (offset == its size) and is stopped with SIGTERM, and
the database is compared with everything written: rows + bad lines against non-blank lines, a
multiset of `line` values (duplicates, missing), bad lines per file, and
scripts/oracle_check.py against source.jsonl, which is the concatenation of every file's bytes
in write order (exact here: every file ends at a line end, the generator's output has no BOM).

Every start must end in the SIGKILL (the final run, in the SIGTERM): an ingestor that ends on its
own is a failure.
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


ROTATIONS = ("rename", "delete+recreate", "copy-truncate", "copy-truncate (no wait)")
# Kinds that wait for an ingestor running with all of the current file committed.
CAUGHT_UP = ("delete+recreate", "copy-truncate")


def rotation_plan(src, start, every, kinds, rng):
    """[(offset just past a line end, kind)]: where the writer rotates and how."""
    plan, deck = [], []
    gap = rng.range(every // 2, every * 3 // 2)
    nl = src.find(b"\n", start)
    while 0 <= nl < len(src) - 1:
        gap -= 1
        if gap == 0:
            if not deck:
                deck = list(kinds)
                for j in range(len(deck) - 1, 0, -1):
                    k = rng.range(0, j)
                    deck[j], deck[k] = deck[k], deck[j]
            plan.append((nl + 1, deck.pop()))
            gap = rng.range(every // 2, every * 3 // 2)
        nl = src.find(b"\n", nl + 1)
    return plan


class Inc:
    """One file the followed path named: src[start:next start]."""

    def __init__(self, start, ino, began, floor):
        self.start, self.ino, self.began, self.floor = start, ino, began, floor
        self.kept_as = None
        self.copy_ino = None  # the inode of its copy (copy-truncate)

    def __repr__(self):
        return (f"file(start={self.start}, ino={self.ino}, began={self.began}, "
                f"floor={self.floor}, kept_as={self.kept_as}, copy_ino={self.copy_ino})")


class Source:
    """The latest ingest_sources row."""

    def __init__(self, id_, ino, head, offset, tail):
        self.id, self.ino, self.head, self.offset, self.tail = id_, ino, head, offset, tail

    def __repr__(self):
        return (f"ingest_sources(id={self.id}, ino={self.ino}, offset={self.offset}, "
                f"head={self.head[:24]!r}..., tail=...{self.tail[-24:]!r})")


def latest_source(db):
    """The latest ingest_sources row, or None (no database, no row, or not readable now)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            r = con.execute("SELECT id, ino, head, offset, tail FROM ingest_sources "
                            "ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    if r is None:
        return None
    return Source(r[0], r[1], bytes(r[2] or b""), r[3], bytes(r[4] or b""))


def all_sources(db):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT id, ino, offset FROM ingest_sources ORDER BY id").fetchall()
        finally:
            con.close()
    except sqlite3.Error as e:
        return [f"unreadable: {e}"]


class Writer(threading.Thread):
    def __init__(self, path, db, src, start, plan, seed):
        super().__init__(daemon=True)
        self.path, self.db, self.src, self.pos = path, db, src, start
        self.budget = start
        self.plan = plan
        self.rng = Rng(seed)
        self.stop = False
        self.incs = [Inc(0, os.stat(path).st_ino, None, 0)]
        self.incs_lock = threading.Lock()
        # Whether an ingestor runs: the harness holds the lock to kill, the writer from its
        # last look at the database until a delete+recreate or a copy-truncate is done.
        self.alive = False
        self.alive_lock = threading.Lock()
        self.done = []
        self.waited = 0.0

    def incarnations(self):
        with self.incs_lock:
            return list(self.incs)

    def run(self):
        f = open(self.path, "ab", buffering=0)
        i = 0
        while self.pos < len(self.src) and not self.stop:
            if i < len(self.plan) and self.plan[i][0] == self.pos:
                f = self.rotate(self.plan[i][1], i + 1, f)
                i += 1
                continue
            nxt = self.plan[i][0] if i < len(self.plan) else len(self.src)
            limit = min(self.budget, nxt)
            if self.pos < limit:
                n = min(self.rng.range(1, 40000), limit - self.pos)
                f.write(self.src[self.pos:self.pos + n])
                self.pos += n
            time.sleep(self.rng.range(0, 6) / 1000)
        f.close()

    def _new_file(self, kind, floor):
        """Creates the followed file again; call with incs_lock held."""
        # O_APPEND, so that appends after a copy-truncate land at the new end.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        nf = open(fd, "ab", buffering=0)
        self.incs.append(Inc(self.pos, os.fstat(nf.fileno()).st_ino, kind, floor))
        return nf

    def rotate(self, kind, n, f):
        kept = f"{self.path}.{n}"
        caught_up = kind in CAUGHT_UP
        t = time.monotonic()
        while not self.stop:
            cur = self.incarnations()[-1]
            size = self.pos - cur.start
            if caught_up:
                self.alive_lock.acquire()
            try:
                row = latest_source(self.db) if (self.alive or not caught_up) else None
                if (row is not None and row.id > cur.floor and row.ino == cur.ino
                        and (not caught_up or row.offset == size)):
                    pause = self.rng.range(0, 20) / 1000
                    if kind == "rename":
                        f.close()
                        os.rename(self.path, kept)
                        time.sleep(pause)
                        with self.incs_lock:
                            self.incs[-1].kept_as = kept
                            f = self._new_file(kind, row.id)
                    elif kind == "delete+recreate":
                        f.close()
                        os.remove(self.path)
                        time.sleep(pause)
                        with self.incs_lock:
                            f = self._new_file(kind, row.id)
                    else:
                        with self.incs_lock:
                            shutil.copyfile(self.path, kept)
                            os.ftruncate(f.fileno(), 0)
                            self.incs[-1].kept_as = kept
                            self.incs[-1].copy_ino = os.stat(kept).st_ino
                            self.incs.append(Inc(self.pos, cur.ino, kind, row.id))
                    self.done.append(kind)
                    self.waited += time.monotonic() - t
                    return f
            finally:
                if caught_up:
                    self.alive_lock.release()
            time.sleep(0.01)
        return f


def locate(src, incs, written, row):
    """[(file index, source position)] that `row` may stand for: same inode, the stored head
    and tail where they should be in the bytes written so far."""
    out = []
    for i, inc in enumerate(incs):
        end = incs[i + 1].start if i + 1 < len(incs) else written
        off = row.offset
        if (row.ino in (inc.ino, inc.copy_ino) and 0 <= off <= end - inc.start
                and src.startswith(row.head, inc.start, end)
                and off >= len(row.tail)
                and src[inc.start + off - len(row.tail):inc.start + off] == row.tail):
            out.append((i, inc.start + off))
    return out


def bom_blank(src, start):
    """A file starting at `start` with a BOM then a blank line: the contract skips that line,
    line_ends() counts it."""
    if not src.startswith(b"\xef\xbb\xbf", start):
        return False
    nl = src.find(b"\n", start)
    nl = len(src) if nl < 0 else nl
    return not src[start + 3:nl].strip(b" \t\r")


def stored_before(ends, src, incs, pos):
    """Non-blank lines before source position `pos`, each file framed on its own; None when
    `pos` is not a line end."""
    n = ends.get(pos)
    if n is None:
        return None
    return n - sum(1 for inc in incs if inc.start < pos and bom_blank(src, inc.start))


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
    journal prevents a read-only open. Returns (result text, latest ingest_sources row or None,
    rows, bad, via_copy)."""
    def run(path, ro):
        # A busy timeout: the writer thread may be reading (WAL recovery by the first reader
        # after a kill locks the others out for a moment).
        args = ["sqlite3", "-cmd", ".timeout 10000"] + (["-readonly"] if ro else []) + [
            path, "PRAGMA integrity_check;",
            "SELECT 'K9SRC', id, coalesce(ino, ''), hex(head), offset, hex(tail) "
            "FROM ingest_sources ORDER BY id DESC LIMIT 1;",
            "SELECT 'K9ROWS', count(*) FROM sse_lines;",
            "SELECT 'K9BAD', count(*) FROM bad_lines;"]
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
    check, latest, rows, bad = [], None, None, None
    try:
        for line in r.stdout.strip().split("\n"):
            f = line.split("|")
            if f[0] == "K9SRC":
                latest = Source(int(f[1]), int(f[2]) if f[2] else None, bytes.fromhex(f[3]),
                                int(f[4]), bytes.fromhex(f[5]))
            elif f[0] == "K9ROWS":
                rows = int(f[1])
            elif f[0] == "K9BAD":
                bad = int(f[1])
            else:
                check.append(line)
    except (ValueError, IndexError):
        return ("unparsable: " + r.stdout[-500:], None, None, None, via_copy)
    if rows is None or bad is None:
        return ("unparsable: " + r.stdout[-500:], None, None, None, via_copy)
    return ("\n".join(check), latest, rows, bad, via_copy)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--lines", type=int, default=300000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rotate-every", type=int, default=1500)
    ap.add_argument("--no-rotate", action="store_true")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--oracle", required=True)
    a = ap.parse_args()

    d = os.path.abspath(a.dir)
    ingestor = os.path.join(a.bin_dir, "ingestor")
    source = os.path.join(d, "source.jsonl")
    logs = os.path.join(d, "logs")
    inp = os.path.join(logs, "followed.jsonl")
    db = os.path.join(d, "kill9.db")
    scratch = os.path.join(d, "scratch")
    os.makedirs(scratch, exist_ok=True)
    for f in os.listdir(d):
        if (f.startswith(("followed.jsonl", "kill9.db", "calibrate"))
                or f in ("stderr", "logs", "files.tsv")):
            p = os.path.join(d, f)
            if os.path.isdir(p):
                shutil.rmtree(p)
            else:
                os.remove(p)
    os.makedirs(os.path.join(d, "stderr"))
    os.makedirs(logs)

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
    kinds = ROTATIONS
    plan = [] if a.no_rotate else rotation_plan(src, initial, a.rotate_every, kinds,
                                                Rng(a.seed * 0x9E37 + 0x0707))
    planned = Counter(k for _, k in plan)
    log(f"{len(src)} bytes; followed file starts with {initial}; a first backfill of it takes "
        f"{backfill_time:.2f} s here; {len(plan)} rotations planned "
        f"({', '.join(f'{k} {planned[k]}' for k in kinds)})")

    first_build_kills = max(1, a.kills // 10)
    writer = Writer(inp, db, src, initial, plan, a.seed ^ 0xA5A5)
    writer.start()
    phases = Counter()
    aims = Counter()
    restarts = 0
    failures = []
    integrity_checks = 0
    integrity_failures = 0
    prefix_failures = 0
    via_copy = 0
    behind = 0
    klog = open(os.path.join(d, "kills.tsv"), "w")
    klog.write("kill\taim\tphase\tms_after_start\twritten\tfiles\tsource_id\tsource_ino\t"
               "source_offset\tdb_file\tdb_position\trows\tbad\tintegrity\n")
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
        with writer.alive_lock:
            writer.alive = True
        if k > 0:
            restarts += 1
        try:
            if aim == "backfill":
                frac = rng.range(0, 600 if first_build else 1000) / 1000
                time.sleep(backfill_time * frac)
            elif aim == "announced":
                p.spin_until(p.announced, "`live from offset` line")
                if not first_build and p.announced():
                    backfill_time = time.monotonic() - spawned
            elif aim == "execed":
                p.spin_until(p.execed, "exec into live mode")
            else:
                p.spin_until(lambda: p.execed() and p.announced(), "exec into live mode")
                time.sleep(rng.range(5, 400) / 1000)
        except RuntimeError as e:
            if p.alive():
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
        # Not in the middle of a delete+recreate or a copy-truncate.
        with writer.alive_lock:
            alive = p.alive()
            if alive:
                os.kill(p.pid, signal.SIGKILL)
            writer.alive = False
        rc = p.wait()
        with open(os.path.join(d, "stderr", f"{k}.txt"), "w") as f:
            f.write(p.stderr())
        if rc == -signal.SIGKILL:
            phases[phase] += 1
            aims[aim] += 1
        else:
            failures.append(f"kill #{k} ({phase}): ingestor ended on its own with {rc} "
                            f"(stderr in {d}/stderr/{k}.txt)")
        latest = rows = bad = None
        db_file = db_pos = None
        res = "-"
        nfiles = len(writer.incarnations())
        if os.path.exists(db):
            res, latest, rows, bad, copied = integrity(db, scratch)
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
            # Read after the database: every byte a committed position can cover is counted.
            written = writer.pos
            incs = writer.incarnations()
            nfiles = len(incs)
            if rows is None:
                pass
            elif latest is None:
                if rows + bad != 0:
                    prefix_failures += 1
                    failures.append(f"kill #{k} ({phase}): {rows} rows + {bad} bad without any "
                                    f"ingest_sources row")
            else:
                at = locate(src, incs, written, latest)
                fits = [(i, pos) for i, pos in at
                        if stored_before(ends, src, incs, pos) == rows + bad]
                if fits:
                    db_file, db_pos = fits[0]
                    if db_file + 1 < len(incs):
                        behind += 1
                else:
                    prefix_failures += 1
                    want = [(i, pos, stored_before(ends, src, incs, pos)) for i, pos in at]
                    failures.append(
                        f"kill #{k} ({phase}): {rows} rows + {bad} bad committed; the latest "
                        f"{latest} stands for (file, source position, non-blank lines before) "
                        f"{want or 'no position in any file written'} ({written} bytes written; "
                        f"last files {incs[-4:]}; last sources {all_sources(db)[-4:]}; "
                        f"stderr in {d}/stderr/{k}.txt)")
        klog.write(f"{k}\t{aim}\t{phase}\t{elapsed_ms:.0f}\t{writer.pos}\t{nfiles}\t"
                   f"{latest.id if latest else None}\t{latest.ino if latest else None}\t"
                   f"{latest.offset if latest else None}\t{db_file}\t{db_pos}\t{rows}\t"
                   f"{bad}\t{res[:60]}\n")
        klog.flush()
        if (k + 1) % 20 == 0:
            log(f"{k + 1}/{a.kills} kills, {writer.pos} bytes written, "
                f"{len(writer.done)} rotations, {len(failures)} failures")

    # One more run; the writer finishes (its last rotations may wait for this run) and the run
    # takes in the last file, then is stopped with SIGTERM.
    writer.budget = len(src)
    p = Proc(ingestor, inp, db, d)
    with writer.alive_lock:
        writer.alive = True
    restarts += 1

    start = time.monotonic()
    while writer.is_alive() and time.monotonic() - start < 600:
        if not p.alive():
            break
        writer.join(timeout=0.05)
    final_ok = False
    if writer.is_alive():
        failures.append(f"the writer did not finish ({writer.pos} of {len(src)} bytes written, "
                        f"ingestor alive: {p.alive()})")
        writer.stop = True
        writer.join()
    incs = writer.incarnations()
    last = incs[-1]
    size = len(src) - last.start
    log(f"writer done ({writer.pos} bytes, {len(incs)} files, last one {size} bytes); final run")
    if os.path.getsize(inp) != size:
        failures.append(f"the last file holds {os.path.getsize(inp)} bytes, expected {size}")
    row = None
    while not writer.is_alive():
        row = latest_source(db)
        if row is not None and row.id > last.floor and row.ino == last.ino and row.offset == size:
            final_ok = True
            break
        if not p.alive() or time.monotonic() - start > 600:
            failures.append(f"final run did not reach offset {size} of the last file "
                            f"(latest: {row})")
            break
        time.sleep(0.05)
    with writer.alive_lock:
        if p.alive():
            p.p.send_signal(signal.SIGTERM)
        writer.alive = False
    rc = p.wait()
    with open(os.path.join(d, "stderr", "final.txt"), "w") as f:
        f.write(p.stderr())
    if rc != 0:
        failures.append(f"final run exited with {rc} (stderr in {d}/stderr/final.txt)")

    sources = all_sources(db)
    with open(os.path.join(d, "files.tsv"), "w") as f:
        f.write("file\tbegan\tino\tsource_start\tbytes\tkept_as\n")
        for i, inc in enumerate(incs):
            end = incs[i + 1].start if i + 1 < len(incs) else len(src)
            f.write(f"{i}\t{inc.began or 'initial'}\t{inc.ino}\t{inc.start}\t{end - inc.start}"
                    f"\t{inc.kept_as}\n")
        f.write("\ningest_sources (id, ino, offset)\n")
        f.writelines(f"{s}\n" for s in sources)

    res, _, rows, bad, _ = integrity(db, scratch)
    if res != "ok":
        integrity_failures += 1
        failures.append(f"final integrity_check: {res[:300]}")
    nonblank = stored_before(ends, src, incs, len(src))
    total_lines = src.count(b"\n")
    exp_lines, exp_bad = line_multiset(src)
    got_lines = db_line_multiset(db)
    duplicates = sum((got_lines - exp_lines).values())
    missing = sum((exp_lines - got_lines).values())
    if (rows or 0) + (bad or 0) != nonblank:
        failures.append(f"rows + bad = {rows} + {bad}, non-blank lines {nonblank}")
    if duplicates or missing:
        failures.append(f"line multiset: {duplicates} duplicated, {missing} missing")
    # Bad lines, file by file: (offset in its file, raw bytes) in write order.
    exp_bad_list = []
    for i, inc in enumerate(incs):
        end = incs[i + 1].start if i + 1 < len(incs) else len(src)
        pos = inc.start + (3 if src.startswith(b"\xef\xbb\xbf", inc.start) else 0)
        while pos < end:
            nl = src.find(b"\n", pos, end)
            nl = end if nl < 0 else nl
            raw = src[pos:nl]
            body = raw[:-1] if raw.endswith(b"\r") else raw
            if body.strip(b" \t\r"):
                try:
                    ok = isinstance(json.loads(body), dict)
                except ValueError:
                    ok = False
                if not ok:
                    exp_bad_list.append((pos - inc.start, body))
            pos = nl + 1
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    got_bad_list = [(o, bytes(r) if r is not None else None) for o, r in
                    con.execute("SELECT src_offset, raw FROM bad_lines ORDER BY id")]
    con.close()
    if got_bad_list != exp_bad_list:
        failures.append(f"bad lines differ: expected {len(exp_bad_list)} "
                        f"{[o for o, _ in exp_bad_list][:10]}, database {len(got_bad_list)} "
                        f"{[o for o, _ in got_bad_list][:10]}")
    exact = not any(src.startswith(b"\xef\xbb\xbf", inc.start) for inc in incs) \
        and (not exp_bad_list or len(incs) == 1)
    log("oracle: " + " ".join([a.oracle, source, db]))
    orc = subprocess.run([sys.executable, a.oracle, source, db, "--quiet"], capture_output=True,
                         text=True)
    with open(os.path.join(d, "oracle.txt"), "w") as f:
        f.write(orc.stdout + orc.stderr)
    if orc.returncode != 0:
        failures.append(f"oracle_check.py exited {orc.returncode} (see {d}/oracle.txt)"
                        + ("" if exact else " (not exact here: a file starts with a BOM or "
                           "bad lines are spread over several files)") + ": "
                        + (orc.stdout + orc.stderr).strip()[-500:])

    done = Counter(writer.done)
    if len(writer.done) != len(plan):
        failures.append(f"{len(writer.done)} rotations done of {len(plan)} planned")
    order = ["first backfill", "resumed backfill", "switch (before exec)",
             "switch (just after exec)", "live"]
    report = [
        "kill -9 campaign (writer appends" + (", append only on one file (--no-rotate)"
                                              if a.no_rotate else
                                              f", rotating every ~{a.rotate_every} lines") + ")",
        f"  seed {a.seed}, {a.lines} lines generated, {len(src)} bytes",
        f"  kills            {sum(phases.values())}",
        "  kills by phase   " + ", ".join(f"{ph} {phases[ph]}" for ph in order),
        "  (aims            " + ", ".join(f"{x} {aims[x]}" for x in
                                          ("backfill", "announced", "execed", "live")) + ")",
        f"  restarts         {restarts}",
        f"  rotations        {len(writer.done)} of {len(plan)} planned: "
        + ", ".join(f"{x} {done[x]}" for x in kinds),
        f"  files            {len(incs)} written, {len(sources)} ingest_sources rows; "
        f"{behind} kills left the database on an earlier file than the path named; "
        f"the writer waited {writer.waited:.1f} s for rotations to be allowed",
        f"  lines written    {total_lines} ({nonblank} non-blank)",
        f"  rows             {rows} in sse_lines + {bad} in bad_lines "
        f"(expected {nonblank - exp_bad} + {exp_bad})",
        f"  duplicates       {duplicates}",
        f"  missing          {missing}",
        f"  integrity checks {integrity_checks} after kills ({via_copy} on a copy for a hot "
        f"journal) + 1 final; failures {integrity_failures}",
        f"  committed-prefix mismatches after kills {prefix_failures}",
        f"  final run reached end of the last file: {'yes' if final_ok else 'NO'}; exit {rc}",
        f"  oracle_check.py  {'ok' if orc.returncode == 0 else 'FAIL (exit %d)' % orc.returncode}"
        " (on source.jsonl, the concatenation of every file written)",
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
