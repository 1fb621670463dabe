// End to end: vigild on a private socket, real workloads, the vigil CLI's
// --json output and exit codes, ground truth from strace -c.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "tests/test_util.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil {
namespace {

using test::CommandResult;
using test::RunCommand;

struct WorkloadThread {
  uint32_t tid = 0;
  uint64_t getppid = 0, close = 0, access = 0, access_errors = 0;
};

struct Workload {
  uint32_t pid = 0;
  std::vector<WorkloadThread> threads;
};

Workload ParseWorkload(const std::string& out) {
  Workload w;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() == 2 && f[0] == "pid") {
      EXPECT_TRUE(absl::SimpleAtoi(f[1], &w.pid));
    } else if (f.size() == 10 && f[0] == "tid") {
      WorkloadThread t;
      EXPECT_TRUE(absl::SimpleAtoi(f[1], &t.tid));
      EXPECT_TRUE(absl::SimpleAtoi(f[3], &t.getppid));
      EXPECT_TRUE(absl::SimpleAtoi(f[5], &t.close));
      EXPECT_TRUE(absl::SimpleAtoi(f[7], &t.access));
      EXPECT_TRUE(absl::SimpleAtoi(f[9], &t.access_errors));
      w.threads.push_back(t);
    }
  }
  return w;
}

v1::SyscallsResponse ParseJson(const std::string& json) {
  v1::SyscallsResponse r;
  auto st = google::protobuf::util::JsonStringToMessage(json, &r);
  EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << json;
  return r;
}

// Asks the CLI until `done` holds for its --json answer (the agent publishes
// once per interval), or a deadline passes.
template <typename Pred>
v1::SyscallsResponse QueryUntil(const std::vector<std::string>& args, Pred done,
                                std::string* raw = nullptr) {
  v1::SyscallsResponse r;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    CommandResult c = RunCommand(args);
    EXPECT_EQ(c.exit_code, 0) << c.err;
    if (c.exit_code != 0) return r;
    r = ParseJson(c.out);
    if (raw) *raw = c.out;
    if (done(r)) return r;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < deadline);
  return r;
}

const v1::SyscallStat* FindStat(const v1::ThreadSyscalls& t, const std::string& name) {
  for (const auto& s : t.syscalls()) {
    if (s.name() == name) return &s;
  }
  return nullptr;
}

class E2ETest : public ::testing::Test {
 protected:
  void SetUp() override { VIGIL_REQUIRE_BPF(); }
};

