// The profiler end to end: vigild sampling real workloads, answered through
// the vigil CLI (--json, pprof, folded, flame graph), checked against the
// CPU time the workload measured itself, go tool pprof, and headless
// Chromium. Skips with the reason when BPF is not allowed.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
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

constexpr char kMainFn[] = "vigil_test::SpinInMain(unsigned long)";
constexpr char kLibFn[] = "vigil_test::SpinInLibrary(unsigned long)";

struct SpinRun {
  uint32_t pid = 0;
  uint64_t main_ns = 0, lib_ns = 0;
  absl::Time started, exited;
};

SpinRun RunSpin(const std::string& seconds) {
  SpinRun r;
  r.started = absl::Now();
  CommandResult c = RunCommand({test::ProfileWorkloadPath(), "spin", seconds});
  r.exited = absl::Now();
  EXPECT_EQ(c.exit_code, 0) << c.err;
  for (absl::string_view line : absl::StrSplit(c.out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() == 2 && f[0] == "pid") {
      EXPECT_TRUE(absl::SimpleAtoi(f[1], &r.pid));
    }
    if (f.size() >= 4 && f[0] == "main_ns") {
      EXPECT_TRUE(absl::SimpleAtoi(f[1], &r.main_ns));
      EXPECT_TRUE(absl::SimpleAtoi(f[3], &r.lib_ns));
    }
  }
  return r;
}

std::string Canonical(const std::string& p) {
  std::error_code ec;
  return std::filesystem::canonical(p, ec).string();
}

const v1::HotFunction* FindFn(const v1::HotResponse& r, const std::string& name) {
  for (const auto& f : r.functions()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

class ProfileE2ETest : public ::testing::Test {
 protected:
  // One agent and one 75/25 run shared by the suite: the workload takes
  // seconds of CPU, and every test reads the same interval range.
  static void SetUpTestSuite() {
    skip_reason_ = new std::string(test::BpfUnavailableReason());
    if (!skip_reason_->empty()) return;
    metrics_port_ = test::FreeLoopbackPort();
    agent_ =
        new test::ScopedVigild({"--interval", "250ms", "--sample-hz", "499", "--metrics-listen",
                                absl::StrCat("127.0.0.1:", metrics_port_)});
    if (!agent_->ok()) return;
    spin_ = new SpinRun(RunSpin("4"));
  }
  static void TearDownTestSuite() {
    delete spin_;
    spin_ = nullptr;
    if (agent_ != nullptr && agent_->ok()) {
      // The agent names its programs; after it stops none may remain. By id,
      // so another vigild on the host does not matter.
      std::vector<uint32_t> ids;
      CommandResult st =
          RunCommand({test::VigilPath(), "status", "--json", "--agent", agent_->agent()});
      v1::StatusResponse status;
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(st.out, &status).ok()) << st.out;
      for (uint32_t id : status.profiler().program_ids()) ids.push_back(id);
      EXPECT_FALSE(ids.empty()) << st.out;
      const int code = agent_->Stop();
      EXPECT_EQ(code, 0) << agent_->log();
      for (uint32_t id : ids) {
        CommandResult c;
        for (int tries = 0; tries < 50; ++tries) {  // freed from a work queue
          c = RunCommand({"bpftool", "prog", "show", "id", std::to_string(id)});
          if (c.exit_code != 0) break;
          absl::SleepFor(absl::Milliseconds(20));
        }
        EXPECT_NE(c.exit_code, 0) << "program " << id << " still loaded: " << c.out;
      }
    }
    delete agent_;
    agent_ = nullptr;
    delete skip_reason_;
    skip_reason_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_->empty()) VIGIL_SKIP_OR_FAIL("BPF not permitted here: " + *skip_reason_);
    ASSERT_TRUE(agent_->ok()) << agent_->log();
    ASSERT_NE(spin_->pid, 0u);
  }

  std::vector<std::string> Vigil(std::vector<std::string> args) {
    std::vector<std::string> argv = {test::VigilPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--agent");
    argv.push_back(agent_->agent());
    return argv;
  }

  // `vigil hot ... --json`, asked again until the agent has collected the
  // interval in which `after` falls (the agent publishes once per interval).
  v1::HotResponse HotAfter(std::vector<std::string> args, absl::Time after) {
    args.insert(args.begin(), "hot");
    args.push_back("--json");
    v1::HotResponse r;
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    do {
      CommandResult c = RunCommand(Vigil(args));
      EXPECT_EQ(c.exit_code, 0) << c.err;
      if (c.exit_code != 0) return r;
      r.Clear();
      auto st = google::protobuf::util::JsonStringToMessage(c.out, &r);
      EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << c.out;
      if (r.covered().end_unix_ns() > absl::ToUnixNanos(after)) return r;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < deadline);
    ADD_FAILURE() << "the agent never covered " << after;
    return r;
  }

  // `go tool pprof ARGS...` with its cache and $HOME in `dir`.
  static CommandResult GoPprof(const test::TempDir& dir, std::vector<std::string> args) {
    setenv("GOCACHE", (dir.path() + "/gocache").c_str(), 1);
    setenv("HOME", dir.path().c_str(), 1);
    setenv("PPROF_TMPDIR", dir.path().c_str(), 1);
    args.insert(args.begin(), {"go", "tool", "pprof"});
    return RunCommand(args, absl::Seconds(120));
  }

  static std::string* skip_reason_;
  static test::ScopedVigild* agent_;
  static SpinRun* spin_;
  static int metrics_port_;
};

// The function names of `go tool pprof -top`, hottest first: rows are
// "flat flat% sum% cum cum% name".
std::vector<std::string> PprofTopNames(const std::string& out) {
  std::vector<std::string> names;
  bool in_table = false;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    if (absl::StrContains(line, "flat%")) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() >= 6) names.push_back(f[5]);
  }
  return names;
}

