#!/bin/bash
# Builds the libFuzzer targets with clang-14 (ASan + UBSan) and runs each,
# one at a time with one job, for SECONDS on its seed corpus. Exit 0: no
# crash, no sanitizer report, no input over the time bound.
#   tests/fuzz/run.sh SECONDS [TARGET...]                  (in build/fuzz)
#   tests/fuzz/run.sh SOURCE_DIR OUT_DIR SECONDS [TARGET...]
# Targets: cfi symbols settings cli requests proc (default: all). Each is
# built from only the sources it needs; objects are kept in OUT_DIR/obj and
# rebuilt when a source or a header it includes changes, so a second run
# costs a link. Seeds: tests/fuzz/corpus/TARGET (committed; read only) plus
# OUT_DIR/corpus/TARGET, where libFuzzer adds what it finds.
set -euo pipefail
if [[ $# -ge 1 && $1 =~ ^[0-9]+$ ]]; then
  src=$(cd "$(dirname "$0")/../.." && pwd)
  out=$src/build/fuzz
else
  [[ $# -ge 3 ]] || { echo "usage: $0 SECONDS [TARGET...] | SOURCE_DIR OUT_DIR SECONDS [TARGET...]" >&2; exit 2; }
  src=$(cd "$1" && pwd)
  out=$2
  shift 2
fi
seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(settings cli requests proc symbols cfi)
mkdir -p "$out"
out=$(cd "$out" && pwd)
command -v clang++-14 >/dev/null || { echo "fuzz: clang++-14 missing (deploy/install-deps.sh --test)" >&2; exit 1; }

gen=$out/gen
cflags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
        -fno-sanitize-recover=undefined -DVIGIL_VERSION=\"fuzz\" -I"$src" -I"$src/bpf" -I"$gen" -I"$out")
ldflags=(-fsanitize=fuzzer,address,undefined)
absl_pc="absl_statusor absl_strings absl_str_format absl_time absl_synchronization absl_flat_hash_map
  absl_flat_hash_set absl_hash"

# The vigil.v1 and pprof messages, generated here so the fuzz build needs no
# CMake tree; regenerated when a .proto changes.
protos() {
  local p=$src/proto
  mkdir -p "$gen"
  if [[ ! -e $gen/vigil/v1/vigil.grpc.pb.cc || $p/vigil/v1/vigil.proto -nt $gen/vigil/v1/vigil.grpc.pb.cc ||
        $p/vigil/v1/fleet.proto -nt $gen/vigil/v1/vigil.grpc.pb.cc ||
        $p/perftools/profile.proto -nt $gen/vigil/v1/vigil.grpc.pb.cc ]]; then
    echo "fuzz: protoc" >&2
    protoc --proto_path="$p" --cpp_out="$gen" --grpc_out="$gen" \
      --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" "$p/vigil/v1/vigil.proto"
    protoc --proto_path="$p" --cpp_out="$gen" "$p/vigil/v1/fleet.proto" "$p/perftools/profile.proto"
    touch "$gen/vigil/v1/vigil.grpc.pb.cc"
  fi
  # The syscall names, as cmake/SyscallTable.cmake writes them.
  local unistd=/usr/include/x86_64-linux-gnu/asm/unistd_64.h
  [[ -r $unistd ]] || unistd=/usr/include/asm-generic/unistd.h
  if [[ ! -e $gen/syscall_table.inc || $unistd -nt $gen/syscall_table.inc ]]; then
    sed -nE 's/^#define __NR[3264]*_([a-z0-9_]+)[[:space:]]+([0-9]+).*/    {\2, "\1"},/p' "$unistd" \
      > "$gen/syscall_table.inc"
  fi
}

# obj FILE: compiles FILE (under $src or $gen) to $out/obj/..., unless the
# object is newer than the source and every header its .d file lists.
objs=()
obj() {
  local f=$1 rel o d stale=0
  case $f in
    /*) rel=${f#"$out/"} ;;
    *) rel=$f; f=$src/$f ;;
  esac
  o=$out/obj/${rel%.cc}.o
  d=${o%.o}.d
  if [[ ! -e $o || ! -e $d ]]; then
    stale=1
  else
    local dep
    for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$d"); do
      if [[ ! -e $dep || $dep -nt $o ]]; then stale=1; break; fi
    done
  fi
  if [[ $stale == 1 ]]; then
    mkdir -p "$(dirname "$o")"
    echo "fuzz: cc $rel" >&2
    clang++-14 "${cflags[@]}" -MMD -MF "$d" -c "$f" -o "$o"
  fi
  objs+=("$o")
}

# link TARGET PKGS SOURCES...: the fuzzer binary $out/TARGET_fuzz.
link() {
  local t=$1 pkgs=$2
  shift 2
  objs=()
  obj "tests/fuzz/${t}_fuzz.cc"
  local s
  for s in "$@"; do obj "$s"; done
  echo "fuzz: link ${t}_fuzz" >&2
  # shellcheck disable=SC2046,SC2086
  clang++-14 "${ldflags[@]}" "${objs[@]}" -o "$out/${t}_fuzz" $(pkg-config --libs $pkgs)
}

pb=("$gen/vigil/v1/vigil.pb.cc")
build() {
  case $1 in
    cfi)
      link cfi "$absl_pc libdw libelf libbpf liblzma" agent/profile/cfi_compiler.cc agent/profile/proc_maps.cc \
        agent/profile/unwind_tables.cc common/read_file.cc ;;
    symbols)
      link symbols "$absl_pc libdw libelf libbpf liblzma" agent/profile/elf_info.cc \
        agent/profile/perf_map.cc ;;
    settings)
      link settings "$absl_pc re2 grpc++ protobuf" agent/settings.cc agent/setting_values.cc \
        agent/spin/spin_settings.cc \
        agent/spin/spin_detector.cc agent/server/listen.cc common/duration.cc common/regex.cc common/safe_text.cc \
        common/read_file.cc ;;
    cli)
      link cli "$absl_pc re2 grpc++ protobuf zlib ncursesw" client/runner.cc client/flags.cc \
        client/format.cc client/fleet.cc client/agent_client.cc client/syscalls_cmd.cc \
        client/drops_cmd.cc client/status_cmd.cc client/hot_cmd.cc client/profile_cmd.cc \
        client/profile_export.cc client/alerts_cmd.cc client/memory_cmd.cc client/top_cmd.cc \
        client/top_format.cc client/trace_cmd.cc client/probe_cmd.cc common/duration.cc \
        common/regex.cc common/safe_text.cc common/safe_proto.cc common/json_line.cc common/pprof.cc \
        common/read_file.cc "${pb[@]}" "$gen/vigil/v1/vigil.grpc.pb.cc" "$gen/vigil/v1/fleet.pb.cc" \
        "$gen/perftools/profile.pb.cc" ;;
    requests)
      link requests "$absl_pc re2 protobuf zlib libbpf" agent/syscalls/syscalls_aggregate.cc \
        agent/syscalls/syscall_table.cc agent/bpf_util.cc \
        agent/profile/profile_aggregate.cc agent/profile/frame.cc agent/memory/memory_aggregate.cc \
        agent/udpdrops/udpdrops_aggregate.cc agent/udpdrops/kernel_btf.cc \
        agent/store/window_store.cc agent/store/shared_answers.cc agent/alerts/alert_stream.cc agent/alerts/alert_book.cc \
        agent/alerts/on_alert.cc agent/metrics/exposition.cc agent/metrics/pprof_http.cc \
        common/duration.cc common/regex.cc common/safe_text.cc common/safe_proto.cc \
        common/json_line.cc common/pprof.cc "${pb[@]}" "$gen/perftools/profile.pb.cc" ;;
    proc)
      link proc "$absl_pc re2 protobuf libdw libelf libbpf liblzma" agent/profile/proc_maps.cc \
        agent/profile/unwind_tables.cc agent/profile/cfi_compiler.cc \
        agent/memory/cgroup_reader.cc agent/udpdrops/owner_cache.cc agent/spin/spin_signal.cc \
        agent/spin/spin_detector.cc agent/profile/profile_aggregate.cc agent/profile/frame.cc \
        agent/syscalls/syscalls_aggregate.cc agent/syscalls/syscall_table.cc common/regex.cc \
        common/duration.cc common/read_file.cc "${pb[@]}" ;;
    *)
      echo "fuzz: unknown target $1" >&2
      exit 2 ;;
  esac
}

# Seeds the committed corpus cannot hold: Debian's own ELF files (small
# ones whole, plus the head of libc), the build's MiniDebugInfo binary and
# this process's maps.
extra_seeds() {
  case $1 in
    cfi)
      for f in /usr/bin/xz /usr/lib/x86_64-linux-gnu/liblzma.so.5 /usr/bin/true /usr/bin/env; do
        [ -r "$f" ] && cp -L "$f" "$out/corpus/cfi/$(basename "$f")"
      done
      head -c 65536 /lib/x86_64-linux-gnu/libc.so.6 > "$out/corpus/cfi/libc-head"
      cat /proc/self/maps > "$out/corpus/cfi/maps" ;;
    symbols)
      for f in /usr/bin/true /usr/bin/env "$out/../tests/stripped_spin_split/minidebuginfo"; do
        [ -r "$f" ] && cp -L "$f" "$out/corpus/symbols/$(basename "$f")"
      done ;;
  esac
  return 0
}

max_len() {
  case $1 in
    cfi) echo 262144 ;;
    symbols) echo 65536 ;;
    *) echo 16384 ;;
  esac
}

protos
for t in "${targets[@]}"; do build "$t"; done
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t"
  extra_seeds "$t"
  seeds=()
  [[ -d $src/tests/fuzz/corpus/$t ]] && seeds=("$src/tests/fuzz/corpus/$t")
  dict=()
  [[ -f $src/tests/fuzz/$t.dict ]] && dict=(-dict="$src/tests/fuzz/$t.dict")
  echo "fuzz: ${t}_fuzz for ${seconds}s" >&2
  # The last lines: cov, ft, corpus and exec/s of the final pulse, then the
  # stats (number_of_executed_units, peak_rss_mb).
  "$out/${t}_fuzz" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$out/$t-" -print_final_stats=1 \
    "${dict[@]}" "$out/corpus/$t" "${seeds[@]}" > "$out/$t.log" 2>&1 || {
    tail -60 "$out/$t.log"
    echo "fuzz: ${t}_fuzz FAILED (log: $out/$t.log, input: $out/$t-*)" >&2
    exit 1
  }
  grep -E '^#[0-9]+' "$out/$t.log" | tail -1
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$out/$t.log"
done
