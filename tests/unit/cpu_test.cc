// The cpu capability's pure logic: CPU per interval from successive passes
// of cumulative per-thread runtimes, and the /proc fallback's parsers.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "agent/cpu/cpu_aggregate.h"

namespace vigil {
namespace {

constexpr uint64_t kMs = 1000000;

TaskSample Task(uint32_t tgid, uint32_t tid, uint64_t start, uint64_t runtime, uint64_t dead = 0,
                const char* comm = "t") {
  TaskSample t;
  t.tgid = tgid;
  t.tid = tid;
  t.start_ns = start;
  t.runtime_ns = runtime;
  t.dead_runtime_ns = dead;
  strncpy(t.comm, comm, sizeof(t.comm) - 1);
  return t;
}

TaskPass Pass(uint64_t at, std::vector<TaskSample> tasks, bool dead_known = true) {
  TaskPass p;
  p.at_ns = at;
  p.dead_runtime_known = dead_known;
  p.tasks = std::move(tasks);
  return p;
}

const ThreadCpu* FindThread(const CpuInterval& iv, uint32_t tid) {
  for (const ThreadCpu& t : iv.threads) {
    if (t.tid == tid) return &t;
  }
  return nullptr;
}
const ProcCpu* FindProc(const CpuInterval& iv, uint32_t tgid) {
  for (const ProcCpu& p : iv.procs) {
    if (p.tgid == tgid) return &p;
  }
  return nullptr;
}

TEST(CpuDeltasTest, FirstPassHasNoBaselineThenDifferences) {
  CpuDeltas d;
  CpuInterval first = d.Next(Pass(1000 * kMs, {Task(10, 10, 5, 500 * kMs)}), 100, 100);
  EXPECT_TRUE(first.threads.empty());
  EXPECT_TRUE(first.procs.empty());
  EXPECT_EQ(first.tasks, 1u);
  CpuInterval second = d.Next(Pass(2000 * kMs, {Task(10, 10, 5, 750 * kMs)}), 100, 100);
  ASSERT_NE(FindThread(second, 10), nullptr);
  EXPECT_EQ(FindThread(second, 10)->cpu_ns, 250 * kMs);
  ASSERT_NE(FindProc(second, 10), nullptr);
  EXPECT_EQ(FindProc(second, 10)->cpu_ns, 250 * kMs);
  EXPECT_EQ(FindProc(second, 10)->threads, 1u);
}

TEST(CpuDeltasTest, ThreadsBornSinceBeginCountWholeInTheFirstPass) {
  CpuDeltas d;
  d.Begin(1000);
  CpuInterval iv = d.Next(Pass(2000, {Task(10, 10, 5, 900), Task(20, 20, 1500, 70)}), 100, 100);
  EXPECT_EQ(FindThread(iv, 10), nullptr);  // older than the agent: no baseline
  ASSERT_NE(FindThread(iv, 20), nullptr);
  EXPECT_EQ(FindThread(iv, 20)->cpu_ns, 70u);
  EXPECT_EQ(FindProc(iv, 20)->cpu_ns, 70u);
}

TEST(CpuDeltasTest, NewThreadsCountWholeAndExitedThreadsStayInTheProcess) {
  CpuDeltas d;
  d.Next(Pass(1000 * kMs, {Task(10, 10, 5, 100 * kMs), Task(10, 11, 6, 200 * kMs)}), 100, 100);
  // 11 ran 50 ms more and exited (its 250 ms move to the dead sum); 12
  // started after the previous pass and ran 30 ms; 10 ran 10 ms.
  CpuInterval iv = d.Next(Pass(2000 * kMs, {Task(10, 10, 5, 110 * kMs, 250 * kMs),
                                            Task(10, 12, 1500 * kMs, 30 * kMs, 250 * kMs)}),
                          100, 100);
  EXPECT_EQ(FindThread(iv, 10)->cpu_ns, 10 * kMs);
  EXPECT_EQ(FindThread(iv, 12)->cpu_ns, 30 * kMs);
  EXPECT_EQ(FindThread(iv, 11), nullptr);
  // 10 + 30 + the exited thread's last 50 ms: exact.
  EXPECT_EQ(FindProc(iv, 10)->cpu_ns, 90 * kMs);
}

TEST(CpuDeltasTest, WithoutDeadRuntimeAProcessIsItsLiveThreads) {
  CpuDeltas d;
  d.Next(Pass(1000, {Task(10, 10, 5, 100), Task(10, 11, 6, 200)}, false), 100, 100);
  CpuInterval iv = d.Next(Pass(2000, {Task(10, 10, 5, 110)}, false), 100, 100);
  // Thread 11's exit does not make the process give CPU back.
  EXPECT_EQ(FindProc(iv, 10)->cpu_ns, 10u);
}

TEST(CpuDeltasTest, AReusedTidIsANewThread) {
  CpuDeltas d;
  d.Next(Pass(1000, {Task(10, 10, 5, 900)}), 100, 100);
  // Same tid, another start time, a smaller runtime: not a negative delta.
  CpuInterval iv = d.Next(Pass(2000, {Task(10, 10, 1500, 40)}), 100, 100);
  EXPECT_EQ(FindThread(iv, 10)->cpu_ns, 40u);
  // Started before the previous pass yet unseen (a cut pass): no baseline.
  CpuInterval iv2 = d.Next(Pass(3000, {Task(10, 10, 1500, 50), Task(20, 20, 7, 999)}), 100, 100);
  EXPECT_EQ(FindThread(iv2, 20), nullptr);
}

TEST(CpuDeltasTest, CapsKeepTheBusiestAndCountTheRest) {
  CpuDeltas d;
  std::vector<TaskSample> a, b;
  for (uint32_t i = 1; i <= 10; ++i) {
    a.push_back(Task(i, i, 1, 0));
    b.push_back(Task(i, i, 1, i * 100));
  }
  d.Next(Pass(1000, a), 3, 4);
  CpuInterval iv = d.Next(Pass(2000, b), 3, 4);
  ASSERT_EQ(iv.threads.size(), 3u);
  EXPECT_EQ(iv.threads[0].tid, 10u);
  EXPECT_EQ(iv.threads[2].tid, 8u);
  EXPECT_EQ(iv.loss.threads_over_cap, 7u);
  EXPECT_EQ(iv.procs.size(), 4u);
  EXPECT_EQ(iv.loss.processes_over_cap, 6u);
}

TEST(CpuParseTest, TaskStatNameWithParensAndSpaces) {
  const std::string stat =
      "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 1 0 987654 "
      "1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
  absl::StatusOr<ProcTaskStat> s = ParseTaskStat(stat);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->comm, "we ird) (x");
  EXPECT_EQ(s->cpu_ticks, 175u);
  EXPECT_EQ(s->start_ticks, 987654u);
  EXPECT_FALSE(s->kthread);
  EXPECT_FALSE(ParseTaskStat("4242 no parens").ok());
  uint64_t busy = 0, total = 0;
  ASSERT_TRUE(ParseProcStatCpu("cpu  10 2 8 70 5 1 1 3 0 0\ncpu0 ...", &busy, &total).ok());
  EXPECT_EQ(total, 100u);
  EXPECT_EQ(busy, 25u);
}

}  // namespace
}  // namespace vigil