std::string* ProfileE2ETest::skip_reason_ = nullptr;
test::ScopedVigild* ProfileE2ETest::agent_ = nullptr;
SpinRun* ProfileE2ETest::spin_ = nullptr;
int ProfileE2ETest::metrics_port_ = 0;

TEST_F(ProfileE2ETest, HotAttributesTheSplitWithExactNamesAndModules) {
  v1::HotResponse r = HotAfter({"--pid", std::to_string(spin_->pid), "--user-only"}, spin_->exited);
  const v1::HotFunction* m = FindFn(r, kMainFn);
  const v1::HotFunction* l = FindFn(r, kLibFn);
  ASSERT_NE(m, nullptr) << absl::StrJoin(r.functions(), "\n", [](std::string* o, const auto& f) {
    absl::StrAppend(o, f.name(), " ", f.module());
  });
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(m->module(), Canonical(test::ProfileWorkloadPath()));
  EXPECT_EQ(l->module(), Canonical(test::ProfileLibPath()));
  EXPECT_FALSE(m->kernel());
  // The two burners are nearly all of the process's samples...
  ASSERT_GT(r.samples(), 500u) << "too few samples to judge a split";
  EXPECT_GT(m->self_pct() + l->self_pct(), 90.0);
  // ...and split them as the workload measured with its own CPU clock.
  const double truth = 100.0 * static_cast<double>(spin_->main_ns) /
                       static_cast<double>(spin_->main_ns + spin_->lib_ns);
  const double seen = 100.0 * static_cast<double>(m->self_samples()) /
                      static_cast<double>(m->self_samples() + l->self_samples());
  EXPECT_NEAR(seen, truth, 5.0) << "main " << spin_->main_ns << " ns, lib " << spin_->lib_ns
                                << " ns";
  EXPECT_NEAR(truth, 75.0, 5.0);  // the workload did what it promised
  // Their caller is on every one of their stacks (total >= its children),
  // except samples taken before the agent read the process's new mappings
  // (after its exec, and after it dlopen()s the library: up to ~100 ms
  // each): those stop at the leaf and are counted as truncated.
  const v1::HotFunction* caller = FindFn(r, "(anonymous namespace)::Spin(double, int)");
  if (caller == nullptr) caller = FindFn(r, "main");
  ASSERT_NE(caller, nullptr);
  EXPECT_GE(caller->total_samples() + r.truncated_samples(), m->self_samples() + l->self_samples());
  // How long those first moments last depends on how busy the host is (the
  // agent's loader shares the CPUs), so the bar is on what follows them:
  // from 1.5 s after the start, whole intervals, almost nothing truncated.
  const absl::Time now = absl::Now();
  v1::HotResponse later =
      HotAfter({"--pid", std::to_string(spin_->pid), "--user-only", "--since",
                absl::StrCat(absl::ToInt64Milliseconds(now - spin_->started) - 1500, "ms"),
                "--until", absl::StrCat(absl::ToInt64Milliseconds(now - spin_->exited), "ms")},
               spin_->exited);
  printf("truncated: %lu of %lu samples in all, %lu of %lu after the first 1.5 s\n",
         static_cast<unsigned long>(r.truncated_samples()), static_cast<unsigned long>(r.samples()),
         static_cast<unsigned long>(later.truncated_samples()),
         static_cast<unsigned long>(later.samples()));
  ASSERT_GT(later.samples(), 500u);
  EXPECT_LE(later.truncated_samples(), later.samples() / 100) << "truncated past the first moments";
}

