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
  // Time 1 in N calls, chosen at random (a power of two, 1-1024; 1: every
  // call). Counts and errors stay exact; total time and the histograms
  // become estimates (sampled sums times N), max the largest sampled.
  // Each timed call costs two task-storage lookups and two clock reads.
  uint32_t latency_sample_every = 16;
  // Entries read per batch syscall.
  uint32_t batch_size = 1024;
};

}  // namespace vigil
