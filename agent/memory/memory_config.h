// The memory capability's settings, with their defaults.
#pragma once

#include <cstddef>
#include <cstdint>

#include "agent/memory/growth_detector.h"

namespace vigil {

struct MemoryConfig {
  bool enabled = true;
  // Processes recorded per interval (the task iterator emits them all;
  // beyond this many, the smallest by RSS are dropped and counted).
  uint32_t max_processes = 4096;
  // Memory cgroups whose usage and limit are read per interval (those of
  // the recorded processes, largest first); the rest are counted.
  uint32_t max_cgroups = 256;
  // Directories walked to name cgroups (cgroupfs is user-controlled:
  // containers create cgroups).
  uint32_t max_cgroup_dirs = 16384;
  // Records (processes + cgroups + OOM kills) the store keeps; with 300
  // processes at 1 s that is ~10 minutes. ~48 bytes each.
  size_t store_max_records = 400000;
  // Memory-growth alerts (mem-growth-*): published on the alert stream.
  GrowthConfig growth;
};

}  // namespace vigil
