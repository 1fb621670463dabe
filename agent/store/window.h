// The time-window store: a bounded ring of per-interval snapshots.
//
// Collectors append one snapshot per collection interval; queries merge the
// snapshots that overlap a time range. Bounded twice: by age (the window) and
// by total records (a memory cap), oldest first, with evictions counted.
//
// Not thread-safe: the owner (Agent) guards it with a mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

#include "absl/time/time.h"

namespace vigil {

// T must provide `size_t RecordCount() const`.
template <typename T>
class IntervalWindow {
 public:
  struct Interval {
    absl::Time start;
    absl::Time end;
    T data;
  };

  // retention: how far back from the newest interval's end to keep.
  // max_records: cap on the sum of RecordCount() over retained intervals.
  IntervalWindow(absl::Duration retention, size_t max_records)
      : retention_(retention), max_records_(max_records) {}

  void Add(absl::Time start, absl::Time end, T data) {
    ++added_;
    records_ += data.RecordCount();
    intervals_.push_back(Interval{start, end, std::move(data)});
    // Never evict the interval just added, even if it alone exceeds the cap.
    while (intervals_.size() > 1 &&
           (intervals_.front().end <= end - retention_ || records_ > max_records_)) {
      if (intervals_.front().end > end - retention_) {
        ++evicted_for_cap_;
        dropped_records_ += intervals_.front().data.RecordCount();
      }
      records_ -= intervals_.front().data.RecordCount();
      intervals_.pop_front();
    }
  }

  // Calls fn(const Interval&) for each interval overlapping [from, to],
  // oldest first.
  template <typename Fn>
  void ForEachOverlapping(absl::Time from, absl::Time to, Fn&& fn) const {
    for (const Interval& iv : intervals_) {
      if (iv.end <= from || iv.start >= to) continue;
      fn(iv);
    }
  }

  // Which intervals ForEachOverlapping(from, to) visits, named by the
  // order they were added (the first interval ever added is 0): the first,
  // the last and how many, {0, 0, 0} for none. With added(), it names what
  // a merge over [from, to] reads. Scans every interval with the same test
  // rather than assuming time order (the wall clock can step back).
  struct Span {
    uint64_t first = 0, last = 0, count = 0;
  };
  Span OverlapSpan(absl::Time from, absl::Time to) const {
    const uint64_t base = added_ - intervals_.size();
    Span s;
    for (size_t i = 0; i < intervals_.size(); ++i) {
      if (intervals_[i].end <= from || intervals_[i].start >= to) continue;
      if (s.count++ == 0) s.first = base + i;
      s.last = base + i;
    }
    return s;
  }
  // Intervals added since start.
  uint64_t added() const { return added_; }

  size_t size() const { return intervals_.size(); }
  bool empty() const { return intervals_.empty(); }
  size_t records() const { return records_; }
  absl::Time oldest_start() const {
    return intervals_.empty() ? absl::InfinitePast() : intervals_.front().start;
  }
  absl::Time newest_end() const {
    return intervals_.empty() ? absl::InfinitePast() : intervals_.back().end;
  }
  absl::Duration retention() const { return retention_; }
  // Intervals evicted before their age because of the record cap, and the
  // records they held.
  uint64_t evicted_for_cap() const { return evicted_for_cap_; }
  uint64_t dropped_records() const { return dropped_records_; }

 private:
  absl::Duration retention_;
  size_t max_records_;
  size_t records_ = 0;
  uint64_t added_ = 0;
  uint64_t evicted_for_cap_ = 0;
  uint64_t dropped_records_ = 0;
  std::deque<Interval> intervals_;
};

}  // namespace vigil
