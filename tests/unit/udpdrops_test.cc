// udpdrops pure logic: reason names from BTF, tracepoint shape probing,
// merging and filtering, advice text, owner cache bounds, /proc scanning.
#include <bpf/btf.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "agent/udpdrops/kernel_btf.h"
#include "agent/udpdrops/owner_cache.h"
#include "agent/udpdrops/udpdrops_aggregate.h"
#include "client/format.h"

namespace vigil {
namespace {

// enum skb_drop_reason as some kernel might number it (deliberately not the
// real numbers: nothing may depend on them).
BtfPtr FakeKernelBtf(bool with_reasons, int kfree_skb_args) {
  BtfPtr b(btf__new_empty());
  const int int_id = btf__add_int(b.get(), "int", 4, BTF_INT_SIGNED);
  if (with_reasons) {
    btf__add_enum(b.get(), "skb_drop_reason", 4);
    btf__add_enum_value(b.get(), "SKB_NOT_DROPPED_YET", 0);
    btf__add_enum_value(b.get(), "SKB_CONSUMED", 1);
    btf__add_enum_value(b.get(), "SKB_DROP_REASON_NOT_SPECIFIED", 2);
    btf__add_enum_value(b.get(), "SKB_DROP_REASON_NO_SOCKET", 7);
    btf__add_enum_value(b.get(), "SKB_DROP_REASON_SOCKET_RCVBUFF", 40);
    btf__add_enum_value(b.get(), "SKB_DROP_REASON_UDP_CSUM", 41);
    btf__add_enum_value(b.get(), "SKB_DROP_REASON_MAX", 42);
  }
  const int proto = btf__add_func_proto(b.get(), 0);
  for (int i = 0; i <= kfree_skb_args; ++i) btf__add_func_param(b.get(), "", int_id);
  const int ptr = btf__add_ptr(b.get(), proto);
  btf__add_typedef(b.get(), "btf_trace_kfree_skb", ptr);
  return b;
}

TEST(DropReasonTableTest, ReadsNamesFromBtf) {
  BtfPtr b = FakeKernelBtf(true, 4);
  absl::StatusOr<DropReasonTable> t = DropReasonTable::FromBtf(b.get());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->size(), 6u);  // _MAX is not a reason
  EXPECT_EQ(t->Name(7), "NO_SOCKET");
  EXPECT_EQ(t->Name(40), "SOCKET_RCVBUFF");
  EXPECT_EQ(t->Name(1), "SKB_CONSUMED");
  EXPECT_EQ(t->Name(99), "reason_99");
  EXPECT_EQ(t->Name(UDPDROP_REASON_UNKNOWN), "unknown");
  EXPECT_EQ(t->Value("UDP_CSUM"), 41u);
  EXPECT_EQ(t->Value("udp_csum"), 41u);
  EXPECT_EQ(t->Value("SKB_DROP_REASON_SOCKET_RCVBUFF"), 40u);
  EXPECT_EQ(t->Value("unknown"), UDPDROP_REASON_UNKNOWN);
  EXPECT_FALSE(t->Value("MAX").has_value());
  EXPECT_FALSE(t->Value("bogus").has_value());
  EXPECT_EQ(t->consumed(), 1u);
  EXPECT_EQ(t->not_dropped_yet(), 0u);
}

TEST(DropReasonTableTest, KernelWithoutReasons) {
  BtfPtr b = FakeKernelBtf(false, 2);
  absl::StatusOr<DropReasonTable> t = DropReasonTable::FromBtf(b.get());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  DropReasonTable empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.Name(UDPDROP_REASON_UNKNOWN), "unknown");
  EXPECT_EQ(empty.Value("unknown"), UDPDROP_REASON_UNKNOWN);
  EXPECT_FALSE(empty.Value("NO_SOCKET").has_value());
}

TEST(TracepointArgCountTest, CountsArgumentsWithoutTheContext) {
  for (int n : {2, 3, 4}) {
    BtfPtr b = FakeKernelBtf(true, n);
    EXPECT_EQ(TracepointArgCount(b.get(), "kfree_skb").value_or(-1), n);
  }
  BtfPtr b = FakeKernelBtf(true, 4);
  EXPECT_EQ(TracepointArgCount(b.get(), "no_such_tp").status().code(), absl::StatusCode::kNotFound);
}

UdpDropRecord Rec(uint32_t netns, uint16_t port, uint32_t reason, uint64_t count,
                  uint32_t queued = 0) {
  UdpDropRecord r;
  r.key.netns = netns;
  r.key.port = port;
  r.key.reason = reason;
  r.key.family = UDPDROP_AF_INET;
  r.key.addr[0] = 127;
  r.key.addr[3] = 1;
  r.stats.count = count;
  r.stats.queued = queued;
  return r;
}

class DropsMergerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    b_ = FakeKernelBtf(true, 4);
    reasons_ = *DropReasonTable::FromBtf(b_.get());
  }
  v1::DropsResponse Merge(const v1::DropsRequest& req, const std::vector<UdpDropInterval>& ivs,
                          double seconds = 2.0) {
    absl::StatusOr<DropsQuery> q = ValidateDropsRequest(req, reasons_);
    EXPECT_TRUE(q.ok()) << q.status();
    DropsMerger m(*q, reasons_);
    absl::Time t = absl::FromUnixSeconds(1000);
    for (const auto& iv : ivs) m.Add(iv, t += absl::Seconds(1));
    v1::DropsResponse r;
    m.Finish(seconds, &r);
    return r;
  }
  BtfPtr b_;
  DropReasonTable reasons_;
};

TEST_F(DropsMergerTest, SumsIntervalsAndKeepsTheNewestLastFields) {
  UdpDropInterval a, b;
  a.records = {Rec(1, 5140, 40, 10, 100), Rec(1, 5141, 7, 3)};
  b.records = {Rec(1, 5140, 40, 5, 200), Rec(2, 5140, 40, 1)};
  b.records[0].owners = {{42, "gelfd"}};
  a.loss.map_full = 2;
  b.loss.map_full = 1;
  v1::DropsResponse r = Merge(v1::DropsRequest(), {a, b});
  ASSERT_EQ(r.drops_size(), 3);
  EXPECT_EQ(r.drops(0).count(), 15u);
  EXPECT_EQ(r.drops(0).reason(), "SOCKET_RCVBUFF");
  EXPECT_EQ(r.drops(0).local_addr(), "127.0.0.1");
  EXPECT_EQ(r.drops(0).local_port(), 5140u);
  EXPECT_EQ(r.drops(0).netns(), 1u);
  EXPECT_EQ(r.drops(0).queued(), 200u);
  EXPECT_EQ(r.drops(0).pid(), 42u);
  EXPECT_EQ(r.drops(0).comm(), "gelfd");
  EXPECT_DOUBLE_EQ(r.drops(0).rate_per_s(), 7.5);
  EXPECT_EQ(r.drops(1).reason(), "NO_SOCKET");
  EXPECT_EQ(r.drops(2).netns(), 2u);  // another namespace, its own row
  EXPECT_EQ(r.total(), 19u);
  EXPECT_EQ(r.loss().map_full(), 3u);
}

TEST_F(DropsMergerTest, FiltersByPortAndReasonAndCutsAtTop) {
  UdpDropInterval a;
  a.records = {Rec(1, 5140, 40, 10), Rec(1, 5141, 7, 30), Rec(1, 5140, 41, 20)};
  v1::DropsRequest req;
  req.set_port(5140);
  v1::DropsResponse r = Merge(req, {a});
  ASSERT_EQ(r.drops_size(), 2);
  EXPECT_EQ(r.drops(0).reason(), "UDP_CSUM");
  req.set_reason("socket_rcvbuff");
  r = Merge(req, {a});
  ASSERT_EQ(r.drops_size(), 1);
  EXPECT_EQ(r.drops(0).count(), 10u);
  v1::DropsRequest top;
  top.set_top(1);
  r = Merge(top, {a});
  ASSERT_EQ(r.drops_size(), 1);
  EXPECT_EQ(r.drops(0).count(), 30u);
  EXPECT_EQ(r.rows_omitted(), 2u);
  EXPECT_EQ(r.total(), 60u);
}

TEST_F(DropsMergerTest, RanksHugeCountsWithoutNarrowing) {
  UdpDropInterval a;
  a.records = {Rec(1, 1, 40, 1), Rec(1, 2, 40, (1ull << 32) + 1), Rec(1, 3, 40, 1ull << 40)};
  v1::DropsResponse r = Merge(v1::DropsRequest(), {a});
  ASSERT_EQ(r.drops_size(), 3);
  EXPECT_EQ(r.drops(0).local_port(), 3u);
  EXPECT_EQ(r.drops(1).local_port(), 2u);
}

