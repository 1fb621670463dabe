// The syscalls capability's settings, with their defaults (vigild flags
// --syscalls-*, see agent/settings.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"

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
  // Over the store's record cap, the oldest intervals merge into ones of
  // up to this span instead of being evicted (exact counts, coarser time):
  // a host with thousands of busy threads makes ~6,000 records a second,
  // so 1 s intervals alone keep 16 s of a 10-minute window under the
  // default cap, and 60 s ones keep all of it. Zero: evict (the old way).
  absl::Duration store_coarsen_span = absl::Seconds(60);
};

}  // namespace vigil