TEST_F(ProfileE2ETest, ExitedProcessStillHasNamedFrames) {
  // The suite's workload exited before any query; a second, shorter one
  // exits too, and is asked about only once its pid is gone.
  SpinRun short_run = RunSpin("1.5");
  ASSERT_NE(short_run.pid, 0u);
  ASSERT_NE(kill(static_cast<pid_t>(short_run.pid), 0), 0) << "still running?";
  v1::HotResponse r = HotAfter({"--pid", std::to_string(short_run.pid)},
                               short_run.exited + absl::Milliseconds(300));
  ASSERT_GT(r.samples(), 0u);
  ASSERT_GT(r.functions_size(), 0);
  EXPECT_EQ(r.functions(0).name(), kMainFn);
  EXPECT_NE(FindFn(r, kLibFn), nullptr);
}

TEST_F(ProfileE2ETest, SyscallHeavyWorkloadShowsNamedKernelFrames) {
  CommandResult c = RunCommand({test::ProfileWorkloadPath(), "syscalls", "1.5"});
  const absl::Time exited = absl::Now();
  ASSERT_EQ(c.exit_code, 0) << c.err;
  uint32_t pid = 0;
  ASSERT_TRUE(
      absl::SimpleAtoi(absl::StripPrefix(absl::StripTrailingAsciiWhitespace(c.out), "pid "), &pid))
      << c.out;
  v1::HotResponse r =
      HotAfter({"--pid", std::to_string(pid), "--kernel-only", "--top", "50"}, exited);
  ASSERT_GT(r.samples(), 0u);
  bool syscall_path = false;
  for (const auto& f : r.functions()) {
    EXPECT_TRUE(f.kernel()) << f.name();
    EXPECT_FALSE(absl::StrContains(f.name(), "+0x")) << "unnamed kernel frame " << f.name();
    if (absl::StartsWith(f.name(), "__x64_sys_") || f.name() == "do_syscall_64" ||
        absl::StartsWith(f.name(), "entry_SYSCALL")) {
      syscall_path = true;
      EXPECT_EQ(f.module(), "[kernel]");
    }
  }
  EXPECT_TRUE(syscall_path) << "no syscall entry frames among " << r.functions_size();
}

