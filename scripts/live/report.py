#!/usr/bin/env python3
"""Report of one scripts/live_3m.sh run (helper): reads the files the driver left in --dir
(facts.tsv, events.tsv, rss.tsv, reader.tsv, reader.json, burst.json, burst.tsv,
ingestor.err), prints the report, writes it to DIR/report.txt and exits 0 on PASS, 1 on FAIL.

Only correctness decides PASS/FAIL (switch seen, 2N rows reached in time, exit status 0,
exactly 2N rows, bookkeeping offset, oracle, integrity_check, reader without failure or
decrease). Memory and throughput figures are printed next to their targets, never asserted.
"""
import argparse
import json
import os
import re
import statistics
import sys

KIB_PER_MIB = 1024


def read_tsv_kv(path):
    d = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if "\t" in line:
                    k, v = line.split("\t", 1)
                    d[k] = v
    return d


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def mib(kb):
    return kb / KIB_PER_MIB


def fmt_n(n):
    return f"{n:,}".replace(",", "_") if isinstance(n, int) else str(n)


def verdict(ok):
    return "[ok]" if ok else "[MISSED]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    d = args.dir
    facts = read_tsv_kv(os.path.join(d, "facts.tsv"))
    ev = {k: float(v) for k, v in read_tsv_kv(os.path.join(d, "events.tsv")).items()}
    n = int(facts["lines"])
    target = 2 * n
    budget_kb = int(facts.get("budget_mib", "12")) * KIB_PER_MIB
    t0 = ev["ingestor_start"]

    samples = []  # (epoch, kb, phase)
    cpu = []  # (epoch, ingestor cpu_s, machine idle_s)
    with open(os.path.join(d, "rss.tsv")) as f:
        next(f, None)
        for line in f:
            p = line.split()
            if len(p) >= 3:
                samples.append((t0 + float(p[0]), int(p[1]), p[2]))
            if len(p) >= 5:
                cpu.append((t0 + float(p[0]), float(p[3]), float(p[4])))

    def cpu_between(a, b):
        """(ingestor CPU s, machine busy fraction of all cores) over [a, b], or None."""
        span = [c for c in cpu if a <= c[0] <= b]
        if len(span) < 2 or span[-1][0] - span[0][0] <= 0:
            return None
        wall = span[-1][0] - span[0][0]
        idle = (span[-1][2] - span[0][2]) / (wall * (os.cpu_count() or 1))
        return span[-1][1] - span[0][1], wall, 1 - idle

    def window(a, b, phase=None):
        return [kb for t, kb, ph in samples if a <= t <= b and (phase is None or ph == phase)]

    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    reads = []  # (epoch, ok, count)
    rpath = os.path.join(d, "reader.tsv")
    if os.path.exists(rpath):
        with open(rpath) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) >= 3 and p[1] == "1":
                    reads.append((float(p[0]), int(p[2])))
    reader = load_json(os.path.join(d, "reader.json"))
    burst = load_json(os.path.join(d, "burst.json"))
    chunks = []  # (start, end, lines)
    bpath = os.path.join(d, "burst.tsv")
    if os.path.exists(bpath):
        with open(bpath) as f:
            for line in f:
                p = line.split("\t")
                if len(p) >= 3:
                    chunks.append((float(p[0]), float(p[1]), int(p[2])))
    err_text = ""
    epath = os.path.join(d, "ingestor.err")
    if os.path.exists(epath):
        with open(epath, errors="replace") as f:
            err_text = f.read()

    out = []
    say = out.append
    fails = []

    def check(ok, what):
        if not ok:
            fails.append(what)
        return "[ok]" if ok else "[FAIL]"

    say("=" * 100)
    say(f"live_3m report: {facts.get('started_at', '?')}  ({facts.get('host', '')})")
    say("=" * 100)
    say(f"binary          {facts.get('binary', '?')}")
    say(f"machine load    {facts.get('load_before', '?')} before the ingestor started; "
        f"{facts.get('load_after', '?')} at the end")
    say(f"N               {fmt_n(n)} lines per file")
    say(f"file A          {facts.get('a_desc', '')}")
    say(f"file B          {facts.get('b_desc', '')}")

    # Historical phase.
    hist = [kb for t, kb, ph in samples if ph == "historical"]
    live_samples = [(t, kb) for t, kb, ph in samples if ph == "live"]
    switch = live_samples[0][0] if live_samples else None
    if "switch_seen" in ev and switch is None:
        switch = ev["switch_seen"]
    hline = next((l for l in err_text.splitlines() if "live from offset" in l), "")

    def grab(rx):
        x = re.search(rx, hline)
        return x.group(1) if x else None

    h_load, h_index = grab(r"load ([0-9.]+) s"), grab(r"indexes ([0-9.]+) s")
    h_peak, h_offset = grab(r"peak RSS ([0-9.]+) MB"), grab(r"live from offset (\d+)")
    say("")
    if switch is not None:
        say(f"historical      {switch - t0:.1f} s from start to the switch to live"
            + (f" (binary: load {h_load} s + indexes {h_index} s)" if h_load else ""))
    else:
        say("historical      no switch to live was seen")
    if hist:
        say(f"  peak RSS      {mib(max(hist)):.1f} MiB sampled"
            + (f"; the binary's own getrusage peak: {h_peak} MB (10^6 B)" if h_peak else ""))
    if h_offset:
        ok = int(h_offset) == int(facts.get("a_bytes", -1))
        say(f"  switch        stderr: 'live from offset {h_offset}' "
            f"{check(ok, 'live offset != size of file A')} (size of A: {facts.get('a_bytes')})")
    if switch is not None:
        say(f"  switch time   +{switch - t0:.2f} s (first sample whose /proc/PID/cmdline has "
            f"--no-exec-live; PID unchanged)")
    if "caught_up" in ev:
        say(f"  count = N     seen at +{ev['caught_up'] - t0:.2f} s")

    # Idle before the burst.
    say("")
    idle1 = window(ev.get("idle1_start", 0), ev.get("idle1_end", 0), "live")
    if idle1:
        v = mib(med(idle1))
        say(f"idle live RSS   {v:.2f} MiB median of {len(idle1)} samples over "
            f"{ev['idle1_end'] - ev['idle1_start']:.1f} s (min {mib(min(idle1)):.2f}, max "
            f"{mib(max(idle1)):.2f})     target <= 8 MiB {verdict(v <= 8)}")

    # Burst.
    say("")
    first = burst.get("first_append")
    reached = next((t for t, c in reads if c >= target), None)
    if first:
        span = burst["last_append_end"] - first
        say(f"burst           {fmt_n(burst['lines'])} lines, {burst['bytes'] / 1e9:.2f} GB in "
            f"{burst['chunks']} chunks of {facts.get('chunk_range', '?')} lines (largest "
            f"{burst['max_chunk_bytes'] / 1e6:.1f} MB), pauses {facts.get('pause_range', '?')} "
            f"(total {burst['pause_secs']:.1f} s)")
        say(f"  writer        first append +{first - t0:.2f} s, last append done "
            f"+{burst['last_append_end'] - t0:.2f} s: {span:.1f} s, "
            f"{burst['lines'] / max(span, 1e-9):,.0f} lines/s offered")
    if first and reached:
        dt = reached - first
        tput = n / dt
        say(f"throughput      {tput:,.0f} lines/s: {fmt_n(n)} lines from the first append to "
            f"count = 2N ({dt:.2f} s)     target >= 60,000 lines/s {verdict(tput >= 60000)}")
        # The ingestor's own rate while it had a backlog (the writer's pauses excluded).
        busy_dt = busy_dc = 0.0
        ci = 0
        appended = n
        for (ta, ca), (tb, cb) in zip(reads, reads[1:]):
            if ta < first or ta >= reached:
                continue
            while ci < len(chunks) and chunks[ci][1] <= ta:
                appended += chunks[ci][2]
                ci += 1
            if appended - ca > 1000:
                busy_dt += tb - ta
                busy_dc += cb - ca
        if busy_dt > 0:
            say(f"  while behind  {busy_dc / busy_dt:,.0f} lines/s over the {busy_dt:.1f} s "
                f"when more than 1000 appended lines were not yet visible")
        lag = next((c for t, c in reversed(reads) if t <= burst["last_append_end"]), None)
        if lag is not None:
            say(f"  at last append {fmt_n(target - lag)} lines not yet visible; count = 2N "
                f"{reached - burst['last_append_end']:.2f} s after the last append")
        used = cpu_between(first, reached)
        if used:
            secs, wall, busy = used
            say(f"  CPU           ingestor {secs:.1f} s in {wall:.1f} s ({secs / wall:.0%} of one "
                f"core, {secs / n * 1e6:.1f} us per line); machine {busy:.0%} busy "
                f"({os.cpu_count()} cores)")
        burst_kb = window(first, reached, "live")
        if burst_kb:
            v = mib(max(burst_kb))
            say(f"peak live RSS   {v:.2f} MiB during the burst ({len(burst_kb)} samples, median "
                f"{mib(med(burst_kb)):.2f})     target <= 12 MiB {verdict(v <= 12)}")
    elif first:
        say("throughput      count never reached 2N")
        check(False, "count never reached 2N")

    idle2 = window(ev.get("idle2_start", 0), ev.get("idle2_end", 0), "live")
    if idle2:
        v = mib(med(idle2))
        say(f"idle after      {v:.2f} MiB median of {len(idle2)} samples over "
            f"{ev['idle2_end'] - ev['idle2_start']:.1f} s, from {ev['idle2_start'] - reached:.1f} s "
            f"after count = 2N (min {mib(min(idle2)):.2f}, max {mib(max(idle2)):.2f})     "
            f"target <= 8 MiB {verdict(v <= 8)}")

    # Budget.
    say("")
    over = [(t, kb) for t, kb in live_samples if kb > budget_kb]
    say(f"over budget     {len(over)} of {len(live_samples)} live samples above "
        f"{budget_kb // KIB_PER_MIB} MiB ({budget_kb} KiB)")
    episodes = []
    for t, kb in over:
        if episodes and t - episodes[-1][1] < 0.3:
            episodes[-1][1] = t
            episodes[-1][2] = max(episodes[-1][2], kb)
            episodes[-1][3] += 1
        else:
            episodes.append([t, t, kb, 1])

    def stage(t):
        if first and t < first:
            return "before the burst"
        if reached and t <= reached:
            return "burst"
        return "after the burst"

    for a, b, kb, cnt in episodes[:15]:
        say(f"  +{a - t0:8.2f} .. +{b - t0:8.2f} s  {cnt:4d} samples, max {mib(kb):.2f} MiB  "
            f"({stage(a)})")
    if len(episodes) > 15:
        say(f"  ... {len(episodes) - 15} more episodes (see rss.tsv)")
    reexecs = err_text.count("re-executing")
    over_logs = err_text.count("over the")
    say(f"re-execs        {reexecs} ('re-executing' lines on stderr); {over_logs} 'over the budget' "
        f"lines")
    if samples:
        span = samples[-1][0] - samples[0][0]
        say(f"RSS samples     {len(samples)} over {span:.1f} s = {len(samples) / max(span, 1e-9):.1f}"
            f"/s ({facts.get('sampler', '')}) -> {os.path.join(d, 'rss.tsv')}")
    if "end_rss_kb" in facts:
        say(f"RSS at stop     {mib(int(facts['end_rss_kb'])):.2f} MiB (last sample before SIGTERM)")

    # Reader.
    say("")
    if reader:
        q, fl, dec = reader.get("queries", 0), reader.get("failures", 0), reader.get("decreases", 0)
        say(f"reader          {q} queries of `select count(*), max(id)` in a fresh sqlite3 shell "
            f"every {facts.get('reader_interval', '?')} s: {fl} failed, {dec} decreases "
            f"{check(q > 0 and fl == 0 and dec == 0, 'concurrent reader failures or decreases')}; "
            f"slowest {reader.get('max_query_secs', 0):.3f} s")
        span = reader.get("stopped", 0) - reader.get("started", 0)
        if q and span > 0:
            say(f"  achieved      one query every {span / q:.3f} s on average (count(*) scans an "
                f"index: its cost grows with the table)")
        if "children_cpu_s" in reader:
            say(f"  CPU           {reader['children_cpu_s']:.1f} s in its sqlite3 shells")
        if "max_wal_bytes" in reader:
            say(f"  WAL size      max {reader['max_wal_bytes'] / 1e6:.1f} MB seen by the reader; "
                f"{int(facts.get('wal_bytes_at_stop', 0)) / 1e6:.1f} MB just before SIGTERM")
        for e in reader.get("first_failures", []) + reader.get("first_decreases", []):
            say(f"  {e}")
    else:
        say("reader          (not reached)")
    pre = int(facts.get("poll_failures", 0))
    if pre:
        say(f"  (also {pre} failed count polls by the driver before the burst: see poll.err)")

    # Stop and checks: each only when the run got that far.
    say("")
    if "exit_status" in facts:
        rc = facts["exit_status"]
        say(f"stop            SIGTERM -> exit status {rc} after {facts.get('stop_secs', '?')} s "
            f"{check(rc == '0', 'exit status after SIGTERM is not 0')}")
        last = [l for l in err_text.splitlines() if "live:" in l]
        if last:
            say(f"  stderr        {last[-1]}")
    if "final_rows" in facts:
        rows = facts["final_rows"]
        say(f"rows            {rows} in sse_lines, expected {target} "
            f"{check(rows == str(target), 'row count != 2N')}; bad_lines {facts.get('final_bad', '?')}")
        say(f"bookkeeping     ingest_sources offset {facts.get('source_offset', '?')}, file size "
            f"{facts.get('followed_bytes', '?')} "
            f"{check(facts.get('source_offset') == facts.get('followed_bytes'), 'offset != file size')}")
    if "oracle_status" in facts:
        orc = facts["oracle_status"]
        say(f"oracle          scripts/oracle_check.py followed.jsonl live.db"
            f"{facts.get('oracle_args', '')}: exit {orc} "
            f"{check(orc == '0', 'oracle_check failed')}")
        opath = os.path.join(d, "oracle.txt")
        if os.path.exists(opath):
            with open(opath) as f:
                for line in f:
                    say(f"  {line.rstrip()}")
    if "integrity" in facts:
        ic = facts["integrity"]
        say(f"integrity       PRAGMA integrity_check: {ic} {check(ic == 'ok', 'integrity_check')}")
    if facts.get("error"):
        check(False, facts["error"])
        say(f"error           {facts['error']}")
        tail = err_text.splitlines()[-10:]
        if tail:
            say("  ingestor stderr (last lines):")
            for l in tail:
                say(f"    {l[:300]}")
    say("")
    if fails:
        say("RESULT: FAIL (" + "; ".join(fails) + ")")
    else:
        say("RESULT: PASS")
    text = "\n".join(out) + "\n"
    with open(os.path.join(d, "report.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
