// The memory-growth detector on synthetic series: sustained growth fires
// within the window, a fill that plateaus and alloc/free churn stay quiet,
// growth that stops (or a process that exits) resolves.
#include "agent/memory/growth_detector.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "agent/memory/linear_fit.h"

namespace vigil {
namespace {

constexpr uint64_t kMiB = 1 << 20;

GrowthConfig Config() {
  GrowthConfig c;
  c.min_duration = absl::Seconds(60);
  c.min_bytes = 64 * kMiB;
  return c;
}

// Feeds rss(t) for t = 0..seconds at 1 s intervals; returns the events with
// the second they came at.
std::vector<std::pair<int, GrowthEvent>> Feed(GrowthDetector& d, int seconds,
                                              uint64_t (*rss)(int)) {
  std::vector<std::pair<int, GrowthEvent>> out;
  const absl::Time t0 = absl::FromUnixSeconds(1000000);
  for (int t = 0; t <= seconds; ++t) {
    for (const GrowthEvent& e : d.Observe(t0 + absl::Seconds(t), {{42, 7, rss(t)}})) {
      out.emplace_back(t, e);
    }
  }
  return out;
}

// The soak's resting RSS (kB), one point per 150 s: the slope and its
// standard error as a two-pass least-squares fit computes them.
TEST(LinearFitTest, SlopeAndItsStandardError) {
  const std::vector<double> y = {150212, 148796, 149544, 146336, 145740, 149436,
                                 145804, 148436, 147936, 148908, 148860, 149552,
                                 150712, 149492, 149156, 148756, 148300, 151532};
  LinearFit f;
  EXPECT_EQ(f.SlopeStdError(), 0);
  for (size_t i = 0; i < y.size(); ++i) f.Add(static_cast<double>(i) * 150 / 3600, y[i]);
  EXPECT_NEAR(f.Slope(), 2463.4, 0.1);
  EXPECT_NEAR(f.SlopeStdError(), 1627.6, 0.1);
  // On a line, no scatter.
  LinearFit exact;
  for (int i = 0; i < 10; ++i) exact.Add(i, 3.0 * i + 1);
  EXPECT_NEAR(exact.Slope(), 3.0, 1e-9);
  EXPECT_NEAR(exact.SlopeStdError(), 0, 1e-6);
}

TEST(GrowthDetectorTest, SustainedGrowthFiresAfterMinDurationAtItsRate) {
  GrowthDetector d(Config());
  // 2 MiB/s from 100 MiB: 120 MiB over the first 60 s.
  auto ev = Feed(d, 90, [](int t) { return 100 * kMiB + static_cast<uint64_t>(t) * 2 * kMiB; });
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].second.kind, GrowthEvent::kFired);
  EXPECT_LE(ev[0].first, 62);  // min_duration plus two intervals
  EXPECT_NEAR(ev[0].second.rate_bytes_per_s, 2.0 * kMiB, 0.01 * kMiB);
  EXPECT_EQ(ev[0].second.pid, 42u);
  EXPECT_EQ(d.firing(), 1u);
}

TEST(GrowthDetectorTest, SlowGrowthBelowMinBytesStaysQuiet) {
  GrowthDetector d(Config());
  auto ev = Feed(d, 200, [](int t) { return 100 * kMiB + static_cast<uint64_t>(t) * kMiB / 2; });
  EXPECT_TRUE(ev.empty());  // 30 MiB per minute < 64 MiB
}

TEST(GrowthDetectorTest, AFillThatPlateausStaysQuiet) {
  GrowthDetector d(Config());
  // A 300 MiB cache filled in 10 s, then flat.
  auto ev = Feed(
      d, 200, [](int t) { return 50 * kMiB + static_cast<uint64_t>(std::min(t, 10)) * 30 * kMiB; });
  EXPECT_TRUE(ev.empty());
}

TEST(GrowthDetectorTest, AllocFreeChurnStaysQuiet) {
  GrowthDetector d(Config());
  // 64 MiB allocated and freed every other second.
  auto ev = Feed(d, 200, [](int t) { return (100 + (t % 2 == 0 ? 64 : 0)) * kMiB; });
  EXPECT_TRUE(ev.empty());
}

TEST(GrowthDetectorTest, ASawtoothThatRisesInMostIntervalsStaysQuiet) {
  GrowthDetector d(Config());
  // A 120 MiB buffer filled over six intervals, then dropped: RSS rises in
  // 6 of every 7 intervals and the window's ends differ by 80 or 100 MiB
  // half the time, with no trend (a CI run caught alloc/free churn
  // alerting).
  auto ev = Feed(d, 300, [](int t) { return (100 + 20 * static_cast<uint64_t>(t % 7)) * kMiB; });
  EXPECT_TRUE(ev.empty());
}

TEST(GrowthDetectorTest, GrowthThatStopsResolvesOnceAndDoesNotRefire) {
  GrowthDetector d(Config());
  // 2 MiB/s for 100 s, then freed back down and flat.
  auto ev = Feed(d, 300, [](int t) {
    return t < 100 ? 100 * kMiB + static_cast<uint64_t>(t) * 2 * kMiB : 120 * kMiB;
  });
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].second.kind, GrowthEvent::kFired);
  EXPECT_EQ(ev[1].second.kind, GrowthEvent::kResolved);
  EXPECT_EQ(ev[1].second.id, ev[0].second.id);
  EXPECT_EQ(ev[1].second.reason, "growth stopped");
  EXPECT_LE(ev[1].first, 100 + 16);  // a quarter of min_duration after it stopped
  EXPECT_EQ(d.firing(), 0u);
}

TEST(GrowthDetectorTest, AnExitedOrReplacedProcessResolves) {
  GrowthDetector d(Config());
  const absl::Time t0 = absl::FromUnixSeconds(1000000);
  std::vector<GrowthEvent> all;
  for (int t = 0; t <= 70; ++t) {
    for (const GrowthEvent& e :
         d.Observe(t0 + absl::Seconds(t), {{42, 7, (100 + 2ull * t) * kMiB}})) {
      all.push_back(e);
    }
  }
  ASSERT_EQ(all.size(), 1u);
  // The pid now belongs to another process (another start time).
  std::vector<GrowthEvent> ev = d.Observe(t0 + absl::Seconds(71), {{42, 8, 10 * kMiB}});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, GrowthEvent::kResolved);
  EXPECT_EQ(ev[0].reason, "process exited");
}

TEST(GrowthDetectorTest, TrackingIsBounded) {
  GrowthConfig c = Config();
  c.max_tracked = 2;
  GrowthDetector d(c);
  d.Observe(absl::FromUnixSeconds(1), {{1, 1, kMiB}, {2, 2, kMiB}, {3, 3, kMiB}});
  EXPECT_EQ(d.tracking_overflow(), 1u);
}

}  // namespace
}  // namespace vigil
