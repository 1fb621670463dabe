// The memory capability's pure logic: growth by least squares, the process
// cap, request validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "agent/memory/memory_aggregate.h"

namespace vigil {
namespace {

ProcMemSample Proc(uint32_t pid, uint32_t anon_pages, const char* comm = "p") {
  ProcMemSample s;
  s.tgid = pid;
  s.start_ns = 1000 + pid;
  s.anon = anon_pages;
  strncpy(s.comm, comm, sizeof(s.comm) - 1);
  return s;
}

TEST(MemoryMergerTest, GrowthIsTheSlopeAndOrderFollowsSort) {
  MemoryQuery q;
  q.sort = v1::MEMORY_SORT_GROWTH;
  MemoryMerger m(q);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 10; ++i) {
    MemoryInterval iv;
    iv.page_size = 4096;
    iv.procs.push_back(Proc(1, 1000));                    // flat, large
    iv.procs.push_back(Proc(2, 100 + 256 * i));           // +1 MiB per second
    iv.procs.push_back(Proc(3, i % 2 == 0 ? 500 : 900));  // churn, no trend
    m.Add(iv, t0 + absl::Seconds(i));
  }
  v1::MemoryResponse r;
  m.Finish(&r);
  ASSERT_EQ(r.processes_size(), 3);
  EXPECT_EQ(r.processes(0).pid(), 2u);
  EXPECT_NEAR(r.processes(0).growth_bytes_per_s(), 1 << 20, 1);
  EXPECT_EQ(r.processes(0).rss_change_bytes(), 9 * 256 * 4096);
  EXPECT_EQ(r.processes(0).samples(), 10u);
  for (const v1::ProcessMemory& p : r.processes()) {
    if (p.pid() == 1) {
      EXPECT_NEAR(p.growth_bytes_per_s(), 0, 1e-6);
    }
    if (p.pid() == 3) {  // churn: a small slope, far from pid 2's
      EXPECT_LT(std::abs(p.growth_bytes_per_s()), 0.2 * (1 << 20));
    }
  }

  MemoryQuery by_rss;
  MemoryMerger m2(by_rss);
  MemoryInterval iv;
  iv.procs = {Proc(1, 10), Proc(2, 30), Proc(3, 20)};
  m2.Add(iv, t0);
  v1::MemoryResponse r2;
  m2.Finish(&r2);
  ASSERT_EQ(r2.processes_size(), 3);
  EXPECT_EQ(r2.processes(0).pid(), 2u);
  EXPECT_EQ(r2.processes(2).pid(), 1u);
  EXPECT_EQ(r2.processes(0).growth_bytes_per_s(), 0);  // one sample: no slope
}

TEST(MemoryMergerTest, AReusedPidIsAnotherProcessAndTopCutsRows) {
  MemoryQuery q;
  q.top = 1;
  MemoryMerger m(q);
  MemoryInterval a, b;
  a.procs = {Proc(7, 100, "old")};
  ProcMemSample reused = Proc(7, 50, "new");
  reused.start_ns = 999999;
  b.procs = {reused};
  m.Add(a, absl::FromUnixSeconds(1));
  m.Add(b, absl::FromUnixSeconds(2));
  v1::MemoryResponse r;
  m.Finish(&r);
  ASSERT_EQ(r.processes_size(), 1);
  EXPECT_EQ(r.processes(0).comm(), "old");
  EXPECT_EQ(r.processes(0).samples(), 1u);
  EXPECT_EQ(r.rows_omitted(), 1u);
}

TEST(MemoryMergerTest, CapKeepsTheLargestAndCountsTheRest) {
  std::vector<ProcMemSample> v = {Proc(1, 5), Proc(2, 50), Proc(3, 500), Proc(4, 1)};
  MemoryLossCounts loss;
  CapProcesses(&v, 2, &loss);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(loss.processes_over_cap, 2u);
  std::vector<uint32_t> pids = {v[0].tgid, v[1].tgid};
  std::sort(pids.begin(), pids.end());
  EXPECT_EQ(pids, (std::vector<uint32_t>{2, 3}));
}

TEST(MemoryMergerTest, BadRequestsAreInvalidArgument) {
  v1::MemoryRequest req;
  req.set_top(10001);
  EXPECT_EQ(ValidateMemoryRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.set_top(0);
  req.set_sort(static_cast<v1::MemorySort>(42));
  EXPECT_EQ(ValidateMemoryRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.set_sort(v1::MEMORY_SORT_GROWTH);
  absl::StatusOr<MemoryQuery> q = ValidateMemoryRequest(req);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->top, 20u);
}

}  // namespace
}  // namespace vigil