TEST_F(ProfileE2ETest, JitCodeIsNamedFromPerfMap) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "the JIT workload emits x86-64 code";
#endif
  CommandResult c = RunCommand({test::ProfileWorkloadPath(), "jit", "1.5"});
  const absl::Time exited = absl::Now();
  ASSERT_EQ(c.exit_code, 0) << c.err;
  uint32_t pid = 0;
  ASSERT_TRUE(
      absl::SimpleAtoi(absl::StripPrefix(absl::StripTrailingAsciiWhitespace(c.out), "pid "), &pid))
      << c.out;
  const std::string map = absl::StrCat("/tmp/perf-", pid, ".map");
  v1::HotResponse r = HotAfter({"--pid", std::to_string(pid), "--user-only"}, exited);
  // Its callers: anonymous code has no CFI, so the walk steps out of it
  // with frame pointers and goes on with CFI to _start. This JIT leaf is a
  // 3-instruction loop that pushes no frame, so the step through rbp lands
  // in Jit()'s caller's caller: main (where Jit() is inlined) is lost, as
  // with perf -g. Real JITs (V8; HotSpot with -XX:+PreserveFramePointer)
  // push frames, and then their callers are kept. Every JIT stack must
  // still reach _start through libc's start code.
  CommandResult f = RunCommand(Vigil(
      {"profile", "--pid", std::to_string(pid), "--user-only", "--format", "folded", "-o", "-"}));
  unlink(map.c_str());
  ASSERT_EQ(f.exit_code, 0) << f.err;
  uint64_t jit = 0, rooted = 0;
  for (absl::string_view line : absl::StrSplit(f.out, '\n', absl::SkipEmpty())) {
    const size_t sp = line.rfind(' ');
    uint64_t n = 0;
    if (sp == absl::string_view::npos || !absl::SimpleAtoi(line.substr(sp + 1), &n)) continue;
    const absl::string_view stack = line.substr(0, sp);
    if (!absl::EndsWith(stack, ";vigil_jit_spin")) continue;
    jit += n;
    if (absl::StartsWith(stack, "_start;__libc_start_main;__libc_start_call_main;")) rooted += n;
  }
  printf("JIT stacks: %lu samples, %lu reach _start\n", static_cast<unsigned long>(jit),
         static_cast<unsigned long>(rooted));
  ASSERT_GT(jit, 100u) << f.out;
  EXPECT_GE(rooted, jit * 95 / 100) << f.out.substr(0, 3000);
  ASSERT_GT(r.functions_size(), 0);
  EXPECT_EQ(r.functions(0).name(), "vigil_jit_spin");
  EXPECT_EQ(r.functions(0).module(), map);
  EXPECT_GT(r.functions(0).self_pct(), 80.0);
}

TEST_F(ProfileE2ETest, StrippedBinaryIsNamedFromItsDebugFile) {
  for (const char* tool : {"objcopy", "strip"}) {
    if (RunCommand({"sh", "-c", absl::StrCat("command -v ", tool)}).exit_code != 0) {
      VIGIL_SKIP_OR_FAIL(std::string(tool) + " (binutils) is not installed");
    }
  }
  // A stripped copy of the workload whose symbols live only in a separate
  // debug file, found through .gnu_debuglink next to it.
  test::TempDir dir;
  const std::string bin = dir.path() + "/stripped_workload";
  const std::string dbg = dir.path() + "/stripped_workload.debug";
  ASSERT_EQ(
      RunCommand({"objcopy", "--only-keep-debug", test::ProfileWorkloadPath(), dbg}).exit_code, 0);
  ASSERT_EQ(RunCommand({"strip", "--strip-all", "-o", bin, test::ProfileWorkloadPath()}).exit_code,
            0);
  CommandResult link = RunCommand({"objcopy", "--add-gnu-debuglink=" + dbg, bin});
  ASSERT_EQ(link.exit_code, 0) << link.err;
  CommandResult nm = RunCommand({"nm", bin});
  ASSERT_FALSE(absl::StrContains(nm.out, "SpinInMain")) << "not stripped";
  // The library is found through the build tree's rpath of the original;
  // a copy elsewhere needs LD_LIBRARY_PATH.
  const std::string libdir = std::filesystem::path(test::ProfileLibPath()).parent_path().string();
  CommandResult c = RunCommand({"env", "LD_LIBRARY_PATH=" + libdir, bin, "spin", "1.5"});
  const absl::Time exited = absl::Now();
  ASSERT_EQ(c.exit_code, 0) << c.err;
  uint32_t pid = 0;
  for (absl::string_view line : absl::StrSplit(c.out, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "pid ")) {
      ASSERT_TRUE(absl::SimpleAtoi(line, &pid));
    }
  }
  ASSERT_NE(pid, 0u);
  v1::HotResponse r = HotAfter({"--pid", std::to_string(pid), "--user-only"}, exited);
  const v1::HotFunction* m = FindFn(r, kMainFn);
  ASSERT_NE(m, nullptr) << "top: " << (r.functions_size() ? r.functions(0).name() : "none");
  EXPECT_EQ(m->module(), Canonical(bin));
}

