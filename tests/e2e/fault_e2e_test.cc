// Page-fault sampling end to end: vigild at its default
// --profile-fault-period (64) against a workload that first-touches 256 MiB,
// page by page, in TouchPages() (-O2 -fomit-frame-pointer), answered through
// the vigil CLI (hot and profile --kind memory, --json, folded, pprof, flame
// graph). Ground truth is the kernel's own count of the process's minor
// faults (/proc/PID/stat, minflt) over the same window.
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
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
#include "tests/test_util.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {
namespace {

using test::CommandResult;
using test::RunCommand;

constexpr uint64_t kMiB = 256;
constexpr uint64_t kPages = kMiB * 256;  // 4 KiB pages
constexpr char kSeconds[] = "4";
constexpr uint32_t kDefaultPeriod = 64;

// minflt of a process (field 10 of /proc/PID/stat), or -1.
int64_t Minflt(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string stat = ss.str();
  // The name (field 2) may hold spaces: count from the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> f3 = absl::StrSplit(stat.substr(close + 2), ' ');
  int64_t v = -1;
  if (f3.size() < 8 || !absl::SimpleAtoi(f3[7], &v)) return -1;
  return v;
}

// One line from fd (without the newline), waiting at most `timeout`.
bool ReadLine(int fd, std::string* line, absl::Duration timeout) {
  line->clear();
  const absl::Time deadline = absl::Now() + timeout;
  char c;
  for (;;) {
    pollfd p = {fd, POLLIN, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0 || poll(&p, 1, ms) <= 0) return false;
    if (read(fd, &c, 1) != 1) return false;
    if (c == '\n') return true;
    line->push_back(c);
  }
}

// One run of the workload: its pid, the pages it touched, the minor faults
// the kernel counted for it from just before the first touch to just after
// the last, and when that window began and ended.
struct TouchRun {
  pid_t pid = 0;
  uint64_t pages = 0;
  int64_t minflt = -1;
  absl::Time t0, t1;
  std::string error;
};

TouchRun RunTouch() {
  TouchRun r;
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    r.error = "pipe failed";
    return r;
  }
  const std::string bin = VIGIL_TEST_FAULT_WORKLOAD;
  const std::string mib = std::to_string(kMiB);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    execl(bin.c_str(), bin.c_str(), mib.c_str(), kSeconds, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  std::string line;
  if (!ReadLine(out[0], &line, absl::Seconds(10)) || !absl::StartsWith(line, "pid ")) {
    r.error = "no pid line: " + line;
  } else {
    r.pid = pid;
    // Its exec asked the agent for its mappings at once; a second is ample
    // for them to be loaded, so the faults below unwind completely.
    absl::SleepFor(absl::Milliseconds(1500));
    const int64_t before = Minflt(pid);
    r.t0 = absl::Now();
    if (write(in[1], "go\n", 3) != 3) r.error = "write failed";
    if (!ReadLine(out[0], &line, absl::Seconds(60)) ||
        !absl::SimpleAtoi(absl::StripPrefix(line, "done "), &r.pages)) {
      r.error = "no done line: " + line;
    }
    r.t1 = absl::Now();
    const int64_t after = Minflt(pid);
    if (before >= 0 && after >= before) r.minflt = after - before;
  }
  close(in[1]);  // the workload exits at EOF
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return r;
}

class FaultE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = new std::string(test::BpfUnavailableReason());
    if (!skip_reason_->empty()) return;
    // The default fault period, as users run it.
    agent_ = new test::ScopedVigild({"--interval", "250ms", "--spin", "off"});
    if (!agent_->ok()) return;
    run_ = new TouchRun(RunTouch());
  }
  static void TearDownTestSuite() {
    delete run_;
    run_ = nullptr;
    delete agent_;
    agent_ = nullptr;
    delete skip_reason_;
    skip_reason_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_->empty()) VIGIL_SKIP_OR_FAIL("BPF not permitted here: " + *skip_reason_);
    ASSERT_TRUE(agent_->ok()) << agent_->log();
    ASSERT_TRUE(run_->error.empty()) << run_->error;
  }

  std::vector<std::string> Vigil(std::vector<std::string> args) {
    std::vector<std::string> argv = {test::VigilPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--agent");
    argv.push_back(agent_->agent());
    return argv;
  }

  // --since/--until selecting the intervals that overlap the run's window
  // (the workload blocks on stdin outside it: it faults nowhere else).
  std::vector<std::string> Window() const {
    const absl::Time now = absl::Now();
    return {
        "--since", absl::StrCat(absl::ToInt64Milliseconds(now - run_->t0) + 1, "ms"), "--until",
        absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(now - run_->t1) - 1), "ms")};
  }

  // `vigil hot --kind memory --pid P --json` over the window, asked until the
  // agent has collected the interval holding its end.
  v1::HotResponse Hot(std::vector<std::string> extra = {}) {
    v1::HotResponse r;
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    do {
      std::vector<std::string> args = {
          "hot", "--kind", "memory", "--pid", std::to_string(run_->pid), "--json", "--top", "50"};
      args.insert(args.end(), extra.begin(), extra.end());
      for (const std::string& w : Window()) args.push_back(w);
      CommandResult c = RunCommand(Vigil(args));
      EXPECT_EQ(c.exit_code, 0) << c.err;
      if (c.exit_code != 0) return r;
      r.Clear();
      auto st = google::protobuf::util::JsonStringToMessage(c.out, &r);
      EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << c.out;
      if (r.covered().end_unix_ns() > absl::ToUnixNanos(run_->t1)) return r;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < deadline);
    ADD_FAILURE() << "the agent never covered the run's end";
    return r;
  }

  static std::string* skip_reason_;
  static test::ScopedVigild* agent_;
  static TouchRun* run_;
};

