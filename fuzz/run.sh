#!/usr/bin/env bash
# Builds and runs the `unpack` fuzz target for $1 seconds (default 60),
# seeded with the hostile archives in fuzz/corpus/unpack/.
#
# Works on a stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# -Z flags). New corpus entries go to a scratch copy, not the repository;
# a crash leaves its input in fuzz/artifacts/unpack/ and fails the script.
# FUZZ_SANITIZER=none skips AddressSanitizer (faster; the code under test
# has no unsafe of its own).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

work="$(mktemp -d)"
trap 'chmod -R u+rwx "$work" 2>/dev/null; rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/tmp"
cp corpus/unpack/* "$work/corpus/"
# The target's per-run sandboxes live under TMPDIR; keep them in $work.
export TMPDIR="$work/tmp"

cargo fuzz build --sanitizer "$sanitizer" unpack
cargo fuzz run --sanitizer "$sanitizer" unpack "$work/corpus" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1
