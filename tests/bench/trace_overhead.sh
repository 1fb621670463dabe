#!/usr/bin/env bash
# What tracing a process costs it: ns per getppid() under `vigil trace`,
# `strace -f` and `perf trace`, in one run, and what a process that is NOT
# traced pays while a trace session runs on another one.
#
# Configurations are interleaved round-robin and each keeps its best round
# (the VM is noisy, about +-10% run to run).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tests/bench/trace_overhead.sh [options] [BUILD_DIR]

Times a getppid() loop with no tracer, with do-nothing programs on the same
tracepoints (the floor), under vigil trace (events streamed to a client
writing to /dev/null), strace -f, and perf trace; and an untraced loop while
a vigil trace session runs on another process. Prints ns/syscall,
ns added, and the ratio to untraced. Root only. BUILD_DIR defaults to ./build
(vigild, vigil, tests/bench/getppid_loop).

options:
  --rounds N   interleaved rounds, best kept (default 3)
  --iters N    getppid calls per run (default 100000; vigil trace's rate
               limit is raised above what the loop makes, so nothing drops)
  -h, --help   this help
exit codes: 0 ok, 1 failure, 2 bad usage
EOF
}
die() { echo "trace_overhead: $*" >&2; exit 1; }
usage_error() { echo "trace_overhead: $* (see --help)" >&2; exit 2; }
log() { echo "[bench] $*" >&2; }

ROUNDS=3 ITERS=100000 BUILD=./build
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --rounds|--iters)
      (($# >= 2)) || usage_error "$1 needs a value"
      [[ $2 =~ ^[1-9][0-9]*$ ]] || usage_error "$1 \"$2\": expected a positive integer"
      [[ $1 == --rounds ]] && ROUNDS=$2 || ITERS=$2
      shift 2 ;;
    -*) usage_error "unknown option $1" ;;
    *) BUILD=$1; shift ;;
  esac
done
[[ $(id -u) == 0 ]] || die "must run as root"
BUILD=$(cd "$BUILD" && pwd)
LOOP=$BUILD/tests/bench/getppid_loop
[[ -x $LOOP && -x $BUILD/vigild && -x $BUILD/vigil && -x $BUILD/tests/bench/floor_loader ]] ||
  die "build $BUILD first (vigild vigil getppid_loop floor_loader)"

