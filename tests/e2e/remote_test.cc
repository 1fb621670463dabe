// Remote access: mutual TLS on a TCP listener (certificates made by
// gen_certs.sh with openssl), and the CLI fanning out to several agents.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/test_util.h"
#include "vigil/v1/fleet.pb.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {
namespace {

using test::CommandResult;
using test::RunCommand;

class RemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VIGIL_REQUIRE_BPF();
    CommandResult gen =
        RunCommand({"bash", test::SourceDir() + "/tests/e2e/gen_certs.sh", certs_.path()});
    ASSERT_EQ(gen.exit_code, 0) << gen.err;
  }
  std::string Cert(const std::string& name) const { return certs_.path() + "/" + name; }

  std::vector<std::string> TlsListen(int port) const {
    return {"--listen",        absl::StrCat("127.0.0.1:", port),
            "--tls-cert",      Cert("server.pem"),
            "--tls-key",       Cert("server.key"),
            "--tls-client-ca", Cert("ca.pem")};
  }
  std::vector<std::string> ClientArgs(int port, const std::string& who) const {
    std::vector<std::string> a = {"--agent", absl::StrCat("127.0.0.1:", port), "--ca",
                                  Cert("ca.pem")};
    if (!who.empty()) {
      a.insert(a.end(), {"--cert", Cert(who + ".pem"), "--key", Cert(who + ".key")});
    }
    return a;
  }
  CommandResult Status(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {test::VigilPath(), "status", "--timeout", "3s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  test::TempDir certs_;
};

TEST_F(RemoteTest, MutualTlsAdmitsOnlyValidClients) {
  const int port = test::FreeLoopbackPort();
  test::ScopedVigild agent(TlsListen(port), ClientArgs(port, "client"));
  ASSERT_TRUE(agent.ok()) << agent.log();

  CommandResult ok = Status(ClientArgs(port, "client"));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("syscalls   running"), std::string::npos) << ok.out;

  CommandResult no_cert = Status(ClientArgs(port, ""));
  EXPECT_EQ(no_cert.exit_code, 1) << "no client certificate must be rejected";

  CommandResult other_ca = Status(ClientArgs(port, "rogue"));
  EXPECT_EQ(other_ca.exit_code, 1) << "a certificate from another CA must be rejected";

  CommandResult expired = Status(ClientArgs(port, "expired"));
  EXPECT_EQ(expired.exit_code, 1) << "an expired certificate must be rejected";

  CommandResult plaintext = Status({"--agent", absl::StrCat("127.0.0.1:", port), "--insecure"});
  EXPECT_EQ(plaintext.exit_code, 1) << "plaintext to the TLS port must be rejected";

  // The rejections cost nothing: a valid client still gets its answer.
  EXPECT_EQ(Status(ClientArgs(port, "client")).exit_code, 0);
}

