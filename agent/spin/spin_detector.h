// The spin detector: pure logic over per-interval, per-thread observations.
// No BPF and no /proc here (see spin_signal.h), so it is unit-tested with
// synthetic intervals.
//
// A thread spins in an interval when its on-CPU share is at or above the
// threshold, it completed no syscall, did not switch out voluntarily, and was
// sampled mostly in user space (a thread computing inside one long syscall is
// not what this alert is for). A streak of spinning intervals that lasts
// min_duration fires one alert; the first interval that breaks the streak,
// or the thread's exit, resolves it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/spin/spin_config.h"
#include "re2/re2.h"

namespace vigil {

// One thread over one interval.
struct SpinObservation {
  uint32_t pid = 0;
  uint32_t tid = 0;
  std::string comm;
  std::string pcomm;
  std::string cgroup;
  // On-CPU time during the interval, in ns.
  uint64_t oncpu_ns = 0;
  // Completed syscalls during the interval.
  uint64_t syscalls = 0;
  // Voluntary context switches during the interval (it blocked).
  uint64_t voluntary_switches = 0;
  // Most of its profiler samples had kernel frames (it was in the kernel).
  bool in_kernel = false;
  // False: the interval cannot be judged for this thread (e.g. the syscall
  // map overflowed); a streak neither grows nor breaks.
  bool known = true;
};

enum class SpinEventKind { kFired, kResolved };

struct SpinEvent {
  SpinEventKind kind = SpinEventKind::kFired;
  uint64_t id = 0;
  uint32_t pid = 0;
  uint32_t tid = 0;
  std::string comm;
  std::string pcomm;
  std::string cgroup;
  absl::Time start;
  absl::Duration duration;
  double cpu_share = 0;
  // Resolved only: syscall | blocked | idle | exited.
  std::string reason;
};

class SpinDetector {
 public:
  // INVALID_ARGUMENT for a bad threshold, duration or regex.
  static absl::StatusOr<std::unique_ptr<SpinDetector>> Create(const SpinConfig& config);

  // One interval [start, end]. Tracked threads absent from `obs` are taken
  // to have exited. Returns the events, fires before resolves.
  std::vector<SpinEvent> Observe(absl::Time start, absl::Time end,
                                 const std::vector<SpinObservation>& obs);

  // Threads currently tracked (their next observation must be supplied).
  std::vector<std::pair<uint32_t, uint32_t>> Tracked() const;
  bool IsTracked(uint32_t tid) const { return tracks_.contains(tid); }
  size_t firing() const;
  uint64_t fired_total() const { return fired_total_; }
  uint64_t resolved_total() const { return resolved_total_; }
  uint64_t tracking_overflow() const { return tracking_overflow_; }
  uint64_t ignored_total() const { return ignored_total_; }

 private:
  explicit SpinDetector(const SpinConfig& config) : config_(config) {}
  bool Ignored(const SpinObservation& o) const;

  struct Track {
    uint32_t pid = 0;
    absl::Time start;
    uint64_t oncpu_ns = 0;  // summed over the streak
    absl::Duration wall;    // summed over the streak
    bool firing = false;
    uint64_t id = 0;
    std::string comm, pcomm, cgroup;
  };
  SpinEvent MakeEvent(SpinEventKind kind, uint32_t tid, const Track& t, absl::Time end) const;

  const SpinConfig config_;
  std::unique_ptr<RE2> ignore_comm_;
  std::unique_ptr<RE2> ignore_cgroup_;
  absl::flat_hash_map<uint32_t, Track> tracks_;  // by tid
  uint64_t next_id_ = 1;
  uint64_t fired_total_ = 0;
  uint64_t resolved_total_ = 0;
  uint64_t tracking_overflow_ = 0;
  uint64_t ignored_total_ = 0;
};

// Validates the user-settable parts of a SpinConfig.
absl::Status ValidateSpinConfig(const SpinConfig& config);

}  // namespace vigil
