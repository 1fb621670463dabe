#!/usr/bin/env bash
# Syscall-overhead benchmark: what each tracer adds to a getppid() call.
#
# getppid is about the cheapest syscall there is, so the per-call time under a
# tracer is dominated by the tracer's own enter/exit cost. The floor is a pair
# of do-nothing BPF programs on the same hooks vigild uses: whatever vigild
# costs above the floor is its own work, not the price of having a hook.
#
# The VM this runs on is noisy (about +-10% run to run), so configurations
# are interleaved round-robin and each one keeps its best round: a slow phase
# of the host then hits every configuration instead of skewing one.

set -euo pipefail

usage() {
  cat <<'EOF'
usage: tests/bench/syscall_overhead.sh [options] [BUILD_DIR]

Times a tight getppid() loop (ns/syscall) with no tracer and under vigild
(latency sampled, the default; every call timed; off), strace -c, perf trace -s, bpftrace, libbpf-tools
syscount and a do-nothing BPF floor, then prints a comparison table plus
vigild's idle CPU and RSS. Must run as root. BUILD_DIR defaults to ./build
and must contain vigild, vigil and tests/bench/{getppid_loop,floor_loader}.

options:
  --rounds N        interleaved rounds; the table shows each configuration's
                    best and median (default 5)
  --iters N         getppid calls per run for in-kernel tracers (default 300000)
  --slow-iters N    calls per run for strace and perf trace (default 100000)
  --reps N          runs per measurement for in-kernel tracers (default 3)
  --idle-secs N     how long to watch an idle vigild for CPU use (default 10)
  --ignore-loaded   run even if vigil_/floor_ BPF programs are already loaded
                    (another vigild); the table then carries a warning
  --sample N        one more row: vigild --syscalls-latency-sample N (the
                    default row samples 1 in 16; the exact row times all)
  --other PATH      one more row: the vigild at PATH at its defaults, for an
                    A/B of two builds in the same run
  --parts           rows pricing each piece of vigild's syscall programs alone
                    (floor_loader PART: ktime, storage, storage_both, prandom,
                    hash), each read as ns above the floor
  --only LIST       only these configurations, comma-separated, from: none,
                    vigild_on, vigild_exact, vigild_sampled (with --sample),
                    vigild_off, vigild_nomap,
                    vigild_other, floor, strace, perf, bpftrace, syscount,
                    part_ktime, part_storage, part_storage_both,
                    part_prandom, part_hash
                    (none is always run: every row is relative to it)
  -h, --help        this help

A tracer that is missing or fails is shown as "unavailable (reason)".
Environment: STRACE, PERF, BPFTRACE, SYSCOUNT override the peers' paths.
Tracefs is mounted at /sys/kernel/tracing if needed and unmounted at exit.
exit codes: 0 ok, 1 failure (including BPF programs left loaded), 2 bad usage
EOF
}

die() { echo "syscall_overhead: $*" >&2; exit 1; }
usage_error() { echo "syscall_overhead: $* (see --help)" >&2; exit 2; }
log() { echo "[bench] $*" >&2; }

posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || usage_error "$1 \"$2\": expected a positive integer"; }

ROUNDS=5 ITERS=300000 SLOW_ITERS=100000 REPS=3 IDLE_SECS=10 BUILD=./build
IGNORE_LOADED=0 SAMPLE="" OTHER="" ONLY="" PARTS=0
build_set=0
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --ignore-loaded) IGNORE_LOADED=1; shift ;;
    --parts) PARTS=1; shift ;;
    --sample)
      (($# >= 2)) || usage_error "$1 needs a value"
      [[ $2 =~ ^(1|2|4|8|16|32|64|128|256|512|1024)$ ]] || usage_error "--sample \"$2\": expected a power of two up to 1024"
      SAMPLE=$2; shift 2 ;;
    --other)
      (($# >= 2)) || usage_error "$1 needs a value"
      [[ -x $2 ]] || usage_error "--other \"$2\": not an executable file"
      OTHER=$(realpath "$2"); shift 2 ;;
    --only)
      (($# >= 2)) || usage_error "$1 needs a value"
      ONLY=$2; shift 2 ;;
    --rounds|--iters|--slow-iters|--reps|--idle-secs)
      (($# >= 2)) || usage_error "$1 needs a value"
      posint "$1" "$2"
      case $1 in
        --rounds) ROUNDS=$2 ;; --iters) ITERS=$2 ;; --slow-iters) SLOW_ITERS=$2 ;;
        --reps) REPS=$2 ;; --idle-secs) IDLE_SECS=$2 ;;
      esac
      shift 2 ;;
    -*) usage_error "unknown option $1" ;;
    *) ((build_set == 0)) || usage_error "unexpected argument \"$1\""
       BUILD=$1; build_set=1; shift ;;
  esac
