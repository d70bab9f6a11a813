#!/usr/bin/env bash
# scripts/rotation.sh: `ingestor --follow` under a writer that keeps rotating its file.
#
# A writer (scripts/rotation/writer.py) appends generated lines at a steady rate, reopening
# the file for every chunk as per-event loggers do, while a rotator renames, deletes, or
# copy-truncates the file every few seconds (logrotate's three styles; copytruncate runs
# without pausing the writer). ingestor is started first, before the file exists, and
# follows it throughout. At the end scripts/rotation/report.py matches every row to the line
# it came from and prints: rotations by kind, lines written, rows, duplicates, rows out of
# order, and missing lines split by cause. Renames and deletes must lose nothing; a
# copy-truncate loses what was appended between the copy and the truncation (in neither
# file), plus anything the follower had not read yet when the file was cut: measured here,
# not hidden. Exit 1 on duplicates, disorder, or a loss no copy-truncate explains.
set -euo pipefail
export LC_ALL=C
prog=rotation
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/live/common.sh
. "$root/scripts/live/common.sh"

usage() {
    cat <<'USAGE'
Usage: scripts/rotation.sh [--lines N] [--rate R] [--every S] [--kinds K] [--copy-gap-ms MS]
                           [--dir DIR] [--bin-dir DIR]

  --lines N      lines to write [300000]
  --rate R       lines per second [5000]
  --every S      seconds between rotations [2]
  --kinds K      comma-separated cycle of rename, copytruncate, delete
                 [rename,copytruncate,delete]
  --copy-gap-ms MS  pause between a copytruncate's copy and its truncation [0]
  --dir DIR      work directory [target/rotation]
  --bin-dir DIR  take ingestor and sse-gen from DIR instead of `cargo build --release`
USAGE
}

lines=300000 rate=5000 every=2 kinds=rename,copytruncate,delete gap=0 dir=target/rotation bin_dir=
while (($#)); do
    case "$1" in
    --lines | --rate | --every | --kinds | --copy-gap-ms | --dir | --bin-dir)
        need_value "$@"
        case "$1" in
        --lines) lines=$2 ;; --rate) rate=$2 ;; --every) every=$2 ;;
        --kinds) kinds=$2 ;; --copy-gap-ms) gap=$2 ;; --dir) dir=$2 ;; --bin-dir) bin_dir=$2 ;;
        esac
        shift 2
        ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
    esac
done

cd "$root"
rm -rf "$dir"
mkdir -p "$dir/logs"
bin=$dir/bin
copy_binaries
src=$dir/lines.jsonl
"$bin/sse-gen" --seed 7 --lines "$lines" --product both --max-line-mb 0 --adversarial 0 >"$src" 2>/dev/null
dst=$dir/logs/sse_lines.jsonl
db=$dir/out.db
say "ingestor --follow on $dst (not there yet), $lines lines at $rate/s, rotating every $every s ($kinds)"
"$bin/ingestor" --input "$dst" --db "$db" --follow 2>"$dir/ingestor.err" &
ing=$!
trap 'stop_pid $ing' EXIT
python3 scripts/rotation/writer.py --src "$src" --dst "$dst" --rate "$rate" --every "$every" \
    --kinds "$kinds" --copy-gap-ms "$gap" --out "$dir"
say "writer done; letting the follower catch up"
prev=-1
for _ in $(seq 1 120); do
    sleep 1
    n=$(sqlite3 "file:$db?mode=ro" 'SELECT count(*) FROM sse_lines' 2>/dev/null || echo -1)
    [[ $n == "$prev" ]] && break
    prev=$n
done
stop_pid "$ing"
trap - EXIT
say "integrity: $(sqlite3 "$db" 'PRAGMA integrity_check')"
say "sources: $(sqlite3 "$db" 'SELECT count(*) FROM ingest_sources')"
grep -c 'was rotated' "$dir/ingestor.err" | sed 's/^/rotations logged: /'
grep -c 'was truncated\|was rewritten' "$dir/ingestor.err" | sed 's/^/cuts logged: /'
python3 scripts/rotation/report.py "$dir" "$db"
