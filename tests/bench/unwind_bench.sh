#!/usr/bin/env bash
# Unwinder benchmark (not a CTest test): both CPUs busy in Debian's
# python3.11 (stripped, no frame pointers), each sampler at 99 Hz for SPAN
# seconds, one after the other in the same run:
#   vigild --profile-unwinder cfi (the default), vigild --profile-unwinder fp,
#   perf record -a --call-graph dwarf (8 KiB stack copies, perf's default),
#   bpftrace profile:hz:99 { @[ustack] = count(); } (frame pointers).
# Cost = the tool's own CPU (user + sys) plus, for vigild, its BPF programs'
# run time from the kernel's BPF stats (kernel.bpf_stats_enabled): the
# sampling program runs in interrupt context on the sampled CPUs and is
# charged to no process, so it is counted here explicitly. bpftrace's
# program cost is counted the same way. perf's in-kernel cost (copying
# 8 KiB of stack per sample) is not visible this way and is not included:
# its bytes per second are shown instead.
# Quality: vigild, share of all user stacks the walk completed (vigil status);
# perf, share of python3.11 samples whose outermost frame is _start.
#   bash tests/bench/unwind_bench.sh [BUILD_DIR]     (as root)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
build="${1:-build}"
span="${SPAN:-20}"
vigild="$build/vigild" vigil="$build/vigil"
for b in "$vigild" "$vigil"; do [ -x "$b" ] || { echo "bench: build first ($b missing)" >&2; exit 1; }; done
tmp=$(mktemp -d /tmp/vigil-unwind-bench.XXXXXX)
hz=$(getconf CLK_TCK)
pids=()
old_stats=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
  echo "$old_stats" >/proc/sys/kernel/bpf_stats_enabled
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
echo 1 >/proc/sys/kernel/bpf_stats_enabled

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Sum of run_time_ns over the BPF programs whose ids are given.
bpf_ns() {
  local sum=0 id ns
  for id in "$@"; do
    ns=$(bpftool prog show id "$id" --json 2>/dev/null | sed -n 's/.*"run_time_ns":\([0-9]*\).*/\1/p')
    sum=$((sum + ${ns:-0}))
  done
  echo "$sum"
}
pct() { awk -v n="$1" -v s="$span" 'BEGIN { printf "%.2f", 100 * n / 1e9 / s }'; }

ncpu=$(nproc)
echo "bench: $ncpu CPUs busy in /usr/bin/python3.11, 99 Hz, ${span}s per tool" >&2
for _ in $(seq "$ncpu"); do
  nice -n 19 /usr/bin/python3.11 -c 'while True: sorted(str(sum(i * i for i in range(20000))))' &
  pids+=("$!")
done
sleep 1

