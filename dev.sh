#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine, as root:
#   bash dev.sh run     install what is missing, build, start vigild and watch
#                       per-thread syscalls live (Ctrl-C stops both)
#   bash dev.sh test    install what is missing, build with -Werror, run the
#                       whole CTest suite (the VM stage, label vm, last)
#   bash dev.sh build   install and build only
#   bash dev.sh bench   run the benchmarks in tests/bench (not part of test)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }

build() {
  # -Werror always: one build serves run and test, as in CI.
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_WERROR=ON >/dev/null
  echo "dev.sh: building (this takes a minute on 2 cores)" >&2
  cmake --build build -j"$(nproc)"
}

cmd="${1:-}"
case "$cmd" in
  run)
    deploy/install-deps.sh
    build
    sock=/run/vigil/vigild.sock
    build/vigild --listen "unix:$sock" &
    vigild_pid=$!
    # Without job control a background job ignores SIGINT, so Ctrl-C reaches
    # only this script and the CLI; stop vigild explicitly.
    trap 'kill -TERM "$vigild_pid" 2>/dev/null; wait "$vigild_pid" 2>/dev/null || true' EXIT
    trap 'exit 0' INT TERM
    for _ in $(seq 100); do
      build/vigil status --agent "unix:$sock" --timeout 1s >/dev/null 2>&1 && break
      kill -0 "$vigild_pid" 2>/dev/null || { echo "dev.sh: vigild failed to start" >&2; exit 1; }
      sleep 0.1
    done
    build/vigil syscalls --agent "unix:$sock" --since 10s --sort calls --top 6 --top-syscalls 6 --watch || true
    ;;
  test)
    deploy/install-deps.sh --test
    build
    cd build
    # The VM stage (label vm) runs alone, after the rest: qemu wants both cores.
    rc=0
    ctest --output-on-failure -j"$(nproc)" -LE vm || rc=$?
    ctest --output-on-failure -L vm || rc=$?
    exit "$rc"
    ;;
  build)
    deploy/install-deps.sh
    build
    ;;
  bench)
    deploy/install-deps.sh --test
    build
    build/tests/udpdrops_bench --seconds 5
    bash tests/bench/syscall_overhead.sh build
    bash tests/bench/profile_overhead.sh build
    bash tests/bench/fault_bench.sh build
    ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
