#!/usr/bin/env bash
# The log stream's delay from a dyno's print to `corral logs --tail`,
# beside `journalctl --follow` reading the same lines in the same host
# (p50/p99 over 1,000 lines, goal p99 < 100 ms), then the lines per second
# one dyno's burst of 200,000 lines reaches the tail with, and how many
# were lost. Boots a throwaway systemd host: run as root.
#
# Usage: bench/logs/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet --bins --example logs_bench
exec target/release/examples/logs_bench "$@"
