#!/usr/bin/env python3
"""scripts/oracle_check.py: an independent check of an `ingestor` database against its input.

Usage: scripts/oracle_check.py INPUT.jsonl DB [--sample-every K] [--max-report N]
                               [--ignore-unterminated-last-line] [--quiet]

It re-derives, with nothing but Python's own json module (never the code under test), what
shared/spec/schema.md says the database must hold for INPUT, and compares it with DB:

  * framing as in the contract: lines split on b'\\n', one trailing b'\\r' stripped, a UTF-8
    BOM skipped at byte 0 only, lines that are empty or only space/tab/\\r skipped (counted as
    blank), a final line without newline counted as a line (unless
    --ignore-unterminated-last-line, for a file that is still being written);
  * a line that decodes as UTF-8 and that json.loads parses as an object (NaN/Infinity
    refused, raw control characters in strings refused, top-level strings that cannot be
    stored as UTF-8 such as lone surrogates refused) is an expected row of `sse_lines`; any
    other line is an expected row of `bad_lines` (src_offset and raw bytes are checked);
  * rows are compared in order: expected row i against the i-th `sse_lines` row by id, column
    by column, byte for byte for decoded strings (event, t, flow_id, round, sid, line,
    metadata when a string, meta_ver/meta_cwd/meta_turn_id when strings), as integers for
    data_count/meta_pid when they are ints or ASCII digit strings; values the contract stores
    as raw JSON text (a non-string `t`, an object `metadata`, every `extra` member) are parsed
    back with json.loads and compared as JSON values (type-strict: 1, 1.0 and true differ);
    `extra` is checked for its key set, key order (when no key repeats) and values;
  * cases the contract leaves open are counted as "unchecked values" rather than guessed:
    a numeric-looking data_count/meta_pid that is not a plain digit string or an int in
    the i64 range, a meta_* key that is null inside metadata while present at the top level,
    meta values holding lone surrogates, lines nested too deeply for Python's parser.

Limits (by design, stated so that a mismatch can be judged): the contract accepts a nested
object or array value that is merely balanced, while json.loads insists on valid JSON inside
it too; such a line (only produced by `sse-gen --adversarial`) is reported as a mismatch. With
--sample-every K > 1, only every K-th row is compared and the other lines are classified
by a cheap test (a line that begins with '{' and ends with '}' is taken as a row), which is
right for generator output without --adversarial; use K = 1 for adversarial input.

Memory stays bounded by the longest line: the input is read line by line and the database is
streamed with cursors ordered by id, nothing is collected.

Exit status: 0 all good, 1 any mismatch or count difference, 2 usage or I/O error.
"""

import argparse
import json
import os
import sqlite3
import sys
import time

BOM = b"\xef\xbb\xbf"
# Keys that have their own column; every other top-level key goes to `extra`.
KNOWN = frozenset(("event", "t", "flow_id", "round", "data_count", "sid", "metadata", "line"))
COLUMNS = (
    "event", "t", "flow_id", "round", "data_count", "sid", "meta_ver", "meta_pid",
    "meta_cwd", "meta_turn_id", "metadata", "extra", "line",
)
# SQLite's default SQLITE_MAX_LENGTH: a longer `line` value goes to bad_lines, raw cut to 1 MiB.
SQLITE_MAX_LENGTH = 1_000_000_000
MIB = 1 << 20
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1

# Expectation kinds.
NULL, TEXT, INT, JSON, EXTRA, SKIP = range(6)
E_NULL = (NULL, None)
E_SKIP = (SKIP, None)


class Obj(dict):
    """A parsed JSON object that also remembers its members in input order (duplicates too)."""

    __slots__ = ("pairs",)


def _hook(pairs):
    o = Obj(pairs)
    o.pairs = pairs
    return o


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def loads(text):
    return json.loads(text, object_pairs_hook=_hook, parse_constant=_no_constant)


