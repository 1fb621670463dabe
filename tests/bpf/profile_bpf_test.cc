// Loads the real profiler BPF programs, samples a CPU-bound thread and a
// page-faulting thread of this process, and checks the double buffer's
// accounting, the fault counts against the kernel's, the degraded path and
// teardown. Skips with the reason when BPF is not allowed.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "agent/bpf_util.h"
#include "agent/profile/profile_capability.h"
#include "agent/profile/profile_collector.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

class ProfileBpfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VIGIL_REQUIRE_BPF();
    ConfigureLibbpfLogging(false);
  }
};

__attribute__((noinline)) uint64_t BurnForProfileTest(const std::atomic<bool>* stop) {
  volatile uint64_t x = 1;
  while (!stop->load(std::memory_order_relaxed)) x = x * 6364136223846793005ull + 1;
  return x;
}

TEST_F(ProfileBpfTest, EverySampleIsDrainedOnceAcrossBufferSwaps) {
  ProfileConfig cfg;
  cfg.sample_hz = 997;
  auto c = ProfileCollector::Create(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GT((*c)->cpus(), 0u);
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> burner_tid{0};
  std::thread burner([&] {
    burner_tid = static_cast<uint32_t>(syscall(SYS_gettid));
    BurnForProfileTest(&stop);
  });
  // Many short intervals while samples keep arriving: a swap that lost or
  // repeated a buffer would break the totals below.
  uint64_t kept = 0, seen = 0, idle = 0, dropped = 0, mine = 0;
  bool named = false;
  for (int i = 0; i < 40; ++i) {
    absl::SleepFor(absl::Milliseconds(25));
    absl::StatusOr<ProfileIntervals> both = (*c)->Collect();
    ASSERT_TRUE(both.ok()) << both.status();
    const ProfileInterval* iv = &both->cpu;
    // Page-fault samples (this process faults too) share the maps, and go
    // to their own interval.
    seen += iv->loss.samples + iv->loss.fault_samples;
    idle += iv->loss.idle + iv->loss.fault_no_user;
    dropped += iv->loss.map_full + iv->loss.no_buffer;
    for (const ProfileStackRecord& r : both->memory.stacks) {
      if (r.kind != PROFILE_KIND_FAULT) continue;  // large map calls share the interval
      kept += r.samples;
    }
    for (const ProfileStackRecord& r : iv->stacks) {
      EXPECT_EQ(r.kind, PROFILE_KIND_CPU);
      kept += r.samples;
      if (r.tid != burner_tid.load()) continue;
      mine += r.samples;
      for (uint32_t f = r.first; f < r.first + r.kernel_frames + r.user_frames; ++f) {
        named |= iv->frames[iv->pool[f]]->name().find("BurnForProfileTest") != std::string::npos;
      }
    }
    // Counters are read after the drain, so they may run ahead of what was
    // drained by the samples of the new buffer, never behind.
    EXPECT_LE(kept + idle + dropped, seen);
  }
  stop = true;
  burner.join();
  // Drain what the last buffer holds, then one more swap for the samples
  // taken during that drain: the totals must meet.
  uint64_t last_seen = seen;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<ProfileIntervals> both = (*c)->Collect();
    ASSERT_TRUE(both.ok());
    const ProfileInterval* iv = &both->cpu;
    for (const ProfileStackRecord& r : iv->stacks) kept += r.samples;
    for (const ProfileStackRecord& r : both->memory.stacks) {
      if (r.kind == PROFILE_KIND_FAULT) kept += r.samples;
    }
    seen += iv->loss.samples + iv->loss.fault_samples;
    idle += iv->loss.idle + iv->loss.fault_no_user;
    dropped += iv->loss.map_full + iv->loss.no_buffer;
    if (i == 0) last_seen = seen;
  }
  EXPECT_GE(kept + idle + dropped, last_seen) << "samples were lost between buffers";
  EXPECT_LE(kept + idle + dropped, seen) << "samples were counted twice";
  EXPECT_GT(mine, 200u) << "the burner ran ~1s at 997 Hz";
  EXPECT_TRUE(named) << "BurnForProfileTest never appeared in a stack";
}

