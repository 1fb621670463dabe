// vigil probe end to end: vigild --allow-probe and the vigil client against
// real processes. Calls are counted inside a window the test controls (the
// workload waits for "go" on stdin, then makes a known number of calls), so
// counts must be exact. Every session must leave nothing attached.
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/test_util.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil::test {
namespace {

constexpr char kPython[] = "/usr/bin/python3.11";  // Debian's: stripped, no frame pointers
constexpr char kLibc[] = "/usr/lib/x86_64-linux-gnu/libc.so.6";

std::string PythonScript(const TempDir& dir) {
  // argv[1]: "getppid" (os.getppid -> libc getppid) or "gc" (gc.collect(1)
  // -> the python:gc__start USDT probe); argv[2]: how many. GC is off so
  // only the explicit collections fire the probe; the script never exits
  // on its own (the test kills it: no finalizer collections).
  const std::string path = dir.path() + "/probe_workload.py";
  std::ofstream(path) << "import gc, os, sys\n"
                         "gc.disable()\n"
                         "n = int(sys.argv[2])\n"
                         "print('ready', os.getpid(), flush=True)\n"
                         "sys.stdin.readline()\n"
                         "if sys.argv[1] == 'getppid':\n"
                         "    for _ in range(n): os.getppid()\n"
                         "else:\n"
                         "    for _ in range(n): gc.collect(1)\n"
                         "print('done', flush=True)\n"
                         "while sys.stdin.readline(): pass\n";
  return path;
}

bool ParseReport(const std::string& json, v1::ProbeReport* r) {
  return google::protobuf::util::JsonStringToMessage(json, r).ok();
}

// Program ids of ours that a probe session loads or links: the probe
// skeleton's programs (by name) and the profiler's vigil_profile_probe.
struct Ours {
  std::vector<std::string> probe_progs;  // vigil_probe_* still loaded
  std::set<uint32_t> profile_probe_ids;  // vigil_profile_probe (stays loaded)
};

Ours ProgramsNow() {
  Ours o;
  CommandResult r = RunCommand({"/usr/sbin/bpftool", "prog", "show"});
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    // "123: kprobe  name vigil_probe_entry  tag ..."
    size_t name = line.find(" name ");
    if (name == absl::string_view::npos) continue;
    absl::string_view rest = line.substr(name + 6);
    rest = rest.substr(0, rest.find(' '));
    uint32_t id = 0;
    (void)absl::SimpleAtoi(line.substr(0, line.find(':')), &id);
    if (absl::StartsWith(rest, "vigil_probe_")) o.probe_progs.push_back(std::string(rest));
    if (rest == "vigil_profile_probe") o.profile_probe_ids.insert(id);
  }
  return o;
}

// Links whose program is one of ours a session attaches.
int OurLinks(const Ours& o) {
  CommandResult r = RunCommand({"/usr/sbin/bpftool", "link", "show"});
  int n = 0;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    size_t p = line.find("prog ");
    if (p == absl::string_view::npos) continue;
    uint32_t id = 0;
    absl::string_view num = line.substr(p + 5);
    num = num.substr(0, num.find_first_not_of("0123456789"));
    if (absl::SimpleAtoi(num, &id) && o.profile_probe_ids.count(id)) ++n;
  }
  return n;
}

void ExpectNothingAttached(const std::string& when) {
  // Destruction is synchronous with the session's end, which precedes the
  // final report; allow a moment for the RPC to unwind anyway.
  for (int i = 0; i < 20; ++i) {
    Ours o = ProgramsNow();
    if (o.probe_progs.empty() && OurLinks(o) == 0) return;
    absl::SleepFor(absl::Milliseconds(100));
  }
  Ours o = ProgramsNow();
  EXPECT_TRUE(o.probe_progs.empty()) << when << ": still loaded: " << o.probe_progs.front();
  EXPECT_EQ(OurLinks(o), 0) << when << ": vigil_profile_probe still linked";
}

