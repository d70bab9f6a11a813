#!/usr/bin/env bash
# scripts/check_macos.sh: type-checks and lints the whole crate (binary, tests, benches) for
# macOS on Apple Silicon (aarch64-apple-darwin) from Linux, so that code behind
# cfg(target_os = "macos") and the libc calls it makes are compiled somewhere.
#
# Nothing is linked or run: SQLite's C source (libsqlite3-sys, bundled) cannot be compiled
# without Apple's SDK, so a stand-in C compiler writes empty objects for it. Everything written
# in Rust, ours and our dependencies', is checked for the real target, with clippy's lints.
#
# Needs rustup; installs the target's standard library if missing. Exit status 0 when clean.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=aarch64-apple-darwin
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Stand-in compiler: succeeds, and leaves an empty object wherever the output is named. The cc
# crate, which cannot tell what compiler this is, may name it MSVC's way (-Fo<path>).
cat >"$work/cc" <<'CC'
#!/bin/sh
out=
prev=
for a in "$@"; do
    [ "$prev" = "-o" ] && out=$a
    case $a in -Fo?*) out=${a#-Fo} ;; esac
    prev=$a
done
[ -n "$out" ] && : >"$out"
exit 0
CC
chmod +x "$work/cc"
export CC_aarch64_apple_darwin="$work/cc" AR_aarch64_apple_darwin=ar
# Its own target folder: the stand-in objects must never meet a real build.
cargo clippy --target "$target" --target-dir target/macos-check --all-targets -- -D warnings
echo "check_macos: cargo clippy --target $target --all-targets: clean"
