#!/usr/bin/env bash
# Routing policies on the Rap Genius scenario: one seeded trace of
# heavy-tailed requests at 70% load, through the real router to
# single-threaded dynos, under random (Heroku's), round-robin, least
# outstanding (Corral's default) and least outstanding with
# max-concurrency=1; prints mean and p99 of total and queue time, their
# ratios to random, and max-concurrency=1 against an ideal single FIFO
# queue simulated on the same trace (goals: default p99 <= 0.4x random's,
# max-concurrency=1 p99 <= 1.1x the ideal's).
#
# Usage: bench/routing-policy/run.sh [REQUESTS] [SCALE] [DYNOS] [SEED]
# (defaults 2000, 0.5, 10, 42: about 30 s per policy). SCALE multiplies
# every service time (the issue's 50 ms and 1-5 s); 1.0 with 2000 requests
# takes about a minute per policy.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Every request in flight holds four descriptors in this one process
# (generator, router both ways, dyno); random's queues can grow to hundreds.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo run --release --quiet --example routing_policy_bench -- "$@"
