// The syscalls capability's settings, with their defaults (vigild flags
// --syscalls-*, see agent/settings.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vigil {

struct SyscallsConfig {
  // Entries per stats buffer (there are two): distinct (thread, syscall)
  // pairs one interval can hold. Overflow is counted as map_full.
  uint32_t max_entries = 16384;
  // Record entry-to-exit latency (total, max, histogram). Off attaches only
  // sys_exit and records calls and errors: cheaper per syscall.
  bool measure_latency = true;
  // Entries read per batch syscall.
  uint32_t batch_size = 1024;
};

}  // namespace vigil
