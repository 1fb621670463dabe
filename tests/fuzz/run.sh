#!/bin/bash
# Builds the libFuzzer targets with clang-14 (ASan + UBSan) and runs each
# for SECONDS on a seed corpus of real files. Exit 0: no crash, no sanitizer
# report, no input over the time bound.
#   tests/fuzz/run.sh SOURCE_DIR OUT_DIR [SECONDS]
set -euo pipefail
src=$(cd "$1" && pwd)
out=$2
seconds=${3:-60}
mkdir -p "$out/corpus/cfi" "$out/corpus/symbols"
command -v clang++-14 >/dev/null || { echo "fuzz: clang++-14 missing (deploy/install-deps.sh --test)" >&2; exit 1; }

flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$src" -I"$src/bpf")
libs=$(pkg-config --libs absl_statusor absl_strings absl_time absl_synchronization absl_flat_hash_map absl_flat_hash_set absl_hash libdw libelf libbpf liblzma)
echo "fuzz: building cfi_fuzz in $out" >&2
# shellcheck disable=SC2086
clang++-14 "${flags[@]}" "$src/tests/fuzz/cfi_fuzz.cc" "$src/agent/profile/cfi_compiler.cc" \
  "$src/agent/profile/unwind_tables.cc" -o "$out/cfi_fuzz" $libs

echo "fuzz: building symbols_fuzz in $out" >&2
# shellcheck disable=SC2086
clang++-14 "${flags[@]}" "$src/tests/fuzz/symbols_fuzz.cc" "$src/agent/profile/elf_info.cc" \
  "$src/agent/profile/perf_map.cc" -o "$out/symbols_fuzz" $libs

# Seeds: Debian's own ELF files (small ones whole, plus the vDSO-sized head
# of bigger ones) and a real maps file.
for f in /usr/bin/xz /usr/lib/x86_64-linux-gnu/liblzma.so.5 /usr/bin/true /usr/bin/env; do
  [ -r "$f" ] && cp -L "$f" "$out/corpus/cfi/$(basename "$f")"
done
head -c 65536 /lib/x86_64-linux-gnu/libc.so.6 > "$out/corpus/cfi/libc-head"
cat /proc/self/maps > "$out/corpus/cfi/maps"
# The symbolizer's: small ELF files (one with MiniDebugInfo: Debian's
# stripped binaries carry none, so the build's own is used when present)
# and a perf map.
for f in /usr/bin/true /usr/bin/env "$out/../tests/stripped_spin_split/minidebuginfo"; do
  [ -r "$f" ] && cp -L "$f" "$out/corpus/symbols/$(basename "$f")"
done
printf '7f0000001000 40 LazyCompile:~main /tmp/x.js:1\n7f0000001040 20 Builtin:Call\n' \
  > "$out/corpus/symbols/perf.map"

half=$(( (seconds + 1) / 2 ))
echo "fuzz: symbols_fuzz for ${half}s" >&2
"$out/symbols_fuzz" -max_total_time="$half" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/symbols-" -print_final_stats=1 "$out/corpus/symbols" 2>&1 | tail -12

echo "fuzz: cfi_fuzz for ${seconds}s" >&2
"$out/cfi_fuzz" -max_total_time="$seconds" -max_len=262144 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/" -print_final_stats=1 "$out/corpus/cfi" 2>&1 | tail -25
