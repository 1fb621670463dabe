// End to end for UDP drops: vigild on a private socket, drops made in a
// private network namespace, `vigil drops --json` against the namespace's
// /proc/net/snmp, and the CLI's and the rpc's answers to bad input.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "tests/test_util.h"
#include "tests/udp_netns.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil {
namespace {

using test::CommandResult;
using test::RunCommand;

class UdpDropsE2ETest : public ::testing::Test {
 protected:
  void SetUp() override { VIGIL_REQUIRE_BPF(); }
};

v1::DropsResponse ParseDrops(const std::string& json) {
  v1::DropsResponse r;
  auto st = google::protobuf::util::JsonStringToMessage(json, &r);
  EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << json;
  return r;
}

uint64_t CountIn(const v1::DropsResponse& r, uint64_t netns) {
  uint64_t n = 0;
  for (const auto& d : r.drops()) {
    if (d.netns() == netns) n += d.count();
  }
  return n;
}

TEST_F(UdpDropsE2ETest, CliJsonMatchesSnmpWithOwner) {
  test::ScopedVigild agent({"--interval", "200ms"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  test::UdpScenario s;
  s.kind = test::UdpScenario::kRcvbufFull;
  s.port = 5150;
  s.datagrams = 250;
  auto run = test::NetnsUdpRun::Start(s);
  ASSERT_TRUE(run.ok()) << run.status();
  const int64_t want = (*run)->Delta("Udp:RcvbufErrors");
  ASSERT_GT(want, 0);

  const std::vector<std::string> args = {test::VigilPath(), "drops", "--agent", agent.agent(),
                                         "--port",          "5150",  "--json"};
  std::string raw;
  v1::DropsResponse r;
  // The agent publishes once per interval; the count only grows to `want`.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    CommandResult c = RunCommand(args);
    ASSERT_EQ(c.exit_code, 0) << c.err;
    raw = c.out;
    r = ParseDrops(raw);
    if (CountIn(r, (*run)->netns()) >= static_cast<uint64_t>(want)) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < deadline);

  for (const char* key : {"\"drops\"", "\"reason\"", "\"local_port\"", "\"netns\"", "\"pid\"",
                          "\"comm\"", "\"count\"", "\"rcvbuf\"", "\"queued\""}) {
    EXPECT_NE(raw.find(key), std::string::npos) << key;
  }
  EXPECT_EQ(raw.find("localPort"), std::string::npos);
  std::ifstream comm_file(absl::StrCat("/proc/", (*run)->pid(), "/comm"));
  std::string comm;
  std::getline(comm_file, comm);
  int rows = 0;
  for (const auto& d : r.drops()) {
    if (d.netns() != (*run)->netns()) continue;
    ++rows;
    EXPECT_EQ(d.reason(), "SOCKET_RCVBUFF");
    EXPECT_EQ(d.local_port(), 5150u);
    EXPECT_EQ(d.local_addr(), "127.0.0.1");
    EXPECT_EQ(d.count(), static_cast<uint64_t>(want));
    EXPECT_EQ(d.pid(), static_cast<uint32_t>((*run)->pid()));
    EXPECT_EQ(d.comm(), comm);
    EXPECT_GT(d.rcvbuf(), 0u);
    EXPECT_GT(d.queued(), 0u);
  }
  EXPECT_EQ(rows, 1);

  CommandResult table = RunCommand({test::VigilPath(), "drops", "--agent", agent.agent(),
                                    "--reason", "socket_rcvbuff", "--explain"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("SOCKET_RCVBUFF"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("127.0.0.1:5150"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("SO_RCVBUF"), std::string::npos) << table.out;

  CommandResult status =
      RunCommand({test::VigilPath(), "status", "--agent", agent.agent(), "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  v1::StatusResponse st;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(status.out, &st).ok());
  bool found = false;
  for (const auto& c : st.capabilities()) {
    if (c.name() == "udpdrops") {
      found = true;
      EXPECT_EQ(c.state(), v1::CAPABILITY_STATE_RUNNING) << c.reason();
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(UdpDropsE2ETest, BadInputIsOneLineAndExit2) {
  test::ScopedVigild agent({"--interval", "200ms"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  const std::vector<std::vector<std::string>> bad = {
      {"--port", "0"},    {"--port", "70000"}, {"--port", "abc"},
      {"--since", "-5s"}, {"--since", "soon"}, {"--reason", "NOT_A_REASON"},
      {"--top", "0"},     {"--bogus"},         {"extra"},
      {"--since", "1h"},  // beyond the agent's 10m window
  };
  for (const auto& extra : bad) {
    std::vector<std::string> args = {test::VigilPath(), "drops", "--agent", agent.agent()};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult c = RunCommand(args);
    SCOPED_TRACE(extra[0] + (extra.size() > 1 ? " " + extra[1] : ""));
    EXPECT_EQ(c.exit_code, 2) << c.out << c.err;
    EXPECT_EQ(std::count(c.err.begin(), c.err.end(), '\n'), 1) << c.err;
    EXPECT_NE(c.err.find("vigil drops:"), std::string::npos) << c.err;
  }

  // The rpc itself rejects what the CLI would have caught.
  auto channel = grpc::CreateChannel(agent.agent(), grpc::InsecureChannelCredentials());
  auto stub = v1::Vigil::NewStub(channel);
  for (int which = 0; which < 3; ++which) {
    v1::DropsRequest req;
    if (which == 0) req.set_port(70000);
    if (which == 1) req.set_reason("NOT_A_REASON");
    if (which == 2) req.set_top(20000);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::DropsResponse resp;
    grpc::Status s = stub->GetDrops(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << which << " " << s.error_message();
  }
}

}  // namespace
}  // namespace vigil
