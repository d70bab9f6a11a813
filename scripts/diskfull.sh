#!/usr/bin/env bash
# scripts/diskfull.sh: a real "disk full" (ENOSPC) for `ingestor`, on a small tmpfs.
#
# Needs root (to mount the tmpfs); as another user it prints SKIP and exits 0. The input files
# stay outside the tmpfs, the databases go on it, and a filler file takes the space away:
#
#   A. backfill into a NEW database that does not fit: exit 1 with one clear line, nothing at
#      the database's path; delete the filler, re-run: every line once (count + oracle).
#   B. backfill ADDING to an existing database, the disk filled between the runs: exit 1 with
#      one line, integrity ok, committed rows == non-blank lines before the committed offset;
#      delete the filler, re-run: every line once (count + oracle).
#   C. live (--follow): once live, fill the disk while lines are appended; the follower must
#      log a `retrying` line and stay up; delete the filler: every line arrives once
#      (count + oracle), SIGTERM ends it with status 0. A follower that exits instead is a
#      FAIL; the script then makes room and checks that a plain re-run still completes the
#      database exactly once.
#
# Each step prints what happened; the last line is PASS or FAIL (exit status 1 on FAIL, 2 when
# the check could not run). The tmpfs is unmounted on exit, whatever happens.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/linux_only.sh"
export LC_ALL=C

prog=diskfull
usage() {
    cat <<'USAGE'
Usage: scripts/diskfull.sh [--size-mb N] [--dir DIR] [--bin-dir DIR]

  --size-mb N    size of the tmpfs in MiB (>= 32); inputs are sized from it [64]
  --dir DIR      work directory for inputs, binaries and logs [target/diskfull]
  --bin-dir DIR  take ingestor and sse-gen from DIR instead of `cargo build --release`
  -h, --help     this text
USAGE
}
usage_error() {
    printf '%s: %s (see --help)\n' "$prog" "$*" >&2
    exit 2
}
say() { printf '%s: [%s] %s\n' "$prog" "$(date +%T)" "$*"; }
die() {
    say "error: $*" >&2
    exit 2
}

size_mb=64
dir=target/diskfull
bin_dir=
while (($#)); do
    case "$1" in
    --size-mb | --dir | --bin-dir)
        (($# >= 2)) || usage_error "$1 needs a value"
        case "$1" in
        --size-mb) size_mb=$2 ;;
        --dir) dir=$2 ;;
        --bin-dir) bin_dir=$2 ;;
        esac
        shift 2
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) usage_error "unknown argument: $1" ;;
    esac
done
if ! [[ $size_mb =~ ^[0-9]+$ ]] || ((size_mb < 32)); then
    usage_error "--size-mb must be an integer >= 32"
fi

if ((EUID != 0)); then
    say "SKIP: mounting a tmpfs needs root (running as uid $EUID); tests/faults.rs covers the" \
        "same failures with RLIMIT_FSIZE"
    exit 0
fi
command -v python3 >/dev/null || die "python3 not found"

root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
bin=$dir/bin
mkdir -p "$bin"
if [[ -z $bin_dir ]]; then
    say "cargo build --release"
    (cd "$root" && cargo build --release --quiet --workspace --bins)
    bin_dir=$root/target/release
fi
for b in ingestor sse-gen; do
    [[ -x $bin_dir/$b ]] || die "$bin_dir/$b not found"
    # A copy: a rebuild by someone else during the run cannot change what is tested.
    cp -f "$bin_dir/$b" "$bin/$b.tmp" && mv -f "$bin/$b.tmp" "$bin/$b"
done
ingestor=$bin/ingestor
oracle=$root/scripts/oracle_check.py

