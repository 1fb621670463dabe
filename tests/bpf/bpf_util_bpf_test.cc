// The shared drain helpers against real kernel hash maps.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <vector>

#include "agent/bpf_util.h"
#include "common/unique_fd.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

class BpfUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VIGIL_REQUIRE_BPF();
    fd_ = bpf_map_create(BPF_MAP_TYPE_HASH, "vigil_test_hash", sizeof(uint32_t), sizeof(uint64_t),
                         kMax, nullptr);
    ASSERT_GE(fd_, 0) << strerror(errno);
    for (uint32_t k = 0; k < kEntries; ++k) {
      const uint64_t v = uint64_t{k} * 10;
      ASSERT_EQ(bpf_map_update_elem(fd_, &k, &v, BPF_NOEXIST), 0);
    }
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
  }
  bool Empty() const {
    uint32_t k;
    return bpf_map_get_next_key(fd_, nullptr, &k) != 0;
  }
  static constexpr uint32_t kMax = 4096, kEntries = 3000;
  int fd_ = -1;
};

TEST_F(BpfUtilTest, DrainHashEmitsEveryEntryOnceAndEmptiesTheMap) {
  std::vector<uint32_t> keys(256);
  std::vector<uint64_t> values(256);
  std::map<uint32_t, uint64_t> got;
  uint64_t lost = 0;
  absl::Status s =
      DrainHash(fd_, kMax, &keys, &values, "test: draining", &lost,
                [&](uint32_t k, uint64_t v) { EXPECT_TRUE(got.emplace(k, v).second); });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(lost, 0u);
  ASSERT_EQ(got.size(), kEntries);
  for (const auto& [k, v] : got) EXPECT_EQ(v, uint64_t{k} * 10);
  EXPECT_TRUE(Empty());
}

TEST_F(BpfUtilTest, DeleteRemainingCountsWhatItDeletes) {
  EXPECT_EQ(DeleteRemaining(fd_, sizeof(uint32_t), kMax), kEntries);
  EXPECT_TRUE(Empty());
  // Bounded: never more than max_entries deletes.
  const uint32_t k = 1;
  const uint64_t v = 1;
  ASSERT_EQ(bpf_map_update_elem(fd_, &k, &v, BPF_NOEXIST), 0);
  EXPECT_EQ(DeleteRemaining(fd_, sizeof(uint32_t), 0), 0u);
}

TEST_F(BpfUtilTest, AFailedDrainCountsTheEntriesItLost) {
  // A batch whose buffer has no room for a single entry fails with ENOSPC
  // before emitting anything: every entry is then deleted and counted.
  std::vector<uint32_t> keys(0);
  std::vector<uint64_t> values(0);
  uint64_t lost = 0, emitted = 0;
  absl::Status s = DrainHash(fd_, kMax, &keys, &values, "test: draining", &lost,
                             [&](uint32_t, uint64_t) { ++emitted; });
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("test: draining"), absl::string_view::npos) << s;
  EXPECT_EQ(emitted + lost, kEntries);
  EXPECT_TRUE(Empty());
}

// A per-CPU counters array as the programs keep theirs (bpf/<cap>.h
// *_CTR_*): CounterDeltas sums the CPUs and reports, per named slot, the
// increase since its last read; unnamed slots are read but not reported.
struct TestLosses {
  uint64_t a = 0, b = 0;
};

TEST(CounterDeltasTest, ReportsEachSlotsIncreaseSinceTheLastRead) {
  VIGIL_REQUIRE_BPF();
  const int ncpus = libbpf_num_possible_cpus();
  ASSERT_GT(ncpus, 0);
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "vigil_test_ctr", sizeof(uint32_t),
                             sizeof(uint64_t), 3, nullptr));
  ASSERT_GE(fd.get(), 0) << strerror(errno);
  // Every CPU holds `base + slot`: a slot sums to ncpus * (base + slot).
  auto set_all = [&](uint64_t base) {
    for (uint32_t slot = 0; slot < 3; ++slot) {
      std::vector<uint64_t> v(static_cast<size_t>(ncpus), base + slot);
      ASSERT_EQ(bpf_map_update_elem(fd.get(), &slot, v.data(), BPF_ANY), 0) << strerror(errno);
    }
  };
  CounterDeltas<TestLosses> counters(3, "test: counters",
                                     {{&TestLosses::a, 2}, {&TestLosses::b, 0}});
  set_all(10);
  TestLosses first;
  ASSERT_TRUE(counters.ReadInto(fd.get(), &first).ok());
  EXPECT_EQ(first.a, uint64_t(ncpus) * 12);  // since the load: the whole total
  EXPECT_EQ(first.b, uint64_t(ncpus) * 10);
  EXPECT_EQ(counters.totals()[1], uint64_t(ncpus) * 11);  // read, not reported
  set_all(15);
  TestLosses second;
  second.b = 7;  // added to, not overwritten
  ASSERT_TRUE(counters.ReadInto(fd.get(), &second).ok());
  EXPECT_EQ(second.a, uint64_t(ncpus) * 5);
  EXPECT_EQ(second.b, 7 + uint64_t(ncpus) * 5);
  // A failed read reports nothing and keeps the last totals.
  TestLosses bad;
  EXPECT_FALSE(counters.ReadInto(-1, &bad).ok());
  EXPECT_EQ(bad.a, 0u);
  EXPECT_EQ(counters.totals()[2], uint64_t(ncpus) * 17);
}

}  // namespace
}  // namespace vigil
