// SharedAnswers and StoreView::Shared: identical queries over the same
// intervals merge once; a new interval, a failed merge, a full budget or a
// caller's deadline each behave as documented.
#include "agent/store/shared_answers.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agent/store/window_store.h"

namespace vigil {
namespace {

using Answer = v1::CoveredRange;

Answer Numbered(uint32_t n) {
  Answer a;
  a.set_intervals(n);
  return a;
}

// A merge that counts its calls and answers with the count.
struct CountingMerge {
  std::atomic<int> calls{0};
  absl::StatusOr<Answer> operator()() { return Numbered(static_cast<uint32_t>(++calls)); }
};

absl::StatusOr<Answer> Get(SharedAnswers& s, const std::string& key, uint64_t gen, CountingMerge& m,
                           const QueryContext& ctx = QueryContext()) {
  return s.Get<Answer>(
      key, gen, ctx, [gen] { return gen; }, [&m] { return m(); });
}

TEST(SharedAnswersTest, AnIdenticalQueryReadsTheKeptAnswerUntilTheStoreChanges) {
  SharedAnswers s(SharedAnswers::Config{});
  CountingMerge m;
  EXPECT_EQ(Get(s, "q", 1, m)->intervals(), 1u);
  EXPECT_EQ(Get(s, "q", 1, m)->intervals(), 1u);  // kept
  EXPECT_EQ(Get(s, "other", 1, m)->intervals(), 2u);
  EXPECT_EQ(m.calls, 2);
  SharedAnswers::Stats st = s.stats();
  EXPECT_EQ(st.merged, 2u);
  EXPECT_EQ(st.stored, 1u);
  EXPECT_EQ(st.entries, 2u);
  EXPECT_GT(st.bytes, 0u);

  s.Invalidate(2);  // an interval was added: nothing kept can be hit
  st = s.stats();
  EXPECT_EQ(st.entries, 0u);
  EXPECT_EQ(st.bytes, 0u);
  EXPECT_EQ(Get(s, "q", 2, m)->intervals(), 3u);
}

TEST(SharedAnswersTest, CallersDuringAMergeWaitForItAndGetItsAnswer) {
  SharedAnswers s(SharedAnswers::Config{});
  absl::Notification started, release;
  std::atomic<int> calls{0};
  auto slow = [&]() -> absl::StatusOr<Answer> {
    ++calls;
    started.Notify();
    release.WaitForNotification();
    return Numbered(42);
  };
  auto get = [&] {
    return s.Get<Answer>(
        "q", 7, QueryContext(), [] { return uint64_t{7}; }, slow);
  };
  std::vector<uint32_t> got(9, 0);
  std::vector<std::thread> th;
  th.emplace_back([&] { got[0] = get()->intervals(); });
  started.WaitForNotification();
  for (int i = 1; i < 9; ++i) th.emplace_back([&, i] { got[i] = get()->intervals(); });
  // The eight are waiting (or about to) on the one merge.
  absl::SleepFor(absl::Milliseconds(100));
  release.Notify();
  for (auto& t : th) t.join();
  EXPECT_EQ(calls, 1);
  for (uint32_t g : got) EXPECT_EQ(g, 42u);
  const SharedAnswers::Stats st = s.stats();
  EXPECT_EQ(st.merged, 1u);
  EXPECT_EQ(st.joined + st.stored, 8u);
}

TEST(SharedAnswersTest, AFailedMergeIsNotHandedOnTheWaitersMergeForThemselves) {
  SharedAnswers s(SharedAnswers::Config{});
  absl::Notification started, release;
  auto failing = [&]() -> absl::StatusOr<Answer> {
    started.Notify();
    release.WaitForNotification();
    return absl::DeadlineExceededError("the first caller's deadline");
  };
  absl::Status first;
  std::thread a([&] {
    first = s.Get<Answer>(
                 "q", 1, QueryContext(), [] { return uint64_t{1}; }, failing)
                .status();
  });
  started.WaitForNotification();
  CountingMerge m;
  absl::StatusOr<Answer> second;
  std::thread b([&] { second = Get(s, "q", 1, m); });
  absl::SleepFor(absl::Milliseconds(50));
  release.Notify();
  a.join();
  b.join();
  EXPECT_EQ(first.code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->intervals(), 1u);
  EXPECT_EQ(m.calls, 1);
}

TEST(SharedAnswersTest, AWaiterHonoursItsOwnDeadline) {
  SharedAnswers s(SharedAnswers::Config{});
  absl::Notification started, release;
  auto slow = [&]() -> absl::StatusOr<Answer> {
    started.Notify();
    release.WaitForNotification();
    return Numbered(1);
  };
  std::thread a([&] {
    (void)s.Get<Answer>(
        "q", 1, QueryContext(), [] { return uint64_t{1}; }, slow);
  });
  started.WaitForNotification();
  QueryContext ctx;
  ctx.deadline = absl::Now() + absl::Milliseconds(100);
  CountingMerge m;
  const absl::Time t0 = absl::Now();
  EXPECT_EQ(Get(s, "q", 1, m, ctx).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(100));
  EXPECT_EQ(m.calls, 0);
  release.Notify();
  a.join();
}

TEST(SharedAnswersTest, AnAnswerFromAStoreThatChangedDuringTheMergeIsNotKept) {
  SharedAnswers s(SharedAnswers::Config{});
  CountingMerge m;
  auto get = [&] {
    return s.Get<Answer>(
        "q", 1, QueryContext(), [] { return uint64_t{2}; }, [&m] { return m(); });
  };
  EXPECT_EQ(get()->intervals(), 1u);
  EXPECT_EQ(get()->intervals(), 2u);
  EXPECT_EQ(s.stats().entries, 0u);
}

TEST(SharedAnswersTest, BudgetsBoundWhatIsKeptAndZeroTurnsSharingOff) {
  SharedAnswers tiny(SharedAnswers::Config{1, 256});
  CountingMerge m;
  Get(tiny, "q", 1, m).IgnoreError();
  Get(tiny, "q", 1, m).IgnoreError();
  EXPECT_EQ(m.calls, 2);
  EXPECT_EQ(tiny.stats().not_kept, 2u);
  EXPECT_EQ(tiny.stats().bytes, 0u);

  SharedAnswers one(SharedAnswers::Config{size_t{1} << 20, 1});
  CountingMerge m1;
  Get(one, "a", 1, m1).IgnoreError();  // kept: the one entry
  Get(one, "b", 1, m1).IgnoreError();  // no room: merged unshared
  Get(one, "b", 1, m1).IgnoreError();
  Get(one, "a", 1, m1).IgnoreError();  // still kept
  EXPECT_EQ(m1.calls, 3);
  EXPECT_EQ(one.stats().entries, 1u);

  SharedAnswers off(SharedAnswers::Config{0, 256});
  CountingMerge m0;
  Get(off, "q", 1, m0).IgnoreError();
  Get(off, "q", 1, m0).IgnoreError();
  EXPECT_EQ(m0.calls, 2);
  EXPECT_EQ(off.stats().merged, 2u);
  EXPECT_EQ(off.stats().stored, 0u);
}

struct Rows {
  std::vector<int> v;
  size_t RecordCount() const { return v.size(); }
};

// Through the store: the key is what the range covers now, so two ranges
// over the same intervals share, and a new interval ends the sharing.
TEST(SharedAnswersTest, TheStoreKeysAnswersByTheIntervalsTheRangeCovers) {
  WindowStore store(StoreConfig{absl::Minutes(10), 4});
  Table<Rows> t = store.Register<Rows>(1000);
  Table<Rows> u = store.Register<Rows>(1000);
  StoreWriter w = store.writer();
  const absl::Time now = absl::Now();
  w.Add(t, now - absl::Seconds(30), now - absl::Seconds(20), Rows{{1}});
  w.Add(u, now - absl::Seconds(30), now - absl::Seconds(20), Rows{{1}});
  w.Add(t, now - absl::Seconds(20), now - absl::Seconds(10), Rows{{2}});
  const StoreView view = store.view();
  CountingMerge m;
  auto get = [&](int64_t since_s) {
    v1::TimeRange r;
    r.set_since_ago_ns(since_s * 1000000000);
    return view.Shared<Answer>("q", r, QueryContext(), [&m] { return m(); })->intervals();
  };
  EXPECT_EQ(get(0), 1u);    // the whole window
  EXPECT_EQ(get(300), 1u);  // 5 minutes: the same intervals, the same answer
  EXPECT_EQ(get(15), 2u);   // one of t's intervals, none of u's: merged anew
  EXPECT_EQ(m.calls, 2);

  w.Add(u, now - absl::Seconds(20), now - absl::Seconds(10), Rows{{2}});
  EXPECT_EQ(view.shared_stats().entries, 0u);  // a new interval: nothing kept
  EXPECT_EQ(get(0), 3u);

  // A range the window cannot answer is merge()'s to refuse.
  v1::TimeRange bad;
  bad.set_since_ago_ns(int64_t{3600} * 1000000000);
  EXPECT_EQ(view.Shared<Answer>("q", bad, QueryContext(), [&m] { return m(); })->intervals(), 4u);
}

}  // namespace
}  // namespace vigil
