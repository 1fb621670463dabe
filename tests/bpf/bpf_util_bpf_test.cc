// The shared drain helpers against real kernel hash maps.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>

#include "agent/bpf_util.h"
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

}  // namespace
}  // namespace vigil