TEST_F(ProfileE2ETest, PprofExportReadsBackInGoToolPprof) {
  if (RunCommand({"go", "version"}).exit_code != 0) {
    VIGIL_SKIP_OR_FAIL("go (Debian golang-go) is not installed: deploy/install-deps.sh --test");
  }
  HotAfter({"--pid", std::to_string(spin_->pid)}, spin_->exited);
  test::TempDir dir;
  const std::string out = dir.path() + "/cpu.pb.gz";
  CommandResult c = RunCommand(
      Vigil({"profile", "--pid", std::to_string(spin_->pid), "--format", "pprof", "-o", out}));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  CommandResult top = GoPprof(dir, {"-top", out});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  // The first two rows are ours.
  const std::vector<std::string> names = PprofTopNames(top.out);
  ASSERT_GE(names.size(), 2u) << top.out;
  // pprof drops the parameter list when it shortens C++ names.
  EXPECT_EQ(names[0], "vigil_test::SpinInMain") << top.out;
  EXPECT_EQ(names[1], "vigil_test::SpinInLibrary") << top.out;
}

// What Parca, Pyroscope (through Alloy) and `go tool pprof URL` read: Go's
// /debug/pprof/profile, answered from the window.
TEST_F(ProfileE2ETest, PprofOverHttpIsReadByGoToolPprofWithLabels) {
  if (RunCommand({"go", "version"}).exit_code != 0) {
    VIGIL_SKIP_OR_FAIL("go (Debian golang-go) is not installed: deploy/install-deps.sh --test");
  }
  HotAfter({"--pid", std::to_string(spin_->pid)}, spin_->exited);
  // The last N seconds, N reaching back before the workload started.
  const int64_t seconds = absl::ToInt64Seconds(absl::Now() - spin_->started) + 2;
  const std::string url =
      absl::StrCat("http://127.0.0.1:", metrics_port_, "/debug/pprof/profile?seconds=", seconds,
                   "&pid=", spin_->pid);
  test::TempDir dir;
  const absl::Time asked = absl::Now();
  CommandResult top = GoPprof(dir, {"-top", url});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  // Answered at once, not after N seconds as Go's handler would.
  EXPECT_LT(absl::Now() - asked, absl::Seconds(seconds)) << top.err;
  const std::vector<std::string> names = PprofTopNames(top.out);
  ASSERT_GE(names.size(), 2u) << top.out;
  EXPECT_EQ(names[0], "vigil_test::SpinInMain") << top.out;
  EXPECT_EQ(names[1], "vigil_test::SpinInLibrary") << top.out;

  // Every sample carries the labels profile stores turn into series; with
  // ?pid= only that process's.
  CommandResult tags = GoPprof(dir, {"-tags", url});
  ASSERT_EQ(tags.exit_code, 0) << tags.err;
  const std::string pid = std::to_string(spin_->pid);
  EXPECT_TRUE(absl::StrContains(tags.out, "(  100%): " + pid)) << tags.out;
  for (const char* label : {" pid: ", " tid: ", " comm: ", " process_comm: "}) {
    EXPECT_TRUE(absl::StrContains(tags.out, label)) << label << "\n" << tags.out;
  }
}

