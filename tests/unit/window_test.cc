#include "agent/store/window.h"

#include <gtest/gtest.h>

#include <vector>

namespace vigil {
namespace {

struct Fake {
  size_t n = 0;
  int tag = 0;
  size_t RecordCount() const { return n; }
};

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

}  // namespace
}  // namespace vigil
