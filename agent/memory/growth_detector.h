// Sustained memory growth per process, from the memory table's samples.
// Pure logic: fed one interval at a time, it says which processes start and
// stop growing. The capability turns its events into alerts.
//
// A process fires when, over the last `min_duration`:
//   - its RSS rose in most intervals (more than `rising_share` of them),
//   - it rose by at least `min_bytes` in all, end to end and along its
//     least-squares trend (slope x min_duration), and
//   - it still rises in most of the last `resolve_after`.
// A fill that plateaus, or alloc/free churn, rises in few intervals or not
// in sum, and stays quiet. A firing process resolves when, over the last
// `resolve_after`, it no longer rises in most intervals, or it exits.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace vigil {

struct GrowthConfig {
  bool enabled = true;
  absl::Duration min_duration = absl::Seconds(60);
  uint64_t min_bytes = 64ull << 20;
  double rising_share = 0.5;  // "most intervals": strictly more than this
  // 0: a quarter of min_duration, at least three intervals.
  absl::Duration resolve_after = absl::ZeroDuration();
  size_t max_tracked = 4096;  // processes; more are counted and ignored
};

struct GrowthSample {
  uint32_t pid = 0;
  uint64_t start_ns = 0;  // tells a reused pid apart
  uint64_t rss_bytes = 0;
};

struct GrowthEvent {
  enum Kind { kFired, kResolved } kind = kFired;
  uint64_t id = 0;  // the same for a process's firing and resolved event
  uint32_t pid = 0;
  uint64_t start_ns = 0;
  absl::Time since;              // first sample of the growing window
  double rate_bytes_per_s = 0;   // least-squares slope over min_duration
  uint64_t rss_bytes = 0;        // now
  uint64_t rss_start_bytes = 0;  // at `since`
  uint32_t rising = 0, intervals = 0;
  std::string reason;  // resolved: "growth stopped" / "process exited"
};

class GrowthDetector {
 public:
  explicit GrowthDetector(const GrowthConfig& c) : c_(c) {}
  // One interval's samples (every recorded process), at `now`.
  std::vector<GrowthEvent> Observe(absl::Time now, const std::vector<GrowthSample>& samples);
  uint64_t tracking_overflow() const { return overflow_; }
  size_t firing() const;

 private:
  struct Point {
    absl::Time at;
    uint64_t rss;
  };
  struct Track {
    uint64_t start_ns = 0;
    std::deque<Point> points;  // oldest first, covering min_duration
    uint64_t alert_id = 0;     // 0: not firing
    absl::Time seen;
  };
  // Rising intervals and total intervals among points at or after `from`.
  static void Rises(const std::deque<Point>& p, absl::Time from, uint32_t* rising, uint32_t* n);
  static double Slope(const std::deque<Point>& p, absl::Time from);
  // The recent span that decides "still rising" (resolve_after, or a
  // quarter of min_duration; at least three intervals).
  absl::Duration ResolveAfter(const Track& t) const;

  const GrowthConfig c_;
  absl::flat_hash_map<uint32_t, Track> tracks_;
  uint64_t next_id_ = 1;
  uint64_t overflow_ = 0;
};

}  // namespace vigil
