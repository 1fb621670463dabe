// Settings of the spin detector, with their documented defaults.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace vigil {

struct SpinConfig {
  // Off: no detection (the capability is reported off).
  bool enabled = true;
  // On-CPU share of one CPU at or above which a syscall-free thread counts
  // as spinning (spin-cpu-threshold, 0 < x <= 1).
  double cpu_threshold = 0.9;
  // How long it must keep spinning before the alert fires
  // (spin-min-duration).
  absl::Duration min_duration = absl::Seconds(30);
  // Threads whose thread or process name matches (RE2, unanchored) never
  // alert (spin-ignore-comm). Empty: none ignored.
  std::string ignore_comm;
  // Threads whose process's cgroup path matches (RE2, unanchored) never
  // alert (spin-ignore-cgroup). Empty: none ignored.
  std::string ignore_cgroup;
  // Threads tracked at once (candidates and spinners); more are counted as
  // tracking_overflow and ignored until room frees up.
  size_t max_tracked = 4096;
  // Stacks per alert, and frames per stack.
  uint32_t top_stacks = 5;
  uint32_t max_frames = 64;
};

}  // namespace vigil