// vigil trace over mutual TLS: only with a valid certificate, and the
// journal names the client by its certificate's subject.
TEST_F(RemoteTest, TraceRidesMutualTlsAndIsJournaledWithTheSubject) {
  const int port = test::FreeLoopbackPort();
  std::vector<std::string> flags = TlsListen(port);
  flags.push_back("--allow-trace");
  test::ScopedVigild agent(flags, ClientArgs(port, "client"));
  ASSERT_TRUE(agent.ok()) << agent.log();
  const std::string self = std::to_string(getpid());
  std::vector<std::string> argv = {test::VigilPath(), "trace", "--pid", self, "--duration", "1s"};
  std::vector<std::string> rogue = argv;
  for (const std::string& a : ClientArgs(port, "client")) argv.push_back(a);
  for (const std::string& a : ClientArgs(port, "rogue")) rogue.push_back(a);
  CommandResult ok = RunCommand(argv);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.err.find("ended: duration reached"), std::string::npos) << ok.err;
  EXPECT_EQ(RunCommand(rogue).exit_code, 1);
  const std::string log = agent.CurrentLog();
  EXPECT_NE(log.find("trace session 1 for ipv4:127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("CN=client"), std::string::npos) << log;
  EXPECT_EQ(log.find("trace session 2"), std::string::npos) << "the rogue client got a session";
}

// /metrics off loopback is HTTPS that verifies client certificates against
// the same CA as the gRPC listener; curl is the scraper.
TEST_F(RemoteTest, MetricsOffLoopbackNeedAClientCertificate) {
  const int port = test::FreeLoopbackPort(), metrics_port = test::FreeLoopbackPort();
  std::vector<std::string> flags = TlsListen(port);
  flags.insert(flags.end(), {"--metrics-listen", absl::StrCat("0.0.0.0:", metrics_port)});
  test::ScopedVigild agent(flags, ClientArgs(port, "client"));
  ASSERT_TRUE(agent.ok()) << agent.log();
  const std::string url = absl::StrCat("https://127.0.0.1:", metrics_port, "/metrics");
  auto curl = [&](std::vector<std::string> who) {
    std::vector<std::string> argv = {"curl", "-sS",      "--fail",      "--max-time",
                                     "5",    "--cacert", Cert("ca.pem")};
    argv.insert(argv.end(), who.begin(), who.end());
    argv.push_back(url);
    return RunCommand(argv);
  };
  CommandResult ok = curl({"--cert", Cert("client.pem"), "--key", Cert("client.key")});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("\nvigil_capability_up{capability=\"syscalls\"} 1\n"), std::string::npos)
      << ok.out.substr(0, 2000);
  EXPECT_NE(curl({}).exit_code, 0) << "no client certificate must be refused";
  EXPECT_NE(curl({"--cert", Cert("rogue.pem"), "--key", Cert("rogue.key")}).exit_code, 0)
      << "a certificate from another CA must be refused";
  CommandResult plain = RunCommand({"curl", "-sS", "--fail", "--max-time", "5",
                                    absl::StrCat("http://127.0.0.1:", metrics_port, "/metrics")});
  EXPECT_NE(plain.exit_code, 0) << "plaintext must be refused: " << plain.out.substr(0, 200);
  // The refusals cost nothing.
  EXPECT_EQ(curl({"--cert", Cert("client.pem"), "--key", Cert("client.key")}).exit_code, 0);
}

