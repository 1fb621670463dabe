// Small pure pieces: syscall table, kernel version parsing, listen address
// rules, human-readable durations and bounded file reads.
#include <gtest/gtest.h>

#include <cstdio>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "agent/capability.h"
#include "agent/cpu/cpu_aggregate.h"
#include "agent/memory/memory_aggregate.h"
#include "agent/preflight.h"
#include "agent/server/listen.h"
#include "agent/store/request_fields.h"
#include "agent/syscalls/syscall_table.h"
#include "agent/syscalls/syscalls_aggregate.h"
#include "agent/udpdrops/udpdrops_aggregate.h"
#include "client/format.h"
#include "common/read_file.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

TEST(SyscallTableTest, KnowsX86_64Numbers) {
#if defined(__x86_64__)
  EXPECT_EQ(SyscallName(0), "read");
  EXPECT_EQ(SyscallName(1), "write");
  EXPECT_EQ(SyscallName(39), "getpid");
  EXPECT_EQ(SyscallName(110), "getppid");
  EXPECT_EQ(SyscallName(202), "futex");
  EXPECT_EQ(SyscallName(231), "exit_group");
  EXPECT_EQ(SyscallName(435), "clone3");
  EXPECT_EQ(SyscallNumber("openat"), 257);
#endif
  EXPECT_EQ(SyscallName(999), "syscall_999");
  EXPECT_EQ(SyscallNumber("no_such_syscall"), -1);
}

// GetStatus's loss blocks are filled from each capability's Losses(), the
// list vigil_lost_events_total shows, by field name.
TEST(LossesToProtoTest, FillsFieldsByCauseName) {
  v1::UdpDropLoss l;
  LossesToProto({{"map_full", 3},
                 {"bad_header", 4},
                 {"owner_cache_full", 5},
                 {"drain_failed", 6},
                 {"window_cap", 7},
                 {"metrics_only_cause", 8}},
                &l);
  EXPECT_EQ(l.map_full(), 3u);
  EXPECT_EQ(l.bad_header(), 4u);
  EXPECT_EQ(l.owner_cache_full(), 5u);
  EXPECT_EQ(l.drain_failed(), 6u);
  EXPECT_EQ(l.store_dropped(), 7u);  // the store's cap, "window_cap" in metrics
  // A string field of the same name is not a counter: left alone.
  v1::TopLoss t;
  LossesToProto({{"cause", 1}}, &t);
  EXPECT_EQ(t.cause(), "");
}

// Each loss struct names its counters once (kCauses): += sums every one,
// and Named() lists every one under the name of its GetStatus field.
template <typename Counts, typename Proto>
void ExpectEveryCauseSummedAndInTheProto() {
  Counts a, b;
  uint64_t n = 1;
  for (const LossCause<Counts>& c : Counts::kCauses) {
    a.*c.count = n;
    b.*c.count = 100 * n++;
  }
  a += b;
  std::vector<std::pair<std::string, uint64_t>> named = a.Named({{"window_cap", 7}});
  ASSERT_EQ(named.size(), std::size(Counts::kCauses) + 1);
  Proto p;
  LossesToProto(named, &p);
  const google::protobuf::Descriptor* d = p.GetDescriptor();
  for (size_t i = 0; i + 1 < named.size(); ++i) {
    EXPECT_EQ(named[i].second, 101 * (i + 1)) << named[i].first;
    const google::protobuf::FieldDescriptor* f = d->FindFieldByName(named[i].first);
    ASSERT_NE(f, nullptr) << named[i].first << " is not a field of " << d->name();
    EXPECT_EQ(p.GetReflection()->GetUInt64(p, f), 101 * (i + 1)) << named[i].first;
  }
  EXPECT_EQ(named.back(), (std::pair<std::string, uint64_t>("window_cap", 7)));
}

TEST(LossCountsTest, EveryCauseIsSummedAndReportedByItsProtoName) {
  ExpectEveryCauseSummedAndInTheProto<SyscallLossCounts, v1::SyscallLoss>();
  ExpectEveryCauseSummedAndInTheProto<UdpDropLossCounts, v1::UdpDropLoss>();
  ExpectEveryCauseSummedAndInTheProto<CpuLossCounts, v1::CpuLoss>();
  ExpectEveryCauseSummedAndInTheProto<MemoryLossCounts, v1::MemoryLoss>();
}

