// Loads the real memory program (task iterator + the mark_victim variant
// the running kernel has) and checks what it reads against /proc. Runs on
// the host and, through tests/vm, on Debian 12's 6.1 kernel, where
// mm->rss_stat has the other layout and mark_victim passes only a pid.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/bpf_util.h"
#include "agent/memory/memory_collector.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

std::map<std::string, uint64_t> SelfStatus() {
  std::map<std::string, uint64_t> out;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    uint64_t kib = 0;
    if (f.size() == 3 && f[2] == "kB" && absl::SimpleAtoi(f[1], &kib)) {
      out[f[0].substr(0, f[0].size() - 1)] = kib * 1024;
    }
  }
  return out;
}

TEST(MemoryBpfTest, IteratorReadsThisProcessAsProcDoes) {
  VIGIL_REQUIRE_BPF();
  ConfigureLibbpfLogging(false);
  auto c = MemoryCollector::Create(MemoryConfig{});
  ASSERT_TRUE(c.ok()) << c.status();
  // Both the task iterator and one mark_victim variant are loaded.
  EXPECT_EQ((*c)->ProgramIds().size(), 2u) << (*c)->degraded();
  EXPECT_EQ((*c)->degraded().find("OOM"), std::string::npos) << (*c)->degraded();

  // 96 MiB of anonymous memory touched, 32 MiB of it shared.
  const size_t anon = 64 << 20, shm = 32 << 20;
  void* a = mmap(nullptr, anon, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* s = mmap(nullptr, shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(a, MAP_FAILED);
  ASSERT_NE(s, MAP_FAILED);
  memset(a, 1, anon);
  memset(s, 1, shm);
  absl::StatusOr<MemoryInterval> iv = (*c)->Collect(absl::Now());
  const std::map<std::string, uint64_t> proc = SelfStatus();
  ASSERT_TRUE(iv.ok()) << iv.status();
  EXPECT_EQ(iv->loss.read_failed, 0u);
  const ProcMemSample* self = nullptr;
  for (const ProcMemSample& p : iv->procs) {
    if (p.tgid == static_cast<uint32_t>(getpid())) self = &p;
    EXPECT_NE(p.tgid, 0u);
  }
  ASSERT_NE(self, nullptr) << iv->procs.size() << " processes";
  EXPECT_GT(iv->procs.size(), 3u);
  EXPECT_EQ(std::string(self->comm, strnlen(self->comm, sizeof(self->comm))),
            std::string("bpf_tests"));
  // Per-CPU batching (see tests/e2e/memory_e2e_test.cc): up to
  // max(32, 2 x CPUs) pages per CPU per counter.
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const double tol = static_cast<double>(std::max(32L, 2 * cpus) * cpus * 4096);
  EXPECT_NEAR(static_cast<double>(uint64_t{self->anon} * 4096),
              static_cast<double>(proc.at("RssAnon")), tol);
  EXPECT_NEAR(static_cast<double>(uint64_t{self->file} * 4096),
              static_cast<double>(proc.at("RssFile")), tol);
  EXPECT_NEAR(static_cast<double>(uint64_t{self->shmem} * 4096),
              static_cast<double>(proc.at("RssShmem")), tol);
  EXPECT_GE(static_cast<double>(uint64_t{self->anon} * 4096), static_cast<double>(anon) - tol);
  EXPECT_GE(static_cast<double>(uint64_t{self->shmem} * 4096), static_cast<double>(shm) - tol);
  EXPECT_EQ(self->ppid, static_cast<uint32_t>(getppid()));
  EXPECT_GT(iv->host_total_bytes, 0u);
  munmap(a, anon);
  munmap(s, shm);
}

}  // namespace
}  // namespace vigil
