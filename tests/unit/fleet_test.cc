// --agents-file: one address a line, or Prometheus file_sd JSON whose
// groups name vigild's gRPC port in a label. Every bad file is one line.
#include "client/fleet.h"

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace vigil::cli {
namespace {

class AgentsFileTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::vector<std::string>> Resolve(const std::string& text) {
    const std::string path = dir_.path() + "/agents";
    std::ofstream(path, std::ios::trunc) << text;
    absl::StatusOr<std::vector<ConnectOptions>> r = ResolveAgents({}, path, ConnectOptions());
    if (!r.ok()) return r.status();
    std::vector<std::string> out;
    for (const ConnectOptions& c : *r) out.push_back(c.agent);
    return out;
  }
  test::TempDir dir_;
};

TEST_F(AgentsFileTest, LinesStillWork) {
  auto r = Resolve("# fleet\nweb1:7878\n\n  web2:7878  \nweb1:7878\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<std::string>{"web1:7878", "web2:7878"}));
}

TEST_F(AgentsFileTest, FileSdTargetsGetTheGroupsGrpcPort) {
  auto r = Resolve(R"(
  [
    {"targets": ["web1:9464", "web2:9464", "[::1]:9464", "db1"],
     "labels": {"vigil_grpc_port": "7878", "env": "prod"}},
    {"targets": ["10.0.0.5:9464", "web1:9999"], "labels": {"vigil_grpc_port": "7000"}},
    {"targets": ["web2:9100"], "labels": {"vigil_grpc_port": "7878"}}
  ])");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<std::string>{"web1:7878", "web2:7878", "[::1]:7878", "db1:7878",
                                          "10.0.0.5:7000", "web1:7000"}));
}

TEST_F(AgentsFileTest, BadFileSdIsOneLineNamingTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[", "not a JSON list"},
      {"[1, 2", "not a JSON list"},
      {R"([{"targets": ["a:1"], "labels": {"vigil_grpc_port": "1"}}] trailing)", "not a JSON list"},
      {"[]", "no agents listed"},
      {"[42]", "group 0 is not an object"},
      {R"([{"labels": {"vigil_grpc_port": "7878"}}])", "group 0 has no \"targets\""},
      {R"([{"targets": [], "labels": {"vigil_grpc_port": "7878"}}])", "group 0 has no \"targets\""},
      {R"([{"targets": "web1:9464", "labels": {"vigil_grpc_port": "7878"}}])",
       "group 0 has no \"targets\""},
      {R"([{"targets": [7], "labels": {"vigil_grpc_port": "7878"}}])",
       "group 0: a target is not a string"},
      {R"([{"targets": ["a:1"], "labels": {"vigil_grpc_port": "1"}}, {"targets": ["web1:9464"]}])",
       "group 1 has no vigil_grpc_port label (its targets are metrics ports): add \"labels\": "
       "{\"vigil_grpc_port\": \"7878\"}"},
      {R"([{"targets": ["web1:9464"], "labels": {"env": "prod"}}])",
       "group 0 has no vigil_grpc_port"},
      {R"([{"targets": ["web1:9464"], "labels": {"vigil_grpc_port": 7878}}])",
       "vigil_grpc_port must be a port number as a string"},
      {R"([{"targets": ["web1:9464"], "labels": {"vigil_grpc_port": "0"}}])",
       "vigil_grpc_port must be"},
      {R"([{"targets": ["web1:9464"], "labels": {"vigil_grpc_port": "65536"}}])",
       "vigil_grpc_port must be"},
      {R"([{"targets": ["web1:9464"], "labels": {"vigil_grpc_port": "78x"}}])",
       "vigil_grpc_port must be"},
      {R"([{"targets": ["web1:9464"], "labels": ["vigil_grpc_port"]}])", "labels is not an object"},
      {R"([{"targets": ["::1:9464"], "labels": {"vigil_grpc_port": "7878"}}])",
       "target \"::1:9464\": an IPv6 address needs [brackets]"},
      {R"([{"targets": ["[::1:9464"], "labels": {"vigil_grpc_port": "7878"}}])", "not host:port"},
      {R"([{"targets": [":9464"], "labels": {"vigil_grpc_port": "7878"}}])", "no host"},
      {R"([{"targets": ["a:1"], "label": {"vigil_grpc_port": "7878"}}])", "unknown key \"label\""},
  };
  for (const auto& [text, want] : cases) {
    auto r = Resolve(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_TRUE(absl::StrContains(r.status().message(), want)) << text << "\n" << r.status();
    EXPECT_FALSE(absl::StrContains(r.status().message(), "\n")) << text << "\n" << r.status();
  }
}

TEST_F(AgentsFileTest, BoundedBySizeAndAgentCount) {
  // Over 4 MiB: refused before parsing, in either format.
  auto big = Resolve(std::string(4 << 20, ' ') + "[]");
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(absl::StrContains(big.status().message(), "larger than 4 MiB")) << big.status();
  std::string many = "[{\"targets\": [";
  for (size_t i = 0; i <= kMaxAgents; ++i) absl::StrAppend(&many, i ? "," : "", "\"h", i, ":1\"");
  absl::StrAppend(&many, "], \"labels\": {\"vigil_grpc_port\": \"7878\"}}]");
  auto r = Resolve(many);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), absl::StrCat("at most ", kMaxAgents)))
      << r.status();
}

}  // namespace
}  // namespace vigil::cli
