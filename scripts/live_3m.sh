#!/usr/bin/env bash
# scripts/live_3m.sh: acceptance test of `ingestor --follow`: backfill N lines, switch to live,
# absorb N more appended in random bursts, under a concurrent sqlite3 reader, then check every
# row against an independent oracle. Run `scripts/live_3m.sh --help` for the options.
#
# Needs bash, coreutils, python3 (stdlib only), sqlite3 and cargo (unless --bin-dir).
# The binaries are copied to DIR/bin first, so that rebuilds by others during the run cannot
# change what is measured (the live process re-executes /proc/self/exe, i.e. the copy).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/linux_only.sh"
export LC_ALL=C

usage() {
    cat <<'EOF'
Usage: scripts/live_3m.sh [options]

  1. generates N lines (file A, --seed S) and N more (file B, seed S+1, --max-line-mb 2 by
     default: ordinary big lines, none of the 8 MiB ones) under DIR (kept and reused);
  2. copies A to DIR/followed.jsonl and runs `ingestor --input followed.jsonl --db live.db
     --follow`, sampling its RSS (>= 10/s) with the phase (historical until its
     /proc/PID/cmdline has --no-exec-live, then live);
  3. waits for the switch and count(*) = N, measures idle live RSS;
  4. appends B in chunks of a seeded random number of lines with random pauses, while a
     reader runs `select count(*), max(id)` in the sqlite3 shell every 0.1 s;
  5. waits for count(*) = 2N, measures idle RSS again, stops the ingestor with SIGTERM;
  6. checks: exit status 0, exactly 2N rows, ingest_sources offset = file size,
     scripts/oracle_check.py, PRAGMA integrity_check; the reader never failed.
Prints a report (also DIR/report.txt; RSS timeline in DIR/rss.tsv). Exit status 1 on FAIL;
memory and throughput targets are printed, never asserted.

Options:
  --lines N            lines per file (N) [3000000]
  --seed S             seed of file A; B uses S+1 [1]
  --dir DIR            work directory [target/live3m]
  --max-line-mb M      sse-gen --max-line-mb for file B [2]
  --chunk-min L        smallest burst chunk, in lines [1000]
  --chunk-max L        largest burst chunk, in lines [50000]
  --pause-max-ms MS    longest pause between chunks [500]
  --timeout-min MIN    limit for each wait (switch, count = N, count = 2N) [30]
  --idle-secs S        length of each idle RSS window [3]
  --sample-interval S  RSS sampling period [0.05]
  --rss-via-ps         sample with `ps -o rss= -p PID` instead of reading /proc/PID/statm
  --reader-interval S  concurrent reader period [0.1]
  --oracle-every K     oracle_check.py --sample-every K [1]
  --wait-quiet SECS    before starting the ingestor, wait up to SECS for the 1-minute load
                       average to drop below --max-load (0: only print it) [0]
  --max-load L         see --wait-quiet [1.5]
  --bin-dir DIR        take ingestor and sse-gen from DIR instead of `cargo build --release`
  -h, --help           this text
EOF
}

prog=live_3m
# shellcheck source=scripts/live/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/live/common.sh"

lines=3000000
seed=1
dir=target/live3m
max_line_mb=2
chunk_min=1000
chunk_max=50000
pause_max_ms=500
timeout_min=30
idle_secs=3
sample_interval=0.05
rss_via_ps=0
reader_interval=0.1
oracle_every=1
wait_quiet=0
max_load=1.5
bin_dir=