mnt=$(mktemp -d /tmp/ingestor-diskfull.XXXXXX)
mounted=
follower=
cleanup() {
    if [[ -n $follower ]] && kill -0 "$follower" 2>/dev/null; then
        kill -KILL "$follower" 2>/dev/null || true
        wait "$follower" 2>/dev/null || true
    fi
    if [[ -n $mounted ]]; then
        umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    fi
    rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mount -t tmpfs -o "size=${size_mb}m,mode=0700" ingestor-diskfull "$mnt" ||
    die "cannot mount a tmpfs on $mnt (no CAP_SYS_ADMIN in this container?)"
mounted=1
say "tmpfs of $size_mb MiB mounted on $mnt; work directory $dir"

failures=0
fail() {
    say "FAIL: $*"
    failures=$((failures + 1))
}
ok() { say "ok: $*"; }

free_bytes() { df --output=avail -B1 "$mnt" | tail -n 1 | tr -d ' '; }
free_mb() { awk -v b="$(free_bytes)" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# Takes all but $1 bytes of the tmpfs's free space with $mnt/filler.
fill_leaving() {
    local leave=$1 take
    take=$(($(free_bytes) - leave))
    ((take > 0)) || return 0
    fallocate -l "$take" "$mnt/filler" 2>/dev/null ||
        dd if=/dev/zero of="$mnt/filler" bs=1M count=$((take >> 20)) status=none 2>/dev/null || true
    say "filler file: $(du -m "$mnt/filler" | cut -f1) MiB; $(free_mb) MiB left on the tmpfs"
}

# Fills the tmpfs to the last byte.
fill_up() {
    dd if=/dev/zero of="$mnt/filler" bs=64K status=none 2>/dev/null || true
    say "filler file: $(du -m "$mnt/filler" | cut -f1) MiB; $(free_mb) MiB left on the tmpfs"
}

free_filler() {
    rm -f "$mnt/filler"
    say "filler deleted: $(free_mb) MiB free"
}

# inspect DB INPUT [all]: one line `integrity=... sources=N offset=N rows=N bad=N want=N`, where
# want is the number of non-blank lines of INPUT before the committed offset (or in the whole
# file with `all`); each non-blank line must be exactly one row or bad line. Read-only; a hot
# journal is inspected on a copy, so the database stays as the failure left it.
inspect() {
    python3 - "$1" "$2" "${3:-}" <<'PY'
import os, shutil, sqlite3, sys, tempfile

db, src, whole = sys.argv[1], sys.argv[2], sys.argv[3] == "all"

def query(con):
    integ = "; ".join(r[0] for r in con.execute("PRAGMA integrity_check"))
    n, off = con.execute(
        "SELECT count(*), coalesce(max(offset), 0) FROM ingest_sources").fetchone()
    rows = con.execute("SELECT count(*) FROM sse_lines").fetchone()[0]
    bad = con.execute("SELECT count(*) FROM bad_lines").fetchone()[0]
    return integ, n, off, rows, bad

try:
    res = query(sqlite3.connect(f"file:{db}?mode=ro", uri=True))
except sqlite3.OperationalError:
    tmp = tempfile.mkdtemp()
    for s in ("", "-journal", "-wal"):
        if os.path.exists(db + s):
            shutil.copy(db + s, os.path.join(tmp, "copy.db" + s))
    res = query(sqlite3.connect(os.path.join(tmp, "copy.db")))
    shutil.rmtree(tmp)
integ, n, off, rows, bad = res
with open(src, "rb") as f:
    data = f.read() if whole else f.read(off)
lines = data.split(b"\n")
if not lines[-1]:
    lines.pop()  # after the last newline: nothing
want = sum(1 for line in lines if line.strip(b" \t\r"))
print(f"integrity={integ} sources={n} offset={off} rows={rows} bad={bad} want={want}")
PY
}
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
# stored INSPECT_LINE: rows + bad lines, or -1 when the line is not an inspect result.
stored() {
    local r b
    r=$(field rows "$1")
    b=$(field bad "$1")
    [[ -n $r && -n $b ]] && echo $((r + b)) || echo -1
}

# check_prefix DB INPUT WHAT: sound, and the committed rows are the lines before the offset.
check_prefix() {
    local s
    s=$(inspect "$1" "$2")
    say "$3: $s"
    [[ $(field integrity "$s") == ok ]] || fail "$3: integrity_check: $(field integrity "$s")"
    (($(stored "$s") == $(field want "$s"))) ||
        fail "$3: rows + bad lines != the non-blank lines before the committed offset"
    last_offset=$(field offset "$s")
}

# check_all DB INPUT WHAT: every line once (count), oracle_check.py, integrity.
check_all() {
    local s
    s=$(inspect "$1" "$2" all)
    say "$3: $s"
    [[ $(field integrity "$s") == ok ]] || fail "$3: integrity_check: $(field integrity "$s")"
    (($(stored "$s") == $(field want "$s"))) ||
        fail "$3: rows + bad lines != the input's non-blank lines"
    if python3 "$oracle" --quiet "$2" "$1" >"$dir/oracle.txt" 2>&1; then
        ok "$3: oracle_check.py: $(tail -n 1 "$dir/oracle.txt") ($(grep -m1 'database' "$dir/oracle.txt" | sed 's/^oracle: //'))"
    else
        fail "$3: oracle_check.py:"
        sed 's/^/    /' "$dir/oracle.txt"
    fi
}

# expect_error RC STDERR_FILE WHAT: exit 1 and exactly one `TIMESTAMP ERROR ...` line.
expect_error() {
    local rc=$1 err=$2 what=$3 n
    n=$(wc -l <"$err")
    say "$what: exit status $rc; stderr ($n line(s)):"
    sed 's/^/    /' "$err"
    ((rc == 1)) || fail "$what: exit status $rc, expected 1"
    if ((n != 1)) || ! grep -qE '^[0-9T:-]+Z ERROR ' "$err"; then
        fail "$what: expected one 'TIMESTAMP ERROR ...' line"
    fi
    ! grep -q 'panicked' "$err" || fail "$what: panic"
}

run_ingestor() { # stderr-file args...: runs, returns the exit status in $rc
    local err=$1
    shift
    rc=0
    "$ingestor" "$@" 2>"$err" || rc=$?
}

input_mb=$((size_mb / 2))
say "generating inputs (${input_mb} MiB for the backfill, $((size_mb / 4)) MiB for live)"
"$bin/sse-gen" --seed 7 --bytes "${input_mb}M" --max-line-mb 1 --adversarial 0.01 \
    --out "$dir/hist.jsonl" 2>/dev/null
"$bin/sse-gen" --seed 8 --bytes "$((size_mb / 4))M" --max-line-mb 1 --adversarial 0.01 \
    --out "$dir/live-all.jsonl" 2>/dev/null

# --- A. new database ------------------------------------------------------------------------
say "A. backfill into a new database on a nearly full disk"
fill_leaving $((size_mb / 4 << 20))
run_ingestor "$dir/a1.err" --input "$dir/hist.jsonl" --db "$mnt/hist.db"
expect_error "$rc" "$dir/a1.err" "A. full disk"
if [[ -e $mnt/hist.db ]]; then
    fail "A. $mnt/hist.db exists after the failure"
else
    ok "A. nothing at $mnt/hist.db"
fi
if [[ -e $mnt/hist.db.building ]]; then
    say "A. note: $mnt/hist.db.building left behind ($(du -m "$mnt/hist.db.building" | cut -f1)" \
        "MiB of the full disk; the next run removes it)"
fi
free_filler
run_ingestor "$dir/a2.err" --input "$dir/hist.jsonl" --db "$mnt/hist.db"
say "A. re-run: exit status $rc: $(cat "$dir/a2.err")"
((rc == 0)) || fail "A. re-run failed"
[[ ! -e $mnt/hist.db.building ]] || fail "A. hist.db.building still there after the re-run"
check_all "$mnt/hist.db" "$dir/hist.jsonl" "A. after the re-run"
rm -f "$mnt"/hist.db*

# --- B. existing database ---------------------------------------------------------------------
say "B. backfill adding to an existing database, disk filled between the runs"
half=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(d.index(b"\n", len(d)//2)+1)' "$dir/hist.jsonl")
head -c "$half" "$dir/hist.jsonl" >"$dir/grow.jsonl"
run_ingestor "$dir/b0.err" --input "$dir/grow.jsonl" --db "$mnt/grow.db"
((rc == 0)) || fail "B. first run (half the file) failed: $(cat "$dir/b0.err")"
say "B. first run: $(cat "$dir/b0.err")"
tail -c +"$((half + 1))" "$dir/hist.jsonl" >>"$dir/grow.jsonl"
# Room for a batch or two of the appended half (about 21 MB more at 64 MiB): some commits
# succeed, a later one finds the disk full.
fill_leaving $((size_mb / 6 << 20))
run_ingestor "$dir/b1.err" --input "$dir/grow.jsonl" --db "$mnt/grow.db" --batch-rows 2000
expect_error "$rc" "$dir/b1.err" "B. full disk"
last_offset=0
check_prefix "$mnt/grow.db" "$dir/grow.jsonl" "B. after the failure"
say "B. committed offset $last_offset (first run ended at $half, file ends at $(stat -c %s "$dir/grow.jsonl"))"
free_filler
run_ingestor "$dir/b2.err" --input "$dir/grow.jsonl" --db "$mnt/grow.db" --batch-rows 2000
say "B. re-run: exit status $rc: $(cat "$dir/b2.err")"
((rc == 0)) || fail "B. re-run failed"
check_all "$mnt/grow.db" "$dir/grow.jsonl" "B. after the re-run"
rm -f "$mnt"/grow.db*

# --- C. live ------------------------------------------------------------------------------------
say "C. live: the disk fills up while lines are appended"
live_in=$dir/live.jsonl
first=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(d.index(b"\n", len(d)//8)+1)' "$dir/live-all.jsonl")
head -c "$first" "$dir/live-all.jsonl" >"$live_in"
rm -rf "$dir/chunks"
mkdir -p "$dir/chunks"
tail -c +"$((first + 1))" "$dir/live-all.jsonl" | split -l 300 -a 4 - "$dir/chunks/c."
chunks=("$dir"/chunks/c.*)
say "C. $(stat -c %s "$live_in") bytes to backfill, then ${#chunks[@]} chunks of 300 lines to append"
"$ingestor" --input "$live_in" --db "$mnt/live.db" --follow 2>"$dir/c.err" &
follower=$!
waited=0
until grep -q 'live from offset' "$dir/c.err"; do
    kill -0 "$follower" 2>/dev/null || break
    ((waited < 600)) || break
    sleep 0.1
    waited=$((waited + 1))
done
sleep 0.5
if ! kill -0 "$follower" 2>/dev/null || ! grep -q 'live from offset' "$dir/c.err"; then
    fail "C. the follower did not go live:"
    sed 's/^/    /' "$dir/c.err"
else
    say "C. live (pid $follower): $(grep -m1 'live from offset' "$dir/c.err" | sed 's/.*; live/live/')"
    fill_up
    i=0
    retry_seen=
    # Append until the follower reports the write failure (every chunk at most).
    while ((i < ${#chunks[@]})); do
        cat "${chunks[i]}" >>"$live_in"
        i=$((i + 1))
        sleep 0.1
        if grep -q 'retrying' "$dir/c.err"; then
            retry_seen=1
            break
        fi
        kill -0 "$follower" 2>/dev/null || break
    done
    for ((w = 0; w < 100 && !retry_seen; w++)); do
        grep -q 'retrying' "$dir/c.err" && retry_seen=1 && break
        kill -0 "$follower" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $retry_seen ]]; then
        if kill -0 "$follower" 2>/dev/null; then
            fail "C. no 'retrying' line after $i chunks on a full disk; stderr:"
        else
            rc=0
            wait "$follower" || rc=$?
            follower=
            fail "C. the follower exited (status $rc) instead of retrying; stderr:"
        fi
        sed 's/^/    /' "$dir/c.err"
        if [[ -z $follower ]]; then
            # Without the retry, what a user would do: make room and run again.
            check_prefix "$mnt/live.db" "$live_in" "C. after the exit"
            free_filler
            while ((i < ${#chunks[@]})); do
                cat "${chunks[i]}" >>"$live_in"
                i=$((i + 1))
            done
            run_ingestor "$dir/c2.err" --input "$live_in" --db "$mnt/live.db"
            say "C. one-shot re-run after making room: exit status $rc: $(cat "$dir/c2.err")"
            ((rc == 0)) || fail "C. the re-run failed"
        fi
    else
        say "C. after $i chunk(s): $(grep -m1 'retrying' "$dir/c.err")"
        sleep 1
        if kill -0 "$follower" 2>/dev/null; then
            ok "C. the follower is still running on the full disk"
        else
            fail "C. the follower ended after its retry line"
        fi
        check_prefix "$mnt/live.db" "$live_in" "C. on the full disk"
        free_filler
        while ((i < ${#chunks[@]})); do
            cat "${chunks[i]}" >>"$live_in"
            i=$((i + 1))
            sleep 0.02
        done
        say "C. all ${#chunks[@]} chunks appended; waiting for every line"
        want=$(field want "$(inspect "$mnt/live.db" "$live_in" all)")
        for ((w = 0; w < 1200; w++)); do
            s=$(inspect "$mnt/live.db" "$live_in" all 2>/dev/null) || s=
            got=$(stored "$s")
            ((got >= want)) && break
            kill -0 "$follower" 2>/dev/null || break
            sleep 0.1
        done
        say "C. $got of $want lines in the database"
        ((got == want)) || fail "C. $got lines in the database, $want in the input"
    fi
    if [[ -n $follower ]]; then
        kill -TERM "$follower" 2>/dev/null || true
        rc=0
        wait "$follower" || rc=$?
        follower=
        say "C. SIGTERM: exit status $rc"
        ((rc == 0)) || fail "C. the follower's exit status after SIGTERM is $rc"
    fi
    say "C. follower's stderr:"
    sed 's/^/    /' "$dir/c.err"
    ! grep -q 'panicked' "$dir/c.err" || fail "C. panic"
    n_retry=$(grep -c 'retrying' "$dir/c.err" || true)
    ((n_retry <= 1)) || fail "C. the write failure was logged $n_retry times (expected once)"
    check_all "$mnt/live.db" "$live_in" "C. at the end"
fi

if ((failures)); then
    say "FAIL ($failures problem(s))"
    exit 1
fi
say "PASS"
