#!/usr/bin/env bash
# The CLI's own cost as a user sees it (not a CTest test): process start
# (`vigil --version`) and process start plus one RPC (`vigil status`, no
# merge) against an idle vigild with its defaults, beside /bin/true (fork +
# exec, the floor) and, when given, another vigil binary (e.g. one built
# with -DVIGIL_STATIC_CLI=OFF) in the same interleaved rounds.
#   bash tests/bench/cli_start.sh [--runs N] [--other PATH] [BUILD_DIR]   (as root)
# Prints p50 / p95 / p99 in ms per command.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
runs=200 other="" build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --other) other=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) echo "cli_start: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
vigild="$build/vigild" vigil="$build/vigil"
for b in "$vigild" "$vigil" ${other:+"$other"}; do
  [ -x "$b" ] || { echo "cli_start: $b missing (build first)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/vigil-cli-bench.XXXXXX)
vpid=""
cleanup() {
  [ -n "$vpid" ] && kill "$vpid" 2>/dev/null && wait "$vpid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

sock="unix:$tmp/vigild.sock"
# vigild start (every default capability loaded and attached) to its first
# answer, 5 starts; the polling CLI's own start is inside the figure.
starts=()
for n in 1 2 3 4 5; do
  s=${EPOCHREALTIME/./}
  "$vigild" --listen "$sock" >"$tmp/vigild.log" 2>&1 &
  vpid=$!
  ok=""
  for _ in $(seq 1000); do
    if "$vigil" status --agent "$sock" --timeout 1s >/dev/null 2>&1; then ok=1; break; fi
  done
  e=${EPOCHREALTIME/./}
  [ -n "$ok" ] || { echo "cli_start: vigild did not answer: $(cat "$tmp/vigild.log")" >&2; exit 1; }
  starts+=($(((e - s) / 1000)))
  [ "$n" = 5 ] && break
  kill "$vpid"; wait "$vpid" 2>/dev/null || true; vpid=""
done
sleep 3  # past its first intervals: idle from here

names=("true" "vigil --version" "vigil status")
cmds=("/bin/true" "$vigil --version" "$vigil status --agent $sock")
if [ -n "$other" ]; then
  names+=("other --version" "other status")
  cmds+=("$other --version" "$other status --agent $sock")
fi
# Interleaved: one run of each command per round, so drift hits all alike.
for _ in $(seq "$runs"); do
  for i in "${!cmds[@]}"; do
    s=${EPOCHREALTIME/./}  # bash's clock, in µs: no fork of its own
    ${cmds[$i]} >/dev/null
    e=${EPOCHREALTIME/./}
    echo $((e - s)) >>"$tmp/$i.us"
  done
done
pct() { sort -n "$1" | awk -v q="$2" '{a[NR]=$1} END {i=int(NR*q+0.5); if (i<1) i=1; printf "%.1f", a[i] / 1e3}'; }
printf 'cli_start: %s runs each, interleaved; vigild idle, defaults; %s\n' "$runs" "$(uname -r)"
[ -n "$other" ] && printf 'other: %s\n' "$other"
printf 'vigild start to first answer (ms, 5 starts): %s\n' "${starts[*]}"
printf '%-18s %8s %8s %8s\n' "command" "p50 ms" "p95 ms" "p99 ms"
for i in "${!cmds[@]}"; do
  printf '%-18s %8s %8s %8s\n' "${names[$i]}" "$(pct "$tmp/$i.us" 0.50)" "$(pct "$tmp/$i.us" 0.95)" \
    "$(pct "$tmp/$i.us" 0.99)"
done
