#!/usr/bin/env bash
# Clang's thread-safety analysis over the absl::Mutex / ABSL_GUARDED_BY
# annotations (GCC, which builds Vigil, ignores them):
#   tests/style/check_thread_safety.sh BUILD_DIR
# Reads BUILD_DIR/compile_commands.json (the top-level CMakeLists always
# writes it; the generated headers must exist, i.e. build first) and runs
# clang++-14 -fsyntax-only -Wthread-safety -Werror=thread-safety on every
# translation unit under agent/, client/ and common/ of the source tree, two at
# a time. The build's own warning flags are dropped (this check reports
# thread-safety only); flags clang rejects are dropped too. Exits 1 if any
# unit has a thread-safety warning (or clang cannot compile it), printing the
# diagnostics. CLANGXX overrides the compiler.
set -euo pipefail
self=$(readlink -f "$0")

# Worker: one translation unit; ARGFILE holds directory, source, then the
# clang arguments, NUL-separated.
if [ "${1:-}" = "--one" ]; then
  mapfile -d '' a < "$2"
  dir=${a[0]} file=${a[1]}
  cd "$dir"
  if "${a[@]:2}" > "$2.log" 2>&1; then
    rm -f "$2.log"
  else
    echo "$file" > "$2.failed"
  fi
  exit 0
fi

if [ $# -ne 1 ] || [ ! -f "$1/compile_commands.json" ]; then
  echo "usage: $0 BUILD_DIR (with compile_commands.json: configure with CMake first)" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
if [ -z "$src" ] || [ ! -d "$src" ]; then
  echo "check_thread_safety: no source dir in $build/CMakeCache.txt" >&2
  exit 2
fi
for tool in jq; do
  command -v "$tool" >/dev/null || { echo "check_thread_safety: $tool missing (deploy/install-deps.sh --test)" >&2; exit 2; }
done
cxx=${CLANGXX:-}
if [ -z "$cxx" ]; then
  for c in clang++-14 clang++; do
    if command -v "$c" >/dev/null; then cxx=$c; break; fi
  done
fi
if [ -z "$cxx" ]; then
  echo "check_thread_safety: no clang++-14 (deploy/install-deps.sh --test installs clang-14)" >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One entry per source file: directory, file and the command as a
# shell-quoted string (CMake writes "command"; other generators may write an
# "arguments" array, quoted here by jq's @sh).
n=0
while IFS= read -r -d '' dir && IFS= read -r -d '' file && IFS= read -r -d '' cmd; do
  case "$file" in
    "$src"/agent/* | "$src"/client/* | "$src"/common/*) ;;
    *) continue ;;
  esac
  eval "words=($cmd)"
  args=("$cxx" -fsyntax-only -Qunused-arguments)
  skip=0
  for w in "${words[@]:1}"; do
    if [ "$skip" -eq 1 ]; then skip=0; continue; fi
    case "$w" in
      -o | -MF | -MT | -MQ) skip=1 ;;     # outputs and dependency files
      -c | -MD | -MMD) ;;
      -Wl,* | -Wa,* | -Wp,*) args+=("$w") ;;
      -W* | -pedantic*) ;;                # the build's warnings (and -Werror)
      -fdiagnostics-color* | -fno-diagnostics-color) ;;
      # GCC-only flags clang rejects.
      -fno-var-tracking* | -fvar-tracking* | -fconcepts* | -fno-gnu-unique | -fmax-errors=*) ;;
      *) args+=("$w") ;;
    esac
  done
  args+=(-Wno-unknown-warning-option -Wthread-safety -Werror=thread-safety)
  n=$((n + 1))
  printf '%s\0' "$dir" "$file" "${args[@]}" > "$work/$n"
done < <(jq -j 'unique_by(.file) | .[] | .directory, "\u0000", .file, "\u0000",
                 (.command // (.arguments | @sh)), "\u0000"' "$build/compile_commands.json")

if [ "$n" -eq 0 ]; then
  echo "check_thread_safety: no translation units under $src/{agent,client,common}" >&2
  exit 2
fi

seq 1 "$n" | sed "s|^|$work/|" | xargs -P2 -n1 bash "$self" --one

failed=0
for f in "$work"/*.failed; do
  [ -e "$f" ] || continue
  failed=$((failed + 1))
  cat "${f%.failed}.log"
done
if [ "$failed" -gt 0 ]; then
  warnings=$(cat "$work"/*.log | grep -c -- '-Wthread-safety' || true)
  echo "check_thread_safety: $failed of $n translation units failed" \
    "($warnings thread-safety diagnostics, $cxx)" >&2
  exit 1
fi
echo "check_thread_safety: $n translation units, no thread-safety warnings ($cxx)"