WORK=$(mktemp -d /tmp/vigil-trace-bench.XXXXXX)
SOCK=$WORK/vigild.sock
MOUNTED_TRACEFS=0
VIGILD_PID=
cleanup() {
  [[ -n $VIGILD_PID ]] && kill "$VIGILD_PID" 2>/dev/null && wait "$VIGILD_PID" 2>/dev/null
  ((MOUNTED_TRACEFS)) && umount /sys/kernel/tracing 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# perf trace reads syscall formats from tracefs.
if [[ ! -e /sys/kernel/tracing/events ]]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null && MOUNTED_TRACEFS=1 || true
fi

"$BUILD/vigild" --listen "unix:$SOCK" --allow-trace --metrics-listen "" \
  --trace-max-events-per-second 1000000 --session-max-duration 10m \
  >"$WORK/vigild.log" 2>&1 &
VIGILD_PID=$!
for _ in $(seq 100); do "$BUILD/vigil" --agent "unix:$SOCK" status >/dev/null 2>&1 && break; sleep 0.1; done
"$BUILD/vigil" --agent "unix:$SOCK" status >/dev/null || die "vigild did not start: $(tail -n3 "$WORK/vigild.log")"

# A loop gated on a fifo, so a tracer can attach to its pid first; prints
# the loop's ns/syscall.
gated_loop() {
  local fifo=$WORK/gate.$1
  rm -f "$fifo"; mkfifo "$fifo"
  (read -r _ <"$fifo"; exec "$LOOP" "$ITERS" 1) >"$WORK/loop.$1" &
  GATED=$!
}
trace_up() { # waits for the client's first line: the session is attached
  local i
  for i in $(seq 100); do
    grep -q "^vigil trace: tracing" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

run_none() { "$LOOP" "$ITERS" 1; }
run_vigil() {
  gated_loop v
  "$BUILD/vigil" --agent "unix:$SOCK" trace --pid "$GATED" --duration 5m >/dev/null 2>"$WORK/trace.err" &
  local client=$!
  trace_up "$WORK/trace.err" || die "no trace session came up: $(cat "$WORK/trace.err")"
  echo >"$WORK/gate.v"; wait "$GATED"; wait "$client" || true
  # The client's last line: "N events; ended: ...; lost: ...". Dropped
  # events cost less than delivered ones, so the table says how many.
  tail -n1 "$WORK/trace.err" >>"$WORK/vigil.summary"
  cat "$WORK/loop.v"
}
run_untraced() {
  # The session traces a sleeping process; the loop is someone else.
  sleep 600 & local other=$!
  "$BUILD/vigil" --agent "unix:$SOCK" trace --pid "$other" --duration 5m >/dev/null 2>"$WORK/other.err" &
  local client=$!
  trace_up "$WORK/other.err" || die "no trace session came up"
  "$LOOP" "$ITERS" 1
  kill "$client" "$other" 2>/dev/null; wait "$client" "$other" 2>/dev/null || true
}
run_floor() {
  # Do-nothing tp_btf programs on sys_enter and sys_exit: what any program
  # there costs every process, traced or not.
  "$BUILD/tests/bench/floor_loader" >"$WORK/floor.out" 2>&1 &
  local floor=$! i
  for i in $(seq 100); do grep -q ready "$WORK/floor.out" && break; sleep 0.05; done
  grep -q ready "$WORK/floor.out" || { kill "$floor"; echo "floor_loader: $(cat "$WORK/floor.out")" >&2; return 1; }
  "$LOOP" "$ITERS" 1
  kill "$floor"; wait "$floor" 2>/dev/null || true
}
run_strace() { strace -f -o /dev/null "$LOOP" "$ITERS" 1; }
run_perf() { perf trace -o /dev/null -- "$LOOP" "$ITERS" 1 2>/dev/null | tail -n1; }

CONFIGS=(none floor untraced vigil strace perf)
declare -A BEST=() WHY=()
for ((r = 1; r <= ROUNDS; r++)); do
  for c in "${CONFIGS[@]}"; do
    [[ -n ${WHY[$c]:-} ]] && continue
    log "round $r/$ROUNDS: $c"
    if v=$("run_$c" 2>"$WORK/$c.err") && [[ $v =~ ^[0-9.]+$ ]]; then
      if [[ -z ${BEST[$c]:-} ]] || awk -v a="$v" -v b="${BEST[$c]}" 'BEGIN{exit !(a<b)}'; then BEST[$c]=$v; fi
    else
      WHY[$c]="unavailable ($(tail -n1 "$WORK/$c.err" | cut -c1-60))"
    fi
  done
done

base=${BEST[none]}
printf '\n%-44s %12s %12s %8s\n' "getppid x $ITERS, best of $ROUNDS" "ns/syscall" "ns added" "ratio"
label() {
  case $1 in
    none) echo "no tracer" ;;
    floor) echo "floor: empty tp_btf on sys_enter+sys_exit" ;;
    untraced) echo "not traced, while vigil trace runs elsewhere" ;;
    vigil) echo "vigil trace --pid (every event streamed)" ;;
    strace) echo "strace -f -o /dev/null" ;;
    perf) echo "perf trace -o /dev/null" ;;
  esac
}
for c in "${CONFIGS[@]}"; do
  if [[ -n ${WHY[$c]:-} ]]; then
    printf '%-44s %s\n' "$(label "$c")" "${WHY[$c]}"
    continue
  fi
  awk -v l="$(label "$c")" -v v="${BEST[$c]}" -v b="$base" \
    'BEGIN{printf "%-44s %12.1f %12.1f %7.1fx\n", l, v, v-b, v/b}'
done
echo
echo "vigil trace sessions (agent's count of events delivered and lost, per round):"
sed 's/^vigil trace: /  /' "$WORK/vigil.summary" 2>/dev/null || true