while (($#)); do
    case $1 in
    --lines) need_value "$@"; lines=$2; shift 2 ;;
    --seed) need_value "$@"; seed=$2; shift 2 ;;
    --dir) need_value "$@"; dir=$2; shift 2 ;;
    --max-line-mb) need_value "$@"; max_line_mb=$2; shift 2 ;;
    --chunk-min) need_value "$@"; chunk_min=$2; shift 2 ;;
    --chunk-max) need_value "$@"; chunk_max=$2; shift 2 ;;
    --pause-max-ms) need_value "$@"; pause_max_ms=$2; shift 2 ;;
    --timeout-min) need_value "$@"; timeout_min=$2; shift 2 ;;
    --idle-secs) need_value "$@"; idle_secs=$2; shift 2 ;;
    --sample-interval) need_value "$@"; sample_interval=$2; shift 2 ;;
    --rss-via-ps) rss_via_ps=1; shift ;;
    --reader-interval) need_value "$@"; reader_interval=$2; shift 2 ;;
    --oracle-every) need_value "$@"; oracle_every=$2; shift 2 ;;
    --wait-quiet) need_value "$@"; wait_quiet=$2; shift 2 ;;
    --max-load) need_value "$@"; max_load=$2; shift 2 ;;
    --bin-dir) need_value "$@"; bin_dir=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option $1" ;;
    esac
done
for v in lines seed max_line_mb chunk_min chunk_max timeout_min oracle_every wait_quiet; do
    [[ ${!v} =~ ^[0-9]+$ ]] || usage_error "--${v//_/-} must be a whole number"
done
((lines > 0)) || usage_error "--lines must be > 0"
((chunk_min > 0 && chunk_min <= chunk_max)) || usage_error "need 0 < --chunk-min <= --chunk-max"
for t in python3 sqlite3 awk; do
    command -v "$t" >/dev/null || die "$t is needed"
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cd "$root"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
bin=$dir/bin
db=$dir/live.db
followed=$dir/followed.jsonl
target=$((2 * lines))
timeout_s=$((timeout_min * 60))

# ------------------------------------------------------------------------------------------
# Background processes and their cleanup
# ------------------------------------------------------------------------------------------
ipid='' spid='' rpid='' wpid=''
cleanup() {
    local p
    for p in "$wpid" "$rpid" "$ipid" "$spid"; do
        stop_pid "$p"
    done
}
trap cleanup EXIT
trap 'echo "live_3m: interrupted" >&2; exit 130' INT TERM

# ------------------------------------------------------------------------------------------
# Facts and events for the report
# ------------------------------------------------------------------------------------------
: >"$dir/facts.tsv"
: >"$dir/events.tsv"
fact() { printf '%s\t%s\n' "$1" "$2" >>"$dir/facts.tsv"; }
event() { printf '%s\t%s\n' "$1" "$(date +%s.%N)" >>"$dir/events.tsv"; }
failed_run() {
    # A run that cannot go on: record why, stop everything, still write the report.
    say "FAILED: $*"
    fact error "$*"
    cleanup
    ipid='' spid='' rpid='' wpid=''
    python3 "$here/live/report.py" --dir "$dir" || true
    exit 1
}

# ------------------------------------------------------------------------------------------
# Binaries and inputs
# ------------------------------------------------------------------------------------------
copy_binaries
bin_sum=$(sha256sum "$bin/ingestor" | cut -c1-12)
git_desc=$(git -C "$root" describe --always --dirty 2>/dev/null || echo "no git")
fact binary "$bin/ingestor (sha256 $bin_sum..., tree $git_desc, copied from $bin_dir)"
fact started_at "$(date '+%Y-%m-%d %H:%M:%S %Z')"
fact host "$(uname -n), $(nproc) cores"
fact lines "$lines"
fact budget_mib 12
fact chunk_range "$chunk_min-$chunk_max"
fact pause_range "0-$pause_max_ms ms"
fact reader_interval "$reader_interval"