// /metrics on a Unix socket: mode 0660, served, removed at stop, and a
// stale one left by a killed agent is replaced.
TEST_F(RemoteTest, MetricsOnAUnixSocket) {
  test::TempDir dir;
  const std::string sock = dir.path() + "/run/metrics.sock";
  auto scrape = [&] {
    return RunCommand({"curl", "-sS", "--fail", "--max-time", "5", "--unix-socket", sock,
                       "http://vigil/metrics"});
  };
  {
    test::ScopedVigild agent({"--metrics-listen", "unix:" + sock});
    ASSERT_TRUE(agent.ok()) << agent.log();
    struct stat st;
    ASSERT_EQ(stat(sock.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    CommandResult ok = scrape();
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_NE(ok.out.find("\nvigil_capability_up{capability=\"syscalls\"} 1\n"), std::string::npos)
        << ok.out.substr(0, 2000);
    EXPECT_EQ(agent.Stop(), 0);
  }
  struct stat st;
  EXPECT_NE(stat(sock.c_str(), &st), 0) << "the socket outlived the agent";
  {
    test::ScopedVigild agent({"--metrics-listen", "unix:" + sock});
    ASSERT_TRUE(agent.ok()) << agent.log();
    kill(agent.pid(), SIGKILL);
    agent.Stop();
  }
  ASSERT_EQ(stat(sock.c_str(), &st), 0) << "SIGKILL left no stale socket to test with";
  EXPECT_NE(scrape().exit_code, 0);
  test::ScopedVigild again({"--metrics-listen", "unix:" + sock});
  ASSERT_TRUE(again.ok()) << again.log();
  CommandResult ok = scrape();
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(RemoteTest, PlaintextTcpNeedsTheFlagAndWarns) {
  const int port = test::FreeLoopbackPort();
  const std::string addr = absl::StrCat("127.0.0.1:", port);
  CommandResult refused = RunCommand({test::VigildPath(), "--listen", addr}, absl::Seconds(10));
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("refusing plaintext TCP"), std::string::npos) << refused.err;

  test::ScopedVigild agent({"--listen", addr, "--insecure-listen"},
                           {"--agent", addr, "--insecure"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  EXPECT_NE(agent.log().find("WARNING: plaintext TCP listener"), std::string::npos) << agent.log();
}

TEST_F(RemoteTest, FleetQueryMergesAgentsAndSurvivesADeadOne) {
  std::vector<int> ports;
  std::vector<std::unique_ptr<test::ScopedVigild>> agents;
  for (int i = 0; i < 3; ++i) {
    ports.push_back(test::FreeLoopbackPort());
    agents.push_back(std::make_unique<test::ScopedVigild>(
        [&] {
          auto a = TlsListen(ports.back());
          a.insert(a.end(), {"--interval", "200ms"});
          return a;
        }(),
        ClientArgs(ports.back(), "client")));
    ASSERT_TRUE(agents.back()->ok()) << agents.back()->log();
  }
  // The workload runs once; every agent on this host saw it.
  CommandResult run = RunCommand({test::WorkloadPath(), "1"});
  ASSERT_EQ(run.exit_code, 0);
  const std::string pid = run.out.substr(4, run.out.find('\n') - 4);

  test::TempDir dir;
  const std::string agents_file = dir.path() + "/agents";
  {
    std::ofstream f(agents_file);
    f << "# the fleet\n";
    for (int p : ports) f << "127.0.0.1:" << p << "\n";
  }
  auto query = [&](bool json) {
    std::vector<std::string> argv = {
        test::VigilPath(), "syscalls", "--agents-file",    agents_file, "--ca",
        Cert("ca.pem"),    "--cert",   Cert("client.pem"), "--key",     Cert("client.key"),
        "--pid",           pid,        "--timeout",        "3s"};
    if (json) argv.push_back("--json");
    return RunCommand(argv);
  };

  // Poll until every agent has published the workload's interval (no fixed
  // sleep); the assertions below then check the last answer.
  CommandResult all;
  v1::FleetSyscallsResponse fleet;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);;) {
    all = query(true);
    fleet.Clear();
    bool ready = all.exit_code == 0 &&
                 google::protobuf::util::JsonStringToMessage(all.out, &fleet).ok() &&
                 fleet.agents_size() == 3;
    for (const auto& e : fleet.agents()) ready &= e.response().threads_size() == 2;
    if (ready || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(all.exit_code, 0) << all.err;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(all.out, &fleet).ok()) << all.out;
  ASSERT_EQ(fleet.agents_size(), 3);
  for (const auto& e : fleet.agents()) {
    EXPECT_TRUE(e.error().empty()) << e.agent() << ": " << e.error();
    EXPECT_FALSE(e.response().hostname().empty());
    ASSERT_EQ(e.response().threads_size(), 2) << e.agent();  // main + 1 worker
    EXPECT_EQ(std::to_string(e.response().threads(0).pid()), pid);
  }
  CommandResult table = query(false);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("3 of 3 agents answered"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("HOST "), std::string::npos) << table.out;

  // One agent dies: it is named, the others still answer, exit 0.
  kill(agents[1]->pid(), SIGKILL);
  agents[1]->Stop();
  CommandResult partial = query(true);
  EXPECT_EQ(partial.exit_code, 0) << partial.err;
  EXPECT_NE(partial.err.find(absl::StrCat("127.0.0.1:", ports[1])), std::string::npos)
      << partial.err;
  v1::FleetSyscallsResponse fleet2;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(partial.out, &fleet2).ok());
  int answered = 0;
  for (const auto& e : fleet2.agents()) answered += e.error().empty();
  EXPECT_EQ(answered, 2);

  // All dead: non-zero.
  agents[0]->Stop();
  agents[2]->Stop();
  EXPECT_EQ(query(false).exit_code, 1);
}

}  // namespace
}  // namespace vigil