TEST_F(DropsMergerTest, RejectsBadRequests) {
  v1::DropsRequest req;
  req.set_port(70000);
  EXPECT_EQ(ValidateDropsRequest(req, reasons_).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = v1::DropsRequest();
  req.set_reason("NO_SUCH_REASON");
  absl::Status s = ValidateDropsRequest(req, reasons_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("NO_SUCH_REASON"), absl::string_view::npos);
  req = v1::DropsRequest();
  req.set_top(kMaxDropsTop + 1);
  EXPECT_EQ(ValidateDropsRequest(req, reasons_).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = v1::DropsRequest();
  req.mutable_range()->set_since_ago_ns(-1);
  EXPECT_EQ(ValidateDropsRequest(req, reasons_).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = v1::DropsRequest();
  req.set_reason("unknown");
  EXPECT_TRUE(ValidateDropsRequest(req, reasons_).ok());
  // Found by tests/fuzz/requests_fuzz: the client's reason was echoed
  // whole, newlines included. Now quoted, escaped and cut.
  req.set_reason("so\nket_rcvbuff" + std::string(100000, 'x'));
  s = ValidateDropsRequest(req, reasons_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().find('\n'), absl::string_view::npos) << s;
  EXPECT_LE(s.message().size(), 200u) << s;
  EXPECT_EQ(s.message().find("reason \"so\\nket_rcvbuff"), 0u) << s;
}

TEST(ExplainDropTest, SaysWhatToDo) {
  const std::string rcvbuf = ExplainDrop("SOCKET_RCVBUFF");
  EXPECT_NE(rcvbuf.find("SO_RCVBUF"), std::string::npos);
  EXPECT_NE(rcvbuf.find("net.core.rmem_max"), std::string::npos);
  EXPECT_NE(rcvbuf.find("read faster"), std::string::npos);
  EXPECT_NE(ExplainDrop("NO_SOCKET").find("port"), std::string::npos);
  EXPECT_NE(ExplainDrop("UDP_CSUM").find("checksum"), std::string::npos);
  EXPECT_NE(ExplainDrop("unknown").find("5.17"), std::string::npos);
  EXPECT_NE(ExplainDrop("SOME_NEW_REASON").find("SOME_NEW_REASON"), std::string::npos);
  for (const char* r : {"SOCKET_RCVBUFF", "NO_SOCKET", "UDP_CSUM", "PROTO_MEM", "unknown", "X"}) {
    const std::string e = ExplainDrop(r);
    EXPECT_EQ(e.back(), '.') << r;  // one sentence
    EXPECT_EQ(e.find('\n'), std::string::npos) << r;
  }
}

TEST(FormatIpTest, BothFamilies) {
  uint8_t a[16] = {10, 0, 0, 1};
  EXPECT_EQ(FormatIp(UDPDROP_AF_INET, a), "10.0.0.1");
  uint8_t b[16] = {};
  b[15] = 1;
  EXPECT_EQ(FormatIp(UDPDROP_AF_INET6, b), "::1");
}

TEST(OwnerCacheTest, ScansOnlyForNewOrStaleInodesAndStaysBounded) {
  int scans = 0;
  absl::flat_hash_set<uint64_t> last_wanted;
  OwnerCache cache(2, absl::Seconds(10), [&](const absl::flat_hash_set<uint64_t>& wanted) {
    ++scans;
    last_wanted = wanted;
    OwnerMap m;
    for (uint64_t ino : wanted) {
      if (ino != 3) m[ino] = {{static_cast<uint32_t>(ino * 100), "p"}};
    }
    return m;
  });
  absl::Time t = absl::FromUnixSeconds(100);
  OwnerMap r = cache.Resolve({1, 2}, t);
  EXPECT_EQ(scans, 1);
  EXPECT_EQ(r[1][0].pid, 100u);
  EXPECT_EQ(cache.size(), 2u);
  // Cached: no scan within the refresh period.
  r = cache.Resolve({1, 2}, t + absl::Seconds(5));
  EXPECT_EQ(scans, 1);
  EXPECT_EQ(r[2][0].pid, 200u);
  // Full: a third inode is resolved but not cached, and counted.
  r = cache.Resolve({3}, t + absl::Seconds(6));
  EXPECT_EQ(scans, 2);
  EXPECT_TRUE(r[3].empty());  // nobody holds it
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.not_cached(), 1u);
  // After the refresh period, stale entries are scanned again, and entries
  // nobody asked for are evicted to make room.
  r = cache.Resolve({2}, t + absl::Seconds(20));
  EXPECT_EQ(scans, 3);
  EXPECT_EQ(last_wanted, absl::flat_hash_set<uint64_t>({2}));
  r = cache.Resolve({4}, t + absl::Seconds(21));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.not_cached(), 1u);  // 1 was evicted, 4 fit
  EXPECT_EQ(r[4][0].pid, 400u);
}

TEST(OwnerCacheTest, ScanFindsThisProcessSocket) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  OwnerMap m = ScanProcForSockets({static_cast<uint64_t>(st.st_ino), 1});
  close(fd);
  ASSERT_EQ(m.count(st.st_ino), 1u);
  ASSERT_EQ(m[st.st_ino].size(), 1u);
  EXPECT_EQ(m[st.st_ino][0].pid, static_cast<uint32_t>(getpid()));
  EXPECT_FALSE(m[st.st_ino][0].comm.empty());
  EXPECT_EQ(m.count(1), 0u);
}

TEST(FormatDropsTest, TableAndExplain) {
  v1::DropsResponse r;
  r.mutable_covered()->set_intervals(1);
  v1::UdpDrop* d = r.add_drops();
  d->set_reason("SOCKET_RCVBUFF");
  d->set_family("ipv6");
  d->set_local_addr("::1");
  d->set_local_port(5140);
  d->set_pid(42);
  d->set_comm("gelfd");
  d->set_count(7);
  d->set_socket_inode(9);
  d->set_rcvbuf(4608);
  d->set_explain("Do something.");
  r.set_reasons_known(true);
  const std::string plain = cli::FormatDrops(r, false);
  EXPECT_NE(plain.find("[::1]:5140"), std::string::npos) << plain;
  EXPECT_NE(plain.find("42/gelfd"), std::string::npos) << plain;
  EXPECT_NE(plain.find("4608"), std::string::npos) << plain;
  EXPECT_EQ(plain.find("Do something."), std::string::npos);
  EXPECT_NE(cli::FormatDrops(r, true).find("Do something."), std::string::npos);
}

}  // namespace
}  // namespace vigil
