#!/usr/bin/env bash
# Installs the Debian 12 packages Vigil needs to build, run and test.
# Idempotent and non-interactive: packages already present are skipped.
#   deploy/install-deps.sh          build + run dependencies
#   deploy/install-deps.sh --test   also the peers the tests and benchmarks compare against
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config git dpkg-dev
  clang llvm
  libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev libzstd-dev liblzma-dev
  libbpfcc-dev libdebuginfod-dev
  libabsl-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc libre2-dev
  libcli11-dev
  libgtest-dev libgmock-dev
  libsystemd-dev libcpp-httplib-dev
  libncurses-dev
  iproute2 procps
)
# clang-14 (clang++-14) and clang-format: the style checks in tests/style;
# libclang-rt-14-dev: libFuzzer for tests/fuzz; debuginfod (the server) and
# xz-utils: tests/e2e/symbols_test.cc serves a split-off debug file and
# builds a MiniDebugInfo binary; gdb: the .debug_frame unwinding reference
# (perf's libunwind reads only .eh_frame); tmux: drives vigil top's
# interactive view in tests/e2e/top_e2e_test.cc; libfuse3-dev, fuse3: a FUSE
# server that hangs, for tests/e2e/stall_e2e_test.cc.
test_pkgs=(strace linux-perf bpftrace libbpf-tools openssl systemd prometheus curl golang-go chromium
  qemu-system-x86 debootstrap e2fsprogs jq clang-14 libclang-rt-14-dev clang-format debuginfod
  xz-utils gdb tmux libfuse3-dev fuse3)

want=("${build_pkgs[@]}")
case "${1:-}" in
  --test) want+=("${test_pkgs[@]}") ;;
  "") ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: must run as root (apt-get install)" >&2
  exit 1
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
