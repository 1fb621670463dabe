// Loads the real profiler BPF program, samples a CPU-bound thread of this
// process, and checks the double buffer's accounting and teardown. Skips
// with the reason when BPF is not allowed.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "agent/bpf_util.h"
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
    absl::StatusOr<ProfileInterval> iv = (*c)->Collect();
    ASSERT_TRUE(iv.ok()) << iv.status();
    seen += iv->loss.samples;
    idle += iv->loss.idle;
    dropped += iv->loss.map_full + iv->loss.no_buffer;
    for (const ProfileStackRecord& r : iv->stacks) {
      kept += r.samples;
      if (r.tid != burner_tid.load()) continue;
      mine += r.samples;
      for (uint32_t f = r.first; f < r.first + r.kernel_frames + r.user_frames; ++f) {
        named |= iv->frames[iv->pool[f]]->name.find("BurnForProfileTest") != std::string::npos;
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
    absl::StatusOr<ProfileInterval> iv = (*c)->Collect();
    ASSERT_TRUE(iv.ok());
    for (const ProfileStackRecord& r : iv->stacks) kept += r.samples;
    seen += iv->loss.samples;
    idle += iv->loss.idle;
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
    ASSERT_EQ(ids.size(), 3u);  // the sampler, the exec and fork hooks
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
}

}  // namespace
}  // namespace vigil
