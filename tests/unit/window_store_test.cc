// WindowStore: tables, range resolution, coverage, and merge slots that
// honour the client's deadline and cancellation.
#include "agent/store/window_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"

namespace vigil {
namespace {

struct Rows {
  std::vector<int> v;
  size_t RecordCount() const { return v.size(); }
};

TEST(WindowStoreTest, WriterAppendsViewReadsWithCoverage) {
  WindowStore store(StoreConfig{absl::Seconds(10), 2});
  Table<Rows> t = store.Register<Rows>(100);
  StoreWriter w = store.writer();
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  w.Add(t, t0, t0 + absl::Seconds(1), Rows{{1, 2}});
  w.Add(t, t0 + absl::Seconds(1), t0 + absl::Seconds(2), Rows{{3}});
  w.Add(t, t0 + absl::Seconds(2), t0 + absl::Seconds(3), Rows{{4}});
  const StoreView view = store.view();
  int sum = 0;
  const Coverage c =
      view.ForEach(t, t0 + absl::Milliseconds(1500), t0 + absl::Seconds(3), [&](const auto& iv) {
        for (int x : iv.data.v) sum += x;
      });
  EXPECT_EQ(sum, 7);  // the last two intervals only
  EXPECT_EQ(c.intervals, 2u);
  EXPECT_EQ(c.first, t0 + absl::Seconds(1));
  EXPECT_EQ(c.last, t0 + absl::Seconds(3));
  EXPECT_EQ(view.Inspect(t, [](const auto& win) { return win.records(); }), 4u);
}

// The query shape every capability shares: the merger sees the intervals
// in range, finishes with their coverage, and the answer carries that
// coverage and the table's evictions.
TEST(WindowStoreTest, MergeTableFeedsTheMergerAndFillsCoverageAndEvictions) {
  WindowStore store(StoreConfig{absl::Minutes(1), 2});
  Table<Rows> t = store.Register<Rows>(4);  // a 4-record cap
  StoreWriter w = store.writer();
  const absl::Time t0 = absl::Now() - absl::Seconds(10);
  for (int i = 0; i < 4; ++i) {  // 2 records each: the first is evicted
    w.Add(t, t0 + absl::Seconds(i), t0 + absl::Seconds(i + 1), Rows{{i, i}});
  }
  const StoreView view = store.view();
  v1::TimeRange range;
  range.set_since_ago_ns(absl::ToInt64Nanoseconds(absl::Seconds(30)));
  v1::SyscallsResponse resp;
  int sum = 0;
  uint32_t finished_with = 0;
  absl::StatusOr<StoreView::Merge> m = view.MergeTable(
      range, QueryContext{}, t,
      [&](const auto& iv) {
        for (int x : iv.data.v) sum += x;
      },
      [&](const Coverage& c) { finished_with = c.intervals; }, &resp);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(sum, 2 * (2 + 3));  // the two newest intervals stayed
  EXPECT_EQ(finished_with, 2u);
  EXPECT_EQ(resp.covered().start_unix_ns(), absl::ToUnixNanos(t0 + absl::Seconds(2)));
  EXPECT_EQ(resp.covered().end_unix_ns(), absl::ToUnixNanos(t0 + absl::Seconds(4)));
  EXPECT_EQ(resp.loss().store_dropped(), 4u);  // two intervals of two records
}

TEST(WindowStoreTest, ResolveRejectsRangesOutsideTheWindow) {
  WindowStore store(StoreConfig{absl::Seconds(10), 2});
  const StoreView view = store.view();
  const absl::Time now = absl::FromUnixSeconds(5000);
  v1::TimeRange r;
  r.set_since_ago_ns(int64_t{11} * 1000000000);
  EXPECT_EQ(view.Resolve(r, now).status().code(), absl::StatusCode::kInvalidArgument);
  r.set_since_ago_ns(int64_t{5} * 1000000000);
  r.set_until_ago_ns(int64_t{2} * 1000000000);
  auto ok = view.Resolve(r, now);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->first, now - absl::Seconds(5));
  EXPECT_EQ(ok->second, now - absl::Seconds(2));
  EXPECT_EQ(view.Resolve(v1::TimeRange(), now)->first, absl::InfinitePast());
}

TEST(WindowStoreTest, MergeSlotsAreBoundedAndWaitersHonourTheirDeadline) {
  WindowStore store(StoreConfig{absl::Seconds(10), 1});
  const StoreView view = store.view();
  auto held = view.AcquireMergeSlot(QueryContext{});
  ASSERT_TRUE(held.ok());
  QueryContext soon;
  soon.deadline = absl::Now() + absl::Milliseconds(120);
  const absl::Time began = absl::Now();
  auto late = view.AcquireMergeSlot(soon);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - began, absl::Milliseconds(100));
  // A released slot is taken by the next query.
  { auto drop = std::move(*held); }
  QueryContext again;
  again.deadline = absl::Now() + absl::Seconds(5);
  EXPECT_TRUE(view.AcquireMergeSlot(again).ok());
}

TEST(WindowStoreTest, AWaiterWhoseClientWentAwayStopsWaiting) {
  WindowStore store(StoreConfig{absl::Seconds(10), 1});
  const StoreView view = store.view();
  auto held = view.AcquireMergeSlot(QueryContext{});
  ASSERT_TRUE(held.ok());
  std::atomic<bool> gone{false};
  QueryContext ctx;  // no deadline: only cancellation ends the wait
  ctx.cancelled = [&] { return gone.load(); };
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(100));
    gone = true;
  });
  auto r = view.AcquireMergeSlot(ctx);
  canceller.join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace vigil