TEST_F(ProfileE2ETest, PprofOverHttpRefusesBadQueriesWithOneLine) {
  httplib::Client c("127.0.0.1", metrics_port_);
  c.set_connection_timeout(2, 0);
  for (const char* q :
       {"seconds=0", "seconds=-5", "seconds=ten", "seconds=1e3", "seconds=86400",
        "seconds=5&seconds=6", "pid=0", "pid=x", "tid=99999999999", "comm=(", "frames=user"}) {
    auto res = c.Get(absl::StrCat("/debug/pprof/profile?", q));
    ASSERT_TRUE(res) << q;
    EXPECT_EQ(res->status, 400) << q << ": " << res->body;
    EXPECT_EQ(std::count(res->body.begin(), res->body.end(), '\n'), 1) << q << ": " << res->body;
  }
  auto heap = c.Get("/debug/pprof/heap");
  ASSERT_TRUE(heap);
  EXPECT_EQ(heap->status, 404) << heap->body;
  auto index = c.Get("/debug/pprof/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_TRUE(absl::StrContains(index->body, "<a href=\"profile?seconds=30\">")) << index->body;
  // /metrics is unchanged beside it.
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_TRUE(absl::StrContains(metrics->body, "vigil_profile_samples_total")) << metrics->body;
}

TEST_F(ProfileE2ETest, FoldedCountsMatchHot) {
  v1::HotResponse hot =
      HotAfter({"--pid", std::to_string(spin_->pid), "--user-only"}, spin_->exited);
  CommandResult c = RunCommand(Vigil({"profile", "--pid", std::to_string(spin_->pid), "--user-only",
                                      "--format", "folded", "-o", "-"}));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  uint64_t main_leaf = 0, total = 0;
  for (absl::string_view line : absl::StrSplit(c.out, '\n', absl::SkipEmpty())) {
    const size_t sp = line.rfind(' ');
    ASSERT_NE(sp, absl::string_view::npos) << line;
    uint64_t n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(line.substr(sp + 1), &n)) << line;
    total += n;
    if (absl::EndsWith(line.substr(0, sp), kMainFn)) main_leaf += n;
  }
  EXPECT_EQ(total, hot.samples());
  ASSERT_NE(FindFn(hot, kMainFn), nullptr);
  EXPECT_EQ(main_leaf, FindFn(hot, kMainFn)->self_samples());
}

TEST_F(ProfileE2ETest, FlameGraphOpensInHeadlessChromium) {
  std::string chromium;
  for (const char* b : {"chromium", "chromium-browser"}) {
    if (RunCommand({"sh", "-c", absl::StrCat("command -v ", b)}).exit_code == 0) chromium = b;
  }
  if (chromium.empty())
    VIGIL_SKIP_OR_FAIL("chromium is not installed: deploy/install-deps.sh --test");
  HotAfter({"--pid", std::to_string(spin_->pid)}, spin_->exited);
  test::TempDir dir;
  const std::string html = dir.path() + "/flame.html";
  CommandResult c =
      RunCommand(Vigil({"flamegraph", "--pid", std::to_string(spin_->pid), "-o", html}));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  CommandResult svg = RunCommand(
      Vigil({"flamegraph", "--pid", std::to_string(spin_->pid), "-o", dir.path() + "/flame.svg"}));
  ASSERT_EQ(svg.exit_code, 0) << svg.err;
  CommandResult dom = RunCommand(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
       "--disable-component-update", "--disable-sync", "--no-first-run",
       "--user-data-dir=" + dir.path() + "/profile", "--dump-dom", "file://" + html},
      absl::Seconds(120));
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  // The script ran (it marks the page) and the frames are in the DOM.
  EXPECT_TRUE(absl::StrContains(dom.out, "data-ready=\"")) << dom.out.substr(0, 2000);
  EXPECT_FALSE(absl::StrContains(dom.out, "data-ready=\"0\""));
  EXPECT_TRUE(absl::StrContains(dom.out, absl::StrCat("<title>", kMainFn, " (")))
      << dom.out.substr(0, 2000);
  EXPECT_TRUE(absl::StrContains(dom.out, absl::StrCat("<title>", kLibFn, " (")));
}