done

[[ $(id -u) == 0 ]] || die "must run as root (BPF programs, tracefs, perf)"
[[ -d $BUILD ]] || die "build dir \"$BUILD\" does not exist"
BUILD=$(cd "$BUILD" && pwd)
LOOP=$BUILD/tests/bench/getppid_loop
FLOOR=$BUILD/tests/bench/floor_loader
VIGILD=$BUILD/vigild
VIGIL=$BUILD/vigil
[[ -x $LOOP ]] || die "$LOOP not built (cmake --build $BUILD --target getppid_loop)"
command -v bpftool >/dev/null || die "bpftool not found (needed to check for leftover BPF programs)"

TRACEFS=/sys/kernel/tracing
# Peers, overridable to point at other builds (or to check the
# "unavailable" path with a path that does not exist).
STRACE=${STRACE:-strace}
PERF=${PERF:-perf}
BPFTRACE=${BPFTRACE:-bpftrace}
SYSCOUNT=${SYSCOUNT:-/usr/sbin/syscount}

# vigild or floor programs already loaded would slow every configuration,
# the no-tracer baseline included.
named_progs() { bpftool prog show 2>/dev/null | grep -E '^[0-9]+: .* name (vigil|floor)_' || true; }
FOREIGN_AT_START=$(named_progs)
if [[ -n $FOREIGN_AT_START ]]; then
  ((IGNORE_LOADED)) || die "vigil_/floor_ BPF programs are already loaded (another vigild?); stop it or pass --ignore-loaded:
$FOREIGN_AT_START"
  log "WARNING: vigil_/floor_ programs already loaded; every number will include their cost"
fi

WORK=$(mktemp -d /tmp/vigil-bench.XXXXXX)
declare -A LIVE=() # process groups we started and have not reaped; killed at exit
declare -A MYPROGS=() # ids of the BPF programs our tracers held; none may outlive us
MOUNTED_TRACEFS=0

# Every background process runs under setsid, so its pid is also its process
# group: killing the group takes its children (e.g. perf's workload) along.
kill_group() {
  local pg=$1 i
  kill -0 -- "-$pg" 2>/dev/null || { reap "$pg"; return 0; }
  kill -TERM -- "-$pg" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 -- "-$pg" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pg" 2>/dev/null || true
  reap "$pg"
}

# Once reaped, a pid may be reused by someone else's process: forget it.
reap() { wait "$1" 2>/dev/null || true; unset 'LIVE[$1]'; }