TEST(EnumFieldTest, UnspecifiedIsTheDefaultAndUnknownIsRefused) {
  absl::StatusOr<v1::SyscallSort> s =
      EnumField(0, v1::SyscallSort_IsValid, v1::SYSCALL_SORT_TIME, "sort");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, v1::SYSCALL_SORT_TIME);
  s = EnumField(v1::SYSCALL_SORT_ERRORS, v1::SyscallSort_IsValid, v1::SYSCALL_SORT_TIME, "sort");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, v1::SYSCALL_SORT_ERRORS);
  s = EnumField(42, v1::SyscallSort_IsValid, v1::SYSCALL_SORT_TIME, "sort");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "sort: 42 is not a known value");
  EXPECT_FALSE(EnumField(-1, v1::SyscallSort_IsValid, v1::SYSCALL_SORT_TIME, "sort").ok());
}

TEST(PreflightTest, ParsesKernelReleases) {
  KernelVersion v;
  ASSERT_TRUE(ParseKernelRelease("6.18.44-fc-v769", &v));
  EXPECT_EQ(v.major, 6);
  EXPECT_EQ(v.minor, 18);
  EXPECT_EQ(v.patch, 44);
  ASSERT_TRUE(ParseKernelRelease("5.4", &v));
  EXPECT_EQ(v.patch, 0);
  EXPECT_FALSE(ParseKernelRelease("garbage", &v));
}

TEST(ListenTest, ParsesAndValidatesAddresses) {
  ListenConfig c;
  auto u = ParseListenAddress("unix:/run/vigil/vigild.sock");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->is_unix);
  EXPECT_TRUE(ValidateListen(*u, c).ok());
  EXPECT_FALSE(ParseListenAddress("unix:relative.sock").ok());
  EXPECT_FALSE(ParseListenAddress("nohostport").ok());
  EXPECT_FALSE(ParseListenAddress("host:0").ok());
  EXPECT_FALSE(ParseListenAddress("host:70000").ok());

  auto t = ParseListenAddress("127.0.0.1:9090");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->loopback);
  // TCP without TLS is refused unless explicitly insecure.
  EXPECT_EQ(ValidateListen(*t, c).code(), absl::StatusCode::kInvalidArgument);
  c.insecure = true;
  EXPECT_TRUE(ValidateListen(*t, c).ok());
  c.insecure = false;
  c.tls_cert = "cert.pem";  // partial TLS config
  EXPECT_EQ(ValidateListen(*t, c).code(), absl::StatusCode::kInvalidArgument);
  c.tls_key = "key.pem";
  c.tls_client_ca = "ca.pem";
  EXPECT_TRUE(ValidateListen(*t, c).ok());
  EXPECT_EQ(ValidateListen(*u, c).code(), absl::StatusCode::kInvalidArgument);

  auto v6 = ParseListenAddress("[::1]:9090");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(v6->loopback);
  EXPECT_FALSE(ParseListenAddress("10.0.0.1:9090")->loopback);
}

TEST(FormatTest, HumanNs) {
  EXPECT_EQ(cli::HumanNs(999), "999 ns");
  EXPECT_EQ(cli::HumanNs(1500), "1.5 us");
  EXPECT_EQ(cli::HumanNs(2500000), "2.500 ms");
  EXPECT_EQ(cli::HumanNs(3000000000ull), "3.000 s");
}

// Files another user sizes are read up to a bound, and say when they had
// more; procfs's page-sized reads are looped over.
TEST(ReadFileBoundedTest, StopsAtTheBoundAndSaysSo) {
  test::TempDir dir;
  const std::string path = dir.path() + "/f";
  std::string lines;
  for (int i = 0; i < 1000; ++i) lines += "line " + std::to_string(i) + "\n";
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs(lines.c_str(), f);
  fclose(f);
  std::string out;
  bool cut = true;
  ASSERT_TRUE(ReadFileBounded(path, lines.size(), &out, &cut));
  EXPECT_EQ(out, lines);
  EXPECT_FALSE(cut);  // exactly the bound: nothing left
  ASSERT_TRUE(ReadFileBounded(path, 100, &out, &cut));
  EXPECT_EQ(out, lines.substr(0, 100));
  EXPECT_TRUE(cut);
  DropPartialLine(&out);
  EXPECT_EQ(out.back(), '\n');
  EXPECT_TRUE(lines.compare(0, out.size(), out) == 0);
  EXPECT_LT(out.size(), 100u);
  std::string none = "x";
  DropPartialLine(&none);
  EXPECT_EQ(none, "");
  EXPECT_FALSE(ReadFileBounded(dir.path() + "/missing", 10, &out, &cut));
  // procfs: more than one page comes back whole.
  ASSERT_TRUE(ReadFileBounded("/proc/self/maps", 16 << 20, &out, &cut));
  EXPECT_FALSE(cut);
  EXPECT_GT(out.size(), 4096u) << out;
  EXPECT_EQ(out.back(), '\n');
}

}  // namespace
}  // namespace vigil
