#!/usr/bin/env bash
# Times slug pack/unpack against GNU tar + gzip at the same level on a
# generated ~100 MB app-like tree; prints per-run times, medians and the
# ratios ours/GNU (target: <= 1.0 for both).
#
# Usage: bench/slug/run.sh [REPS]   (default 5; needs GNU tar and gzip)
# SLUG_BENCH_DIR picks the scratch directory (default target/slug-bench, on
# disk like a real state dir; /dev/shm/slug-bench takes the disk out).
set -euo pipefail
cd "$(dirname "$0")/../.."
reps="${1:-5}"
target="${CARGO_TARGET_DIR:-target}"
cargo run --release --quiet --example slug_bench -- "$reps" "${SLUG_BENCH_DIR:-$target/slug-bench}"
