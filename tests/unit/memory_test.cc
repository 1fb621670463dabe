// The memory capability's pure logic: growth by least squares, the process
// cap, request validation, top growing stacks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "agent/memory/memory_aggregate.h"
#include "agent/profile/profile_aggregate.h"

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
  EXPECT_EQ(q->top, 20u);  // Found by tests/fuzz/requests_fuzz: GetMemory took any range.
  req.mutable_range()->set_since_ago_ns(-1);
  EXPECT_EQ(ValidateMemoryRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.mutable_range()->set_since_ago_ns(1000);
  req.mutable_range()->set_until_ago_ns(5000);
  EXPECT_EQ(ValidateMemoryRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.mutable_range()->set_until_ago_ns(500);
  EXPECT_TRUE(ValidateMemoryRequest(req).ok());
}

FramePtr Fn(const std::string& name, bool kernel = false) {
  return std::make_shared<const Frame>(
      Frame::Of(name, kernel ? "[kernel]" : "/bin/app", 0, kernel));
}

ProfileStackRecord Fault(uint32_t tgid, uint32_t tid, uint64_t samples) {
  ProfileStackRecord r;
  r.tgid = tgid;
  r.tid = tid;
  r.kind = PROFILE_KIND_FAULT;
  r.samples = samples;
  return r;
}

// What vigil memory --pid and a growth alert do: the profiler's merge of
// one process's fault records (ProfileMerger, as FaultProfile runs it),
// then the fold across threads by user stack.
TEST(GrowingStacksTest, SummedAcrossThreadsByUserStackAndBounded) {
  const FramePtr leak = Fn("Leak"), read = Fn("Read"), main_fn = Fn("main"), x = Fn("X");
  const FramePtr copy = Fn("copy_user", true), sys = Fn("sys_read", true);
  std::vector<FramePtr> deep;
  for (int i = 0; i < 20; ++i) deep.push_back(Fn("D" + std::to_string(i)));
  std::vector<FramePtr> deep_other(deep.begin(), deep.begin() + 16);
  deep_other.push_back(x);  // differs from `deep` only beyond the 16th frame

  ProfileInterval a, b;
  a.Append(Fault(7, 7, 5), {}, {leak, main_fn});
  b.Append(Fault(7, 8, 3), {}, {leak, main_fn});           // another thread, same stack
  a.Append(Fault(7, 7, 2), {copy, sys}, {read, main_fn});  // taken in the kernel
  a.Append(Fault(7, 9, 1), {}, deep);
  b.Append(Fault(7, 9, 2), {}, deep_other);
  b.Append(Fault(7, 7, 1), {copy}, {});  // no user stack
  ProfileStackRecord cpu = Fault(7, 7, 100);
  cpu.kind = PROFILE_KIND_CPU;  // CPU time, not memory
  a.Append(cpu, {}, {leak, main_fn});
  b.Append(Fault(9, 9, 50), {}, {x, main_fn});  // another process
  a.Seal();
  b.Seal();

  ProfileQuery q;
  q.pid = 7;
  q.kind = PROFILE_KIND_FAULT;
  q.frames = v1::FRAME_FILTER_ALL;
  q.fault_period = 64;
  ProfileMerger merger(q);
  merger.Add(a);
  merger.Add(b);
  v1::ProfileResponse prof;
  merger.Finish(&prof);

  v1::GrowingStacks g;
  FoldGrowingStacks(prof, 3, kGrowingStackFrames, &g);
  const uint64_t page = 64 * 4096;  // bytes per sample
  EXPECT_EQ(g.samples(), 14u);
  EXPECT_EQ(g.fault_bytes(), 14 * page);
  EXPECT_EQ(g.fault_period(), 64u);
  EXPECT_TRUE(g.unavailable().empty());
  ASSERT_EQ(g.stacks_size(), 3);
  EXPECT_EQ(g.stacks_omitted(), 1u);  // the one without a user stack

  const v1::GrowingStack& top = g.stacks(0);
  ASSERT_EQ(top.frames_size(), 2);
  EXPECT_EQ(top.frames(0).name(), "Leak");
  EXPECT_EQ(top.frames(0).module(), "/bin/app");
  EXPECT_EQ(top.frames(1).name(), "main");
  EXPECT_EQ(top.samples(), 8u);
  EXPECT_EQ(top.fault_bytes(), 8 * page);
  EXPECT_DOUBLE_EQ(top.share(), 8.0 / 14);
  EXPECT_FALSE(top.frames_cut());

  const v1::GrowingStack& cut = g.stacks(1);
  EXPECT_EQ(cut.samples(), 3u);
  ASSERT_EQ(cut.frames_size(), static_cast<int>(kGrowingStackFrames));
  EXPECT_EQ(cut.frames(0).name(), "D0");
  EXPECT_EQ(cut.frames(15).name(), "D15");
  EXPECT_TRUE(cut.frames_cut());

  const v1::GrowingStack& in_kernel = g.stacks(2);
  EXPECT_EQ(in_kernel.samples(), 2u);
  ASSERT_EQ(in_kernel.frames_size(), 2);  // kernel frames left out
  EXPECT_EQ(in_kernel.frames(0).name(), "Read");

  v1::GrowingStacks all;
  FoldGrowingStacks(prof, 10, kGrowingStackFrames, &all);
  ASSERT_EQ(all.stacks_size(), 4);
  EXPECT_EQ(all.stacks_omitted(), 0u);
  EXPECT_EQ(all.stacks(3).frames_size(), 0);
  EXPECT_EQ(all.stacks(3).samples(), 1u);
  double shares = 0;
  for (const v1::GrowingStack& s : all.stacks()) shares += s.share();
  EXPECT_NEAR(shares, 1.0, 1e-9);
}

TEST(GrowingStacksTest, NoSamplesIsAnEmptyListWithZeroBytes) {
  v1::GrowingStacks g;
  FoldGrowingStacks(v1::ProfileResponse(), 5, kGrowingStackFrames, &g);
  EXPECT_EQ(g.stacks_size(), 0);
  EXPECT_EQ(g.fault_bytes(), 0u);
}

}  // namespace
}  // namespace vigil
