#!/usr/bin/env bash
# CPU profiler benchmark (not a CTest test): with both CPUs busy, the CPU
# that vigild itself uses at 49 and 99 Hz, next to `perf record -F 99 -a -g`
# + `perf report` and bpftrace `profile:hz:99 { @[ustack] = count(); }` over
# the same span; `vigil hot --since 10m` latency over a full 10-minute
# window; agent RSS with 500 live, occasionally sampled processes.
#   bash tests/bench/profile_overhead.sh [BUILD_DIR]     (as root)
# Env: SPAN (seconds per CPU measurement, default 20), WINDOW_SECONDS (how
# long to fill the store before the latency run, default 600), QUERIES (50).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
build="${1:-build}"
span="${SPAN:-20}"
window_s="${WINDOW_SECONDS:-600}"
queries="${QUERIES:-50}"
vigild="$build/vigild" vigil="$build/vigil" work="$build/tests/profile_workload"
for b in "$vigild" "$vigil" "$work"; do [ -x "$b" ] || { echo "bench: build first ($b missing)" >&2; exit 1; }; done
tmp=$(mktemp -d /tmp/vigil-profile-bench.XXXXXX)
hz=$(getconf CLK_TCK)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU% of one core used by pid $1 over $2 seconds.
measure_pid() {
  local a b
  a=$(cpu_ticks "$1"); sleep "$2"; b=$(cpu_ticks "$1")
  awk -v d=$((b - a)) -v hz="$hz" -v s="$2" 'BEGIN { printf "%.2f", 100 * d / hz / s }'
}
# CPU seconds (user+sys) a command and its children used.
cpu_of() {
  local TIMEFORMAT='%U %S' t
  t=$( { time "$@" >/dev/null 2>&1; } 2>&1 | tail -1 )
  awk -v t="$t" 'BEGIN { split(t, a, " "); printf "%.3f", a[1] + a[2] }'
}
start_vigild() {  # args: extra flags; sets vpid, sock
  sock="unix:$tmp/v.sock"
  "$vigild" --listen "$sock" "$@" >"$tmp/vigild.log" 2>&1 &
  vpid=$!; pids+=("$vpid")
  for _ in $(seq 100); do "$vigil" status --agent "$sock" --timeout 1s >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench: vigild did not start: $(cat "$tmp/vigild.log")" >&2; exit 1
}
stop_vigild() { kill -TERM "$vpid"; wait "$vpid" 2>/dev/null || true; }

ncpu=$(nproc)
echo "bench: $ncpu CPUs busy with $ncpu burners (nice 19), ${span}s per measurement" >&2
for _ in $(seq "$ncpu"); do nice -n 19 "$work" spin 100000 >/dev/null & pids+=("$!"); done
sleep 1

declare -A row
start_vigild --profile off; sleep 2; row[off]=$(measure_pid "$vpid" "$span"); stop_vigild
start_vigild --sample-hz 49; sleep 2; row[v49]=$(measure_pid "$vpid" "$span")
samples49=$("$vigil" hot --agent "$sock" --json | awk -F'"' '/"samples"/ {print $4; exit}'); stop_vigild
start_vigild --sample-hz 99; sleep 2; row[v99]=$(measure_pid "$vpid" "$span")
samples99=$("$vigil" hot --agent "$sock" --json | awk -F'"' '/"samples"/ {print $4; exit}'); stop_vigild

rec=$(cpu_of perf record -F 99 -a -g -o "$tmp/perf.data" -- sleep "$span")
rep=$(cpu_of perf report --stdio -i "$tmp/perf.data")
row[perf]=$(awk -v a="$rec" -v b="$rep" -v s="$span" 'BEGIN { printf "%.2f", 100 * (a + b) / s }')
row[perfrec]=$(awk -v a="$rec" -v s="$span" 'BEGIN { printf "%.2f", 100 * a / s }')
bt=$(cpu_of timeout -s INT "$span" bpftrace -e 'profile:hz:99 { @[ustack] = count(); }')
row[bt]=$(awk -v a="$bt" -v s="$span" 'BEGIN { printf "%.2f", 100 * a / s }')

