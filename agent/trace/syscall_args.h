// How `vigil trace` prints a syscall's arguments: one table of the common
// syscalls' argument kinds (strace's view of them), decoded into text. The
// same table tells the kernel side which arguments are strings to copy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

struct vigil_trace_event;

namespace vigil {

// Bit i set when argument i of syscall `nr` is a NUL-terminated string (the
// kernel copies those at entry; bpf/trace.h str_args).
uint8_t StringArgMask(int nr);

// The path behind a process's file descriptors: read once from
// /proc/PID/fd/N when first shown, dropped when a call closes or reuses the
// number. Bounded: at most max_entries descriptors are remembered.
class FdPaths {
 public:
  explicit FdPaths(size_t max_entries = 4096) : max_entries_(max_entries) {}
  // The path, or "" when unknown (no such fd, or not readable).
  std::string Get(uint32_t pid, int64_t fd);
  // What a returned call changes: close and calls returning a new descriptor
  // make the number's old path stale.
  void Learn(const vigil_trace_event& e);
  void Forget(uint32_t pid, int64_t fd);

 private:
  size_t max_entries_;
  absl::flat_hash_map<std::pair<uint32_t, int64_t>, std::string> paths_;
};

// The decoded arguments as strace prints them; an unknown syscall gets all
// six registers in hex. Strings are quoted and escaped, with "..." when cut.
std::vector<std::string> DecodeArgs(const vigil_trace_event& e, FdPaths* fds);

// "ENOENT" for 2; "" for an unknown number.
std::string ErrnoName(int err);

}  // namespace vigil
