#include "agent/store/window.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace vigil {
namespace {

struct Fake {
  size_t n = 0;
  int tag = 0;
  int64_t sum = 0;  // what a query would add up; coarsening must keep it
  size_t RecordCount() const { return n; }
};

int64_t Sum(const IntervalWindow<Fake>& w) {
  int64_t sum = 0;
  w.ForEachOverlapping(absl::InfinitePast(), absl::InfiniteFuture(),
                       [&](const auto& iv) { sum += iv.data.sum; });
  return sum;
}

absl::Time T(int s) { return absl::FromUnixSeconds(1000 + s); }

std::vector<int> Tags(const IntervalWindow<Fake>& w, absl::Time from, absl::Time to) {
  std::vector<int> tags;
  w.ForEachOverlapping(from, to, [&](const auto& iv) { tags.push_back(iv.data.tag); });
  return tags;
}

TEST(IntervalWindowTest, EvictsByAge) {
  IntervalWindow<Fake> w(absl::Seconds(10), 1000);
  for (int i = 0; i < 15; ++i) w.Add(T(i), T(i + 1), Fake{1, i});
  // Newest end is T(15): intervals ending at or before T(5) are gone.
  EXPECT_EQ(w.size(), 10u);
  EXPECT_EQ(w.oldest_start(), T(5));
  EXPECT_EQ(w.newest_end(), T(15));
  EXPECT_EQ(w.records(), 10u);
  EXPECT_EQ(w.evicted_for_cap(), 0u);
}

TEST(IntervalWindowTest, SubRangeSelectsOverlappingIntervals) {
  IntervalWindow<Fake> w(absl::Seconds(100), 1000);
  for (int i = 0; i < 10; ++i) w.Add(T(i), T(i + 1), Fake{1, i});
  EXPECT_EQ(Tags(w, T(3), T(5)), (std::vector<int>{3, 4}));
  // Half-open overlap: an interval ending exactly at `from` is excluded.
  EXPECT_EQ(Tags(w, T(3) + absl::Milliseconds(500), T(4) + absl::Milliseconds(1)),
            (std::vector<int>{3, 4}));
  EXPECT_EQ(Tags(w, absl::InfinitePast(), T(2)), (std::vector<int>{0, 1}));
  EXPECT_TRUE(Tags(w, T(50), T(60)).empty());
}

TEST(IntervalWindowTest, RecordCapEvictsOldestAndCounts) {
  IntervalWindow<Fake> w(absl::Seconds(100), 10);
  for (int i = 0; i < 5; ++i) w.Add(T(i), T(i + 1), Fake{4, i});
  // 5 x 4 records with a cap of 10: only the newest two intervals fit.
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(w.records(), 8u);
  EXPECT_EQ(w.evicted_for_cap(), 3u);
  EXPECT_EQ(w.dropped_records(), 12u);
  EXPECT_EQ(Tags(w, absl::InfinitePast(), T(100)), (std::vector<int>{3, 4}));
}

TEST(IntervalWindowTest, KeepsNewestIntervalEvenIfOverCap) {
  IntervalWindow<Fake> w(absl::Seconds(100), 10);
  w.Add(T(0), T(1), Fake{3, 0});
  w.Add(T(1), T(2), Fake{50, 1});
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.records(), 50u);
  EXPECT_EQ(Tags(w, absl::InfinitePast(), T(100)), (std::vector<int>{1}));
}

// Records that repeat from one interval to the next (n stays when merged):
// over the cap the oldest pairs merge, up to the span, and nothing is lost.
TEST(IntervalWindowTest, CoarsensOldestPairsInsteadOfEvicting) {
  Coarsening<Fake> c;
  c.max_span = absl::Seconds(5);
  c.merge = [](Fake& older, const Fake& newer) {
    older.n = std::max(older.n, newer.n);
    older.sum += newer.sum;
  };
  IntervalWindow<Fake> w(absl::Seconds(100), 24, c);
  for (int i = 0; i < 20; ++i) w.Add(T(i), T(i + 1), Fake{4, i, i + 1});
  EXPECT_EQ(w.evicted_for_cap(), 0u);
  EXPECT_EQ(w.dropped_records(), 0u);
  EXPECT_GT(w.coarsened(), 0u);
  EXPECT_LE(w.records(), 24u);
  EXPECT_EQ(w.oldest_start(), T(0));
  EXPECT_EQ(Sum(w), 20 * 21 / 2);
  std::vector<std::pair<absl::Time, absl::Time>> spans;
  uint32_t parts = 0;
  w.ForEachOverlapping(absl::InfinitePast(), absl::InfiniteFuture(), [&](const auto& iv) {
    EXPECT_LE(iv.end - iv.start, absl::Seconds(5));
    if (!spans.empty()) {
      EXPECT_EQ(iv.start, spans.back().second);  // no gap, no overlap
    }
    spans.emplace_back(iv.start, iv.end);
    parts += iv.parts;
  });
  EXPECT_EQ(parts, 20u);
  // The newest interval keeps its own grain.
  EXPECT_EQ(spans.back(), std::make_pair(T(19), T(20)));
  // Order numbers still name what a query reads: the span's last is the
  // newest interval's, and a coarse interval carries its newest part's.
  const IntervalWindow<Fake>::Span all = w.OverlapSpan(T(0), T(20));
  EXPECT_EQ(all.last, 19u);
  EXPECT_EQ(all.count, spans.size());
}

// Records that do not repeat gain nothing from merging: a bounded number
// of merges per Add, then the oldest is evicted and counted as before.
TEST(IntervalWindowTest, CoarseningThatDoesNotShrinkFallsBackToEviction) {
  Coarsening<Fake> c;
  c.max_span = absl::Seconds(60);
  c.max_merges_per_add = 2;
  c.merge = [](Fake& older, const Fake& newer) {
    older.n += newer.n;
    older.sum += newer.sum;
  };
  IntervalWindow<Fake> w(absl::Seconds(100), 10, c);
  for (int i = 0; i < 10; ++i) w.Add(T(i), T(i + 1), Fake{4, i, 1});
  EXPECT_LE(w.records(), 10u);
  EXPECT_GT(w.evicted_for_cap(), 0u);
  EXPECT_EQ(Sum(w) * 4 + static_cast<int64_t>(w.dropped_records()), 40);
}

TEST(IntervalWindowTest, CoarseningOffEvictsAsBefore) {
  IntervalWindow<Fake> w(absl::Seconds(100), 10, Coarsening<Fake>{});
  for (int i = 0; i < 5; ++i) w.Add(T(i), T(i + 1), Fake{4, i});
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(w.evicted_for_cap(), 3u);
  EXPECT_EQ(w.coarsened(), 0u);
}

}  // namespace
}  // namespace vigil
