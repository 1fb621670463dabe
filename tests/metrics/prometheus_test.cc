// vigild's /metrics scraped by a real Prometheus server (Debian's
// prometheus, started on loopback by the test), queried through its HTTP
// API, and checked with promtool.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "tests/test_util.h"
#include "tests/udp_netns.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil {
namespace {

using test::CommandResult;
using test::RunCommand;

// A Prometheus server scraping one target every second, evaluating
// `rule_file` (if any) every second; killed on scope exit.
class ScopedPrometheus {
 public:
  explicit ScopedPrometheus(const std::string& target, const std::string& rule_file = "")
      : port_(test::FreeLoopbackPort()) {
    const std::string conf = dir_.path() + "/prometheus.yml";
    std::ofstream out(conf);
    out << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n";
    if (!rule_file.empty()) out << "rule_files: ['" << rule_file << "']\n";
    out << "scrape_configs:\n  - job_name: vigil\n    static_configs:\n"
        << "      - targets: ['" << target << "']\n";
    out.close();
    pid_ = fork();
    if (pid_ == 0) {
      freopen((dir_.path() + "/prometheus.log").c_str(), "w", stderr);
      execlp("prometheus", "prometheus", ("--config.file=" + conf).c_str(),
             ("--storage.tsdb.path=" + dir_.path() + "/data").c_str(),
             ("--web.listen-address=127.0.0.1:" + std::to_string(port_)).c_str(), nullptr);
      _exit(127);
    }
  }
  ~ScopedPrometheus() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  // The value of an instant query's first sample, if any.
  bool Query(const std::string& promql, double* value) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(2, 0);
    auto res = c.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
    if (!res || res->status != 200) return false;
    std::smatch m;
    static const std::regex kValue(R"re("value":\[[0-9.]+,"([^"]+)"\])re");
    if (!std::regex_search(res->body, m, kValue)) return false;
    return absl::SimpleAtod(m[1].str(), value);
  }
  // /api/v1/alerts' "alerts" list (empty if it did not answer).
  std::vector<google::protobuf::Struct> Alerts() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(2, 0);
    auto res = c.Get("/api/v1/alerts");
    if (!res || res->status != 200) return {};
    google::protobuf::Struct root;
    if (!google::protobuf::util::JsonStringToMessage(res->body, &root).ok()) return {};
    std::vector<google::protobuf::Struct> out;
    const auto data = root.fields().find("data");
    if (data == root.fields().end()) return {};
    const auto alerts = data->second.struct_value().fields().find("alerts");
    if (alerts == data->second.struct_value().fields().end()) return {};
    for (const auto& a : alerts->second.list_value().values()) out.push_back(a.struct_value());
    return out;
  }
  std::string Log() const {
    std::stringstream ss;
    ss << std::ifstream(dir_.path() + "/prometheus.log").rdbuf();
    return ss.str();
  }

 private:
  test::TempDir dir_;
  int port_;
  pid_t pid_ = -1;
};

class PrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VIGIL_REQUIRE_BPF();
    if (RunCommand({"prometheus", "--version"}).exit_code != 0) {
      VIGIL_SKIP_OR_FAIL("prometheus not installed (deploy/install-deps.sh --test installs it)");
    }
  }
};

