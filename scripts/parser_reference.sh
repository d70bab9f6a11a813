#!/usr/bin/env bash
# scripts/parser_reference.sh: ingestor's scanner against general JSON parsers on the same lines.
#
# Builds scripts/peers/parsers (its own workspace: serde_json, simd-json, sonic-rs and ingestor's
# row builder) twice, as shipped (no CPU flags) and with `-C target-cpu=native` (simd-json and
# sonic-rs pick their SIMD code at compile time), then runs each mode --runs times, alternated,
# and prints medians of the seconds and GB/s. Modes (see src/main.rs there):
#   read        read(2) of the file into a 1 MiB buffer, nothing else (the kernel's copy)
#   ours-read   ingestor's scan-only work: LineReader (read(2), framing) + row builder
#   ours-mmap   the same builder over a mapping of the file instead of read(2)
#   frame, frame-utf8, ours, sonic-rs, simd-json, serde_json: from a copy of the file in
#               memory (read before the clock starts): framing alone, framing + UTF-8, and a
#               full parse of each line by each parser (ours also builds the row)
# It never asserts a timing. Needs cargo and a warm page cache (the file is read once first).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/linux_only.sh"
export LC_ALL=C

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
input=target/bench/input-1-1G.jsonl
runs=5
modes="read ours-read ours-mmap frame frame-utf8 ours sonic-rs simd-json serde_json"
while (($#)); do
    case $1 in
        --input) input=${2:?--input needs a file}; shift 2 ;;
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        --modes) modes=${2:?--modes needs a list}; shift 2 ;;
        -h | --help)
            echo "usage: scripts/parser_reference.sh [--input FILE] [--runs N] [--modes 'M ...']"
            echo "  default input: target/bench/input-1-1G.jsonl, generated (sse-gen --seed 1 --bytes 1G) if missing"
            exit 0 ;;
        *) echo "parser_reference: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "parser_reference: --runs must be a positive integer" >&2; exit 2; }

if [[ ! -f $input ]]; then
    echo "parser_reference: generating $input (sse-gen --seed 1 --bytes 1G)" >&2
    mkdir -p "$(dirname "$input")"
    cargo run -q --release -p sse-gen -- --seed 1 --bytes 1G --out "$input.tmp"
    mv "$input.tmp" "$input"
fi
bytes=$(stat -c %s "$input")

OUT=target/parser-reference
manifest=scripts/peers/parsers/Cargo.toml
cargo build -q --release --manifest-path "$manifest" --target-dir "$OUT/plain"
RUSTFLAGS="-C target-cpu=native" cargo build -q --release --manifest-path "$manifest" --target-dir "$OUT/native"
cat -- "$input" >/dev/null

log=$OUT/runs.log
: >"$log"
for ((r = 1; r <= runs; r++)); do
    for build in plain native; do
        for mode in $modes; do
            printf '%s ' "$build" >>"$log"
            "$OUT/$build/release/parser-reference" "$mode" "$input" >>"$log"
        done
    done
done

echo "input: $input ($bytes bytes); medians of $runs runs, alternated; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-11s %9s %8s %10s %10s\n' build mode secs GB/s lines accepted
for build in plain native; do
    for mode in $modes; do
        awk -v b="$build" -v m="$mode" -v bytes="$bytes" '
            $1 == b && $2 == m { n++; w[n] = $4; lines = $6; ok = $8 }
            function med(a, n,   i, j, t) {
                for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            }
            END {
                if (!n) exit
                mw = med(w, n)
                printf "%-8s %-11s %9.3f %8.2f %10s %10s\n", b, m, mw, bytes / mw / 1e9, lines, ok
            }' "$log"
    done
done
echo "(each run: $log)"
