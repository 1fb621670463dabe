#include "agent/syscalls/syscalls_aggregate.h"

#include <gtest/gtest.h>

#include <cstring>

#include "agent/syscalls/syscall_table.h"

namespace vigil {
namespace {

syscall_stats Stats(uint64_t calls, uint64_t errors, uint64_t total, uint64_t max, const char* comm,
                    const char* pcomm) {
  syscall_stats s = {};
  s.calls = calls;
  s.errors = errors;
  s.total_ns = total;
  s.max_ns = max;
  // Put every call in the bucket of its average latency.
  uint64_t avg = calls ? total / calls : 0;
  int b = 0;
  while (b + 1 < VIGIL_SYSCALL_HIST_BUCKETS && (avg >> (b + 1)) != 0) ++b;
  s.hist[b] = calls;
  strncpy(s.comm, comm, sizeof(s.comm) - 1);
  strncpy(s.pcomm, pcomm, sizeof(s.pcomm) - 1);
  return s;
}

const int kRead = SyscallNumber("read");
const int kWrite = SyscallNumber("write");
const int kFutex = SyscallNumber("futex");

SyscallInterval TwoThreads() {
  SyscallInterval iv;
  iv.Append({100, 100, static_cast<uint32_t>(kRead), 0}, Stats(10, 1, 1000, 300, "app", "app"));
  iv.Append({100, 101, static_cast<uint32_t>(kWrite), 0}, Stats(5, 0, 5000, 2000, "worker", "app"));
  iv.Append({200, 200, static_cast<uint32_t>(kFutex), 0}, Stats(2, 2, 900000, 800000, "db", "db"));
  iv.loss.map_full = 3;
  return iv;
}

SyscallQuery Query(v1::SyscallGroupBy by = v1::SYSCALL_GROUP_BY_THREAD) {
  v1::SyscallsRequest req;
  req.set_group_by(by);
  return *ValidateSyscallsRequest(req);
}

TEST(SyscallsAggregateTest, AppendStoresHistogramSparsely) {
  SyscallInterval iv;
  syscall_stats s = {};
  s.calls = 3;
  s.hist[4] = 1;
  s.hist[6] = 2;
  iv.Append({1, 1, 0, 0}, s);
  ASSERT_EQ(iv.records.size(), 1u);
  EXPECT_EQ(iv.records[0].hist_first, 4);
  EXPECT_EQ(iv.records[0].hist_len, 3);
  EXPECT_EQ(iv.hist_pool, (std::vector<uint64_t>{1, 0, 2}));
}

TEST(SyscallsAggregateTest, MergesIntervalsPerThreadAndSyscall) {
  SyscallQuery q = Query();
  SyscallMerger m(q);
  const SyscallInterval a = TwoThreads(), b = TwoThreads();
  m.Add(a);
  m.Add(b);
  v1::SyscallsResponse r;
  m.Finish(&r);
  ASSERT_EQ(r.threads_size(), 3);
  // Ranked by total time: db (1.8 ms) first.
  EXPECT_EQ(r.threads(0).pid(), 200u);
  EXPECT_EQ(r.threads(0).comm(), "db");
  EXPECT_EQ(r.threads(0).syscalls(0).name(), "futex");
  EXPECT_EQ(r.threads(0).syscalls(0).calls(), 4u);
  EXPECT_EQ(r.threads(0).syscalls(0).errors(), 4u);
  EXPECT_EQ(r.threads(0).syscalls(0).total_ns(), 1800000u);
  EXPECT_EQ(r.threads(0).syscalls(0).max_ns(), 800000u);
  uint64_t hist_sum = 0;
  for (uint64_t h : r.threads(0).syscalls(0).latency_log2_hist()) hist_sum += h;
  EXPECT_EQ(hist_sum, 4u);
  EXPECT_EQ(r.threads(1).tid(), 101u);
  EXPECT_EQ(r.threads(1).process_comm(), "app");
  EXPECT_EQ(r.loss().map_full(), 6u);
}

// The store's coarsening: a query over the merged interval answers what
// one over both parts did (counts, time, max, histograms, losses), in every
// grouping.
TEST(SyscallsAggregateTest, ACoarsenedIntervalAnswersLikeItsParts) {
  SyscallInterval older = TwoThreads();
  SyscallInterval newer;
  // The same (thread, syscall) in another latency bucket, a new syscall of
  // a known thread, and a new thread.
  newer.Append({100, 100, static_cast<uint32_t>(kRead), 0},
               Stats(4, 0, 4000000, 3000000, "app", "app"));
  newer.Append({100, 101, static_cast<uint32_t>(kFutex), 0}, Stats(1, 0, 70, 70, "worker", "app"));
  newer.Append({300, 301, static_cast<uint32_t>(kWrite), 0}, Stats(9, 9, 900, 100, "new", "new"));
  // The same (thread, syscall) with a smaller max than before.
  newer.Append({200, 200, static_cast<uint32_t>(kFutex), 0}, Stats(1, 0, 10, 10, "db", "db"));
  newer.loss.no_enter = 2;
  for (v1::SyscallGroupBy by :
       {v1::SYSCALL_GROUP_BY_THREAD, v1::SYSCALL_GROUP_BY_PROCESS, v1::SYSCALL_GROUP_BY_SYSCALL}) {
    const SyscallQuery q = Query(by);
    SyscallMerger parts(q);
    parts.Add(older);
    parts.Add(newer);
    v1::SyscallsResponse want;
    parts.Finish(&want);

    SyscallInterval coarse = older;
    coarse.MergeNewer(newer);
    EXPECT_EQ(coarse.records.size(), 5u);
    SyscallMerger one(q);
    one.Add(coarse);
    v1::SyscallsResponse got;
    one.Finish(&got);
    EXPECT_EQ(got.DebugString(), want.DebugString()) << "group_by " << by;
  }
}

TEST(SyscallsAggregateTest, GroupsByProcessAndSyscall) {
  {
    SyscallQuery q = Query(v1::SYSCALL_GROUP_BY_PROCESS);
    SyscallMerger m(q);
    const SyscallInterval iv_m = TwoThreads();
    m.Add(iv_m);
    v1::SyscallsResponse r;
    m.Finish(&r);
    ASSERT_EQ(r.threads_size(), 2);
    const v1::ThreadSyscalls& app = r.threads(1);
    EXPECT_EQ(app.pid(), 100u);
    EXPECT_EQ(app.tid(), 0u);
    EXPECT_EQ(app.comm(), "app");
    EXPECT_EQ(app.total_calls(), 15u);
    EXPECT_EQ(app.total_errors(), 1u);
    EXPECT_EQ(app.syscalls_size(), 2);
  }
  {
    SyscallQuery q = Query(v1::SYSCALL_GROUP_BY_SYSCALL);
    SyscallMerger m(q);
    const SyscallInterval iv_m = TwoThreads();
    m.Add(iv_m);
    v1::SyscallsResponse r;
    m.Finish(&r);
    ASSERT_EQ(r.threads_size(), 1);
    EXPECT_EQ(r.threads(0).comm(), "*");
    EXPECT_EQ(r.threads(0).syscalls_size(), 3);
    EXPECT_EQ(r.threads(0).total_calls(), 17u);
  }
}

TEST(SyscallsAggregateTest, FiltersByPidTidAndCommRegex) {
  v1::SyscallsRequest req;
  req.set_comm_regex("^work");
  SyscallQuery q = *ValidateSyscallsRequest(req);
  SyscallMerger m(q);
  const SyscallInterval iv_m = TwoThreads();
  m.Add(iv_m);
  v1::SyscallsResponse r;
  m.Finish(&r);
  ASSERT_EQ(r.threads_size(), 1);
  EXPECT_EQ(r.threads(0).tid(), 101u);

  req.Clear();
  req.set_pid(100);
  req.set_comm_regex("app");  // matches the process name of both threads
  SyscallQuery q2 = *ValidateSyscallsRequest(req);
  SyscallMerger m2(q2);
  const SyscallInterval iv_m2 = TwoThreads();
  m2.Add(iv_m2);
  v1::SyscallsResponse r2;
  m2.Finish(&r2);
  EXPECT_EQ(r2.threads_size(), 2);

  req.Clear();
  req.set_tid(101);
  SyscallQuery q3 = *ValidateSyscallsRequest(req);
  SyscallMerger m3(q3);
  const SyscallInterval iv_m3 = TwoThreads();
  m3.Add(iv_m3);
  v1::SyscallsResponse r3;
  m3.Finish(&r3);
  ASSERT_EQ(r3.threads_size(), 1);
  EXPECT_EQ(r3.threads(0).syscalls(0).name(), "write");
}

TEST(SyscallsAggregateTest, TopCutsGroupsAndCountsOmitted) {
  v1::SyscallsRequest req;
  req.set_top(1);
  SyscallQuery q = *ValidateSyscallsRequest(req);
  SyscallMerger m(q);
  const SyscallInterval iv_m = TwoThreads();
  m.Add(iv_m);
  v1::SyscallsResponse r;
  m.Finish(&r);
  EXPECT_EQ(r.threads_size(), 1);
  EXPECT_EQ(r.groups_omitted(), 2u);
}

TEST(SyscallsAggregateTest, SortsByCallsOrErrorsAndCutsSyscallsPerGroup) {
  v1::SyscallsRequest req;
  req.set_sort(v1::SYSCALL_SORT_CALLS);
  SyscallQuery q = *ValidateSyscallsRequest(req);
  SyscallMerger m(q);
  const SyscallInterval iv_m = TwoThreads();
  m.Add(iv_m);
  v1::SyscallsResponse r;
  m.Finish(&r);
  ASSERT_EQ(r.threads_size(), 3);
  EXPECT_EQ(r.threads(0).tid(), 100u);  // 10 calls
  EXPECT_EQ(r.threads(1).tid(), 101u);  // 5 calls
  EXPECT_EQ(r.threads(2).tid(), 200u);  // 2 calls

  req.set_sort(v1::SYSCALL_SORT_ERRORS);
  req.set_group_by(v1::SYSCALL_GROUP_BY_PROCESS);
  req.set_top_syscalls(1);
  SyscallQuery q2 = *ValidateSyscallsRequest(req);
  SyscallMerger m2(q2);
  const SyscallInterval iv_m2 = TwoThreads();
  m2.Add(iv_m2);
  v1::SyscallsResponse r2;
  m2.Finish(&r2);
  ASSERT_EQ(r2.threads_size(), 2);
  EXPECT_EQ(r2.threads(0).pid(), 200u);  // 2 errors
  ASSERT_EQ(r2.threads(1).syscalls_size(), 1);
  EXPECT_EQ(r2.threads(1).syscalls(0).name(), "read");  // the one with an error
  // Totals still cover the syscalls cut from the list.
  EXPECT_EQ(r2.threads(1).total_calls(), 15u);
}

TEST(SyscallsAggregateTest, RanksLargeU64TotalsWithoutNarrowing) {
  // 2^32 + 1 ns would rank below 2 ns if narrowed to 32 bits.
  SyscallInterval iv;
  iv.Append({1, 1, 0, 0}, Stats(1, 0, (1ull << 32) + 1, 1, "big", "big"));
  iv.Append({2, 2, 0, 0}, Stats(1, 0, 2, 2, "small", "small"));
  SyscallQuery q = Query();
  SyscallMerger m(q);
  m.Add(iv);
  v1::SyscallsResponse r;
  m.Finish(&r);
  ASSERT_EQ(r.threads_size(), 2);
  EXPECT_EQ(r.threads(0).comm(), "big");
}

TEST(SyscallsAggregateTest, ARegexErrorNeverEchoesTheWholePattern) {
  v1::SyscallsRequest req;
  // A huge pattern, and a long broken one whose RE2 error quotes its tail.
  for (const std::string& p :
       {std::string(1 << 20, 'a'), "(" + std::string(100000, 'b') + "\x1b[31m"}) {
    req.set_comm_regex(p);
    const absl::Status s = ValidateSyscallsRequest(req).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_LT(s.message().size(), 300u) << s.message().substr(0, 300);
    EXPECT_EQ(s.message().find('\x1b'), absl::string_view::npos);  // escaped
    EXPECT_NE(s.message().find("comm_regex"), absl::string_view::npos);
  }
}

TEST(SyscallsAggregateTest, RejectsBadRequests) {
  v1::SyscallsRequest req;
  req.set_comm_regex("(");
  EXPECT_EQ(ValidateSyscallsRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.Clear();
  req.set_top(kMaxTop + 1);
  EXPECT_EQ(ValidateSyscallsRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.Clear();
  req.set_group_by(static_cast<v1::SyscallGroupBy>(42));
  EXPECT_EQ(ValidateSyscallsRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.Clear();
  req.mutable_range()->set_since_ago_ns(-1);
  EXPECT_EQ(ValidateSyscallsRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.Clear();
  req.mutable_range()->set_since_ago_ns(10);
  req.mutable_range()->set_until_ago_ns(20);
  EXPECT_EQ(ValidateSyscallsRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.Clear();
  req.set_sort(static_cast<v1::SyscallSort>(9));
  EXPECT_EQ(ValidateSyscallsRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.Clear();
  req.set_top_syscalls(kMaxTop + 1);
  EXPECT_EQ(ValidateSyscallsRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.Clear();
  EXPECT_TRUE(ValidateSyscallsRequest(req).ok());
}

}  // namespace
}  // namespace vigil