TEST_F(PrometheusTest, ScrapedSeriesMatchTheWorkload) {
  const int metrics_port = test::FreeLoopbackPort();
  const std::string target = absl::StrCat("127.0.0.1:", metrics_port);
  test::ScopedVigild agent({"--interval", "200ms", "--metrics-listen", target});
  ASSERT_TRUE(agent.ok()) << agent.log();

  CommandResult run = RunCommand({test::WorkloadPath(), "3"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // UDP datagrams to a closed port in a private namespace: NoPorts is truth.
  test::UdpScenario sc;
  sc.kind = test::UdpScenario::kNoSocket;
  sc.port = 7777;
  sc.datagrams = 321;
  auto udp = test::NetnsUdpRun::Start(sc);
  ASSERT_TRUE(udp.ok()) << udp.status();
  const double want_noports = static_cast<double>((*udp)->Delta("Udp:NoPorts"));
  ASSERT_GT(want_noports, 0);
  double want_getppid = 0, want_close = 0;
  for (absl::string_view line : absl::StrSplit(run.out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() == 10 && f[0] == "tid") {
      want_getppid += std::stod(f[3]);
      want_close += std::stod(f[5]);
    }
  }

  // promtool accepts what we serve.
  httplib::Client c("127.0.0.1", metrics_port);
  auto scrape = c.Get("/metrics");
  ASSERT_TRUE(scrape && scrape->status == 200);
  test::TempDir dir;
  std::ofstream(dir.path() + "/scrape.txt") << scrape->body;
  CommandResult lint =
      RunCommand({"bash", "-c", "promtool check metrics < " + dir.path() + "/scrape.txt"});
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;

  ScopedPrometheus prom(target);
  const std::string sel = "{comm=\"syscall_workloa\",syscall=";
  double getppid = -1, close_errors = -1, up = -1, seconds = -1, drops = -1;
  const std::string drops_q = absl::StrCat(
      "vigil_udp_drops_total{reason=\"NO_SOCKET\",port=\"7777\",netns=\"", (*udp)->netns(), "\"}");
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    prom.Query("vigil_syscalls_total" + sel + "\"getppid\"}", &getppid);
    prom.Query("vigil_syscall_errors_total" + sel + "\"close\"}", &close_errors);
    prom.Query("up{job=\"vigil\"}", &up);
    prom.Query("vigil_syscall_seconds_total" + sel + "\"getppid\"}", &seconds);
    prom.Query(drops_q, &drops);
    if (getppid == want_getppid && close_errors == want_close && up == 1 && drops == want_noports) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_EQ(up, 1) << prom.Log();
  EXPECT_EQ(getppid, want_getppid) << "Prometheus' view of the workload's getppid calls";
  EXPECT_EQ(close_errors, want_close) << "every close(-1) failed";
  EXPECT_GT(seconds, 0);
  EXPECT_EQ(drops, want_noports) << drops_q << " vs the namespace's Udp:NoPorts delta";
  double rss = 0, cap = -1;
  EXPECT_TRUE(prom.Query("vigil_agent_resident_memory_bytes", &rss));
  EXPECT_GT(rss, 1e6);
  EXPECT_TRUE(prom.Query("vigil_capability_up{capability=\"syscalls\"}", &cap));
  EXPECT_EQ(cap, 1);
  double samples = 0;
  EXPECT_TRUE(prom.Query("sum(vigil_profile_samples_total)", &samples));
  EXPECT_GT(samples, 0) << "the profiler samples every CPU";
}

// The shipped rule file, loaded by a real Prometheus scraping a real vigild:
// a real spinning thread makes VigilThreadSpinning fire, labelled with that
// thread's pid, tid and comm.
TEST_F(PrometheusTest, ShippedSpinRuleFiresForASpinningThread) {
  const int metrics_port = test::FreeLoopbackPort();
  const std::string target = absl::StrCat("127.0.0.1:", metrics_port);
  // Short detector settings, as in tests/e2e/spin_e2e_test.cc (whose header
  // says why the threshold is 0.1 on a shared 2-vCPU box).
  test::ScopedVigild agent({"--interval", "200ms", "--sample-hz", "99", "--spin-min-duration", "3s",
                            "--spin-cpu-threshold", "0.1", "--metrics-listen", target});
  ASSERT_TRUE(agent.ok()) << agent.log();
  ScopedPrometheus prom(target, test::SourceDir() + "/deploy/prometheus/vigil-alerts.yml");
  test::SpinWorkload w({"spin", "60", "1", "promspin"});
  const std::vector<uint32_t> tids = w.Tids(1);
  ASSERT_EQ(tids.size(), 1u);

  auto label = [](const google::protobuf::Struct& a, const std::string& key) -> std::string {
    const auto& labels = a.fields().at("labels").struct_value().fields();
    auto it = labels.find(key);
    return it == labels.end() ? "" : it->second.string_value();
  };
  google::protobuf::Struct spin;
  std::string state;
  const absl::Time deadline = absl::Now() + absl::Seconds(45);
  while (absl::Now() < deadline && state != "firing") {
    for (const google::protobuf::Struct& a : prom.Alerts()) {
      if (label(a, "alertname") == "VigilThreadSpinning" &&
          label(a, "tid") == absl::StrCat(tids[0])) {
        spin = a;
        state = a.fields().at("state").string_value();
      }
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
  ASSERT_EQ(state, "firing") << spin.DebugString() << prom.Log() << agent.CurrentLog();
  EXPECT_EQ(label(spin, "pid"), absl::StrCat(w.pid()));
  EXPECT_EQ(label(spin, "comm"), "promspin");
  EXPECT_EQ(label(spin, "process_comm"), "spin_workload");
  EXPECT_EQ(label(spin, "instance"), target);
  EXPECT_EQ(label(spin, "job"), "vigil");
  const std::string summary =
      spin.fields().at("annotations").struct_value().fields().at("summary").string_value();
  EXPECT_TRUE(absl::StrContains(summary, absl::StrCat("promspin (tid ", tids[0], ")"))) << summary;
  EXPECT_TRUE(absl::StrContains(summary, absl::StrCat("(pid ", w.pid(), ")"))) << summary;
}

// A capability switched off in the configuration says so, so the shipped
// VigilCapabilityDown rule pages only for one that failed.
TEST_F(PrometheusTest, CapabilitiesTurnedOffAreMarkedDisabled) {
  const int metrics_port = test::FreeLoopbackPort();
  test::ScopedVigild agent({"--interval", "200ms", "--spin", "off", "--memory", "off",
                            "--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port)});
  ASSERT_TRUE(agent.ok()) << agent.log();
  httplib::Client c("127.0.0.1", metrics_port);
  auto scrape = c.Get("/metrics");
  ASSERT_TRUE(scrape && scrape->status == 200);
  const std::string& t = scrape->body;
  for (const char* line : {"vigil_capability_up{capability=\"spin\"} 0\n",
                           "vigil_capability_disabled{capability=\"spin\"} 1\n",
                           "vigil_capability_disabled{capability=\"memory\"} 1\n",
                           "vigil_capability_up{capability=\"syscalls\"} 1\n",
                           "vigil_capability_disabled{capability=\"syscalls\"} 0\n"}) {
    EXPECT_TRUE(absl::StrContains(t, line)) << line << "\n" << t;
  }
}

// Identical queries within one interval share one merge (the second gets
// the first's answer, byte for byte), a different one merges for itself,
// and /metrics says how each was answered.
TEST_F(PrometheusTest, IdenticalQueriesShareOneMergeAndAreCounted) {
  const int metrics_port = test::FreeLoopbackPort();
  test::ScopedVigild agent(
      {"--interval", "5s", "--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port)});
  ASSERT_TRUE(agent.ok()) << agent.log();
  auto stub =
      v1::Vigil::NewStub(grpc::CreateChannel(agent.agent(), grpc::InsecureChannelCredentials()));
  httplib::Client http("127.0.0.1", metrics_port);
  auto answers = [&](const std::string& how) {
    auto scrape = http.Get("/metrics");
    if (!scrape || scrape->status != 200) return -1.0;
    const std::string key = absl::StrCat("vigil_query_answers_total{how=\"", how, "\"} ");
    const size_t at = scrape->body.find(key);
    if (at == std::string::npos) return -1.0;
    const size_t end = scrape->body.find('\n', at);
    double v = -1;
    if (!absl::SimpleAtod(scrape->body.substr(at + key.size(), end - at - key.size()), &v)) {
      return -1.0;
    }
    return v;
  };
  auto syscalls = [&](uint32_t top, uint32_t* intervals) {
    grpc::ClientContext ctx;
    v1::SyscallsRequest req;
    req.set_top(top);
    v1::SyscallsResponse r;
    EXPECT_TRUE(stub->GetSyscalls(&ctx, req, &r).ok());
    if (intervals != nullptr) *intervals = r.covered().intervals();
    // Each caller is told its own time in the agent; the rest is shared.
    EXPECT_GT(r.query_ns(), 0);
    r.clear_query_ns();
    return r.SerializeAsString();
  };
  uint32_t intervals = 0;
  for (int i = 0; i < 100 && intervals == 0; ++i) {
    syscalls(7, &intervals);
    if (intervals == 0) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_GT(intervals, 0u) << "no interval stored in 10 s";
  bool shared = false;
  // An interval landing between the calls makes them rightly differ:
  // tried again.
  for (int attempt = 0; attempt < 5 && !shared; ++attempt) {
    const double merged0 = answers("merged"), stored0 = answers("stored");
    ASSERT_GE(merged0, 1) << "vigil_query_answers_total missing";
    // Tops no call has asked for yet, so nothing is kept for them.
    const uint32_t top = 10 + 2 * static_cast<uint32_t>(attempt);
    const std::string a = syscalls(top, nullptr);
    const std::string b = syscalls(top, nullptr);
    const std::string c = syscalls(top + 1, nullptr);
    const double merged1 = answers("merged"), stored1 = answers("stored");
    if (stored1 - stored0 == 1 && merged1 - merged0 == 2) {
      EXPECT_EQ(a, b);
      shared = true;
    }
  }
  EXPECT_TRUE(shared) << "an identical query was not answered from the first one's merge";
  EXPECT_EQ(answers("joined"), 0);  // nothing ran concurrently
}

TEST(MetricsFlagsTest, NonLoopbackMetricsNeedTls) {
  CommandResult c =
      RunCommand({test::VigildPath(), "--metrics-listen", "0.0.0.0:9464", "--check-config"});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("metrics-listen"), std::string::npos) << c.err;
  EXPECT_EQ(RunCommand({test::VigildPath(), "--metrics-listen", "", "--check-config"}).exit_code,
            0);
  EXPECT_EQ(
      RunCommand({test::VigildPath(), "--metrics-listen", "nohost", "--check-config"}).exit_code,
      2);
}

}  // namespace
}  // namespace vigil