run_vigild() {  # mode -> "cpu% bpf% rooted% rss_mib rows"
  local mode=$1 sock="unix:$tmp/v.sock" vpid ids a b na nb st
  "$vigild" --listen "$sock" --metrics-listen "" --sample-hz 99 --syscalls-latency off \
    --spin off --profile-unwinder "$mode" >"$tmp/vigild.log" 2>&1 &
  vpid=$!
  for _ in $(seq 100); do "$vigil" status --agent "$sock" --timeout 1s >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 3  # tables compiled, steady state
  ids=$("$vigil" status --agent "$sock" --json | jq -r '.profiler.program_ids | map(tostring) | join(" ")')
  a=$(ticks "$vpid"); na=$(bpf_ns $ids)
  sleep "$span"
  b=$(ticks "$vpid"); nb=$(bpf_ns $ids)
  st=$("$vigil" status --agent "$sock" --json)
  kill -TERM "$vpid"; wait "$vpid" 2>/dev/null || true
  local cpu bpf root total rss rows
  cpu=$(awk -v d=$((b - a)) -v hz="$hz" -v s="$span" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
  bpf=$(pct $((nb - na)))
  root=$(echo "$st" | jq -r '[.profiler.unwinder.stack_ends[] | select(.reason == "root") | .samples | tonumber] | add // 0')
  total=$(echo "$st" | jq -r '[.profiler.unwinder.stack_ends[] | select(.reason != "no_user_stack") | .samples | tonumber] | add // 0')
  rss=$(echo "$st" | jq -r '[.. | .rss_bytes? // empty][0] // 0')
  rows=$(echo "$st" | jq -r '.profiler.unwinder.rows // 0')
  echo "$cpu $bpf $(awk -v r="$root" -v t="$total" 'BEGIN { printf "%.1f", t ? 100 * r / t : 0 }') $(awk -v b="${rss:-0}" 'BEGIN { printf "%.1f", b / 1048576 }') ${rows:-0}"
}

read -r c_cpu c_bpf c_root c_rss c_rows < <(run_vigild cfi)
read -r f_cpu f_bpf f_root f_rss f_rows < <(run_vigild fp)

# perf: its process CPU (record, then report), and the data it writes.
TIMEFORMAT='%U %S'
t=$( { time perf record -q -a -F 99 --call-graph dwarf -m 8M -o "$tmp/perf.data" -- sleep "$span" >/dev/null 2>&1; } 2>&1 | tail -1)
p_rec=$(awk -v t="$t" -v s="$span" 'BEGIN { split(t, a, " "); printf "%.2f", 100 * (a[1] + a[2]) / s }')
p_bytes=$(stat -c %s "$tmp/perf.data")
t=$( { time perf report -q --stdio -i "$tmp/perf.data" >/dev/null 2>&1; } 2>&1 | tail -1)
p_rep=$(awk -v t="$t" -v s="$span" 'BEGIN { split(t, a, " "); printf "%.2f", 100 * (a[1] + a[2]) / s }')
p_root=$(perf script -i "$tmp/perf.data" -F comm,ip,sym 2>/dev/null | awk '
  /^python3.11/ { if (n) { t++; if (last == "_start") r++ } n = 1; last = ""; next }
  NF >= 2 { last = $2 }
  END { if (n) { t++; if (last == "_start") r++ } printf "%.1f", t ? 100 * r / t : 0 }')

# bpftrace: its process CPU plus its program's run time.
bpftrace -e 'profile:hz:99 { @[ustack] = count(); }' >"$tmp/bt.out" 2>&1 &
bpid=$!
sleep 3
bids=$(bpftool prog show --json | tr '}' '\n' | grep '"type":"perf_event"' | grep -o '"id":[0-9]*' | grep -o '[0-9]*' | tr '\n' ' ')
a=$(ticks "$bpid"); na=$(bpf_ns $bids)
sleep "$span"
b=$(ticks "$bpid"); nb=$(bpf_ns $bids)
kill -INT "$bpid"; wait "$bpid" 2>/dev/null || true
b_cpu=$(awk -v d=$((b - a)) -v hz="$hz" -v s="$span" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
b_bpf=$(pct $((nb - na)))

sum() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }
printf '\n%-46s %9s %9s %9s %12s %10s\n' "99 Hz, $ncpu CPUs in python3.11, ${span}s each" "process" "in-kernel" "total" "complete" "other"
printf '%-46s %8s%% %8s%% %8s%% %11s%% %10s\n' "vigild, CFI unwinder (default)" "$c_cpu" "$c_bpf" "$(sum "$c_cpu" "$c_bpf")" "$c_root" "rss ${c_rss}M"
printf '%-46s %8s%% %8s%% %8s%% %11s%% %10s\n' "vigild --profile-unwinder fp" "$f_cpu" "$f_bpf" "$(sum "$f_cpu" "$f_bpf")" "$f_root" "rss ${f_rss}M"
printf '%-46s %8s%% %9s %8s%% %11s%% %10s\n' "perf record --call-graph dwarf (record)" "$p_rec" "n/a" "$p_rec" "$p_root" "$(awk -v b="$p_bytes" -v s="$span" 'BEGIN { printf "%.0f KiB/s", b / 1024 / s }')"
printf '%-46s %8s%% %9s %9s %12s\n' "  + perf report" "$p_rep" "" "" ""
printf '%-46s %8s%% %8s%% %8s%% %12s\n' "bpftrace profile:hz:99 @[ustack]" "$b_cpu" "$b_bpf" "$(sum "$b_cpu" "$b_bpf")" "n/a"
echo "unwind rows in use (cfi run): $c_rows" >&2