std::string* FaultE2ETest::skip_reason_ = nullptr;
test::ScopedVigild* FaultE2ETest::agent_ = nullptr;
TouchRun* FaultE2ETest::run_ = nullptr;

const v1::HotFunction* FindPrefix(const v1::HotResponse& r, const std::string& prefix) {
  for (const auto& f : r.functions()) {
    if (absl::StartsWith(f.name(), prefix)) return &f;
  }
  return nullptr;
}

std::string Table(const v1::HotResponse& r) {
  return absl::StrJoin(r.functions(), "\n", [](std::string* o, const v1::HotFunction& f) {
    absl::StrAppend(o, f.self_samples(), " ", f.total_samples(), " ", f.name(), " ", f.module());
  });
}

TEST_F(FaultE2ETest, FaultCountMatchesTheKernelsMinorFaults) {
  // The workload did what it promised: one minor fault per page, no more
  // (no huge pages, nothing else faulting in the window).
  ASSERT_EQ(run_->pages, kPages);
  ASSERT_GE(run_->minflt, static_cast<int64_t>(kPages)) << "pages were not really touched";
  ASSERT_LE(run_->minflt, static_cast<int64_t>(kPages * 102 / 100)) << "faults beyond the pages";

  const v1::HotResponse r = Hot();
  EXPECT_EQ(r.kind(), v1::PROFILE_KIND_MEMORY);
  ASSERT_EQ(r.fault_period(), kDefaultPeriod);
  const uint64_t faults = r.samples() * r.fault_period();
  EXPECT_EQ(r.fault_bytes(), faults * 4096);
  const double err = (static_cast<double>(faults) - static_cast<double>(run_->minflt)) /
                     static_cast<double>(run_->minflt);
  // Printed on success too: the report quotes it.
  printf("minflt delta %lld, vigil %llu samples x %u = %llu faults (%+.2f%%), %llu bytes\n",
         static_cast<long long>(run_->minflt), static_cast<unsigned long long>(r.samples()),
         r.fault_period(), static_cast<unsigned long long>(faults), 100 * err,
         static_cast<unsigned long long>(r.fault_bytes()));
  EXPECT_LE(std::abs(err), 0.10) << "vigil " << faults << " faults, kernel " << run_->minflt;
  EXPECT_EQ(r.loss().map_full(), 0u);
}

TEST_F(FaultE2ETest, TouchPagesHoldsTheFaultBytes) {
  const v1::HotResponse r = Hot({"--user-only"});
  ASSERT_GT(r.fault_bytes(), 0u);
  const v1::HotFunction* t = FindPrefix(r, "TouchPages");
  ASSERT_NE(t, nullptr) << Table(r);
  EXPECT_FALSE(t->kernel());
  EXPECT_EQ(t->total_fault_bytes(), t->total_samples() * kDefaultPeriod * 4096);
  const double share =
      static_cast<double>(t->total_fault_bytes()) / static_cast<double>(r.fault_bytes());
  printf("TouchPages: %.2f%% of %llu fault bytes (self %.2f%%)\n", 100 * share,
         static_cast<unsigned long long>(r.fault_bytes()), t->self_pct());
  EXPECT_GE(share, 0.90) << Table(r);
  // It writes the pages itself: the fault's leaf is TouchPages.
  EXPECT_GE(t->self_pct(), 90.0) << Table(r);
}