TEST_F(ProfileBpfTest, DestroyDetachesEverything) {
  std::vector<uint32_t> ids;
  {
    auto c = ProfileCollector::Create(ProfileConfig{});
    ASSERT_TRUE(c.ok()) << c.status();
    ids = (*c)->ProgramIds();
    // The CPU sampler, the user and kernel fault programs, the exec and fork
    // hooks, the map-call hook.
    ASSERT_EQ(ids.size(), 6u);
  }
  for (uint32_t id : ids) {
    int fd = -1;
    for (int tries = 0; tries < 50; ++tries) {
      fd = bpf_prog_get_fd_by_id(id);
      if (fd < 0) break;
      close(fd);
      usleep(20000);
    }
    EXPECT_LT(fd, 0) << "program " << id << " still loaded 1s after destroy";
  }
}

TEST_F(ProfileBpfTest, RejectsBadConfig) {
  ProfileConfig cfg;
  cfg.sample_hz = 0;
  EXPECT_EQ(ProfileCollector::Create(cfg).status().code(), absl::StatusCode::kInvalidArgument);
  cfg.sample_hz = 1001;
  EXPECT_EQ(ProfileCollector::Create(cfg).status().code(), absl::StatusCode::kInvalidArgument);
  cfg.sample_hz = 49;
  cfg.fault_period = kMaxFaultPeriod + 1;
  EXPECT_EQ(ProfileCollector::Create(cfg).status().code(), absl::StatusCode::kInvalidArgument);
}

// First-touches `pages` fresh 4 KiB pages (no huge pages: one fault each).
__attribute__((noinline)) void TouchForFaultTest(size_t pages) {
  const size_t bytes = pages * 4096;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  madvise(p, bytes, MADV_NOHUGEPAGE);
  volatile char* mem = static_cast<volatile char*>(p);
  for (size_t i = 0; i < pages; ++i) mem[i * 4096] = 1;
  munmap(p, bytes);
}

uint64_t ThreadMinorFaults() {
  rusage u = {};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<uint64_t>(u.ru_minflt);
}

// Period 1: every fault is a sample, so the thread's fault samples must
// equal the kernel's count of its minor faults (up to the few faults
// that are not minor ones, or that the kernel counts only once retried).
TEST_F(ProfileBpfTest, FaultProgramCountsEveryFaultOfAThread) {
  ProfileConfig cfg;
  cfg.fault_period = 1;
  auto c = ProfileCollector::Create(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->faults_on()) << (*c)->fault_off_reason();
  EXPECT_TRUE((*c)->fault_off_reason().empty());
  ASSERT_TRUE((*c)->Collect().ok());       // forget what came before
  constexpr size_t kPagesToTouch = 16384;  // 64 MiB
  uint32_t tid = 0;
  uint64_t minflt = 0;
  std::thread toucher([&] {
    tid = static_cast<uint32_t>(syscall(SYS_gettid));
    const uint64_t before = ThreadMinorFaults();
    TouchForFaultTest(kPagesToTouch);
    minflt = ThreadMinorFaults() - before;
  });
  toucher.join();
  uint64_t fault_samples = 0, cpu_samples = 0, seen = 0, named = 0;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<ProfileIntervals> both = (*c)->Collect();
    ASSERT_TRUE(both.ok()) << both.status();
    seen += both->cpu.loss.fault_samples;
    EXPECT_EQ(both->cpu.loss.map_full, 0u);
    for (const ProfileStackRecord& r : both->cpu.stacks) {
      EXPECT_EQ(r.kind, PROFILE_KIND_CPU);
      if (r.tid == tid) cpu_samples += r.samples;
    }
    const ProfileInterval* iv = &both->memory;
    for (const ProfileStackRecord& r : iv->stacks) {
      if (r.kind != PROFILE_KIND_FAULT) continue;  // large map calls share the interval
      if (r.tid != tid) continue;
      fault_samples += r.samples;
      for (uint32_t f = r.first; f < r.first + r.kernel_frames + r.user_frames; ++f) {
        if (iv->frames[iv->pool[f]]->name().find("TouchForFaultTest") != std::string::npos) {
          named += r.samples;
          break;
        }
      }
    }
  }
  printf("thread minflt %lu, fault samples %lu (%lu with TouchForFaultTest), cpu samples %lu\n",
         static_cast<unsigned long>(minflt), static_cast<unsigned long>(fault_samples),
         static_cast<unsigned long>(named), static_cast<unsigned long>(cpu_samples));
  EXPECT_GE(minflt, kPagesToTouch);
  EXPECT_GE(seen, fault_samples);
  EXPECT_NEAR(static_cast<double>(fault_samples), static_cast<double>(minflt),
              0.01 * static_cast<double>(minflt));
  EXPECT_GE(named, kPagesToTouch * 99 / 100);
}