gen_sum=$(sha256sum "$bin/sse-gen" | cut -c1-16)
generate() { # out args...: runs sse-gen unless out exists from the same generator and args
    local out=$1
    shift
    local stamp="sse-gen $gen_sum $*"
    if [[ -f $out && -f $out.stamp && -f $out.maxlen && $(cat "$out.stamp") == "$stamp" ]]; then
        say "reusing $out ($*)"
        return
    fi
    rm -f "$out.stamp"
    say "generating $out: sse-gen $*"
    "$bin/sse-gen" "$@" --out "$out"
    awk '{ if (length($0) > m) m = length($0) } END { printf "%.2f MB\n", m / 1e6 }' "$out" >"$out.maxlen"
    printf '%s\n' "$stamp" >"$out.stamp"
}
generate "$dir/A.jsonl" --seed "$seed" --lines "$lines"
generate "$dir/B.jsonl" --seed "$((seed + 1))" --lines "$lines" --max-line-mb "$max_line_mb"
a_bytes=$(stat -c %s "$dir/A.jsonl")
b_bytes=$(stat -c %s "$dir/B.jsonl")
a_max=$(cat "$dir/A.jsonl.maxlen")
b_max=$(cat "$dir/B.jsonl.maxlen")
fact a_bytes "$a_bytes"
fact a_desc "$dir/A.jsonl: sse-gen --seed $seed --lines $lines (defaults: multi-MB turn.exec.end lines up to 8 MiB), $a_bytes bytes, longest line $a_max"
fact b_desc "$dir/B.jsonl: sse-gen --seed $((seed + 1)) --lines $lines --max-line-mb $max_line_mb (ordinary big lines, none above $max_line_mb MiB), $b_bytes bytes, longest line $b_max"
say "A: $a_bytes bytes (longest line $a_max); B: $b_bytes bytes (longest line $b_max, --max-line-mb $max_line_mb)"

rm -f "$db" "$db-wal" "$db-shm" "$db-journal" "$dir"/rss.tsv "$dir"/reader.* "$dir"/burst.* \
    "$dir"/oracle.txt "$dir"/report.txt "$dir"/poll.err
say "copying A to $followed"
cp "$dir/A.jsonl" "$followed"

# Earlier runs (and the copy just made) leave gigabytes of dirty pages; their writeback would
# otherwise land in this run's measurements, at a different moment each time.
dirty_mb() { awk '$1 == "Dirty:" { printf "%.0f", $2 / 1024 }' /proc/meminfo; }
say "flushing dirty pages ($(dirty_mb) MB)"
sync
wait_for_quiet
fact load_before "$(load1)"
say "load average $(load1)"

# ------------------------------------------------------------------------------------------
# Historical phase
# ------------------------------------------------------------------------------------------
event ingestor_start
t0=$(awk -F'\t' '$1 == "ingestor_start" { print $2 }' "$dir/events.tsv")
"$bin/ingestor" --input "$followed" --db "$db" --follow 2>"$dir/ingestor.err" &
ipid=$!
sampler_args=(--pid "$ipid" --t0 "$t0" --interval "$sample_interval" --out "$dir/rss.tsv")
if ((rss_via_ps)); then
    sampler_args+=(--via-ps)
    fact sampler "ps -o rss= -p PID every $sample_interval s"
else
    fact sampler "/proc/PID/statm resident pages (= ps -o rss=) every $sample_interval s"
fi
python3 "$here/live/rss_sampler.py" "${sampler_args[@]}" &
spid=$!
say "ingestor started (PID $ipid), RSS sampler PID $spid"

deadline=$((SECONDS + timeout_s))
until grep -qa -- --no-exec-live "/proc/$ipid/cmdline" 2>/dev/null; do
    alive "$ipid" || failed_run "ingestor exited during the historical phase (see $dir/ingestor.err)"
    ((SECONDS < deadline)) || failed_run "no switch to live within $timeout_min min"
    sleep 0.05
done
event switch_seen
say "switched to live: $(tr '\0' ' ' <"/proc/$ipid/cmdline")"

poll_failures=0
count_rows() {
    local c
    if c=$(sqlite3 -batch "$db" 'select count(*) from sse_lines' 2>>"$dir/poll.err") && [[ $c =~ ^[0-9]+$ ]]; then
        echo "$c"
    else
        echo -1
    fi
}
while :; do
    c=$(count_rows)
    ((c >= 0)) || poll_failures=$((poll_failures + 1))
    ((c == lines)) && break
    ((c <= lines)) || failed_run "count $c > N = $lines before the burst"
    alive "$ipid" || failed_run "ingestor exited before count = N (see $dir/ingestor.err)"
    ((SECONDS < deadline)) || failed_run "count = N not reached within $timeout_min min"
    sleep 0.2