TEST_F(ProfileE2ETest, BadFiltersAndRangesAreClearErrors) {
  const std::vector<std::vector<std::string>> cases = {
      {"hot", "--comm", "(unclosed"},
      {"hot", "--pid", "abc"},
      {"hot", "--tid", "0"},
      {"hot", "--top", "0"},
      {"hot", "--top", "10001"},
      {"hot", "--since", "yesterday"},
      {"hot", "--since", "1m", "--until", "2m"},
      {"hot", "--until", "1m"},
      {"hot", "--user-only", "--kernel-only"},
      {"hot", "--since", "2h"},  // beyond the agent's 10m window: agent says no
      {"profile", "--format", "xml", "-o", "/tmp/x"},
      {"profile", "--format", "pprof"},
      {"profile", "-o", "/tmp/x"},
      {"profile", "--format", "pprof", "-o", "-"},
      {"flamegraph", "-o", "/tmp/x.png"},
      {"flamegraph"},
      {"flamegraph", "--since", "2h", "-o", "/tmp/x.svg"},
  };
  for (const auto& args : cases) {
    CommandResult c = RunCommand(Vigil(args));
    const std::string joined = absl::StrJoin(args, " ");
    EXPECT_EQ(c.exit_code, 2) << joined << "\n" << c.err;
    const std::string err(absl::StripTrailingAsciiWhitespace(c.err));
    EXPECT_FALSE(err.empty()) << joined;
    EXPECT_EQ(err.find('\n'), std::string::npos) << joined << ": " << c.err;
  }
  // gRPC callers get INVALID_ARGUMENT from the agent itself.
  auto stub =
      v1::Vigil::NewStub(grpc::CreateChannel(agent_->agent(), grpc::InsecureChannelCredentials()));
  std::vector<v1::HotRequest> bad(4);
  bad[0].set_comm_regex("([");
  bad[1].set_top(1000000);
  bad[2].set_frames(static_cast<v1::FrameFilter>(9));
  bad[3].mutable_range()->set_since_ago_ns(int64_t{3600} * 1000000000);
  for (const v1::HotRequest& req : bad) {
    grpc::ClientContext ctx;
    v1::HotResponse resp;
    grpc::Status s = stub->GetHot(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << req.ShortDebugString();
    EXPECT_EQ(s.error_message().find('\n'), std::string::npos);
  }
  v1::ProfileRequest pr;
  pr.mutable_range()->set_since_ago_ns(-1);
  grpc::ClientContext ctx;
  v1::ProfileResponse presp;
  EXPECT_EQ(stub->GetProfile(&ctx, pr, &presp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(VigildProfileFlagsTest, BadSampleRateExitsTwo) {
  for (const char* hz : {"0", "1001", "fast"}) {
    CommandResult c = RunCommand({test::VigildPath(), "--sample-hz", hz});
    EXPECT_EQ(c.exit_code, 2) << hz << ": " << c.err;
    EXPECT_TRUE(absl::StrContains(c.err, "--sample-hz")) << c.err;
  }
  CommandResult c = RunCommand({test::VigildPath(), "--profile", "maybe"});
  EXPECT_EQ(c.exit_code, 2) << c.err;
}

}  // namespace
}  // namespace vigil
