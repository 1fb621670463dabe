// The time-window store: a bounded ring of per-interval snapshots.
//
// Collectors append one snapshot per collection interval; queries merge the
// snapshots that overlap a time range. Bounded twice: by age (the window) and
// by total records (a memory cap), oldest first, with evictions counted.
//
// A table whose records repeat from one interval to the next (the same
// thread making the same syscalls) can coarsen instead of evicting: over
// the cap, the oldest two adjacent intervals whose joint span fits
// Coarsening::max_span merge into one, so the window keeps its whole age at
// a coarser grain rather than its newest seconds only. Counts stay exact;
// what is lost is when, inside the coarse interval, they happened, and a
// coarse interval says so by its span.
//
// Not thread-safe: the owner (WindowStore) guards it with a mutex, except
// that its one writer reads it unlocked to merge (StoreWriter::Add).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>

#include "absl/time/time.h"

namespace vigil {

// How a table merges intervals rather than evict them at its record cap.
template <typename T>
struct Coarsening {
  // The longest span one merged interval may cover; zero: never merge.
  absl::Duration max_span = absl::ZeroDuration();
  // Folds `newer` (the interval that followed) into `older`.
  std::function<void(T& older, const T& newer)> merge;
  // Merges one Add may do before it evicts instead: each costs a copy of
  // the older interval and a pass over both (under 1 ms for 12,000 syscall
  // records; the store runs it outside its lock). Neighbours share only
  // part of their records when their load is bursty, so one merge often
  // frees less than one interval added.
  int max_merges_per_add = 16;
};

// T must provide `size_t RecordCount() const`.
template <typename T>
class IntervalWindow {
 public:
  struct Interval {
    absl::Time start;
    absl::Time end;
    T data;
    // The order number (see OverlapSpan) of the newest interval added into
    // this one, and how many were: 1 unless coarsened.
    uint64_t seq = 0;
    uint32_t parts = 1;
  };

  // retention: how far back from the newest interval's end to keep.
  // max_records: cap on the sum of RecordCount() over retained intervals.
  IntervalWindow(absl::Duration retention, size_t max_records, Coarsening<T> coarsening = {})
      : retention_(retention), max_records_(max_records), coarsening_(std::move(coarsening)) {}

  void Add(absl::Time start, absl::Time end, T data) {
    Append(start, end, std::move(data));
    TrimToCap([](auto&& change) { change(); });
  }

  // Add in two steps, for an owner that merges outside its lock (see
  // StoreWriter::Add): Append, then TrimToCap, which folds the oldest pairs
  // that fit (at most max_merges_per_add) or evicts the oldest until the
  // window is under its cap. Merging only reads the window; every change
  // runs inside apply(change), where the owner takes its lock.
  template <typename Apply>
  void TrimToCap(Apply&& apply) {
    int merges = 0;
    while (OverCap()) {
      const std::ptrdiff_t i =
          merges < coarsening_.max_merges_per_add ? CoarsenCandidate() : std::ptrdiff_t{-1};
      if (i < 0) {
        apply([&] { PopFront(true); });
        continue;
      }
      T merged = Coarsened(static_cast<size_t>(i));
      apply([&] { ApplyCoarsened(static_cast<size_t>(i), std::move(merged)); });
      ++merges;
    }
  }

  // Adds, and evicts what aged out of the window.
  void Append(absl::Time start, absl::Time end, T data) {
    records_ += data.RecordCount();
    intervals_.push_back(Interval{start, end, std::move(data), added_++});
    while (intervals_.size() > 1 && intervals_.front().end <= end - retention_) PopFront(false);
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
    Span s;
    for (const Interval& iv : intervals_) {
      if (iv.end <= from || iv.start >= to) continue;
      if (s.count++ == 0) s.first = iv.seq;
      s.last = iv.seq;
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
  // Intervals folded into an older neighbour to stay under the cap.
  uint64_t coarsened() const { return coarsened_; }

 private:
  // Never true for the newest interval alone, even if it exceeds the cap.
  bool OverCap() const { return intervals_.size() > 1 && records_ > max_records_; }
  // The older of the oldest adjacent pair whose joint span fits max_span,
  // never the newest interval (a reader may want it at its own grain); -1
  // if coarsening is off or no pair fits.
  std::ptrdiff_t CoarsenCandidate() const {
    if (coarsening_.max_span <= absl::ZeroDuration() || !coarsening_.merge) return -1;
    for (size_t i = 0; i + 2 < intervals_.size(); ++i) {
      if (intervals_[i + 1].end - intervals_[i].start <= coarsening_.max_span) {
        return static_cast<std::ptrdiff_t>(i);
      }
    }
    return -1;
  }
  // Interval i's data with interval i + 1's folded in; changes nothing.
  T Coarsened(size_t i) const {
    T merged = intervals_[i].data;
    coarsening_.merge(merged, intervals_[i + 1].data);
    return merged;
  }
  // Replaces intervals i and i + 1 with one holding `merged`.
  void ApplyCoarsened(size_t i, T merged) {
    Interval& older = intervals_[i];
    const Interval& newer = intervals_[i + 1];
    records_ -= older.data.RecordCount() + newer.data.RecordCount();
    records_ += merged.RecordCount();
    older.data = std::move(merged);
    older.start = std::min(older.start, newer.start);
    older.end = std::max(older.end, newer.end);
    older.seq = newer.seq;
    older.parts += newer.parts;
    intervals_.erase(intervals_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    ++coarsened_;
  }

  void PopFront(bool for_cap) {
    if (for_cap) {
      ++evicted_for_cap_;
      dropped_records_ += intervals_.front().data.RecordCount();
    }
    records_ -= intervals_.front().data.RecordCount();
    intervals_.pop_front();
  }

  absl::Duration retention_;
  size_t max_records_;
  size_t records_ = 0;
  uint64_t added_ = 0;
  uint64_t evicted_for_cap_ = 0;
  uint64_t dropped_records_ = 0;
  uint64_t coarsened_ = 0;
  Coarsening<T> coarsening_;
  std::deque<Interval> intervals_;
};

}  // namespace vigil