done
event caught_up
say "count = $lines; idle for $idle_secs s"

event idle1_start
sleep "$idle_secs"
event idle1_end

# ------------------------------------------------------------------------------------------
# Burst with a concurrent reader
# ------------------------------------------------------------------------------------------
python3 "$here/live/reader.py" --db "$db" --interval "$reader_interval" --out "$dir/reader.tsv" \
    --state "$dir/reader.state" --summary "$dir/reader.json" &
rpid=$!
sleep 0.3
say "appending B in bursts (chunks of $chunk_min-$chunk_max lines, pauses 0-$pause_max_ms ms)"
event burst_start
python3 "$here/live/burst_writer.py" --src "$dir/B.jsonl" --dst "$followed" --seed "$seed" \
    --chunk-min "$chunk_min" --chunk-max "$chunk_max" --pause-max-ms "$pause_max_ms" \
    --log "$dir/burst.tsv" --summary "$dir/burst.json" &
wpid=$!
deadline=$((SECONDS + timeout_s))
last_say=$SECONDS
while :; do
    c=-1
    [[ -f $dir/reader.state ]] && c=$(cut -d' ' -f2 "$dir/reader.state")
    ((c >= target)) && break
    alive "$ipid" || failed_run "ingestor exited during the burst (see $dir/ingestor.err)"
    alive "$rpid" || failed_run "the reader stopped"
    ((SECONDS < deadline)) || failed_run "count = 2N not reached within $timeout_min min (count $c)"
    if ((SECONDS - last_say >= 10)); then
        say "count $c / $target"
        last_say=$SECONDS
    fi
    sleep 0.2
done
event reached_seen
wait "$wpid" || failed_run "the burst writer failed"
wpid=
say "count = 2N = $target; idle for $idle_secs s"
sleep 0.5
event idle2_start
sleep "$idle_secs"
event idle2_end
stop_pid "$rpid"
rpid=

# ------------------------------------------------------------------------------------------
# Stop
# ------------------------------------------------------------------------------------------
end_rss=$(ps -o rss= -p "$ipid" | tr -d ' ')
fact end_rss_kb "$end_rss"
fact wal_bytes_at_stop "$(stat -c %s "$db-wal" 2>/dev/null || echo 0)"
event sigterm
stop_start=$(date +%s.%N)
kill -TERM "$ipid"
for ((i = 0; i < 1200; i++)); do
    alive "$ipid" || break
    sleep 0.05
done
if alive "$ipid"; then
    kill -KILL "$ipid"
    fact error "ingestor still running 60 s after SIGTERM (killed)"
fi
rc=0
wait "$ipid" || rc=$?
ipid=
fact exit_status "$rc"
fact stop_secs "$(awk -v a="$stop_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')"
say "ingestor exited with status $rc"
stop_pid "$spid"
spid=

# ------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------
fact poll_failures "$poll_failures"
fact final_rows "$(sqlite3 -batch "$db" 'select count(*) from sse_lines' 2>&1)"
fact final_bad "$(sqlite3 -batch "$db" 'select count(*) from bad_lines' 2>&1)"
fact source_offset "$(sqlite3 -batch "$db" 'select group_concat(offset) from ingest_sources' 2>&1)"
fact followed_bytes "$(stat -c %s "$followed")"
oracle_args=()
((oracle_every == 1)) || oracle_args=(--sample-every "$oracle_every")
fact oracle_args "${oracle_args[*]:+ ${oracle_args[*]}}"
say "running scripts/oracle_check.py ${oracle_args[*]:-}"
orc=0
python3 "$here/oracle_check.py" "$followed" "$db" ${oracle_args[@]+"${oracle_args[@]}"} \
    >"$dir/oracle.txt" || orc=$?
fact oracle_status "$orc"
say "running PRAGMA integrity_check"
fact integrity "$(sqlite3 -batch "$db" 'PRAGMA integrity_check' 2>&1 | head -5 | tr '\n' ' ' | sed 's/ $//')"
fact load_after "$(load1)"

python3 "$here/live/report.py" --dir "$dir"
