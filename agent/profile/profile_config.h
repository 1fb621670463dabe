// The profile capability's settings, with their defaults.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/profile/symbolizer.h"
#include "agent/profile/unwind_tables.h"

namespace vigil {

struct ProfileConfig {
  // Off: the profiler is not loaded.
  bool enabled = true;
  // Samples per second per CPU (1..1000).
  uint32_t sample_hz = 49;
  // Distinct (thread, user stack, kernel stack) per interval, per buffer
  // (there are two). Overflow is counted as map_full.
  uint32_t max_entries = 10240;
  // Distinct kernel stacks, and distinct user stacks, per interval, per
  // buffer. Each costs 127 * 8 bytes of locked kernel memory.
  uint32_t stack_entries = 8192;
  // Entries read per batch syscall.
  uint32_t batch_size = 512;
  SymbolCacheConfig symbols;
  // The in-kernel user-stack unwinder's tables.
  UnwindConfig unwind;
};

}  // namespace vigil
