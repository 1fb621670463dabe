#!/usr/bin/env bash
# Spin-alert benchmark (not part of CTest; run as root after a build):
#   bash tests/bench/spin_bench.sh BUILD_DIR [RUNS]
# 1. Detection latency: RUNS times (default 10), start a pure user-space
#    spinner and time until `vigil alerts --follow --json` prints its firing
#    event. Target: <= spin-min-duration + 2 s.
# 2. Overhead: a pipe ping-pong between two threads (two context switches
#    and four syscalls per round trip), interleaved runs without and with
#    vigild (default settings: syscalls, profiler and spin detection on;
#    PINGPONG_VIGILD_ARGS adds flags, PINGPONG_PAIRS sets the pairs, default
#    10). Target: <= 3% added.
set -euo pipefail
build="$(readlink -f "${1:?usage: spin_bench.sh BUILD_DIR [RUNS]}")"
runs="${2:-10}"
min=3s
interval=200ms
# On a shared, overloaded machine a spinner does not get 0.9 of a CPU; run
# with e.g. SPIN_THRESHOLD=0.3 there and quote it with the numbers.
threshold="${SPIN_THRESHOLD:-0.9}"
tmp="$(mktemp -d /tmp/vigil-spin-bench.XXXXXX)"
vigild_pid=""
cleanup() {
  [[ -n "$vigild_pid" ]] && kill -TERM "$vigild_pid" 2>/dev/null && wait "$vigild_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
g++ -O2 -pthread -o "$tmp/pingpong" "$(dirname "$0")/pingpong.cc"

start_vigild() {
  "$build/vigild" --listen "unix:$tmp/v.sock" "$@" 2>"$tmp/vigild.log" &
  vigild_pid=$!
  for _ in $(seq 100); do
    "$build/vigil" status --agent "unix:$tmp/v.sock" --timeout 1s >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "vigild did not start" >&2; cat "$tmp/vigild.log" >&2; exit 1
}
stop_vigild() { kill -TERM "$vigild_pid"; wait "$vigild_pid" || true; vigild_pid=""; }

echo "== detection latency: spin-min-duration $min, interval $interval, threshold $threshold, $runs runs"
start_vigild --interval "$interval" --spin-min-duration "$min" --spin-cpu-threshold "$threshold"
printf "%-4s %-10s %s\n" run latency_s cpu_share
lat_all=()
for r in $(seq "$runs"); do
  "$build/vigil" alerts --follow --json --agent "unix:$tmp/v.sock" > "$tmp/follow" &
  follow=$!
  sleep 0.3
  t0=$(date +%s.%N)
  "$build/tests/spin_workload" spin 6 1 "benchspin$r" > "$tmp/w" &
  w=$!
  lat=""
  for _ in $(seq 200); do
    if grep -q "\"comm\":\"benchspin$r\",.*\"state\":\"ALERT_STATE_FIRING\"\|\"state\":\"ALERT_STATE_FIRING\".*\"comm\":\"benchspin$r\"" "$tmp/follow" 2>/dev/null; then
      lat=$(echo "$(date +%s.%N) - $t0" | bc); break
    fi
    sleep 0.05
  done
  share=$(grep "benchspin$r" "$tmp/follow" | head -1 | sed -n 's/.*"cpu_share":\([0-9.]*\).*/\1/p' || true)
  printf "%-4s %-10s %s\n" "$r" "${lat:-none}" "${share:--}"
  [[ -n "$lat" ]] && lat_all+=("$lat")
  wait "$w"; kill "$follow" 2>/dev/null; wait "$follow" 2>/dev/null || true
done
stop_vigild
if ((${#lat_all[@]})); then
  printf "%s\n" "${lat_all[@]}" | sort -n | awk -v n="$runs" '{a[NR]=$1} END {printf "fired %d/%d  min %.2f s  median %.2f s  max %.2f s  (target <= 5.00 s)\n", NR, n, a[1], a[int((NR+1)/2)], a[NR]}'
fi

# The ping-pong's rate moves by several percent from run to run on this VM,
# more than the cost measured: many pairs, the order inside a pair
# alternating (so a slow phase of the host hits both sides), and the median
# of the per-pair differences.
# PINGPONG_PIN=CPU runs both threads on that one CPU: no cross-CPU wakeup
# (whose latency in a VM dwarfs and blurs everything else), so what is left
# is the CPU cost of the four syscalls and two switches themselves.
pairs="${PINGPONG_PAIRS:-10}"
read -ra vigild_args <<<"${PINGPONG_VIGILD_ARGS:-}"
pin=()
[[ -z ${PINGPONG_PIN:-} ]] || pin=(taskset -c "$PINGPONG_PIN")
echo "== pipe ping-pong, round trips/s (higher is better), $pairs interleaved pairs, vigild ${vigild_args[*]:-(defaults)}${PINGPONG_PIN:+, pinned to CPU $PINGPONG_PIN}"
printf "%-4s %-12s %-12s %s\n" pair without with added_pct
pcts=()
sum_a=0; sum_b=0
with_vigild() { start_vigild "${vigild_args[@]}"; sleep 1; b=$("${pin[@]}" "$tmp/pingpong" 200000); stop_vigild; }
for r in $(seq "$pairs"); do
  if ((r % 2)); then
    a=$("${pin[@]}" "$tmp/pingpong" 200000); with_vigild
  else
    with_vigild; a=$("${pin[@]}" "$tmp/pingpong" 200000)
  fi
  pct=$(echo "($a - $b) * 100 / $a" | bc -l)
  pcts+=("$pct")
  printf "%-4s %-12s %-12s %.1f\n" "$r" "$a" "$b" "$pct"
  sum_a=$((sum_a + a)); sum_b=$((sum_b + b))
done
median=$(printf "%s\n" "${pcts[@]}" | sort -g | awk '{v[NR] = $1} END {printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
printf "mean %-9s %-12s %.1f; median of pairs %s  (target <= 3%%)\n" $((sum_a / pairs)) $((sum_b / pairs)) \
  "$(echo "($sum_a - $sum_b) * 100 / $sum_a" | bc -l)" "$median"
