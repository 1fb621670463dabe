#!/bin/bash
# Builds the libFuzzer targets with clang-14 (ASan + UBSan) and runs each
# for SECONDS on a seed corpus of real files. Exit 0: no crash, no sanitizer
# report, no input over the time bound.
#   tests/fuzz/run.sh SOURCE_DIR OUT_DIR [SECONDS]
set -euo pipefail
src=$(cd "$1" && pwd)
out=$2
seconds=${3:-60}
mkdir -p "$out/corpus/cfi"
command -v clang++-14 >/dev/null || { echo "fuzz: clang++-14 missing (deploy/install-deps.sh --test)" >&2; exit 1; }

flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$src" -I"$src/bpf")
libs=$(pkg-config --libs absl_statusor absl_strings absl_time absl_synchronization absl_flat_hash_map absl_flat_hash_set absl_hash libdw libelf libbpf)
echo "fuzz: building cfi_fuzz in $out" >&2
# shellcheck disable=SC2086
clang++-14 "${flags[@]}" "$src/tests/fuzz/cfi_fuzz.cc" "$src/agent/profile/cfi_compiler.cc" \
  "$src/agent/profile/unwind_tables.cc" -o "$out/cfi_fuzz" $libs

# Seeds: Debian's own ELF files (small ones whole, plus the vDSO-sized head
# of bigger ones) and a real maps file.
for f in /usr/bin/xz /usr/lib/x86_64-linux-gnu/liblzma.so.5 /usr/bin/true /usr/bin/env; do
  [ -r "$f" ] && cp -L "$f" "$out/corpus/cfi/$(basename "$f")"
done
head -c 65536 /lib/x86_64-linux-gnu/libc.so.6 > "$out/corpus/cfi/libc-head"
cat /proc/self/maps > "$out/corpus/cfi/maps"

echo "fuzz: cfi_fuzz for ${seconds}s" >&2
"$out/cfi_fuzz" -max_total_time="$seconds" -max_len=262144 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/" -print_final_stats=1 "$out/corpus/cfi" 2>&1 | tail -25