cleanup() {
  local rc=$? pg
  trap - EXIT INT TERM
  for pg in "${!LIVE[@]}"; do kill_group "$pg"; done
  if ((MOUNTED_TRACEFS)); then
    umount "$TRACEFS" 2>/dev/null || echo "syscall_overhead: could not unmount $TRACEFS" >&2
  fi
  rm -rf "$WORK"
  # Programs are freed after an RCU grace period, not when their owner
  # exits, so give them a moment before calling them leftovers.
  local left i
  for i in $(seq 50); do
    left=$(my_progs_loaded)
    [[ -n $left ]] || break
    sleep 0.1
  done
  if [[ -n $left ]]; then
    echo "syscall_overhead: BPF programs this run loaded are still loaded after cleanup:" >&2
    echo "$left" >&2
    rc=1
  fi
  # By name too, but only as a warning: with no pid owner shown by bpftool,
  # a vigil_ program we did not record belongs to someone else's vigild.
  left=$(named_progs)
  if [[ -n $left ]]; then
    echo "syscall_overhead: note: vigil_/floor_ programs not started by this run are loaded:" >&2
    echo "$left" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD... : runs CMD in the background in its own session with
# stdout/stderr in $WORK/NAME.{out,err}; sets STARTED to its pid.
start() {
  local name=$1; shift
  : >"$WORK/$name.out"; : >"$WORK/$name.err"
  setsid "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
  STARTED=$!
  LIVE[$STARTED]=1
}

# Remembers the BPF programs a ready tracer holds (prog_id in the fdinfo of
# program and link fds), so the exit check can tell ours from anyone else's.
record_progs() {
  local id
  for id in $(cat "/proc/$1/fdinfo/"* 2>/dev/null | awk '$1 == "prog_id:" {print $2}' | sort -u); do
    MYPROGS[$id]=1
  done
}
my_progs_loaded() {
  local id
  for id in "${!MYPROGS[@]}"; do
    bpftool prog show id "$id" 2>/dev/null | head -n1 || true
  done
}

# Stops a process group started by start(): SIGINT first, because that is
# how bpftrace and syscount expect to be stopped (and they print on it).
stop() {
  local pg=$1 i
  kill -INT -- "-$pg" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 -- "-$pg" 2>/dev/null || break
    sleep 0.1
  done
  kill_group "$pg"
}

# Last non-empty line of a tracer's stderr, shortened for the table. bpftrace
# always complains about RLIMIT_MEMLOCK here (harmless: BPF memory is charged
# to the cgroup on this kernel) and prints the readiness hook on stderr.
reason_from() {
  local r
  r=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | grep -v -e RLIMIT_MEMLOCK -e __BPFTRACE_NOTIFY | tail -n1 | tr -s ' \t' ' ' || true)
  r=${r:-no error message}
  ((${#r} <= 70)) || r="${r:0:67}..."
  echo "$r"
}

# wait_ready NAME PID TIMEOUT_S CHECK... : polls CHECK until it succeeds;
# fails (with FAIL set) if the process exits first or time runs out.
wait_ready() {
  local name=$1 pid=$2 timeout=$3; shift 3
  local deadline=$((SECONDS + timeout))
  while ! "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null && FAIL="exited at startup" || FAIL="exited $?: $(reason_from "$WORK/$name.err")"
      return 1
    fi
    ((SECONDS < deadline)) || { FAIL="not ready after ${timeout}s"; return 1; }
    sleep 0.1
  done
}

out_has() { grep -q -- "$2" "$WORK/$1.out"; }
err_has() { grep -q -- "$2" "$WORK/$1.err"; }

vigild_ready() {
  # The socket answering is not enough: the syscalls capability must also
  # have attached, or we would be timing vigild without its programs.
  "$VIGIL" status --agent "unix:$WORK/vigild.sock" --timeout 1s --json 2>/dev/null \
    | tr -d ' \n' | grep -q '"name":"syscalls","state":"CAPABILITY_STATE_RUNNING"'
}

is_number() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

# run_loop ITERS REPS : the workload with no tracer around it (attach-style
# tracers are already attached system-wide). Sets NS or FAIL.
run_loop() {
  local out
  if ! out=$("$LOOP" "$1" "$2" 2>&1); then FAIL="getppid_loop failed: $out"; return 1; fi
  is_number "$out" || { FAIL="getppid_loop printed \"$out\""; return 1; }
  NS=$out
}

# Attach-style tracers: start, wait until attached, time the loop, and check
# the tracer survived the whole run (otherwise part of it went untraced).
attached_run() {
  local name=$1 pid=$2 timeout=$3; shift 3
  if ! wait_ready "$name" "$pid" "$timeout" "$@"; then stop "$pid"; return 1; fi
  record_progs "$pid"
  sleep 0.5   # let startup work (compilation, first interval) get off the CPU
  if ! run_loop "$ITERS" "$REPS"; then stop "$pid"; return 1; fi
  if ! kill -0 "$pid" 2>/dev/null; then FAIL="exited during the run: $(reason_from "$WORK/$name.err")"; return 1; fi
  stop "$pid"
}

# Tracers that start the workload as their child, so it only runs once the
# tracer is in place. The loop's stdout is its own; tracer output goes to a file.
child_run() {
  local name=$1; shift
  start "$name" "$@"
  local pid=$STARTED rc=0
  wait "$pid" || rc=$?
  kill_group "$pid"   # nothing should be left in its group; make sure
  local out
  out=$(tr -d '[:space:]' <"$WORK/$name.out")
  if ((rc != 0)) || ! is_number "$out"; then
    FAIL="exit $rc: $(reason_from "$WORK/$name.err")"
    return 1
  fi
  NS=$out
}

tracefs_mounted() { awk -v m="$TRACEFS" '$2 == m && $3 == "tracefs" {f=1} END {exit !f}' /proc/mounts; }
TRACEFS_PROBLEM=""
ensure_tracefs() {
  tracefs_mounted && return 0
  if mount -t tracefs nodev "$TRACEFS" 2>"$WORK/mount.err"; then
    MOUNTED_TRACEFS=1
    log "mounted tracefs at $TRACEFS (unmounted at exit)"
  else
    TRACEFS_PROBLEM="tracefs not mountable: $(reason_from "$WORK/mount.err")"
  fi
}

# --- configurations -----------------------------------------------------------
# Each measure_* sets NS (ns/syscall) or FAIL (why it could not be measured).

measure_none() { run_loop "$ITERS" "$REPS"; }

measure_vigild() {
  [[ -x $VIGILD && -x $VIGIL ]] || { FAIL="vigild/vigil not built in $BUILD"; return 1; }
  rm -f "$WORK/vigild.sock"
  start vigild "${VIGILD_BIN:-$VIGILD}" --listen "unix:$WORK/vigild.sock" "$@"
  attached_run vigild "$STARTED" 20 vigild_ready
}
measure_vigild_on() { measure_vigild; }
measure_vigild_exact() { measure_vigild --syscalls-latency-sample 1; }
measure_vigild_sampled() { measure_vigild --syscalls-latency-sample "$SAMPLE"; }
measure_vigild_other() { VIGILD_BIN=$OTHER measure_vigild; }
measure_vigild_off() { measure_vigild --syscalls-latency off; }
# Without the profiler's sys_exit hook for large mmap/munmap/brk calls: the
# difference to vigild_on is what that hook adds to every syscall.
measure_vigild_nomap() { measure_vigild --profile-map-min-bytes 0; }

measure_floor() {
  [[ -x $FLOOR ]] || { FAIL="floor_loader not built in $BUILD"; return 1; }
  start floor "$FLOOR" "$@"
  attached_run floor "$STARTED" 10 out_has floor '^ready$'
}
measure_part_ktime() { measure_floor ktime; }
measure_part_storage() { measure_floor storage; }
measure_part_storage_both() { measure_floor storage_both; }
measure_part_prandom() { measure_floor prandom; }
measure_part_hash() { measure_floor hash; }

measure_strace() {
  command -v "$STRACE" >/dev/null || { FAIL="$STRACE not installed"; return 1; }
  child_run strace "$STRACE" -c -f -o "$WORK/strace.summary" -- "$LOOP" "$SLOW_ITERS" 1
}

measure_perf() {
  command -v "$PERF" >/dev/null || { FAIL="$PERF not installed"; return 1; }
  [[ -z $TRACEFS_PROBLEM ]] || { FAIL=$TRACEFS_PROBLEM; return 1; }
  child_run perf "$PERF" trace -s -o "$WORK/perf.summary" -- "$LOOP" "$SLOW_ITERS" 1
}

measure_bpftrace() {
  command -v "$BPFTRACE" >/dev/null || { FAIL="$BPFTRACE not installed"; return 1; }
  [[ -z $TRACEFS_PROBLEM ]] || { FAIL=$TRACEFS_PROBLEM; return 1; }
  # "Attaching N probes..." is printed before attaching, and BEGIN fires
  # before the tracepoint is attached too. With this test hook set, bpftrace
  # prints the variable's name on stderr once every probe is attached.
  start bpftrace env __BPFTRACE_NOTIFY_PROBES_ATTACHED=1 \
    "$BPFTRACE" -e 'tracepoint:raw_syscalls:sys_enter { @[tid] = count(); }'
  attached_run bpftrace "$STARTED" 30 err_has bpftrace '^__BPFTRACE_NOTIFY_PROBES_ATTACHED$'
}

measure_syscount() {
  command -v "$SYSCOUNT" >/dev/null || { FAIL="$SYSCOUNT not installed (libbpf-tools)"; return 1; }
  [[ -z $TRACEFS_PROBLEM ]] || { FAIL=$TRACEFS_PROBLEM; return 1; }
  # syscount prints "Tracing syscalls..." after attaching; stdbuf because
  # its stdout is a file here and would otherwise stay buffered.
  start syscount stdbuf -oL "$SYSCOUNT"
  attached_run syscount "$STARTED" 20 out_has syscount '^Tracing syscalls'
}

CONFIGS=(none vigild_on vigild_exact vigild_off vigild_nomap floor strace perf bpftrace syscount)
[[ -z $SAMPLE ]] || CONFIGS+=(vigild_sampled)
[[ -z $OTHER ]] || CONFIGS+=(vigild_other)
PART_CONFIGS=(part_ktime part_storage part_storage_both part_prandom part_hash)
((PARTS == 0)) || CONFIGS+=("${PART_CONFIGS[@]}")
if [[ -n $ONLY ]]; then
  picked=(none)
  IFS=, read -ra wanted <<<"$ONLY"
  for w in "${wanted[@]}"; do
    [[ $w == none ]] && continue
    [[ " ${CONFIGS[*]} ${PART_CONFIGS[*]} " == *" $w "* ]] || usage_error "--only: unknown configuration \"$w\" (vigild_other needs --other)"
    picked+=("$w")
  done
  CONFIGS=("${picked[@]}")
fi
declare -A LABEL=(
  [none]="no tracer"
  [vigild_on]="vigild (default: latency 1 in 16)"
  [vigild_exact]="vigild --syscalls-latency-sample 1"
  [vigild_sampled]="vigild --syscalls-latency-sample $SAMPLE"
  [vigild_other]="vigild $OTHER"
  [part_ktime]="floor + ktime at enter and exit"
  [part_storage]="floor + task storage get at exit"
  [part_storage_both]="floor + task storage get both"
  [part_prandom]="floor + prandom at enter"
  [part_hash]="floor + hash lookup at exit"
  [vigild_off]="vigild --syscalls-latency off"
  [vigild_nomap]="vigild --profile-map-min-bytes 0"
  [floor]="floor (empty tp_btf enter+exit)"
  [strace]="strace -c -f"
  [perf]="perf trace -s"
  [bpftrace]="bpftrace @[tid] = count()"
  [syscount]="syscount (libbpf-tools)"
)
declare -A BEST=() WORST=() ALL=() UNAVAIL=()

ensure_tracefs

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(loadavg)
log "load average $LOAD_START"
log "build $BUILD; $ROUNDS rounds; $ITERS calls x $REPS runs (strace/perf: $SLOW_ITERS x 1)"
for ((round = 1; round <= ROUNDS; round++)); do
  for c in "${CONFIGS[@]}"; do
    [[ -z ${UNAVAIL[$c]:-} ]] || continue
    NS="" FAIL=""
    if "measure_$c"; then
      log "round $round/$ROUNDS  ${LABEL[$c]}: $NS ns"
      ALL[$c]+="$NS "
      if [[ -z ${BEST[$c]:-} ]] || awk -v a="$NS" -v b="${BEST[$c]}" 'BEGIN {exit !(a < b)}'; then
        BEST[$c]=$NS
      fi
      if [[ -z ${WORST[$c]:-} ]] || awk -v a="$NS" -v b="${WORST[$c]}" 'BEGIN {exit !(a > b)}'; then
        WORST[$c]=$NS
      fi
    else
      # One failure is enough: retrying every round would only burn time,
      # and a best-of over partial rounds would not be comparable.
      log "round $round/$ROUNDS  ${LABEL[$c]}: unavailable ($FAIL)"
      UNAVAIL[$c]=$FAIL
      unset 'BEST[$c]'
    fi
  done
done

[[ -n ${BEST[none]:-} ]] || die "the no-tracer baseline could not be measured: ${UNAVAIL[none]:-unknown}"

# --- vigild idle cost -----------------------------------------------------------
IDLE_LINE=""
idle_vigild() {
  [[ -x $VIGILD && -x $VIGIL ]] || { IDLE_LINE="unavailable (vigild/vigil not built in $BUILD)"; return; }
  rm -f "$WORK/vigild.sock"
  start vigild "$VIGILD" --listen "unix:$WORK/vigild.sock"
  local pid=$STARTED
  if ! wait_ready vigild "$pid" 20 vigild_ready; then
    stop "$pid"; IDLE_LINE="unavailable ($FAIL)"; return
  fi
  record_progs "$pid"
  sleep 1   # skip the startup burst (BPF load, first interval)
  local hz t0 t1 c0 c1 rss
  hz=$(getconf CLK_TCK)
  # utime + stime are fields 14 and 15; the comm field before them is in
  # parentheses and may contain spaces, so split after the last ')'.
  cpu_ticks() { sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}'; }
  t0=$(date +%s.%N); c0=$(cpu_ticks)
  sleep "$IDLE_SECS"
  if ! vigild_ready; then
    stop "$pid"; IDLE_LINE="unavailable (vigild stopped answering while idle)"; return
  fi
  t1=$(date +%s.%N); c1=$(cpu_ticks)
  rss=$(awk '/^VmRSS:/ {printf "%.1f MiB", $2 / 1024}' "/proc/$pid/status")
  stop "$pid"
  IDLE_LINE=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v t0="$t0" -v t1="$t1" -v rss="$rss" 'BEGIN {
    printf "%.2f%% of one core over %.1f s (%d ticks of %.0f ms), VmRSS %s", \
      100 * c / hz / (t1 - t0), t1 - t0, c, 1000 / hz, rss }')
}
log "vigild idle for ${IDLE_SECS}s (default settings)"
idle_vigild

# --- report -------------------------------------------------------------------
median() { tr ' ' '\n' <<<"${ALL[$1]}" | grep . | sort -g | awk '{v[NR] = $1} END {
  printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
base=${BEST[none]}
mbase=$(median none)
echo
echo "getppid() cost under each tracer over $ROUNDS interleaved rounds: best and median"
echo "($ITERS calls x best of $REPS per round; strace and perf trace: $SLOW_ITERS calls x 1)"
echo
# spread: how far the worst round was above the best one. A large spread
# means the host was busy during the run and the best-of is less trustworthy.
printf '%-34s %11s %9s %11s %13s %8s\n' "configuration" "best ns" "ratio" "added ns" "median added" "spread"
printf '%-34s %11s %9s %11s %13s %8s\n' "-------------" "-------" "-----" "--------" "------------" "------"
for c in "${CONFIGS[@]}"; do
  if [[ -n ${BEST[$c]:-} ]]; then
    awk -v l="${LABEL[$c]}" -v t="${BEST[$c]}" -v w="${WORST[$c]}" -v b="$base" -v m="$(median "$c")" -v mb="$mbase" \
      'BEGIN { printf "%-34s %11.1f %8.2fx %11.1f %13.1f %7.0f%%\n", l, t, t / b, t - b, m - mb, 100 * (w / t - 1) }'
  else
    printf '%-34s %s\n' "${LABEL[$c]}" "unavailable (${UNAVAIL[$c]})"
  fi
done
echo
if [[ -n ${BEST[floor]:-} ]]; then
  for c in vigild_on vigild_exact vigild_sampled vigild_off vigild_nomap vigild_other "${PART_CONFIGS[@]}"; do
    [[ -n ${BEST[$c]:-} ]] || continue
    awk -v l="${LABEL[$c]}" -v v="${BEST[$c]}" -v f="${BEST[floor]}" -v b="$base" \
        -v mv="$(median "$c")" -v mf="$(median floor)" 'BEGIN {
      printf "%s above the floor: best %.1f, median %.1f ns/syscall (added %.1f vs floor %.1f)\n",
        l, v - f, mv - mf, v - b, f - b }'
  done
else
  echo "vigild above the floor: unavailable (floor: ${UNAVAIL[floor]:-not measured})"
fi
echo "vigild idle (default settings): $IDLE_LINE"
echo "load average at start $LOAD_START, at end $(loadavg) (1/5/15 min, $(nproc) CPUs)"

# No tracer can make a syscall cheaper, so a configuration beating the
# baseline, or a baseline that moved a lot between rounds, means something
# else was competing for the CPUs: say so rather than let the table pass.
noisy=$(for c in "${CONFIGS[@]}"; do
  [[ -n ${BEST[$c]:-} ]] || continue
  awk -v c="${LABEL[$c]}" -v t="${BEST[$c]}" -v w="${WORST[$c]}" -v b="$base" -v isbase=$([[ $c == none ]] && echo 1 || echo 0) 'BEGIN {
    if (isbase && w > 1.15 * t) printf "no-tracer rounds varied by %.0f%%; ", 100 * (w / t - 1)
    if (!isbase && t < b) printf "%s came out faster than no tracer; ", c }'
done)
if [[ -n $FOREIGN_AT_START ]]; then
  noisy+="vigil_/floor_ programs were already loaded at start (--ignore-loaded); "
fi
if [[ -n $noisy ]]; then
  echo
  echo "WARNING: these numbers are unreliable: ${noisy%; }."
  echo "Rerun on an idle machine with no other vigild (or with more --rounds)."
fi

# Peers may be missing on a given machine, but vigild and the floor are what
# this benchmark is for: without them the run did not do its job.
for c in vigild_on vigild_off floor; do
  [[ " ${CONFIGS[*]} " == *" $c "* ]] || continue
  [[ -z ${UNAVAIL[$c]:-} ]] || die "${LABEL[$c]} could not be measured: ${UNAVAIL[$c]}"
done
