#!/usr/bin/env bash
# The in-kernel cost of every BPF program vigild runs: the kernel's own
# per-program accounting (kernel.bpf_stats_enabled=1: run_cnt and
# run_time_ns, read with bpftool) over a workload that fires each hook,
# beside vigild's user-side CPU over the same time. Exits non-zero when a
# program's mean run time is over its budget (--max-ns): the regression
# check.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tests/bench/bpf_prog_cost.sh [options] [BUILD_DIR]

Starts vigild (every always-on capability, --allow-trace with one trace
session on the workload), enables kernel.bpf_stats_enabled, runs for
--seconds a getppid loop, a page-fault loop and UDP drops, and prints per
program: runs, ns per run, and its share of one CPU. Root only.

options:
  --seconds N   workload length (default 10)
  --max-ns N    fail if a program's mean run time exceeds N ns (default 30000;
                the unwinder's stack walks take ~10 us)
  --max-hot-ns N  the same for programs on every syscall (default 300)
  -h, --help    this help
exit codes: 0 ok, 1 failure or a program over budget, 2 bad usage
EOF
}
die() { echo "bpf_prog_cost: $*" >&2; exit 1; }
usage_error() { echo "bpf_prog_cost: $* (see --help)" >&2; exit 2; }

SECONDS_RUN=10 MAX_NS=30000 MAX_HOT_NS=300 BUILD=./build
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --seconds|--max-ns|--max-hot-ns)
      (($# >= 2)) || usage_error "$1 needs a value"
      [[ $2 =~ ^[1-9][0-9]*$ ]] || usage_error "$1 \"$2\": expected a positive integer"
      case $1 in
        --seconds) SECONDS_RUN=$2 ;; --max-ns) MAX_NS=$2 ;; --max-hot-ns) MAX_HOT_NS=$2 ;;
      esac
      shift 2 ;;
    -*) usage_error "unknown option $1" ;;
    *) BUILD=$1; shift ;;
  esac
done
[[ $(id -u) == 0 ]] || die "must run as root"
BUILD=$(cd "$BUILD" && pwd)
for b in vigild vigil tests/bench/getppid_loop tests/bench/fault_loop; do
  [[ -x $BUILD/$b ]] || die "$BUILD/$b not built"
done
command -v bpftool >/dev/null || die "bpftool not found"

WORK=$(mktemp -d /tmp/vigil-progcost.XXXXXX)
SOCK=$WORK/vigild.sock
OLD_STATS=$(sysctl -n kernel.bpf_stats_enabled)
VIGILD_PID=
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -n $VIGILD_PID ]] && kill "$VIGILD_PID" 2>/dev/null && wait "$VIGILD_PID" 2>/dev/null
  sysctl -q kernel.bpf_stats_enabled="$OLD_STATS" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BUILD/vigild" --listen "unix:$SOCK" --allow-trace --metrics-listen "" >"$WORK/vigild.log" 2>&1 &
VIGILD_PID=$!
for _ in $(seq 100); do "$BUILD/vigil" --agent "unix:$SOCK" status >/dev/null 2>&1 && break; sleep 0.1; done
"$BUILD/vigil" --agent "unix:$SOCK" status >/dev/null || die "vigild did not start: $(tail -n3 "$WORK/vigild.log")"

# One trace session on a process of its own, so vigil_trace_* run too.
sleep 3600 & TRACED=$!; PIDS+=("$TRACED")
"$BUILD/vigil" --agent "unix:$SOCK" trace --pid "$TRACED" --duration 5m >/dev/null 2>&1 &
PIDS+=("$!")
sleep 1

# This vigild's programs (another vigild on the host has its own): the
# prog_id of every program and link fd it holds.
OURS=$(cat "/proc/$VIGILD_PID/fdinfo/"* 2>/dev/null | awk '$1 == "prog_id:" {print $2}' | sort -u | tr '\n' ' ')
[[ -n $OURS ]] || die "no BPF program found in vigild's fds"

# Snapshot, workload, snapshot: the difference is the workload's.
snapshot() { # id name run_time_ns run_cnt
  bpftool prog show 2>/dev/null | awk -v ours=" $OURS" '
    /^[0-9]+: / { id = $1; sub(":", "", id); name = ""; rt = 0; rc = 0
                  for (i = 1; i <= NF; i++) {
                    if ($i == "name") name = $(i + 1)
                    if ($i == "run_time_ns") rt = $(i + 1)
                    if ($i == "run_cnt") rc = $(i + 1) }
                  if (index(ours, " " id " ")) print id, name, rt, rc }'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$VIGILD_PID/stat"; }

sysctl -q kernel.bpf_stats_enabled=1
snapshot >"$WORK/before"
T0=$(cpu_ticks); S0=$(date +%s.%N)
"$BUILD/tests/bench/getppid_loop" 100000000 1 >/dev/null & PIDS+=("$!"); LOOP=$!
"$BUILD/tests/bench/fault_loop" "$SECONDS_RUN" 16 >/dev/null & PIDS+=("$!")
# UDP drops: datagrams to a closed port on loopback (NO_SOCKET drops).
python3 - "$SECONDS_RUN" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    s.sendto(b'x', ('127.0.0.1', 9))
    time.sleep(0.0005)
EOF
PIDS+=("$!")
sleep "$SECONDS_RUN"
kill "$LOOP" 2>/dev/null || true
snapshot >"$WORK/after"
T1=$(cpu_ticks); S1=$(date +%s.%N)
sysctl -q kernel.bpf_stats_enabled="$OLD_STATS"

HZ=$(getconf CLK_TCK)
printf '\nvigild programs over %ss of getppid loop + page-fault loop + UDP drops + one trace session\n' "$SECONDS_RUN"
printf '%-22s %12s %10s %10s\n' program runs "ns/run" "% of 1 CPU"
join <(sort "$WORK/before") <(sort "$WORK/after") | sort -k2 | awk \
  -v secs="$(awk -v a="$S0" -v b="$S1" 'BEGIN{print b - a}')" -v max="$MAX_NS" -v hot="$MAX_HOT_NS" '
  { runs = $7 - $4; ns = $6 - $3
    if (runs <= 0) { printf "%-22s %12d %10s %10s\n", $2, 0, "-", "-"; next }
    per = ns / runs; share = ns / (secs * 1e9) * 100
    printf "%-22s %12d %10.1f %10.3f\n", $2, runs, per, share
    # Programs on every syscall have the tight budget.
    budget = ($2 ~ /^vigil_(sys|trace)_(enter|exit)$/) ? hot : max
    if (per > budget) { over = over " " $2 " (" int(per) " > " budget ")" } }
  END { if (over != "") { print "over budget:" over; exit 1 } }' || FAIL=1
awk -v t0="$T0" -v t1="$T1" -v hz="$HZ" -v s0="$S0" -v s1="$S1" \
  'BEGIN { printf "%-22s %12s %10s %10.3f\n", "vigild (user+sys)", "", "", (t1 - t0) / hz / (s1 - s0) * 100 }'
exit "${FAIL:-0}"