def utf8_ok(s):
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def jeq(a, b):
    """JSON value equality, type-strict (true != 1 != 1.0), objects order-insensitive."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        return all(jeq(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(jeq(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    return a == b


# ------------------------------------------------------------------------------------------
# Expected values
# ------------------------------------------------------------------------------------------


def text_value(val):
    """A column holding a decoded string, or the raw JSON text of a non-string value."""
    if val is None:
        return E_NULL
    if isinstance(val, str):
        b = val.encode("utf-8", "surrogatepass")
        return (TEXT, b) if utf8_ok(val) else E_SKIP
    return (JSON, val)


def int_value(val):
    """data_count / meta_pid: an int, or a digit string, stored as an integer."""
    if val is None:
        return E_NULL
    if isinstance(val, bool):
        return E_SKIP
    if isinstance(val, int):
        return (INT, val) if I64_MIN <= val <= I64_MAX else E_SKIP
    if isinstance(val, str) and val and val.isascii() and val.isdigit():
        n = int(val)
        return (INT, n) if n <= I64_MAX else E_SKIP
    return E_SKIP


def parse_line(body):
    """Returns ('row', obj), ('bad', why) or ('deep', None) for one framed line."""
    try:
        s = body.decode("utf-8")
    except UnicodeDecodeError as e:
        return "bad", f"invalid UTF-8 at byte {e.start}"
    try:
        v = loads(s)
    except RecursionError:
        return "deep", None
    except ValueError as e:
        return "bad", str(e)
    if not isinstance(v, dict):
        return "bad", f"top level is {type(v).__name__}, not an object"
    for k, val in v.pairs:
        if not utf8_ok(k) or (isinstance(val, str) and not utf8_ok(val)):
            return "bad", "top-level string that is not valid UTF-8 (lone surrogate)"
    line = v.get("line")
    if isinstance(line, str) and len(line) > SQLITE_MAX_LENGTH // 4:
        # Only an exact byte length tells; computed here for the rare big line only.
        if len(line.encode("utf-8")) > SQLITE_MAX_LENGTH:
            return "bad", "line value larger than SQLite can hold"
    return "row", v


def expected_row(v):
    """The expectation tuple for the 13 compared columns of one row."""
    md = v.get("metadata")
    inner = None
    if isinstance(md, str):
        try:
            x = loads(md)
            inner = x if isinstance(x, dict) else None
        except (ValueError, RecursionError):
            inner = None
    elif isinstance(md, dict):
        inner = md

    def meta(key, conv):
        top = v.get(key)
        if inner is not None and key in inner:
            val = inner[key]
            if val is None:
                # null inside metadata: NULL, unless a top-level value could be the fallback.
                return E_NULL if top is None else E_SKIP
            if isinstance(val, str) and not utf8_ok(val):
                return E_SKIP
            return conv(val)
        return conv(top)

    extra_pairs = [(k, val) for k, val in v.pairs if k not in KNOWN]
    return (
        text_value(v.get("event")),
        text_value(v.get("t")),
        text_value(v.get("flow_id")),
        text_value(v.get("round")),
        int_value(v.get("data_count")),
        text_value(v.get("sid")),
        meta("ver", text_value),
        meta("pid", int_value),
        meta("cwd", text_value),
        meta("turn_id", text_value),
        text_value(md),
        (EXTRA, extra_pairs) if extra_pairs else E_NULL,
        text_value(v.get("line")),
    )


def check(exp, actual):
    """Whether a database value meets an expectation."""
    kind, want = exp
    if kind == SKIP:
        return True
    if kind == NULL:
        return actual is None
    if kind == TEXT:
        return isinstance(actual, bytes) and actual == want
    if kind == INT:
        return type(actual) is int and actual == want
    if actual is None:
        return False
    if isinstance(actual, bytes):
        try:
            got = loads(actual.decode("utf-8"))
        except (ValueError, RecursionError):
            return False
    else:
        got = actual
    if kind == JSON:
        return jeq(want, got)
    # EXTRA: an object with the other top-level members.
    if not isinstance(got, Obj):
        return False
    keys = [k for k, _ in want]
    if len(set(keys)) == len(keys):
        # No repeated key: same keys, same order, same values.
        if [k for k, _ in got.pairs] != keys:
            return False
        return all(jeq(val, got[k]) for k, val in want)
    return jeq(dict(want), got)


def show(x, limit=100):
    """A short, printable rendering of an expected or actual value."""
    if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], int) and x[0] in range(6):
        kind, val = x
        if kind == NULL:
            return "NULL"
        if kind == SKIP:
            return "(unchecked)"
        if kind == EXTRA:
            x = "json members " + json.dumps(dict(val), ensure_ascii=False)
        elif kind == JSON:
            x = "json " + json.dumps(val, ensure_ascii=False)
        else:
            x = val
    if x is None:
        return "NULL"
    if isinstance(x, bytes):
        r = repr(x[:limit])
        return r + (f"... ({len(x)} bytes)" if len(x) > limit else "")
    r = repr(x)
    return r[:limit] + (f"... ({len(r)} chars)" if len(r) > limit else "")


# ------------------------------------------------------------------------------------------
# Input framing
# ------------------------------------------------------------------------------------------


def framed_lines(path, ignore_unterminated):
    """Yields (line_no, offset, body) for each non-blank line; counts blanks in .blank."""
    framed_lines.blank = 0
    framed_lines.unterminated_ignored = False
    with open(path, "rb", buffering=1 << 20) as f:
        offset = 0
        line_no = 0
        first = True
        for raw in f:
            line_no += 1
            start = offset
            offset += len(raw)
            terminated = raw.endswith(b"\n")
            body = raw[:-1] if terminated else raw
            if first:
                first = False
                if body.startswith(BOM):
                    body = body[3:]
                    start += 3
            if not terminated and ignore_unterminated:
                framed_lines.unterminated_ignored = True
                break
            if body.endswith(b"\r"):
                body = body[:-1]
            if not body.strip(b" \t\r"):
                framed_lines.blank += 1
                continue
            yield line_no, start, body


def looks_like_object(body):
    b = body.strip(b" \t\r\n")
    return b.startswith(b"{") and b.endswith(b"}")


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(
        description="Independent check of an ingestor database against its JSONL input "
        "(Python json module only).",
    )
    ap.add_argument("input", help="the JSONL file that was ingested")
    ap.add_argument("db", help="the SQLite database written by ingestor")
    ap.add_argument("--sample-every", type=int, default=1, metavar="K",
                    help="compare every K-th row fully, only count the others [1]")
    ap.add_argument("--max-report", type=int, default=5, metavar="N",
                    help="mismatches printed in detail [5]")
    ap.add_argument("--ignore-unterminated-last-line", action="store_true",
                    help="a last line without newline is not expected (a file being followed)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args()
    if args.sample_every < 1:
        ap.error("--sample-every must be >= 1")
    for p in (args.input, args.db):
        if not os.path.isfile(p):
            print(f"oracle: error: {p}: no such file", file=sys.stderr)
            return 2

    k = args.sample_every
    started = time.time()
    last_progress = started
    input_size = os.path.getsize(args.input)

    con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    con.text_factory = bytes
    cols = ", ".join(COLUMNS)
    if k == 1:
        rows = con.execute(f"SELECT id, {cols} FROM sse_lines ORDER BY id")
    else:
        rows = con.execute("SELECT id FROM sse_lines ORDER BY id")
        lookup = con.cursor()
    bads = con.cursor().execute("SELECT id, src_offset, raw FROM bad_lines ORDER BY id")

    exp_rows = exp_bad = compared = counted_only = deep = unchecked = 0
    db_rows = db_bad = 0
    mismatches = 0
    mismatched_lines = 0
    last_mismatch_line = None
    shown = []

    def mismatch(line_no, offset, what, exp, got):
        nonlocal mismatches, mismatched_lines, last_mismatch_line
        mismatches += 1
        if line_no != last_mismatch_line:
            last_mismatch_line = line_no
            mismatched_lines += 1
        if len(shown) < args.max_report:
            shown.append(f"  line {line_no} (byte {offset}): {what}: expected {exp}, got {got}")

    rows_done = bads_done = False
    for line_no, offset, body in framed_lines(args.input, args.ignore_unterminated_last_line):
        sampled = exp_rows % k == 0
        if not sampled and looks_like_object(body):
            kind, v = "row", None
        else:
            kind, v = parse_line(body)
        if kind == "bad":
            exp_bad += 1
            b = None if bads_done else bads.fetchone()
            if b is None:
                bads_done = True
                mismatch(line_no, offset, "bad_lines", f"a bad line ({v})", "no more bad_lines rows")
                continue
            db_bad += 1
            _, src_offset, raw = b
            want_raw = body if len(body) <= SQLITE_MAX_LENGTH else body[:MIB]
            if src_offset != offset:
                mismatch(line_no, offset, "bad_lines.src_offset", offset, src_offset)
            if raw != want_raw:
                mismatch(line_no, offset, "bad_lines.raw", show(want_raw), show(raw))
            continue
        # An expected row of sse_lines.
        exp_rows += 1
        r = None if rows_done else rows.fetchone()
        if r is None:
            rows_done = True
            mismatch(line_no, offset, "sse_lines", "a row", "no more sse_lines rows")
            continue
        db_rows += 1
        if kind == "deep":
            deep += 1
            continue
        if not sampled:
            counted_only += 1
        else:
            if k != 1:
                r = lookup.execute(f"SELECT id, {cols} FROM sse_lines WHERE id = ?",
                                   (r[0],)).fetchone()
            exp = expected_row(v)
            compared += 1
            for name, e, got in zip(COLUMNS, exp, r[1:]):
                if e[0] == SKIP:
                    unchecked += 1
                elif not check(e, got):
                    mismatch(line_no, offset, f"sse_lines.{name} (id {r[0]})", show(e), show(got))
        if not args.quiet and time.time() - last_progress >= 15:
            last_progress = time.time()
            print(f"oracle: {line_no} lines read, {offset / 1e6:.0f}/{input_size / 1e6:.0f} MB, "
                  f"{compared} rows compared, {mismatches} mismatches, "
                  f"{last_progress - started:.0f} s", file=sys.stderr, flush=True)

    # Rows the database has beyond the input.
    extra_rows = 0
    if not rows_done:
        for _ in rows:
            extra_rows += 1
    extra_bad = 0
    if not bads_done:
        for _ in bads:
            extra_bad += 1
    db_rows += extra_rows
    db_bad += extra_bad
    if extra_rows:
        mismatches += 1
        shown.append(f"  sse_lines has {extra_rows} row(s) beyond the input")
    if extra_bad:
        mismatches += 1
        shown.append(f"  bad_lines has {extra_bad} row(s) beyond the input")

    sources = con.execute("SELECT path, offset FROM ingest_sources ORDER BY id").fetchall()
    con.close()

    elapsed = time.time() - started
    blank = framed_lines.blank
    print(f"oracle: input {args.input}: {input_size} bytes; "
          f"expected {exp_rows} rows, {exp_bad} bad lines, {blank} blank")
    print(f"oracle: database {args.db}: {db_rows} rows in sse_lines, {db_bad} in bad_lines")
    for path, off in sources:
        p = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
        print(f"oracle: ingest_sources: {p} offset {off}")
    note = f", every {k}th row (others counted only: {counted_only})" if k > 1 else ""
    print(f"oracle: rows compared fully: {compared}{note}; unchecked values (contract "
          f"leaves them open): {unchecked}; lines too deep for json: {deep}")
    if framed_lines.unterminated_ignored:
        print("oracle: an unterminated last line was ignored (--ignore-unterminated-last-line)")
    print(f"oracle: mismatches: {mismatches} (in {mismatched_lines} input lines)  "
          f"({elapsed:.1f} s)")
    for s in shown:
        print(s)
    if mismatches:
        print("oracle: FAIL")
        return 1
    print("oracle: OK")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, sqlite3.Error) as e:
        print(f"oracle: error: {e}", file=sys.stderr)
        sys.exit(2)
