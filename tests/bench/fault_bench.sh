#!/usr/bin/env bash
# Page-fault sampling benchmark (not a CTest test): what vigild's page-fault
# program costs a process that does nothing but fault. tests/bench/fault_loop
# maps 64 MiB, writes every 4 KiB page (one minor fault each: huge pages
# refused), unmaps, and repeats, flat out on one CPU, for SPAN seconds; its
# throughput (GiB/s of pages first touched) is measured:
#   - without vigild,
#   - with vigild --profile-fault-period 0 (everything else on: what the
#     rest of vigild costs this process, the floor for the next two),
#   - with vigild at its defaults (--profile-fault-period 64),
#   - with vigild --profile-fault-period 1 (every fault walked and counted),
# interleaved over ROUNDS rounds (so a neighbour's burst hits every
# configuration alike); the table shows each round, the median and the best
# (the least disturbed run: on a shared host, read the best). Throughput
# runs have the kernel's BPF stats off: with kernel.bpf_stats_enabled every
# program run also reads the clock twice, and the fault programs run on
# every fault (a countdown), so stats alone cost this loop ~15%. One more
# run per sampling configuration, with stats on, gives the fault programs'
# mean run time and runs (its throughput is not used).
# The issue's bar: at most 3% slower at the default period.
#   bash tests/bench/fault_bench.sh [BUILD_DIR]     (as root, on a quiet host)
# Env: SPAN (seconds per run, default 20), ROUNDS (default 5).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
build="${1:-build}"
span="${SPAN:-20}"
rounds="${ROUNDS:-5}"
vigild="$build/vigild" vigil="$build/vigil" loop="$build/tests/bench/fault_loop"
for b in "$vigild" "$vigil" "$loop"; do [ -x "$b" ] || { echo "bench: build first ($b missing)" >&2; exit 1; }; done
tmp=$(mktemp -d /tmp/vigil-fault-bench.XXXXXX)
vpid=""
old_stats=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
  echo "$old_stats" >/proc/sys/kernel/bpf_stats_enabled
  [ -n "$vpid" ] && kill "$vpid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
echo 0 >/proc/sys/kernel/bpf_stats_enabled

sock="unix:$tmp/v.sock"
start_vigild() {  # extra flags
  "$vigild" --listen "$sock" --metrics-listen "" "$@" >"$tmp/vigild.log" 2>&1 &
  vpid=$!
  for _ in $(seq 100); do "$vigil" status --agent "$sock" --timeout 1s >/dev/null 2>&1 && break; sleep 0.1; done
  "$vigil" status --agent "$sock" --timeout 1s >/dev/null 2>&1 || { echo "bench: vigild did not start: $(cat "$tmp/vigild.log")" >&2; exit 1; }
  sleep 2  # its own start-up work done
}
stop_vigild() { kill -TERM "$vpid"; wait "$vpid" 2>/dev/null || true; vpid=""; }
# run_time_ns and run_cnt summed over the two page-fault programs,
# vigil_profile_fault_user and _kernel (the kernel keeps 15 characters of a
# name: both are "vigil_profile_f"). They run on every fault (a countdown),
# and walk a stack on every fault_period-th.
fault_prog_stats() {
  bpftool prog show --json | tr '}' '\n' | grep '"name":"vigil_profile_f' |
    sed -n 's/.*"run_time_ns":\([0-9]*\).*"run_cnt":\([0-9]*\).*/\1 \2/p' |
    awk '{ ns += $1; n += $2 } END { print ns + 0, n + 0 }'
}
# One run: prints "GIB_S"; with STATS=1, "GIB_S NS_PER_RUN RUNS".
run() {  # config: none | p0 | default | p1
  local cfg=$1 a b out
  case "$cfg" in
    p0) start_vigild --profile-fault-period 0 ;;
    default) start_vigild ;;
    p1) start_vigild --profile-fault-period 1 ;;
  esac
  [ "${STATS:-0}" = 1 ] && echo 1 >/proc/sys/kernel/bpf_stats_enabled
  a=$(fault_prog_stats || true)
  out=$(taskset -c 0 "$loop" "$span")
  b=$(fault_prog_stats || true)
  echo 0 >/proc/sys/kernel/bpf_stats_enabled
  [ "$cfg" != none ] && stop_vigild
  awk -v o="$out" -v a="${a:-0 0}" -v b="${b:-0 0}" 'BEGIN {
    split(o, r, " "); split(a, x, " "); split(b, y, " ")
    runs = y[2] - x[2]; ns = y[1] - x[1]
    printf "%s %.0f %d\n", r[1], runs ? ns / runs : 0, runs }'
}

echo "bench: $(nproc) CPUs, fault_loop pinned to CPU 0, ${span}s per run, $rounds rounds; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
declare -A gib ns runs
for r in $(seq "$rounds"); do
  for cfg in none p0 default p1; do
    read -r g _ < <(run "$cfg")
    gib[$cfg]+="$g "
    echo "bench: round $r $cfg: $g GiB/s" >&2
  done
done
for cfg in default p1; do
  read -r _ n c < <(STATS=1 run "$cfg")
  ns[$cfg]=$n runs[$cfg]=$c
  echo "bench: $cfg with BPF stats: $n ns per run, $c runs" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
best() { tr ' ' '\n' | grep -v '^$' | sort -g | tail -1; }
pct() { awk -v m="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", 100 * (m - b) / b }'; }
base=$(echo "${gib[none]}" | median)
floor=$(echo "${gib[p0]}" | median)
bbase=$(echo "${gib[none]}" | best)
bfloor=$(echo "${gib[p0]}" | best)
printf '\n%-42s %-30s %7s %8s %8s %7s %8s %8s %8s %9s\n' "fault_loop, ${span}s per run, $rounds rounds" "GiB/s per round" "median" "vs none" "vs p0" "best" "vs none" "vs p0" "prog ns" "runs/s"
for cfg in none p0 default p1; do
  case "$cfg" in
    none) label="no vigild" ;;
    p0) label="vigild --profile-fault-period 0" ;;
    default) label="vigild, default (1 sample per 64 faults)" ;;
    p1) label="vigild --profile-fault-period 1" ;;
  esac
  m=$(echo "${gib[$cfg]}" | median)
  b=$(echo "${gib[$cfg]}" | best)
  case "$cfg" in
    none | p0) vs0=- bvs0=- prog=- rps=- ;;
    *)
      vs0=$(pct "$m" "$floor")
      bvs0=$(pct "$b" "$bfloor")
      prog=${ns[$cfg]}
      rps=$(echo "${runs[$cfg]}" | awk -v s="$span" '{ printf "%.0f", $1 / s }')
      ;;
  esac
  printf '%-42s %-30s %7.3f %8s %8s %7.3f %8s %8s %8s %9s\n' "$label" "${gib[$cfg]}" "$m" \
    "$(pct "$m" "$base")" "$vs0" "$b" "$(pct "$b" "$bbase")" "$bvs0" "$prog" "$rps"
done
echo "prog ns: the fault programs' mean run time per run (every fault runs one), from one more run with BPF stats on; runs/s: their runs on the whole host in that run" >&2
