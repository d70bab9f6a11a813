#!/usr/bin/env bash
# scripts/kill9.sh: crash-safety ("kill -9") campaign for `ingestor --follow`, at scale.
#
# A writer appends generated lines to the followed file DIR/logs/followed.jsonl (chunks cut at
# arbitrary byte positions) and, every ~N lines, completes its line and rotates the file: rename
# (`mv f f.N`, new f), delete + re-create (`rm f`, new f), copy-truncate (`cp f f.N; truncate -s
# 0 f`) or copy-truncate without waiting for the follower (it reads on in the copy), dealt from a
# seeded shuffled deck. Delete and the plain copy-truncate only while an ingestor runs and the
# database has all of the current file; a rename and the no-wait copy-truncate not before the
# database knows the current file.
# `ingestor --follow` is SIGKILLed at seeded random moments spread over the first backfill
# (DB.building), resumed backfills, the exec hand-over and live mode, and restarted each time.
# After every kill: `PRAGMA integrity_check` (sqlite3 shell, read-only) and committed rows == the
# non-blank lines written before the committed position (the latest ingest_sources row matched
# with the file it describes). At the end: one more run until the last file is in, SIGTERM, then
# rows vs non-blank lines, duplicates/missing from the multiset of `line` values, bad lines per
# file, and scripts/oracle_check.py against the concatenation of all files. Prints kills,
# restarts, rotations by kind, lines written, rows, duplicates, missing. An ingestor that ends
# on its own (before its SIGKILL, or the final run before its SIGTERM) is a failure. Exit status
# 1 on any failure.
#
# The campaign itself is scripts/kill9/campaign.py (python3 stdlib). The binaries are copied
# to DIR/bin first, so that rebuilds by others during the run cannot change what is tested.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/linux_only.sh"
export LC_ALL=C

usage() {
    cat <<'USAGE'
Usage: scripts/kill9.sh [--kills N] [--lines N] [--seed S] [--rotate-every N | --no-rotate]
                        [--dir DIR] [--bin-dir DIR]

  --kills N      kill points (>= 1) [200]
  --lines N      lines generated with sse-gen --max-line-mb 1; the followed file starts
                 with 40 % of them, the rest is appended during the campaign [300000]
  --seed S       seed of the data, of the kill plan and of the rotation plan [1]
  --rotate-every N
                 lines between two rotations of the followed file, on average (uniform in
                 N/2..3N/2; >= 2); the kinds: rename, delete + re-create, copy-truncate once
                 the follower has the whole file, copy-truncate at any moment [1500]
  --no-rotate    append only, one file (no rotation, no truncation)
  --dir DIR      work directory (report.txt, kills.tsv, files.tsv, stderr/, logs/, oracle.txt)
                 [target/kill9]
  --bin-dir DIR  take ingestor and sse-gen from DIR instead of `cargo build --release`
  -h, --help     this text
USAGE
}

usage_error() {
    printf 'kill9: %s (see --help)\n' "$*" >&2
    exit 2
}

kills=200
lines=300000
seed=1
rotate_every=1500
no_rotate=0
dir=target/kill9
bin_dir=
while (($#)); do
    case "$1" in
    --kills | --lines | --seed | --rotate-every | --dir | --bin-dir)
        (($# >= 2)) || usage_error "$1 needs a value"
        case "$1" in
        --kills) kills=$2 ;;
        --lines) lines=$2 ;;
        --seed) seed=$2 ;;
        --rotate-every) rotate_every=$2 ;;
        --dir) dir=$2 ;;
        --bin-dir) bin_dir=$2 ;;
        esac
        shift 2
        ;;
    --no-rotate)
        no_rotate=1
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) usage_error "unknown argument: $1" ;;
    esac
done
[[ $kills =~ ^[1-9][0-9]*$ ]] || usage_error "--kills must be a positive integer"
[[ $lines =~ ^[1-9][0-9]*$ ]] || usage_error "--lines must be a positive integer"
[[ $seed =~ ^[0-9]+$ ]] || usage_error "--seed must be a non-negative integer"
if ! [[ $rotate_every =~ ^[0-9]+$ ]] || ((rotate_every < 2)); then
    usage_error "--rotate-every must be an integer >= 2"
fi

root=$(cd "$(dirname "$0")/.." && pwd)
command -v sqlite3 >/dev/null || { echo "kill9: sqlite3 shell not found" >&2; exit 2; }
command -v python3 >/dev/null || { echo "kill9: python3 not found" >&2; exit 2; }

mkdir -p "$dir/bin"
if [[ -z $bin_dir ]]; then
    (cd "$root" && cargo build --release --quiet --workspace --bins)
    bin_dir=$root/target/release
fi
for b in ingestor sse-gen; do
    [[ -x $bin_dir/$b ]] || { echo "kill9: no $bin_dir/$b" >&2; exit 2; }
    cp -f "$bin_dir/$b" "$dir/bin/$b.tmp" && mv -f "$dir/bin/$b.tmp" "$dir/bin/$b"
done

if ((no_rotate)); then
    rotation=(--no-rotate)
else
    rotation=(--rotate-every "$rotate_every")
fi
exec python3 "$root/scripts/kill9/campaign.py" --kills "$kills" --lines "$lines" \
    --seed "$seed" "${rotation[@]}" --dir "$dir" --bin-dir "$(cd "$dir/bin" && pwd)" \
    --oracle "$root/scripts/oracle_check.py"