TEST_F(FaultE2ETest, FaultStacksReachStart) {
  Hot();  // covered
  std::vector<std::string> args = {
      "profile",     "--kind",   "memory", "--pid", std::to_string(run_->pid),
      "--user-only", "--format", "folded", "-o",    "-"};
  for (const std::string& w : Window()) args.push_back(w);
  CommandResult c = RunCommand(Vigil(args));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  uint64_t total = 0, rooted = 0, through_main = 0;
  for (absl::string_view line : absl::StrSplit(c.out, '\n', absl::SkipEmpty())) {
    const size_t sp = line.rfind(' ');
    uint64_t n = 0;
    ASSERT_NE(sp, absl::string_view::npos) << line;
    ASSERT_TRUE(absl::SimpleAtoi(line.substr(sp + 1), &n)) << line;
    std::vector<std::string> frames = absl::StrSplit(line.substr(0, sp), ';');
    total += n;
    if (frames.front() == "_start") rooted += n;
    if (std::find(frames.begin(), frames.end(), "main") != frames.end() &&
        absl::StartsWith(frames.back(), "TouchPages")) {
      through_main += n;
    }
  }
  ASSERT_GT(total, 0u) << c.out;
  printf("fault stacks: %llu samples, %.2f%% reach _start, %.2f%% main;...;TouchPages\n",
         static_cast<unsigned long long>(total), 100.0 * rooted / total,
         100.0 * through_main / total);
  EXPECT_GE(rooted, total * 95 / 100) << c.out.substr(0, 4000);
  EXPECT_GE(through_main, total * 90 / 100) << c.out.substr(0, 4000);
}

TEST_F(FaultE2ETest, MemoryPprofReadsBackInGoToolPprof) {
  if (RunCommand({"go", "version"}).exit_code != 0) {
    VIGIL_SKIP_OR_FAIL("go (Debian golang-go) is not installed: deploy/install-deps.sh --test");
  }
  Hot();  // covered
  test::TempDir dir;
  const std::string out = dir.path() + "/mem.pb.gz";
  std::vector<std::string> args = {
      "profile",  "--kind", "memory", "--pid", std::to_string(run_->pid),
      "--format", "pprof",  "-o",     out};
  for (const std::string& w : Window()) args.push_back(w);
  CommandResult c = RunCommand(Vigil(args));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  setenv("GOCACHE", (dir.path() + "/gocache").c_str(), 1);
  setenv("HOME", dir.path().c_str(), 1);
  CommandResult top = RunCommand({"go", "tool", "pprof", "-top", out}, absl::Seconds(120));
  ASSERT_EQ(top.exit_code, 0) << top.err;
  // pprof shows the last sample type by default: bytes.
  EXPECT_TRUE(absl::StrContains(top.out, "Type: fault_bytes")) << top.out;
  std::vector<std::string> names;
  bool in_table = false;
  for (absl::string_view line : absl::StrSplit(top.out, '\n', absl::SkipEmpty())) {
    if (absl::StrContains(line, "flat%")) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    // "256MB 100% 100% 256MB 100% TouchPages(unsigned long, double)"
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() >= 6) names.push_back(absl::StrJoin(f.begin() + 5, f.end(), " "));
  }
  ASSERT_FALSE(names.empty()) << top.out;
  EXPECT_TRUE(absl::StartsWith(names[0], "TouchPages")) << top.out;
  // The faults type reads back too.
  CommandResult faults =
      RunCommand({"go", "tool", "pprof", "-top", "-sample_index=faults", out}, absl::Seconds(120));
  ASSERT_EQ(faults.exit_code, 0) << faults.err;
  EXPECT_TRUE(absl::StrContains(faults.out, "Type: faults")) << faults.out;
}