TEST_F(E2ETest, CliJsonHasExactPerThreadCounts) {
  test::ScopedVigild agent({"--interval", "200ms"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  CommandResult run = RunCommand({test::WorkloadPath(), "4"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Workload w = ParseWorkload(run.out);
  ASSERT_EQ(w.threads.size(), 4u);

  std::string raw;
  const std::vector<std::string> args = {test::VigilPath(), "syscalls", "--agent",
                                         agent.agent(),     "--pid",    std::to_string(w.pid),
                                         "--json"};
  v1::SyscallsResponse r = QueryUntil(
      args,
      [&](const v1::SyscallsResponse& r) {
        uint64_t getppid = 0, want = 0;
        for (const auto& t : r.threads()) {
          if (const auto* s = FindStat(t, "getppid")) getppid += s->calls();
        }
        for (const auto& t : w.threads) want += t.getppid;
        return getppid == want;
      },
      &raw);

  // proto3 JSON with the proto's field names, not camelCase.
  for (const char* key :
       {"\"threads\"", "\"pid\"", "\"tid\"", "\"comm\"", "\"syscalls\"", "\"name\"", "\"nr\"",
        "\"calls\"", "\"errors\"", "\"total_ns\"", "\"max_ns\""}) {
    EXPECT_NE(raw.find(key), std::string::npos) << key;
  }
  EXPECT_EQ(raw.find("totalNs"), std::string::npos);

  for (const WorkloadThread& want : w.threads) {
    SCOPED_TRACE(testing::Message() << "tid " << want.tid);
    const v1::ThreadSyscalls* got = nullptr;
    for (const auto& t : r.threads()) {
      if (t.tid() == want.tid) got = &t;
    }
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->pid(), w.pid);
    EXPECT_EQ(got->comm(), "syscall_workloa");  // TASK_COMM_LEN truncates
    const auto* g = FindStat(*got, "getppid");
    const auto* c = FindStat(*got, "close");
    const auto* a = FindStat(*got, "access");
    ASSERT_TRUE(g && c && a);
    EXPECT_EQ(g->calls(), want.getppid);
    EXPECT_EQ(g->errors(), 0u);
    EXPECT_EQ(c->calls(), want.close);
    EXPECT_EQ(c->errors(), want.close);
    EXPECT_EQ(a->calls(), want.access);
    EXPECT_EQ(a->errors(), want.access_errors);
    EXPECT_EQ(g->nr(), SYS_getppid);  // this architecture's number, from libc
  }
}

TEST_F(E2ETest, TableAndGroupings) {
  test::ScopedVigild agent({"--interval", "200ms"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  CommandResult run = RunCommand({test::WorkloadPath(), "2"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Workload w = ParseWorkload(run.out);
  const uint64_t want = w.threads[0].getppid + w.threads[1].getppid;

  v1::SyscallsResponse by_proc =
      QueryUntil({test::VigilPath(), "syscalls", "--agent", agent.agent(), "--pid",
                  std::to_string(w.pid), "--by", "process", "--json"},
                 [&](const v1::SyscallsResponse& r) {
                   return r.threads_size() == 1 && FindStat(r.threads(0), "getppid") &&
                          FindStat(r.threads(0), "getppid")->calls() == want;
                 });
  ASSERT_EQ(by_proc.threads_size(), 1);
  EXPECT_EQ(by_proc.threads(0).tid(), 0u);
  EXPECT_EQ(FindStat(by_proc.threads(0), "getppid")->calls(), want);

  CommandResult table = RunCommand(
      {test::VigilPath(), "syscalls", "--agent", agent.agent(), "--pid", std::to_string(w.pid)});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("usecs/call"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("getppid"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(absl::StrCat("TID ", w.threads[0].tid)), std::string::npos) << table.out;
  // The default times 1 call in 16, and both outputs say so.
  EXPECT_EQ(by_proc.latency_sample_every(), 16u);
  EXPECT_NE(table.out.find("latency timed on 1 in 16 calls"), std::string::npos) << table.out;

  CommandResult top1 = RunCommand({test::VigilPath(), "syscalls", "--agent", agent.agent(), "--by",
                                   "syscall", "--top", "1", "--json"});
  ASSERT_EQ(top1.exit_code, 0) << top1.err;
  v1::SyscallsResponse t1 = ParseJson(top1.out);
  ASSERT_EQ(t1.threads_size(), 1);
  EXPECT_EQ(t1.threads(0).syscalls_size(), 1);
  EXPECT_GT(t1.groups_omitted(), 0u);
}

// A busy host fills the store's record cap. The oldest intervals then merge
// into coarser ones instead of being evicted, so a workload that ran before
// the rush keeps its exact counts. Fails with --syscalls-store-coarsen 0:
// nothing merges, and the workload's interval is evicted.
// Asked over gRPC, not the CLI: each CLI run is a new process with ~50
// (thread, syscall) records of its own, which no merge can fold. The cap
// leaves room for what other tests running beside this one add.
TEST_F(E2ETest, ABusyHostCoarsensOldHistoryAndKeepsItsCountsExact) {
  test::ScopedVigild agent(
      {"--interval", "200ms", "--store-max-records", "20000", "--syscalls-store-coarsen", "1m"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  auto stub =
      v1::Vigil::NewStub(grpc::CreateChannel(agent.agent(), grpc::InsecureChannelCredentials()));
  // Polls GetSyscalls for one process until done(response) or `within`.
  auto ask_until = [&](uint32_t pid, auto done, absl::Duration within) {
    v1::SyscallsRequest req;
    req.set_pid(pid);
    req.set_top(1000);
    v1::SyscallsResponse r;
    const absl::Time deadline = absl::Now() + within;
    do {
      grpc::ClientContext ctx;
      r.Clear();
      const grpc::Status st = stub->GetSyscalls(&ctx, req, &r);
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (!st.ok() || done(r)) break;
      absl::SleepFor(absl::Milliseconds(200));
    } while (absl::Now() < deadline);
    return r;
  };
  auto getppid_of = [](const v1::SyscallsResponse& r) {
    uint64_t n = 0;
    for (const auto& t : r.threads()) {
      if (const auto* s = FindStat(t, "getppid")) n += s->calls();
    }
    return n;
  };

  const absl::Time before = absl::Now();
  CommandResult run = RunCommand({test::WorkloadPath(), "4"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Workload w = ParseWorkload(run.out);
  ASSERT_EQ(w.threads.size(), 4u);
  uint64_t want = 0;
  for (const WorkloadThread& t : w.threads) want += t.getppid;
  ASSERT_EQ(getppid_of(ask_until(
                w.pid, [&](const v1::SyscallsResponse& r) { return getppid_of(r) == want; },
                absl::Seconds(10))),
            want);

  // Debian's python3: 200 threads each sleeping 50 ms in a loop, 400-600
  // (thread, syscall) records an interval (sleeps, the GIL's futex calls),
  // the same ones every interval, so they merge: past the cap in ~10 s.
  test::Child rush({"/usr/bin/python3", "-c",
                    "import threading, time\n"
                    "def f():\n"
                    "    while True: time.sleep(0.05)\n"
                    "for _ in range(200): threading.Thread(target=f, daemon=True).start()\n"
                    "time.sleep(120)\n"});
  ASSERT_GT(rush.pid(), 0);
  // Merging happened once the window holds far fewer intervals than its
  // span has 200 ms intervals; only the cap makes the store merge.
  auto merged = [](const v1::SyscallsResponse& r) {
    const double span_s = (r.covered().end_unix_ns() - r.covered().start_unix_ns()) / 1e9;
    return span_s > 5 && r.covered().intervals() * 0.2 * 2 < span_s;
  };
  const v1::SyscallsResponse r = ask_until(w.pid, merged, absl::Seconds(60));
  ASSERT_TRUE(merged(r)) << "no merging: " << r.covered().intervals() << " intervals over "
                         << (r.covered().end_unix_ns() - r.covered().start_unix_ns()) / 1e9 << " s";
  // Still exact, from an interval since merged into a coarser one.
  EXPECT_EQ(getppid_of(r), want);
  EXPECT_EQ(r.loss().store_dropped(), 0u);
  EXPECT_LE(r.covered().start_unix_ns(), absl::ToUnixNanos(before) + 200'000'000);
}

// Parses strace -c output: syscall -> (calls, errors).
std::map<std::string, std::pair<uint64_t, uint64_t>> ParseStraceC(const std::string& text) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 5 || f[0] == "%" || f[0][0] == '-') continue;
    const std::string& name = f.back();
    if (name == "total") continue;
    uint64_t calls = 0, errors = 0;
    if (!absl::SimpleAtoi(f[3], &calls)) continue;
    if (f.size() == 6 && !absl::SimpleAtoi(f[4], &errors)) continue;
    out[name] = {calls, errors};
  }
  return out;
}

TEST_F(E2ETest, AgreesWithStraceOnTheSameWorkload) {
  test::ScopedVigild agent({"--interval", "200ms"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  test::TempDir dir;
  const std::string strace_out = dir.path() + "/strace.txt";
  CommandResult run =
      RunCommand({"strace", "-c", "-f", "-o", strace_out, "--", test::WorkloadPath(), "4"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Workload w = ParseWorkload(run.out);
  ASSERT_GT(w.pid, 0u);
  std::stringstream ss;
  ss << std::ifstream(strace_out).rdbuf();
  auto strace = ParseStraceC(ss.str());
  ASSERT_GT(strace.count("getppid"), 0u) << ss.str();

  // The workload's last syscalls (its output) land in a later interval than
  // its getppid loop: wait until every syscall strace saw has been published.
  v1::SyscallsResponse r =
      QueryUntil({test::VigilPath(), "syscalls", "--agent", agent.agent(), "--pid",
                  std::to_string(w.pid), "--by", "process", "--top", "1", "--json"},
                 [&](const v1::SyscallsResponse& r) {
                   if (r.threads_size() != 1) return false;
                   for (const auto& [name, ce] : strace) {
                     if (name == "exit" || name == "exit_group") continue;
                     const v1::SyscallStat* s = FindStat(r.threads(0), name);
                     if (s == nullptr || s->calls() < ce.first) return false;
                   }
                   return true;
                 });
  ASSERT_EQ(r.threads_size(), 1);
  std::map<std::string, std::pair<uint64_t, uint64_t>> vigil;
  for (const auto& s : r.threads(0).syscalls()) vigil[s.name()] = {s.calls(), s.errors()};

  // Every syscall strace saw the workload make, vigil saw with the same
  // calls and errors. Two documented differences:
  // - exit/exit_group never return, and vigil counts at syscall exit;
  // - strace's forked child runs a few syscalls of its own between fork and
  //   execve (set_robust_list from fork, getpid for its self-SIGSTOP, and a
  //   close), under the workload's pid and before strace starts counting.
  //   vigil sees those: at most one more of each of these three.
  const std::set<std::string> pre_exec = {"set_robust_list", "getpid", "close"};
  for (const auto& [name, ce] : strace) {
    SCOPED_TRACE(name);
    if (name == "exit" || name == "exit_group") continue;
    ASSERT_TRUE(vigil.count(name)) << "vigil did not see " << name;
    const uint64_t slack = pre_exec.count(name) ? 1 : 0;
    EXPECT_GE(vigil[name].first, ce.first);
    EXPECT_LE(vigil[name].first, ce.first + slack);
    EXPECT_EQ(vigil[name].second, ce.second);
  }
  // The workload's own calls, which strace's child never makes, agree exactly.
  for (const char* name : {"getppid", "access"}) {
    EXPECT_EQ(vigil[name], strace[name]) << name;
  }
}

TEST_F(E2ETest, GrpcRejectsBadRequestsAndKeepsServing) {
  test::ScopedVigild agent({"--interval", "200ms", "--window", "1m"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  auto stub =
      v1::Vigil::NewStub(grpc::CreateChannel(agent.agent(), grpc::InsecureChannelCredentials()));
  auto call = [&](const v1::SyscallsRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::SyscallsResponse resp;
    return stub->GetSyscalls(&ctx, req, &resp);
  };
  struct Case {
    const char* what;
    v1::SyscallsRequest req;
  };
  std::vector<Case> cases(6);
  cases[0].what = "regex";
  cases[0].req.set_comm_regex("([");
  cases[1].what = "top";
  cases[1].req.set_top(1000000);
  cases[2].what = "group_by";
  cases[2].req.set_group_by(static_cast<v1::SyscallGroupBy>(77));
  cases[3].what = "negative since";
  cases[3].req.mutable_range()->set_since_ago_ns(-5);
  cases[4].what = "since beyond the window";
  cases[4].req.mutable_range()->set_since_ago_ns(int64_t{3600} * 1000000000);
  cases[5].what = "until before since";
  cases[5].req.mutable_range()->set_since_ago_ns(1000000000);
  cases[5].req.mutable_range()->set_until_ago_ns(2000000000);
  for (const Case& c : cases) {
    grpc::Status s = call(c.req);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.what;
    EXPECT_FALSE(s.error_message().empty()) << c.what;
    EXPECT_EQ(s.error_message().find('\n'), std::string::npos) << c.what;
  }
  // Nothing collected was lost and the agent still answers (polled: the
  // first interval may not be published yet).
  v1::SyscallsResponse resp;
  grpc::Status s;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(5);;) {
    grpc::ClientContext ctx;
    resp.Clear();
    s = stub->GetSyscalls(&ctx, v1::SyscallsRequest(), &resp);
    if ((s.ok() && resp.covered().intervals() > 0) || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(resp.covered().intervals(), 0u);
  EXPECT_GT(resp.threads_size(), 0);
}

TEST(CliTest, BadUsageExitsTwoWithOneLine) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"syscalls", "--pid", "abc"},
      {"syscalls", "--pid", "-3"},
      {"syscalls", "--tid", "0"},
      {"syscalls", "--top", "0"},
      {"syscalls", "--top", "99999"},
      {"syscalls", "--by", "cpu"},
      {"syscalls", "--sort", "name"},
      {"syscalls", "--top-syscalls", "x"},
      {"syscalls", "--comm", "(unclosed"},
      {"syscalls", "--since", "yesterday"},
      {"syscalls", "--since", "-5s"},
      {"syscalls", "--since", "1m", "--until", "2m"},
      {"syscalls", "--until", "1m"},
      {"syscalls", "--every", "1ms", "--watch"},
      {"syscalls", "--no-such-flag"},
      {"syscalls", "--pid"},
      {"syscalls", "extra-arg"},
      {"syscalls", "--agent", "nonsense"},
      {"syscalls", "--agent", "10.1.2.3:7000"},  // TCP without --ca/--insecure
      {"syscalls", "--timeout", "soon"},
      {"status", "--bogus"},
  };
  for (const auto& args : cases) {
    std::vector<std::string> argv = {test::VigilPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult c = RunCommand(argv);
    std::string joined = absl::StrJoin(args, " ");
    EXPECT_EQ(c.exit_code, 2) << joined << "\n" << c.err;
    if (!args.empty()) {
      std::string err(absl::StripTrailingAsciiWhitespace(c.err));
      EXPECT_FALSE(err.empty()) << joined;
      EXPECT_EQ(err.find('\n'), std::string::npos) << joined << ": " << c.err;
    }
  }
}

TEST(CliTest, HelpExitsZero) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"syscalls", "--help"}, {"status", "-h"}, {"help", "syscalls"}}) {
    std::vector<std::string> argv = {test::VigilPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult c = RunCommand(argv);
    EXPECT_EQ(c.exit_code, 0) << absl::StrJoin(args, " ") << c.err;
    EXPECT_NE(c.out.find("usage:"), std::string::npos);
  }
}

// The CLI leaves with _exit after flushing (client/main.cc): output it
// could not write is still a failure with a line, not a silent exit 0.
TEST(CliTest, OutputThatCannotBeWrittenIsAFailure) {
  CommandResult c = RunCommand({"/bin/sh", "-c", test::VigilPath() + " --help > /dev/full"});
  EXPECT_EQ(c.exit_code, 1) << c.err;
  EXPECT_NE(c.err.find("vigil: writing the output failed"), std::string::npos) << c.err;
  c = RunCommand({"/bin/sh", "-c", test::VigilPath() + " --help > /dev/null"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
}

TEST(CliTest, UnreachableAgentIsAClearFailure) {
  test::TempDir dir;
  CommandResult c = RunCommand({test::VigilPath(), "syscalls", "--agent",
                                "unix:" + dir.path() + "/nobody-home.sock", "--timeout", "1s"});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.err.find("unreachable"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("is vigild running?"), std::string::npos) << c.err;
}

TEST(VigildTest, BadFlagsExitTwoWithOneLine) {
  const std::vector<std::vector<std::string>> cases = {
      {"--interval", "0s"},
      {"--interval", "1ms"},
      {"--interval", "banana"},
      {"--window", "1s", "--interval", "2s"},
      {"--listen", "relative.sock"},
      {"--listen", "0.0.0.0:7000"},  // plaintext TCP refused
      {"--listen", "127.0.0.1:7000", "--tls-cert", "x.pem"},
      {"--syscalls-max-entries", "1"},
      {"--syscalls-latency", "maybe"},
      {"--syscalls-latency-sample", "12"},
      {"--syscalls-latency-sample", "0"},
      {"--profile-fault-period", "1048577"},
      {"--profile-fault-period", "-1"},
      {"--unknown"},
      {"stray"},
  };
  for (const auto& args : cases) {
    std::vector<std::string> argv = {test::VigildPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult c = RunCommand(argv, absl::Seconds(10));
    std::string joined = absl::StrJoin(args, " ");
    EXPECT_EQ(c.exit_code, 2) << joined << "\n" << c.err;
    std::string err(absl::StripTrailingAsciiWhitespace(c.err));
    EXPECT_EQ(err.find('\n'), std::string::npos) << joined << ": " << c.err;
  }
}

TEST(VigildTest, ConfigFileIsValidatedAndFlagsOverrideIt) {
  test::TempDir dir;
  const std::string conf = dir.path() + "/vigild.conf";
  auto write = [&](const std::string& text) { std::ofstream(conf) << text; };

  write("interval = 2s\nwindow = 1m\n");
  CommandResult ok = RunCommand({test::VigildPath(), "--config", conf, "--check-config"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("configuration OK"), std::string::npos) << ok.out;

  write("interval = 2s\nwindwo = 1m\n");
  CommandResult bad = RunCommand({test::VigildPath(), "--config", conf, "--check-config"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(conf + ":2: unknown key \"windwo\""), std::string::npos) << bad.err;
  // Without --check-config the agent refuses to start the same way.
  CommandResult start = RunCommand({test::VigildPath(), "--config", conf}, absl::Seconds(10));
  EXPECT_EQ(start.exit_code, 2) << start.err;

  // A flag overrides the file: the file's window is shorter than the flag's
  // interval, which only the flag-overridden config can satisfy.
  write("window = 1s\n");
  EXPECT_EQ(RunCommand({test::VigildPath(), "--config", conf, "--check-config"}).exit_code, 0);
  EXPECT_EQ(RunCommand({test::VigildPath(), "--config", conf, "--interval", "2s", "--check-config"})
                .exit_code,
            2);
  EXPECT_EQ(RunCommand({test::VigildPath(), "--config", conf, "--interval", "2s", "--window", "4s",
                        "--check-config"})
                .exit_code,
            0);

  CommandResult missing =
      RunCommand({test::VigildPath(), "--config", dir.path() + "/nope.conf", "--check-config"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cannot read"), std::string::npos) << missing.err;

  // What was typed comes back cut and escaped: one short line.
  const std::string huge(100000, 'y');
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"--" + huge}, {huge}, {"--config", huge}}) {
    std::vector<std::string> argv = {test::VigildPath()};
    argv.insert(argv.end(), bad.begin(), bad.end());
    CommandResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_LT(r.err.size(), 300u) << r.err.substr(0, 300);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  }
}

TEST(VigildTest, UnprivilegedStartNamesTheMissingCapability) {
  if (geteuid() != 0) VIGIL_SKIP_OR_FAIL("needs root to drop to an unprivileged user");
  test::TempDir dir;
  chmod(dir.path().c_str(), 0777);
  CommandResult c =
      RunCommand({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                  test::VigildPath(), "--listen", "unix:" + dir.path() + "/v.sock"},
                 absl::Seconds(10));
  EXPECT_EQ(c.exit_code, 1) << c.err;
  EXPECT_NE(c.err.find("CAP_BPF"), std::string::npos) << c.err;
  EXPECT_EQ(std::string(absl::StripTrailingAsciiWhitespace(c.err)).find('\n'), std::string::npos)
      << c.err;
}

// Ids of the loaded BPF programs whose names start with vigil_.
std::set<uint32_t> VigilProgramIds() {
  std::set<uint32_t> ids;
  CommandResult c = RunCommand({"bpftool", "prog", "show"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  for (absl::string_view line : absl::StrSplit(c.out, '\n', absl::SkipEmpty())) {
    // "486: tracing  name vigil_sys_enter  tag ..."
    if (line.find(" name vigil_") == absl::string_view::npos) continue;
    uint32_t id = 0;
    if (absl::SimpleAtoi(line.substr(0, line.find(':')), &id)) ids.insert(id);
  }
  return ids;
}

TEST_F(E2ETest, StopDetachesEverything) {
  const std::set<uint32_t> before = VigilProgramIds();
  test::ScopedVigild agent({"--interval", "200ms"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  std::set<uint32_t> ours;
  for (uint32_t id : VigilProgramIds()) {
    if (!before.count(id)) ours.insert(id);
  }
  EXPECT_EQ(ours.size(), 13u)
      << "sys_enter, sys_exit, one kfree_skb variant, the profiler's "
         "CPU perf_event program, its user and kernel page-fault tracepoint "
         "programs, its exec and fork "
         "hooks, its large-map-call sys_exit hook and its vigil probe --stacks "
         "uprobe (loaded, attached only by probe sessions), the memory and cpu "
         "task iterators and one mark_victim variant";
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
  EXPECT_NE(agent.log().find("stopping"), std::string::npos) << agent.log();
  // The kernel frees programs from a work queue; allow it a moment.
  std::set<uint32_t> left;
  for (int tries = 0; tries < 50; ++tries) {
    left.clear();
    for (uint32_t id : VigilProgramIds()) {
      if (ours.count(id)) left.insert(id);
    }
    if (left.empty()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(left.empty()) << left.size() << " programs outlived vigild by 1s";
  // Links go with their programs; bpftool shows none naming ours.
  CommandResult links = RunCommand({"bpftool", "link", "show"});
  for (uint32_t id : ours) {
    EXPECT_EQ(links.out.find(absl::StrCat("prog_id ", id)), std::string::npos) << links.out;
  }
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

// SIGKILL gives vigild no chance to clean up: the kernel must still free
// every program and link with the process's fds, and a restarted agent must
// serve again on the socket path the dead one left behind.
TEST_F(E2ETest, SigkillLeavesNothingAndARestartServesOnTheStaleSocket) {
  test::TempDir dir;
  const std::string listen = absl::StrCat("unix:", dir.path(), "/vigild.sock");
  const std::set<uint32_t> before = VigilProgramIds();
  std::set<uint32_t> ours;
  {
    test::ScopedVigild agent({"--interval", "200ms", "--listen", listen}, {"--agent", listen});
    ASSERT_TRUE(agent.ok()) << agent.log();
    for (uint32_t id : VigilProgramIds()) {
      if (!before.count(id)) ours.insert(id);
    }
    EXPECT_EQ(ours.size(), 13u);  // as in StopDetachesEverything
    ASSERT_EQ(kill(agent.pid(), SIGKILL), 0);
    EXPECT_EQ(agent.Stop(), -1);  // killed by a signal, not exited
  }
  std::set<uint32_t> left = ours;
  for (int tries = 0; tries < 100 && !left.empty(); ++tries) {
    absl::SleepFor(absl::Milliseconds(20));
    left.clear();
    for (uint32_t id : VigilProgramIds()) {
      if (ours.count(id)) left.insert(id);
    }
  }
  EXPECT_TRUE(left.empty()) << left.size() << " programs outlived a SIGKILLed vigild by 2s";
  CommandResult links = RunCommand({"bpftool", "link", "show"});
  for (uint32_t id : ours) {
    EXPECT_EQ(links.out.find(absl::StrCat("prog_id ", id)), std::string::npos) << links.out;
  }

  struct stat st;
  ASSERT_EQ(stat((dir.path() + "/vigild.sock").c_str(), &st), 0) << "the dead agent's socket";
  test::ScopedVigild again({"--interval", "200ms", "--listen", listen}, {"--agent", listen});
  ASSERT_TRUE(again.ok()) << again.log();
  CommandResult s = RunCommand({test::VigilPath(), "status", "--agent", listen});
  EXPECT_EQ(s.exit_code, 0) << s.err;
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

// Any local user can name a thread with bytes that are not UTF-8 or that
// are terminal escapes. Before the agent made names safe, one such thread
// made every whole-host `vigil syscalls` fail ("No message returned": proto3
// refuses invalid UTF-8). Debian's python3, as it ships, names its thread.
TEST_F(E2ETest, HostileThreadNamesAreEscapedAndBreakNothing) {
  test::ScopedVigild agent({"--interval", "200ms"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  pid_t py = fork();
  if (py == 0) {
    // Debian's own interpreter, not a shim (pyenv's python3 is a bash script).
    execl("/usr/bin/python3", "python3", "-c",
          "import ctypes, os, time\n"
          "ctypes.CDLL(None).prctl(15, b'\\xff\\xfe\\x1b[31mevil', 0, 0, 0)\n"
          "t = time.time()\n"
          "while time.time() - t < 4: os.getppid()\n",
          nullptr);
    _exit(127);
  }
  ASSERT_GT(py, 0);
  const std::vector<std::string> args = {test::VigilPath(), "syscalls", "--agent",
                                         agent.agent(),     "--pid",    std::to_string(py),
                                         "--json"};
  const std::string want = "\\xff\\xfe\\x1b[31mevil";
  v1::SyscallsResponse r = QueryUntil(args, [&](const v1::SyscallsResponse& r) {
    return r.threads_size() > 0 && r.threads(0).comm() == want;
  });
  ASSERT_GT(r.threads_size(), 0);
  EXPECT_EQ(r.threads(0).comm(), want);
  // The table, for the whole host, has the name escaped and no raw ESC.
  CommandResult table = RunCommand({test::VigilPath(), "syscalls", "--agent", agent.agent()});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.find('\x1b'), std::string::npos);
  int status = 0;
  waitpid(py, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace vigil