class ProbeE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    VIGIL_REQUIRE_BPF();
    if (access(kPython, X_OK) != 0) VIGIL_SKIP_OR_FAIL(std::string(kPython) + " is not installed");
    // Other agents (another checkout's tests) may have the profiler's
    // program loaded too: ours is what appears after this.
    before_ = ProgramsNow().profile_probe_ids;
    agent_ = std::make_unique<ScopedVigild>(std::vector<std::string>{"--allow-probe"});
    ASSERT_TRUE(agent_->ok()) << agent_->log();
  }

  std::vector<std::string> Vigil(std::vector<std::string> args) {
    args.insert(args.begin(), {VigilPath(), "--agent", agent_->agent(), "probe"});
    return args;
  }

  // Waits until the agent's journal says session `n` started, plus a
  // moment for its attach (a few uprobes: milliseconds).
  void WaitSessionStarted(int n) {
    const std::string want = absl::StrCat("probe session ", n, " for");
    for (int i = 0; i < 100 && !absl::StrContains(agent_->CurrentLog(), want); ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_TRUE(absl::StrContains(agent_->CurrentLog(), want)) << agent_->CurrentLog();
    absl::SleepFor(absl::Seconds(1));
  }

  // Runs `vigil probe ARGS --json` while the workload makes its calls:
  // starts the probe, says "go", waits for "done", kills the workload (the
  // session ends with "process exited"), and parses the final report.
  v1::ProbeReport ProbeWindow(Child& w, int session, std::vector<std::string> args,
                              std::string* bpftrace_out = nullptr,
                              const std::string& bpftrace_prog = "") {
    args.push_back("--json");
    std::future<CommandResult> client =
        std::async(std::launch::async, [&] { return RunCommand(Vigil(args), absl::Seconds(120)); });
    WaitSessionStarted(session);
    std::unique_ptr<Child> bt;
    if (bpftrace_out != nullptr) {
      bt = std::make_unique<Child>(
          std::vector<std::string>{"/usr/bin/bpftrace", "-e", bpftrace_prog}, true);
      std::string first = bt->Line();  // "Attaching 1 probe..."
      EXPECT_TRUE(absl::StrContains(first, "Attaching")) << first;
      // Printed before its attach completes and its SIGINT handler is in.
      absl::SleepFor(absl::Seconds(2));
    }
    EXPECT_TRUE(w.Send("go\n"));
    EXPECT_EQ(w.Line(), "done\n");
    if (bt) {
      // bpftrace prints its maps on SIGINT; bounded, in case it missed it.
      bt->Kill(SIGINT);
      bt->ReapWithin(absl::Seconds(10));
      *bpftrace_out = bt->Rest();
    }
    w.Kill(SIGKILL);
    CommandResult r = client.get();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::ProbeReport rep;
    EXPECT_TRUE(ParseReport(r.out, &rep)) << r.out;
    EXPECT_TRUE(rep.ended());
    EXPECT_EQ(rep.message(), "process exited");
    return rep;
  }

  TempDir dir_;
  std::unique_ptr<ScopedVigild> agent_;
  std::set<uint32_t> before_;
};

// libc's getppid in Debian's python3.11, a program we did not write: exact,
// and equal to bpftrace's uprobe count on the same run.
TEST_F(ProbeE2E, PythonLibcCallsExactAndEqualToBpftrace) {
  constexpr int kCalls = 5000;
  Child w({kPython, PythonScript(dir_), "getppid", std::to_string(kCalls)});
  ASSERT_TRUE(absl::StartsWith(w.Line(), "ready"));
  const bool have_bpftrace = access("/usr/bin/bpftrace", X_OK) == 0;
  std::string bt;
  v1::ProbeReport r = ProbeWindow(
      w, 1, {"--pid", std::to_string(w.pid()), "libc:getppid", "--duration", "60s"},
      have_bpftrace ? &bt : nullptr,
      absl::StrCat("uprobe:", kLibc, ":getppid /pid == ", w.pid(), "/ { @calls = count(); }"));
  ASSERT_EQ(r.functions_size(), 1);
  EXPECT_EQ(r.functions(0).name(), "getppid");
  EXPECT_EQ(r.functions(0).binary(), kLibc);
  EXPECT_EQ(r.calls(), uint64_t{kCalls});
  EXPECT_EQ(r.functions(0).calls(), uint64_t{kCalls});
  ASSERT_EQ(r.functions(0).threads_size(), 1);
  EXPECT_EQ(r.functions(0).threads(0).tid(), uint32_t(w.pid()));
  EXPECT_EQ(r.functions(0).threads(0).calls(), uint64_t{kCalls});
  if (have_bpftrace) {
    EXPECT_TRUE(absl::StrContains(bt, absl::StrCat("@calls: ", kCalls))) << bt;
  }
  ExpectNothingAttached("after process exit");
}