// Until the agent has loaded this process's mappings a stack keeps only its
// leaf: repeats `act` until one of this thread's records of `kind` is
// walked whole, and drains what it recorded (tests then count from
// scratch). False if none was within 5 s.
bool WalkedWhole(ProfileCollector& c, uint32_t kind, const std::function<void()>& act) {
  const uint32_t me = static_cast<uint32_t>(syscall(SYS_gettid));
  for (int i = 0; i < 50; ++i) {
    act();
    absl::SleepFor(absl::Milliseconds(100));
    absl::StatusOr<ProfileIntervals> warm = c.Collect();
    if (!warm.ok()) return false;
    for (const ProfileStackRecord& r : warm->memory.stacks) {
      if (r.tid == me && r.kind == kind && r.user_frames > 1) return true;
    }
  }
  return false;
}

// read() into untouched memory: the kernel takes the faults (copy to user,
// on user addresses), and they are this thread's page faults as much as
// its own writes are.
__attribute__((noinline)) void ReadZeroIntoFreshMemory(size_t pages) {
  const size_t bytes = pages * 4096;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  madvise(p, bytes, MADV_NOHUGEPAGE);
  const int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(read(fd, p, bytes), static_cast<ssize_t>(bytes));
  close(fd);
  munmap(p, bytes);
  asm volatile("" ::: "memory");  // not a tail call: this frame stays on the stack
}

// Period 1, faults taken in the kernel: each is one sample with the kernel
// stack of the read and the user stack of its caller.
TEST_F(ProfileBpfTest, FaultsTakenByTheKernelCarryBothStacks) {
  ProfileConfig cfg;
  cfg.fault_period = 1;
  auto c = ProfileCollector::Create(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->faults_on()) << (*c)->fault_off_reason();
  ASSERT_TRUE(WalkedWhole(**c, PROFILE_KIND_FAULT, [] { ReadZeroIntoFreshMemory(16); }))
      << "this process's mappings were never loaded";
  constexpr size_t kPagesToRead = 4096;  // 16 MiB
  uint32_t tid = 0;
  uint64_t minflt = 0;
  std::thread reader([&] {
    tid = static_cast<uint32_t>(syscall(SYS_gettid));
    const uint64_t before = ThreadMinorFaults();
    ReadZeroIntoFreshMemory(kPagesToRead);
    minflt = ThreadMinorFaults() - before;
  });
  reader.join();
  uint64_t fault_samples = 0, in_read = 0, named = 0;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<ProfileIntervals> both = (*c)->Collect();
    ASSERT_TRUE(both.ok()) << both.status();
    const ProfileInterval* iv = &both->memory;
    for (const ProfileStackRecord& r : iv->stacks) {
      if (r.kind != PROFILE_KIND_FAULT || r.tid != tid) continue;
      fault_samples += r.samples;
      bool vfs_read = false, caller = false;
      for (uint32_t f = r.first; f < r.first + r.kernel_frames; ++f) {
        vfs_read |= iv->frames[iv->pool[f]]->name() == "vfs_read";
      }
      for (uint32_t f = r.first + r.kernel_frames; f < r.first + r.kernel_frames + r.user_frames;
           ++f) {
        caller |= absl::StrContains(iv->frames[iv->pool[f]]->name(), "ReadZeroIntoFreshMemory");
      }
      if (vfs_read) in_read += r.samples;
      if (vfs_read && caller) named += r.samples;
    }
  }
  printf("thread minflt %lu, fault samples %lu (%lu in vfs_read, %lu also under the caller)\n",
         static_cast<unsigned long>(minflt), static_cast<unsigned long>(fault_samples),
         static_cast<unsigned long>(in_read), static_cast<unsigned long>(named));
  EXPECT_GE(minflt, kPagesToRead);
  EXPECT_NEAR(static_cast<double>(fault_samples), static_cast<double>(minflt),
              0.01 * static_cast<double>(minflt));
  EXPECT_GE(in_read, kPagesToRead * 99 / 100);
  EXPECT_GE(named, kPagesToRead * 99 / 100);
}

