// The cpu capability's settings, with their defaults.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vigil {

// Where per-thread runtimes are read from.
enum class CpuSource {
  kAuto,  // the BPF task iterator, else /proc
  kBpf,   // the task iterator only (off if it cannot load)
  kProc,  // /proc/PID/task/TID/schedstat (stat where schedstat is missing)
};

struct CpuConfig {
  bool enabled = true;
  CpuSource source = CpuSource::kAuto;
  // Tasks read per pass: beyond this many the pass is cut short and counted
  // (the iterator is bounded, never the host).
  uint32_t max_tasks = 65536;
  // Threads recorded per interval, the busiest first; only threads that ran
  // in the interval are recorded, the rest are counted as over the cap.
  uint32_t max_threads = 4096;
  // Processes recorded per interval (those that ran), the busiest first.
  uint32_t max_processes = 4096;
  // Records (threads + processes that ran) the store keeps across the
  // window; ~40 bytes each. 200 busy threads at 1 s is ~10 minutes.
  size_t store_max_records = 400000;
};

}  // namespace vigil
