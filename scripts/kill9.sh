#!/usr/bin/env bash
# scripts/kill9.sh: crash-safety ("kill -9") campaign for `ingestor --follow`, at scale.
#
# A writer appends generated lines to ONE followed file (append only, chunks cut at arbitrary
# byte positions; rotation/truncation of the followed file is known not to be handled yet and
# is not exercised). `ingestor --follow` is SIGKILLed at seeded random moments spread over the
# first backfill (DB.building), resumed backfills, the exec hand-over and live mode, and
# restarted each time. After every kill: `PRAGMA integrity_check` (sqlite3 shell, read-only)
# and committed rows == non-blank lines before the committed offset. At the end: one more run
# to the end of the file, SIGTERM, then rows vs non-blank lines, duplicates/missing from the
# multiset of `line` values, and scripts/oracle_check.py. Exit status 1 on any failure.
#
# The campaign itself is scripts/kill9/campaign.py (python3 stdlib). The binaries are copied
# to DIR/bin first, so that rebuilds by others during the run cannot change what is tested.
set -euo pipefail
export LC_ALL=C

usage() {
    cat <<'USAGE'
Usage: scripts/kill9.sh [--kills N] [--lines N] [--seed S] [--dir DIR] [--bin-dir DIR]

  --kills N      kill points (>= 1) [200]
  --lines N      lines generated with sse-gen --max-line-mb 1; the followed file starts
                 with 40 % of them, the rest is appended during the campaign [300000]
  --seed S       seed of the data and of the kill plan [1]
  --dir DIR      work directory (report.txt, kills.tsv, stderr/, oracle.txt) [target/kill9]
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
dir=target/kill9
bin_dir=
while (($#)); do
    case "$1" in
    --kills | --lines | --seed | --dir | --bin-dir)
        (($# >= 2)) || usage_error "$1 needs a value"
        case "$1" in
        --kills) kills=$2 ;;
        --lines) lines=$2 ;;
        --seed) seed=$2 ;;
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
[[ $kills =~ ^[1-9][0-9]*$ ]] || usage_error "--kills must be a positive integer"
[[ $lines =~ ^[1-9][0-9]*$ ]] || usage_error "--lines must be a positive integer"
[[ $seed =~ ^[0-9]+$ ]] || usage_error "--seed must be a non-negative integer"

root=$(cd "$(dirname "$0")/.." && pwd)
command -v sqlite3 >/dev/null || { echo "kill9: sqlite3 shell not found" >&2; exit 2; }
command -v python3 >/dev/null || { echo "kill9: python3 not found" >&2; exit 2; }

mkdir -p "$dir/bin"
if [[ -z $bin_dir ]]; then
    (cd "$root" && cargo build --release --quiet --bins)
    bin_dir=$root/target/release
fi
for b in ingestor sse-gen; do
    [[ -x $bin_dir/$b ]] || { echo "kill9: no $bin_dir/$b" >&2; exit 2; }
    cp -f "$bin_dir/$b" "$dir/bin/$b.tmp" && mv -f "$dir/bin/$b.tmp" "$dir/bin/$b"
done

exec python3 "$root/scripts/kill9/campaign.py" --kills "$kills" --lines "$lines" \
    --seed "$seed" --dir "$dir" --bin-dir "$(cd "$dir/bin" && pwd)" \
    --oracle "$root/scripts/oracle_check.py"