// The map-call hook, exactly: this thread's mmap/munmap/brk calls of at
// least 1 MiB are each one call with its page-rounded bytes; smaller ones,
// PROT_NONE reservations and failed calls are not recorded; the stack names
// the calling function.
__attribute__((noinline)) void MapForProfileTest(size_t len, int times) {
  for (int i = 0; i < times; ++i) {
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) munmap(p, len);
  }
  asm volatile("" ::: "memory");  // not a tail call: this frame stays on the stack
}

TEST_F(ProfileBpfTest, LargeMapCallsAreCountedExactly) {
  ProfileConfig cfg;
  cfg.fault_period = 0;
  auto c = ProfileCollector::Create(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->maps_on()) << (*c)->map_off_reason();
  constexpr size_t kLen = (2 << 20) + 1;  // 2 MiB and a page, rounded up
  constexpr uint64_t kPaged = (2 << 20) + 4096;
  ASSERT_TRUE(WalkedWhole(**c, PROFILE_KIND_MMAP, [&] { MapForProfileTest(kLen, 1); }))
      << "this process's mappings were never loaded";
  // The measured calls run on a thread of their own that never mallocs: this
  // thread's malloc may grow the heap with brk() too (glibc raises its mmap
  // threshold after a large free, so a 2.6 MiB buffer of Collect() once
  // came from brk and was counted, rightly, as this thread's growth). The
  // worker is drained before it exits: its exit frees the std::thread state,
  // and a thread's first free() builds its malloc arena (a 64 MiB munmap).
  uint32_t tid = 0;
  std::atomic<bool> done{false}, release{false};
  int bad_unmap = 0;
  uintptr_t base = 0, up = 0, down = 0;
  std::thread worker([&] {
    tid = static_cast<uint32_t>(syscall(SYS_gettid));
    MapForProfileTest(kLen, 7);
    MapForProfileTest(512 << 10, 3);  // under the threshold
    for (int i = 0; i < 2; ++i) {     // reservations: not memory
      void* p = mmap(nullptr, 4 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != MAP_FAILED) munmap(p, 4 << 20);  // a real unmap of 4 MiB
    }
    bad_unmap = munmap(reinterpret_cast<void*>(4097), 8 << 20);  // EINVAL: not recorded
    // brk: the first call (a query) gives the hook the break; then 3 MiB up
    // and down again.
    base = static_cast<uintptr_t>(syscall(SYS_brk, 0));
    up = static_cast<uintptr_t>(syscall(SYS_brk, base + (3 << 20)));
    down = static_cast<uintptr_t>(syscall(SYS_brk, base));
    done = true;
    while (!release) usleep(1000);
  });
  while (!done) usleep(1000);
  absl::StatusOr<ProfileIntervals> both = (*c)->Collect();
  release = true;
  worker.join();
  ASSERT_NE(tid, 0u);
  EXPECT_NE(bad_unmap, 0);
  ASSERT_EQ(up, base + (3 << 20));
  ASSERT_EQ(down, base);

  uint64_t calls[PROFILE_KIND_MAX] = {}, bytes[PROFILE_KIND_MAX] = {};
  bool named = false;
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_GE(both->cpu.loss.map_calls, 7u * 2 + 2 + 2);  // every process counts here
  const ProfileInterval& iv = both->memory;
  for (const ProfileStackRecord& r : iv.stacks) {
    if (r.tid != tid) continue;
    ASSERT_LT(r.kind, PROFILE_KIND_MAX);
    calls[r.kind] += r.samples;
    bytes[r.kind] += r.bytes;
    EXPECT_EQ(r.kernel_frames, 0u);
    for (uint32_t f = r.first; f < r.first + r.user_frames; ++f) {
      named |= r.kind == PROFILE_KIND_MMAP &&
               iv.frames[iv.pool[f]]->name().find("MapForProfileTest") != std::string::npos;
    }
  }
  EXPECT_EQ(calls[PROFILE_KIND_MMAP], 7u);
  EXPECT_EQ(bytes[PROFILE_KIND_MMAP], 7 * kPaged);
  EXPECT_EQ(calls[PROFILE_KIND_MUNMAP], 7u + 2);
  EXPECT_EQ(bytes[PROFILE_KIND_MUNMAP], 7 * kPaged + 2 * (4 << 20));
  EXPECT_EQ(calls[PROFILE_KIND_BRK], 1u);
  EXPECT_EQ(bytes[PROFILE_KIND_BRK], 3u << 20);
  EXPECT_EQ(calls[PROFILE_KIND_BRK_SHRINK], 1u);
  EXPECT_EQ(bytes[PROFILE_KIND_BRK_SHRINK], 3u << 20);
  EXPECT_TRUE(named) << "MapForProfileTest never appeared in an mmap stack";
}