TEST_F(FaultE2ETest, MemoryFlameGraphNamesTouchPagesWithBytes) {
  Hot();  // covered
  test::TempDir dir;
  const std::string html = dir.path() + "/mem.html";
  std::vector<std::string> args = {
      "flamegraph", "--kind", "memory", "--pid", std::to_string(run_->pid), "-o", html};
  for (const std::string& w : Window()) args.push_back(w);
  CommandResult c = RunCommand(Vigil(args));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::ifstream f(html);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string page = ss.str();
  EXPECT_TRUE(absl::StrContains(page, "--kind memory")) << page.substr(0, 2000);
  const size_t at = page.find("<title>TouchPages");
  ASSERT_NE(at, std::string::npos) << page.substr(0, 2000);
  EXPECT_TRUE(absl::StrContains(page.substr(at, 300), "touched")) << page.substr(at, 300);
}

TEST_F(FaultE2ETest, StatusShowsThePeriodAndSamples) {
  CommandResult j = RunCommand(Vigil({"status", "--json"}));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  v1::StatusResponse s;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(j.out, &s).ok()) << j.out;
  EXPECT_EQ(s.profiler().fault_period(), kDefaultPeriod);
  EXPECT_GE(s.profiler().fault_samples(), kPages / kDefaultPeriod * 9 / 10);
  for (const auto& cap : s.capabilities()) {
    if (cap.name() == "profile") {
      EXPECT_EQ(cap.state(), v1::CAPABILITY_STATE_RUNNING) << cap.reason();
    }
  }
  CommandResult t = RunCommand(Vigil({"status"}));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_TRUE(absl::StrContains(t.out, "page faults: 1 sample per 64 faults")) << t.out;
}

// Page-fault records have a table and a cap of their own: a burst of them
// (60 processes starting and faulting, every fault sampled) fills that cap
// and is evicted, while every CPU interval stays.
TEST_F(FaultE2ETest, AFaultBurstDoesNotEvictCpuHistory) {
  test::ScopedVigild agent({"--interval", "250ms", "--spin", "off", "--profile-fault-period", "1",
                            "--profile-fault-store-max-records", "1000"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  const absl::Time started = absl::Now();
  const std::string burst = absl::StrCat("for i in $(seq 60); do echo go | ",
                                         VIGIL_TEST_FAULT_WORKLOAD, " 8 2 >/dev/null & done; wait");
  ASSERT_EQ(RunCommand({"sh", "-c", burst}, absl::Seconds(120)).exit_code, 0);
  absl::SleepFor(absl::Milliseconds(600));  // two more intervals stored
  CommandResult j = RunCommand({test::VigilPath(), "status", "--json", "--agent", agent.agent()});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  v1::StatusResponse s;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(j.out, &s).ok()) << j.out;
  const v1::ProfilerStatus& p = s.profiler();
  printf("fault records retained %lu, dropped %lu; cpu intervals %u, records %lu, dropped %lu\n",
         static_cast<unsigned long>(p.fault_records_retained()),
         static_cast<unsigned long>(p.fault_store_dropped()), p.intervals_retained(),
         static_cast<unsigned long>(p.records_retained()),
         static_cast<unsigned long>(p.loss().store_dropped()));
  // (The newest interval is kept whole, so what is retained may pass the
  // cap by one interval's records.)
  EXPECT_GT(p.fault_store_dropped(), 0u) << "the burst never reached the fault cap";
  EXPECT_EQ(p.loss().store_dropped(), 0u);
  // Every interval since the agent started is still there for CPU samples.
  const int64_t elapsed = (absl::Now() - started) / absl::Milliseconds(250);
  EXPECT_GE(p.intervals_retained(), elapsed - 3) << j.out;
  CommandResult t = RunCommand({test::VigilPath(), "status", "--agent", agent.agent()});
  EXPECT_TRUE(absl::StrContains(t.out, "fault_store_dropped")) << t.out;
}

// strace's record of one process's large mmap/munmap/brk calls, summed as
// vigild sums them: successful calls of at least `min` bytes (lengths
// rounded up to pages; mmap with PROT_NONE left out; a brk call by how far
// it moved the break from the previous brk's result).
struct StraceMaps {
  uint64_t mapped = 0, unmapped = 0, mapping_calls = 0, unmapping_calls = 0;
  uint64_t brk_grown = 0;
  std::string error;
};

StraceMaps ParseStraceMaps(const std::string& text, uint64_t min) {
  StraceMaps m;
  uint64_t brk = 0;
  auto page = [](uint64_t n) { return (n + 4095) & ~uint64_t{4095}; };
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    // "PID " first when strace -f saw more than one task.
    const size_t call = line.find_first_not_of("0123456789 ");
    if (call == absl::string_view::npos) continue;
    line.remove_prefix(call);
    const size_t open = line.find('('), eq = line.rfind(" = ");
    if (open == absl::string_view::npos || eq == absl::string_view::npos || eq < open) continue;
    const absl::string_view name = line.substr(0, open);
    const absl::string_view args = line.substr(open + 1, line.rfind(')', eq) - open - 1);
    const std::string ret(absl::StripAsciiWhitespace(line.substr(eq + 3)));
    std::vector<std::string> a = absl::StrSplit(args, ", ");
    uint64_t len = 0, val = 0;
    if (name == "mmap") {
      if (a.size() != 6 || !absl::SimpleAtoi(a[1], &len)) {
        m.error = absl::StrCat("unparsed: ", line);
        return m;
      }
      if (!absl::StartsWith(ret, "0x") || a[2] == "PROT_NONE" || page(len) < min) continue;
      m.mapped += page(len);
      ++m.mapping_calls;
    } else if (name == "munmap") {
      if (a.size() != 2 || !absl::SimpleAtoi(a[1], &len)) {
        m.error = absl::StrCat("unparsed: ", line);
        return m;
      }
      if (ret != "0" || page(len) < min) continue;
      m.unmapped += page(len);
      ++m.unmapping_calls;
    } else if (name == "brk") {
      if (!absl::SimpleHexAtoi(ret, &val)) {
        m.error = absl::StrCat("unparsed: ", line);
        return m;
      }
      if (brk != 0 && val > brk && val - brk >= min) {
        m.mapped += val - brk;
        m.brk_grown += val - brk;
        ++m.mapping_calls;
      } else if (brk != 0 && val < brk && brk - val >= min) {
        m.unmapped += brk - val;
        ++m.unmapping_calls;
      }
      brk = val;
    }
  }
  return m;
}