# Latency over a full window: 99 Hz, both CPUs busy (plus a syscall-heavy
# process for kernel stacks), then `vigil hot --since 10m` QUERIES times.
nice -n 19 "$work" syscalls 100000 >/dev/null & pids+=("$!")
start_vigild --sample-hz 99
echo "bench: filling a ${window_s}s window" >&2
sleep "$window_s"
# End to end, as a user sees it: CLI process start, connect, query, print.
# `vigil status` (no merge) is the floor of process start plus one RPC.
timed() {  # file, command...
  local f=$1; shift
  for _ in $(seq "$queries"); do
    local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    echo $(( (e - s) / 1000000 )) >>"$f"
  done
}
pct() { sort -n "$1" | awk -v q="$2" '{a[NR]=$1} END {i=int(NR*q+0.5); if (i<1) i=1; print a[i]}'; }
timed "$tmp/hot.txt" "$vigil" hot --agent "$sock" --since 10m
timed "$tmp/status.txt" "$vigil" status --agent "$sock"
# Inside the agent (validate, merge 10 minutes, rank): HotResponse.query_ns.
for _ in $(seq "$queries"); do
  "$vigil" hot --agent "$sock" --since 10m --json | awk -F'"' '/"query_ns"/ {printf "%d\n", $4 / 1000000}' >>"$tmp/agent.txt"
done
a50=$(pct "$tmp/agent.txt" 0.50) a95=$(pct "$tmp/agent.txt" 0.95)
p50=$(pct "$tmp/hot.txt" 0.50) p95=$(pct "$tmp/hot.txt" 0.95)
s50=$(pct "$tmp/status.txt" 0.50) s95=$(pct "$tmp/status.txt" 0.95)
# The profiler's own store counters (the last "intervals_retained" in the
# JSON is the profiler's).
intervals=$("$vigil" status --agent "$sock" --json | awk -F': ' '/"intervals_retained"/ {gsub(/[,"]/,"",$2); v=$2} END {print v}')
records=$("$vigil" status --agent "$sock" --json | awk -F'"' '/"records_retained"/ {print $4}')
stop_vigild

# RSS with 500 live processes that each burn ~0.3 ms a second (sampled now
# and then, so the symbol cache sees hundreds of processes).
start_vigild --sample-hz 99
for _ in $(seq 500); do "$work" tick 90 >/dev/null & pids+=("$!"); done
sleep 60
live=$(pgrep -c -f "$work tick" || true)
rss=$("$vigil" status --agent "$sock" --json | awk -F'"' '/"rss_bytes"/ {print $4}')
cache=$("$vigil" status --agent "$sock" --json | awk -F'"' '/"symbol_cache_processes"/ {print $4}')
evict=$("$vigil" status --agent "$sock" --json | awk -F'"' '/"symbol_cache_evicted_capacity"/ {print $4}')
stop_vigild

printf '\n%-52s %12s\n' "profiler CPU, both CPUs busy (${span}s each)" "% of 1 core"
printf '%-52s %12s\n' "vigild, profiler off (syscalls only, baseline)" "${row[off]}"
printf '%-52s %12s\n' "vigild --sample-hz 49 ($samples49 samples kept)" "${row[v49]}"
printf '%-52s %12s\n' "vigild --sample-hz 99 ($samples99 samples kept)" "${row[v99]}"
printf '%-52s %12s\n' "perf record -F 99 -a -g (record only)" "${row[perfrec]}"
printf '%-52s %12s\n' "perf record -F 99 -a -g + perf report" "${row[perf]}"
printf '%-52s %12s\n' "bpftrace profile:hz:99 @[ustack]" "${row[bt]}"
printf '\n%-52s %12s\n' "vigil hot --since 10m ($queries queries, $intervals intervals, $records records)" ""
printf '%-52s %12s\n' "vigil hot --since 10m p50 / p95 (ms)" "$p50 / $p95"
printf '%-52s %12s\n' "  of which inside the agent p50 / p95 (ms)" "$a50 / $a95"
printf '%-52s %12s\n' "vigil status (floor: start + 1 RPC) p50 / p95 (ms)" "$s50 / $s95"
printf '\n%-52s %12s\n' "vigild RSS with $live live sampled processes (MiB)" "$(awk -v b="$rss" 'BEGIN { printf "%.1f", b / 1048576 }')"
printf '%-52s %12s\n' "  symbol cache: processes cached / evicted (cap)" "$cache / $evict"
echo "note: kernel-side sampling cost (BPF program in interrupt context) is charged to the sampled CPUs, not to any tool's process, for vigild and bpftrace alike." >&2
