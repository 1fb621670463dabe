#!/usr/bin/env bash
# Checks that the C/C++ sources are clang-formatted (Debian 12's clang-format 14):
#   tests/style/check_format.sh SRC_DIR         list the files that are not
#                                               formatted; exit 1 if any
#   tests/style/check_format.sh --fix SRC_DIR   format them in place instead
# Files: the tracked .c/.cc/.h/.cpp/.hpp under agent/ client/ bpf/ tests/
# common/ (git ls-files; every such file when SRC_DIR is not a git checkout),
# minus bpf/vmlinux/ (generated). Style: the nearest .clang-format (Google,
# 100 columns; kernel style under bpf/), except that BPF programs elsewhere
# (tests/**/*.bpf.c) take bpf/.clang-format too.
# CLANG_FORMAT overrides the binary.
set -euo pipefail

fix=0
if [ "${1:-}" = "--fix" ]; then
  fix=1
  shift
fi
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 [--fix] SRC_DIR" >&2
  exit 2
fi
src=$(cd "$1" && pwd)

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
  for c in clang-format-14 clang-format; do
    if command -v "$c" >/dev/null; then cf=$c; break; fi
  done
fi
if [ -z "$cf" ]; then
  echo "check_format: no clang-format (deploy/install-deps.sh --test installs clang-format)" >&2
  exit 2
fi
ver=$("$cf" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$ver" != 14 ]; then
  echo "check_format: warning: $cf is version ${ver:-?}, the style is pinned to clang-format 14" >&2
fi

dirs=(agent client bpf tests common)
cd "$src"
files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do files+=("$f"); done < <(git ls-files -z -- "${dirs[@]/%//}")
else
  existing=()
  for d in "${dirs[@]}"; do [ -d "$d" ] && existing+=("$d"); done
  if [ "${#existing[@]}" -gt 0 ]; then
    while IFS= read -r -d '' f; do files+=("${f#./}"); done \
      < <(find "${existing[@]}" -type f -print0 | sort -z)
  fi
fi

checked=0
bad=()
for f in "${files[@]}"; do
  case "$f" in
    bpf/vmlinux/*) continue ;;
    *.c | *.cc | *.h | *.cpp | *.hpp) ;;
    *) continue ;;
  esac
  [ -f "$f" ] || continue  # deleted but not yet staged
  style=(--style=file)
  case "$f" in
    bpf/*) ;;
    *.bpf.c) style=(--style=file:"$src/bpf/.clang-format") ;;
  esac
  checked=$((checked + 1))
  if [ "$fix" -eq 1 ]; then
    "$cf" "${style[@]}" -i "$f"
  elif ! "$cf" "${style[@]}" --dry-run -Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done

if [ "$fix" -eq 1 ]; then
  echo "check_format: formatted $checked files"
  exit 0
fi
if [ "${#bad[@]}" -gt 0 ]; then
  printf '%s\n' "${bad[@]}"
  echo "check_format: ${#bad[@]} of $checked files are not clang-formatted" \
    "(tests/style/check_format.sh --fix $1 formats them)" >&2
  exit 1
fi
echo "check_format: all $checked files are clang-formatted"
