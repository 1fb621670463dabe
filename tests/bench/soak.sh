#!/usr/bin/env bash
# The soak: vigild with every capability on under churn (1,000 thread
# exits/s, 100 process execs/s, UDP drops) and 50 clients calling every RPC
# (two holding WatchAlerts streams), for --hours N (default 1). Reports the
# resting RSS slope after warm-up (every 150 s the clients pause for 10 s;
# goal < 1 MiB/hour over at least an hour), fds,
# CPU, p95 per RPC and losses; exits non-zero if an answer was wrong, a
# descriptor leaked, or the slope missed the goal.
#
#   bash tests/bench/soak.sh [--hours N | --minutes N] [BUILD_DIR]
#
# Run it alone: it loads both cores, and anything beside it skews the CPU
# and latency figures.
set -euo pipefail
seconds=3600
build=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --hours) seconds=$(($2 * 3600)); shift 2 ;;
    --minutes) seconds=$(($2 * 60)); shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
[[ $EUID -eq 0 ]] || { echo "soak.sh: run as root (vigild loads BPF)" >&2; exit 2; }
bin="$build/tests/bench/soak"
[[ -x $bin ]] || { echo "soak.sh: $bin not built (cmake --build $build --target soak)" >&2; exit 2; }
# Warm-up: a quarter of the run, at most 15 minutes (the window and the
# symbol caches fill; malloc's arenas settle).
warmup=$((seconds / 4 < 900 ? seconds / 4 : 900))
echo "soak.sh: $(date -u +%FT%TZ) on $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$bin" --seconds "$seconds" --warmup "$warmup"