// Large map calls against strace: Debian's python3.11 (stripped, no frame
// pointers) under strace -f maps five 3 MiB mmap objects and closes them,
// then allocates buffers through glibc's malloc: the first above malloc's
// mmap threshold (an mmap), and once its free has raised that threshold,
// from the brk heap. vigil's totals for the process (calls and bytes,
// mapped and unmapped, the interpreter's own arenas and ld.so's library
// mappings included) must equal strace's exactly, and the five mmap
// objects must be one stack of 5 calls and 15 MiB (6 and 17 with the one
// before them), unwound to its root.
// The script sleeps first and last, and maps once before the five, for
// three limits the README states: a process's first milliseconds keep only
// the leaf frame (its mappings are not loaded yet); so does the first call
// from a library loaded since (Debian builds the mmap module as a shared
// object, dlopen()ed by the import: the agent re-reads the mappings when a
// walk meets it); and a process that exits before its interval is drained
// has unnamed frames. Those calls are in both totals all the same.
TEST_F(FaultE2ETest, LargeMapCallsMatchStrace) {
  test::TempDir dir;
  const std::string trace = dir.path() + "/strace.txt";
  const char* code =
      "import mmap, os, time\n"
      "print(os.getpid(), flush=True)\n"
      "time.sleep(1.5)\n"
      "mmap.mmap(-1, 2 << 20).close()\n"
      "time.sleep(0.5)\n"
      "m = [mmap.mmap(-1, 3 << 20) for _ in range(5)]\n"
      "for x in m: x.close()\n"
      "b = bytearray(6 << 20)\n"
      "del b\n"
      "c = bytearray(5 << 20)\n"
      "d = bytearray(4 << 20)\n"
      "del c, d\n"
      "time.sleep(1)\n";
  const absl::Time t0 = absl::Now();
  CommandResult run = RunCommand({"/usr/bin/strace", "-f", "-qq", "-e", "trace=mmap,munmap,brk",
                                  "-o", trace, "/usr/bin/python3.11", "-c", code});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const absl::Time t1 = absl::Now();
  uint32_t pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(run.out), &pid)) << run.out;
  std::ifstream in(trace);
  std::stringstream text;
  text << in.rdbuf();
  const StraceMaps want = ParseStraceMaps(text.str(), 1 << 20);
  ASSERT_TRUE(want.error.empty()) << want.error;
  // The workload did what it is for: mmap objects, and heap growth by brk.
  ASSERT_GE(want.mapping_calls, 7u) << text.str();
  ASSERT_GT(want.brk_grown, 0u) << "glibc grew no heap by brk:\n" << text.str();

  v1::MemoryResponse r;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  do {
    CommandResult c =
        RunCommand(Vigil({"memory", "--pid", std::to_string(pid), "--json", "--since",
                          absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - t0) + 1000, "ms")}));
    ASSERT_EQ(c.exit_code, 0) << c.err;
    r.Clear();
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(c.out, &r).ok()) << c.out;
    if (r.covered().end_unix_ns() > absl::ToUnixNanos(t1)) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  ASSERT_GT(r.covered().end_unix_ns(), absl::ToUnixNanos(t1)) << "the agent never covered the run";
  const v1::LargeMapCalls& got = r.large_map_calls();
  ASSERT_TRUE(got.unavailable().empty()) << got.unavailable();
  EXPECT_EQ(got.min_bytes(), 1u << 20);
  EXPECT_EQ(got.mapping_calls(), want.mapping_calls);
  EXPECT_EQ(got.mapped_bytes(), want.mapped);
  EXPECT_EQ(got.unmapping_calls(), want.unmapping_calls);
  EXPECT_EQ(got.unmapped_bytes(), want.unmapped);

  const v1::MapCallStack* objects = nullptr;
  for (const v1::MapCallStack& s : got.stacks()) {
    // The five, and the 2 MiB one before them when it was walked whole too
    // (the same stack).
    if (s.call() == v1::MAP_CALL_MMAP &&
        ((s.calls() == 5 && s.bytes() == 15u << 20) || (s.calls() == 6 && s.bytes() == 17u << 20)))
      objects = &s;
  }
  std::string shown;
  for (const v1::MapCallStack& s : got.stacks()) {
    absl::StrAppend(&shown, v1::MapCall_Name(s.call()), " ", s.calls(), " ", s.bytes(), ":");
    for (const auto& f : s.frames()) absl::StrAppend(&shown, " ", f.name(), "@", f.module());
    absl::StrAppend(&shown, "\n");
  }
  ASSERT_NE(objects, nullptr) << "no stack of the five mmap objects:\n" << shown;
  EXPECT_FALSE(objects->truncated()) << shown;
  EXPECT_FALSE(objects->frames_cut()) << shown;
  ASSERT_FALSE(objects->frames().empty());
  EXPECT_TRUE(absl::StrContains(objects->frames(0).name(), "mmap")) << shown;
  bool through_python = false;
  for (const auto& f : objects->frames()) {
    through_python = through_python || absl::StrContains(f.module(), "python3.11");
  }
  EXPECT_TRUE(through_python) << shown;

  // With the syscalls capability on, the hook rides on its sys_exit program.
  CommandResult status = RunCommand(Vigil({"status", "--json"}));
  ASSERT_EQ(status.exit_code, 0) << status.err;
  v1::StatusResponse st;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(status.out, &st).ok()) << status.out;
  EXPECT_EQ(st.profiler().map_hook(), "tail call from the syscalls program");
  EXPECT_EQ(st.profiler().map_min_bytes(), 1u << 20);
  EXPECT_GE(st.profiler().map_calls(), want.mapping_calls + want.unmapping_calls);

  // The text view names the call kinds and the threshold.
  CommandResult text_view =
      RunCommand(Vigil({"memory", "--pid", std::to_string(pid), "--since", "5m"}));
  ASSERT_EQ(text_view.exit_code, 0) << text_view.err;
  EXPECT_TRUE(absl::StrContains(text_view.out, "large map calls (each >= 1.0 MiB)"))
      << text_view.out;
  EXPECT_TRUE(absl::StrContains(text_view.out, " mmap ")) << text_view.out;
}

TEST_F(FaultE2ETest, UnknownKindIsBadUsage) {
  for (const char* cmd : {"hot", "profile", "flamegraph"}) {
    CommandResult c = RunCommand(Vigil({cmd, "--kind", "heap"}));
    EXPECT_EQ(c.exit_code, 2) << cmd << ": " << c.err;
    const std::string err(absl::StripTrailingAsciiWhitespace(c.err));
    EXPECT_TRUE(absl::StrContains(err, "--kind \"heap\": expected cpu or memory")) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace vigil