TEST_F(ProfileBpfTest, MapMinBytesZeroLoadsNoMapProgram) {
  ProfileConfig cfg;
  cfg.map_min_bytes = 0;
  auto c = ProfileCollector::Create(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->ProgramIds().size(), 5u);
  EXPECT_FALSE((*c)->maps_on());
  EXPECT_TRUE((*c)->map_off_reason().empty());
  cfg.map_min_bytes = kMaxMapMinBytes + 1;
  EXPECT_EQ(ProfileCollector::Create(cfg).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ProfileBpfTest, FaultPeriodZeroLoadsNoFaultProgram) {
  ProfileConfig cfg;
  cfg.fault_period = 0;
  auto c = ProfileCollector::Create(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->ProgramIds().size(), 4u);
  EXPECT_FALSE((*c)->faults_on());
  EXPECT_TRUE((*c)->fault_off_reason().empty());
}

// A kernel without the page-fault tracepoints: CPU profiling runs on, the
// capability is degraded and says why, and memory queries are refused
// with that reason.
TEST_F(ProfileBpfTest, MissingFaultTracepointsDegradeTheCapability) {
  ProfileConfig cfg;
  cfg.fault_tracepoint = "no_such_fault";  // as on a kernel of another arch
  WindowStore store(StoreConfig{absl::Minutes(1), 1});
  ProfileCapability cap(cfg, 1000, 1000);
  InitContext ctx{&store, nullptr, {}, "test"};
  ASSERT_TRUE(cap.Init(ctx).ok());
  EXPECT_EQ(cap.state(), CapabilityState::kDegraded);
  EXPECT_TRUE(absl::StartsWith(cap.degraded_reason(),
                               "page-fault sampling off: this kernel has no "
                               "tp_btf/no_such_fault_user"))
      << cap.degraded_reason();
  v1::StatusResponse st;
  cap.FillStatus(store.view(), &st);
  EXPECT_EQ(st.profiler().fault_period(), 0u);
  EXPECT_GT(st.profiler().cpus(), 0u);
  v1::HotRequest req;
  req.set_kind(v1::PROFILE_KIND_MEMORY);
  absl::StatusOr<v1::HotResponse> mem = cap.QueryHot(store.view(), QueryContext{}, req);
  EXPECT_EQ(mem.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mem.status().message(), cap.degraded_reason());
  req.set_kind(v1::PROFILE_KIND_CPU);
  EXPECT_TRUE(cap.QueryHot(store.view(), QueryContext{}, req).ok());
  cap.Stop();
}

}  // namespace
}  // namespace vigil