// Our own workload: a glob over the executable, latency and arguments.
TEST_F(ProbeE2E, OwnWorkloadGlobLatencyArgs) {
  Child w({VIGIL_TEST_PROBE_WORKLOAD});
  ASSERT_TRUE(absl::StartsWith(w.Line(), "ready"));
  v1::ProbeReport r = ProbeWindow(w, 1,
                                  {"--pid", std::to_string(w.pid()), "probe_*", "--latency",
                                   "--args", "2", "--duration", "60s"});
  ASSERT_EQ(r.functions_size(), 2) << r.DebugString();
  const v1::ProbeFunction* add = nullptr;
  const v1::ProbeFunction* nap = nullptr;
  for (const auto& f : r.functions()) {
    if (f.name() == "probe_add") add = &f;
    if (f.name() == "probe_nap") nap = &f;
  }
  ASSERT_TRUE(add && nap) << r.DebugString();
  EXPECT_EQ(add->calls(), 300u);
  EXPECT_EQ(nap->calls(), 20u);
  EXPECT_EQ(r.calls(), 320u);
  EXPECT_EQ(nap->unreturned(), 0u);
  // nanosleep(1 ms) takes 1 ms and a little: [2^20, 2^21) ns.
  uint64_t in_ms = 0;
  for (const auto& b : nap->latency()) {
    if (b.low_ns() == (1u << 20)) in_ms = b.count();
  }
  EXPECT_GE(in_ms, 15u) << nap->DebugString();
  ASSERT_EQ(add->args_size(), 2);
  ASSERT_GE(add->args(0).top_size(), 2);
  EXPECT_EQ(add->args(0).top(0).value(), 3u);
  EXPECT_EQ(add->args(0).top(0).calls(), 200u);
  EXPECT_EQ(add->args(0).top(1).value(), 5u);
  EXPECT_EQ(add->args(0).top(1).calls(), 100u);
  EXPECT_EQ(add->args(1).top(0).value(), 4u);
  EXPECT_EQ(add->args(1).top(1).value(), 6u);
  ExpectNothingAttached("after process exit");
}

// python3.11's python:gc__start USDT probe (with a semaphore), through
// libbpf's USDT support: exact, with its argument (the generation).
TEST_F(ProbeE2E, PythonUsdtExact) {
  constexpr int kCalls = 7;
  Child w({kPython, PythonScript(dir_), "gc", std::to_string(kCalls)});
  ASSERT_TRUE(absl::StartsWith(w.Line(), "ready"));
  v1::ProbeReport r = ProbeWindow(
      w, 1, {"--pid", std::to_string(w.pid()), "usdt:python3.11:python:gc__start", "--args", "1"});
  ASSERT_EQ(r.functions_size(), 1);
  EXPECT_EQ(r.calls(), uint64_t{kCalls});
  ASSERT_EQ(r.functions(0).args_size(), 1);
  ASSERT_EQ(r.functions(0).args(0).top_size(), 1);
  EXPECT_EQ(r.functions(0).args(0).top(0).value(), 1u);
  EXPECT_EQ(r.functions(0).args(0).top(0).calls(), uint64_t{kCalls});
  ExpectNothingAttached("after a USDT session");
}

// --stacks through the profiler's CFI unwinder: stripped python3.11 without
// frame pointers, unwound from libc's getppid to _start.
TEST_F(ProbeE2E, StacksThroughStrippedPython) {
  Child w({kPython, PythonScript(dir_), "getppid", "200"});
  ASSERT_TRUE(absl::StartsWith(w.Line(), "ready"));
  v1::ProbeReport r =
      ProbeWindow(w, 1, {"--pid", std::to_string(w.pid()), "libc:getppid", "--stacks"});
  ASSERT_EQ(r.functions_size(), 1);
  EXPECT_EQ(r.calls(), 200u);
  ASSERT_GE(r.functions(0).stacks_size(), 1);
  const v1::ProbeStack& top = r.functions(0).stacks(0);
  EXPECT_EQ(top.frames(0).name(), "getppid");
  bool interpreter = false, start = false;
  for (const auto& f : top.frames()) {
    if (f.name() == "_PyEval_EvalFrameDefault" || f.name() == "PyEval_EvalCode") interpreter = true;
    if (f.name() == "_start") start = true;
  }
  EXPECT_TRUE(interpreter) << top.DebugString();
  EXPECT_TRUE(start) << top.DebugString();
  EXPECT_GE(r.functions(0).stacks(0).calls(), 190u);
  ExpectNothingAttached("after a --stacks session");
}

