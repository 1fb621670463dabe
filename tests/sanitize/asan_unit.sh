#!/usr/bin/env bash
# The unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (GCC's,
# no extra packages): a separate build of the agent and client libraries and
# unit_tests in BUILD_DIR/asan, then one run that fails on the first report.
#   tests/sanitize/asan_unit.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(readlink -f "$1")
out=$(readlink -f "$2")/asan
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Debug -DVIGIL_WERROR=OFF -DVIGIL_STYLE_CHECKS=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
echo "asan_unit: building unit_tests with ASan+UBSan in $out (minutes on 2 cores)" >&2
cmake --build "$out" -j"$(nproc)" --target unit_tests >/dev/null
# detect_leaks: a leak fails the run like any other report.
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  "$out/tests/unit_tests" --gtest_brief=1
