#!/usr/bin/env bash
# Splits a binary built with -g (tests/workloads/stripped_spin.c) the ways the
# symbol tests need:
#   OUT/stripped            stripped, no .gnu_debuglink (found by build-id only)
#   OUT/srv/NAME.debug      its debug file, alone in the dir debuginfod serves
#   OUT/minidebuginfo       stripped, with .gnu_debugdata (Fedora's recipe,
#                           https://fedoraproject.org/wiki/Features/MiniDebugInfo)
# usage: split_debug.sh BIN OUT OBJCOPY STRIP NM XZ (XZ empty: no minidebuginfo)
set -euo pipefail
bin=$1 out=$2 objcopy=$3 strip=$4 nm=$5 xz=${6:-}
name=$(basename "$bin")
rm -rf "$out"
mkdir -p "$out/srv"
"$objcopy" --only-keep-debug "$bin" "$out/srv/$name.debug"
"$strip" --strip-all -o "$out/stripped" "$bin"

if [ -n "$xz" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # Function symbols that the dynamic symbol table does not already hold.
  "$nm" -D "$bin" --format=posix --defined-only | awk '{ print $1 }' | sort > "$tmp/dynsyms"
  "$nm" "$bin" --format=posix --defined-only |
    awk '{ if ($2 == "T" || $2 == "t" || $2 == "D") print $1 }' | sort > "$tmp/funcsyms"
  comm -13 "$tmp/dynsyms" "$tmp/funcsyms" > "$tmp/keep_symbols"
  "$objcopy" --only-keep-debug "$bin" "$tmp/debug"
  "$objcopy" -S --remove-section .gdb_index --remove-section .comment \
    --keep-symbols="$tmp/keep_symbols" "$tmp/debug" "$tmp/mini_debuginfo"
  "$strip" --strip-all -R .comment -o "$out/minidebuginfo" "$bin"
  "$xz" -f "$tmp/mini_debuginfo"
  "$objcopy" --add-section .gnu_debugdata="$tmp/mini_debuginfo.xz" "$out/minidebuginfo"
fi