// Bad input: one line, a non-zero exit, and the agent serves on.
TEST_F(ProbeE2E, BadInputOneLineAgentUnaffected) {
  Child w({kPython, PythonScript(dir_), "getppid", "1"});
  ASSERT_TRUE(absl::StartsWith(w.Line(), "ready"));
  const std::string pid = std::to_string(w.pid());
  const std::string not_elf = dir_.path() + "/not_elf.so";
  std::ofstream(not_elf) << "not an ELF file\n";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"--pid", "999999999", "libc:getppid"}, "no such process"},
      {{"--pid", pid, "libc:no_such_function_xyz"}, "no function \"no_such_function_xyz\""},
      {{"--pid", pid, "libc:*"}, "more than probe-max-functions (64)"},
      {{"--pid", pid, not_elf + ":f"}, "is not an ELF file"},
      {{"--pid", pid, "--duration", "0", "libc:getppid"}, "positive duration"},
      {{"--pid", pid, "--duration", "inf", "libc:getppid"}, "finite duration"},
      {{"--pid", pid, "--args", "7", "libc:getppid"}, "[0, 6]"},
      {{"libc:getppid"}, "--pid is required"},
      {{"--pid", pid, "libnosuch:f"}, "maps no library"},
      {{"--pid", pid, "usdt:python3.11:python:no_such_probe"}, "no USDT probe"},
  };
  for (const Case& c : cases) {
    CommandResult r = RunCommand(Vigil(c.args));
    EXPECT_NE(r.exit_code, 0) << c.says;
    EXPECT_TRUE(absl::StrContains(r.err, c.says)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  // The glob's message says how many matched.
  CommandResult glob = RunCommand(Vigil({"--pid", pid, "libc:*"}));
  EXPECT_TRUE(absl::StrContains(glob.err, "\"*\" matches ")) << glob.err;
  CommandResult status = RunCommand({VigilPath(), "--agent", agent_->agent(), "status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  ExpectNothingAttached("after refused sessions");
}

// Every way a session ends detaches everything: duration reached, client
// cancelled (Ctrl-C), agent stopping.
TEST_F(ProbeE2E, DetachedOnEveryEnd) {
  Child w({kPython, PythonScript(dir_), "getppid", "1"});
  ASSERT_TRUE(absl::StartsWith(w.Line(), "ready"));
  const std::string pid = std::to_string(w.pid());

  CommandResult d = RunCommand(
      Vigil({"--pid", pid, "libc:getppid", "--latency", "--stacks", "--duration", "1s", "--json"}));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  v1::ProbeReport r;
  ASSERT_TRUE(ParseReport(d.out, &r)) << d.out;
  EXPECT_EQ(r.message(), "duration reached");
  ExpectNothingAttached("after duration reached");

  {
    std::vector<std::string> args = Vigil({"--pid", pid, "libc:getppid", "--stacks", "--json"});
    Child client(args);
    WaitSessionStarted(2);
    EXPECT_FALSE(ProgramsNow().probe_progs.empty()) << "the session attached nothing";
    client.Kill(SIGINT);
    std::string out = client.Rest();
    EXPECT_EQ(client.Reap(), 0);
    ASSERT_TRUE(ParseReport(out, &r)) << out;
    EXPECT_EQ(r.message(), "interrupted");
    for (int i = 0; i < 50 && !absl::StrContains(agent_->CurrentLog(), "client cancelled"); ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_TRUE(absl::StrContains(agent_->CurrentLog(), "client cancelled"))
        << agent_->CurrentLog();
    ExpectNothingAttached("after the client cancelled");
  }

  {
    std::vector<std::string> args = Vigil({"--pid", pid, "libc:getppid", "--json"});
    Child client(args);
    WaitSessionStarted(3);
    std::set<uint32_t> ours;
    for (uint32_t id : ProgramsNow().profile_probe_ids) {
      if (!before_.count(id)) ours.insert(id);
    }
    EXPECT_FALSE(ours.empty()) << "our vigild's vigil_profile_probe not found";
    agent_->Stop();
    std::string out = client.Rest();
    client.Reap();
    ASSERT_TRUE(ParseReport(out, &r)) << out;
    EXPECT_EQ(r.message(), "agent stopping");
    EXPECT_TRUE(r.ended());
    Ours o = ProgramsNow();
    EXPECT_TRUE(o.probe_progs.empty());
    for (uint32_t id : ours) {
      EXPECT_EQ(o.profile_probe_ids.count(id), 0u) << "the profiler's program outlived vigild";
    }
  }
}

// --stacks needs the profiler's unwinder: without it, one clear line.
TEST(ProbeE2ENoProfiler, StacksRefusedWithReason) {
  VIGIL_REQUIRE_BPF();
  ScopedVigild agent({"--allow-probe", "--profile", "off"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  CommandResult r = RunCommand({VigilPath(), "--agent", agent.agent(), "probe", "--pid",
                                std::to_string(getpid()), "libc:getppid", "--stacks"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "profile capability is off")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // A query of the profiler's store says so too, and why.
  r = RunCommand({VigilPath(), "--agent", agent.agent(), "hot"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(
      r.err, "the profile capability is off on this agent: disabled (vigild --profile off)"))
      << r.err;
  // Without --stacks the same request is served.
  r = RunCommand({VigilPath(), "--agent", agent.agent(), "probe", "--pid", std::to_string(getpid()),
                  "libc:getppid", "--duration", "300ms", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// Off unless --allow-probe.
TEST(ProbeE2EOff, RefusedWithoutAllowProbe) {
  VIGIL_REQUIRE_BPF();
  ScopedVigild agent;
  ASSERT_TRUE(agent.ok()) << agent.log();
  CommandResult r = RunCommand({VigilPath(), "--agent", agent.agent(), "probe", "--pid",
                                std::to_string(getpid()), "libc:getppid"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "--allow-probe")) << r.err;
}

}  // namespace
}  // namespace vigil::test
