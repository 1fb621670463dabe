// The profile capability's settings, with their defaults.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/profile/symbolizer.h"
#include "agent/profile/unwind_tables.h"

namespace vigil {

// The largest fault_period accepted: one sample per Mi faults (4 GiB of
// first touches) is already too coarse to attribute anything.
inline constexpr uint32_t kMaxFaultPeriod = 1u << 20;
// The largest map_min_bytes accepted (1 TiB): above it nothing is recorded.
inline constexpr uint64_t kMaxMapMinBytes = uint64_t{1} << 40;

struct ProfileConfig {
  // Off: the profiler is not loaded.
  bool enabled = true;
  // Samples per second per CPU (1..1000).
  uint32_t sample_hz = 49;
  // Page faults per page-fault sample, per CPU (0: no page-fault sampling;
  // at most kMaxFaultPeriod). Each sample stands for this many faults, i.e.
  // this many first touches of a page (~4 KiB each) by the sampled stack.
  uint32_t fault_period = 64;
  // The x86 page-fault tracepoints page-fault samples come from:
  // tp_btf/<fault_tracepoint>_user and _kernel. Tests name one the kernel
  // lacks, to exercise the degraded path.
  std::string fault_tracepoint = "page_fault";
  // mmap, munmap and brk calls that map or unmap at least this many bytes
  // are recorded with their user stacks (0: not recorded, and the
  // tp_btf/sys_exit program is not loaded; at most kMaxMapMinBytes).
  uint64_t map_min_bytes = uint64_t{1} << 20;
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
