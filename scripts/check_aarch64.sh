#!/usr/bin/env bash
# scripts/check_aarch64.sh: runs the scanner's NEON path (src/scan/lanes.rs), which only
# aarch64 CPUs take (the users' Apple Silicon Macs), on this x86-64 machine under qemu-user:
#
#   1. every unit test of the crate (the vector paths against the portable ones, the byte
#      classes against the bytewise tables) for aarch64-unknown-linux-gnu;
#   2. the fuzz crate's tests: its committed corpus replayed against the contract model;
#   3. the aarch64 `ingestor` binary on generated files (one with 20 % adversarial lines),
#      each database checked by scripts/oracle_check.py (Python's json module, not our code).
#
# Linux on aarch64 rather than macOS because that is what qemu-user runs; the scanner is the
# same code on both (NEON is the baseline of either target). Needs rustup, and installs what
# is missing: the target's standard library, Debian's cross compilers (SQLite is C, the fuzz
# crate's libFuzzer C++) and qemu-user-static. Exit status 0 when everything passed, 77 when
# those could not be installed (nothing was checked), anything else on a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=aarch64-unknown-linux-gnu
cannot() {
    echo "check_aarch64: $1 could not be installed; nothing was checked" >&2
    exit 77
}
rustup target list --installed | grep -qx "$target" ||
    rustup target add "$target" >/dev/null 2>&1 || cannot "the $target standard library"
if ! command -v qemu-aarch64-static >/dev/null || ! command -v aarch64-linux-gnu-g++ >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static \
        gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross; } >/dev/null 2>&1 ||
        cannot "qemu-user-static or the aarch64 cross compilers"
fi
sysroot=/usr/aarch64-linux-gnu
run="qemu-aarch64-static -L $sysroot"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$run"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++

cargo test --release --target "$target" --lib
(cd fuzz && cargo test --release --target "$target" --lib)

cargo build --release --target "$target" --bin ingestor
cargo build --release -p sse-gen
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/sse-gen --seed 7 --bytes 40M --adversarial 0.2 --out "$work/adversarial.jsonl"
target/release/sse-gen --seed 3 --bytes 60M --out "$work/plain.jsonl"
for name in adversarial plain; do
    $run "target/$target/release/ingestor" --input "$work/$name.jsonl" --db "$work/$name.db"
    python3 scripts/oracle_check.py --quiet "$work/$name.jsonl" "$work/$name.db"
done
echo "check_aarch64: unit tests, fuzz corpus and oracle checks passed on $target (qemu-user)"
