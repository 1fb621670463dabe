// The in-kernel CFI unwinder on programs Vigil did not write, checked
// against `perf record --call-graph dwarf` sampling the same process at the
// same moment: Debian's python3.11 and xz as they ship (stripped, no frame
// pointers), a -fomit-frame-pointer program, a frame-pointer program whose
// hot code is glibc's (the librdkafka incident's shape), and the vDSO.
//
// perf copies 16 KiB of user stack per sample and unwinds it in user space
// with libdw: the ground truth. Both sample at 499 Hz for 10 s, so the
// inclusive share of a function (share of samples with it anywhere on the
// stack) has a sampling error of about 1 point; the bar is 3.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

using test::CommandResult;
using test::RunCommand;

constexpr int kHz = 499;
constexpr int kSeconds = 10;

// The ELF entry point of an executable (readelf -h), 0 if unknown.
uint64_t EntryPoint(const std::string& exe) {
  CommandResult h = RunCommand({"readelf", "-h", exe});
  for (absl::string_view line : absl::StrSplit(h.out, '\n')) {
    if (!absl::StrContains(line, "Entry point address:")) continue;
    uint64_t entry = 0;
    const std::string v(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
    if (absl::SimpleHexAtoi(v, &entry)) return entry;
  }
  return 0;
}

// Where a complete user stack starts: the process's entry point, or a
// thread's (glibc 2.36 starts threads through clone3 -> start_thread). A
// stripped executable's _start has no name: Vigil shows it as
// "exe+0xOFFSET", a return address a few bytes into the entry point.
std::string g_exe;
uint64_t g_entry = 0;
bool IsEntry(const std::string& name) {
  static const std::set<std::string> kEntries = {"_start", "clone3",  "__clone3",
                                                 "clone",  "__clone", "start_thread"};
  if (kEntries.count(name) > 0) return true;
  uint64_t off = 0;
  return !g_exe.empty() && absl::StartsWith(name, g_exe + "+0x") &&
         absl::SimpleHexAtoi(name.substr(g_exe.size() + 3), &off) && off >= g_entry &&
         off < g_entry + 64;
}

// perf prints C++ names without their parameter lists; Vigil with them.
// Both are compared without: "ns::f(double) const" -> "ns::f".
std::string Normalize(std::string name) {
  static const std::string kAnon = "(anonymous namespace)";
  for (size_t at = name.find(kAnon); at != std::string::npos; at = name.find(kAnon)) {
    name.replace(at, kAnon.size(), "{anon}");
  }
  if (absl::EndsWith(name, " const")) name.resize(name.size() - 6);
  if (!name.empty() && name.back() == ')') {
    int depth = 0;
    for (size_t i = name.size(); i-- > 0;) {
      if (name[i] == ')') ++depth;
      if (name[i] == '(' && --depth == 0) {
        name.resize(i);
        break;
      }
    }
  }
  return name;
}

// Samples of one process, as stacks of function names (outermost first).
struct Shares {
  uint64_t samples = 0;
  uint64_t rooted = 0;  // the outermost frame is an entry point
  std::map<std::string, uint64_t> inclusive;
  std::vector<std::string> outside;  // frames outside every mapping

  void Add(const std::vector<std::string>& outer_first, uint64_t n) {
    if (outer_first.empty()) return;
    samples += n;
    if (IsEntry(outer_first.front())) rooted += n;
    std::set<std::string> seen;
    for (const std::string& f : outer_first) {
      if (absl::StartsWith(f, "[unknown]")) {
        outside.push_back(absl::StrCat(absl::StrJoin(outer_first, ";"), " ", n));
      }
      const std::string fn = Normalize(f);
      if (seen.insert(fn).second) inclusive[fn] += n;
    }
  }
  double Pct(const std::string& name) const {
    auto it = inclusive.find(Normalize(name));
    return samples == 0 || it == inclusive.end() ? 0.0 : 100.0 * it->second / samples;
  }
  double RootedPct() const { return samples == 0 ? 0.0 : 100.0 * rooted / samples; }
};

// `perf script -F ip,sym,dso --pid P` output: one block per sample,
// innermost first. Kernel frames and perf's synthesized inline frames are
// left out (Vigil's user stacks have neither); unnamed frames stay in the
// stack as "?" (they count for depth, not for names).
Shares FromPerf(const std::string& script, std::set<std::string>* libc_names) {
  Shares s;
  std::vector<std::string> inner_first;
  auto flush = [&] {
    std::reverse(inner_first.begin(), inner_first.end());
    s.Add(inner_first, 1);
    inner_first.clear();
  };
  for (absl::string_view line : absl::StrSplit(script, '\n')) {
    if (absl::StripAsciiWhitespace(line).empty()) {
      flush();
      continue;
    }
    // "\t  12b7af _PyEval_EvalFrameDefault+0x1f (/usr/bin/python3.11)"
    std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(line), ' ');
    if (f.size() < 3) continue;
    const std::string& dso = f.back();
    uint64_t ip = 0;
    // Kernel frames (BPF programs included) by address: Vigil's user
    // stacks hold none.
    if (dso == "(inlined)" || !absl::SimpleHexAtoi(f[0], &ip) || ip >= 0xffff800000000000ull) {
      continue;
    }
    std::string sym = absl::StrJoin(f.begin() + 1, f.end() - 1, " ");
    if (size_t plus = sym.rfind("+0x"); plus != std::string::npos) sym.resize(plus);
    if (sym == "[unknown]") sym = "?";
    if (absl::StrContains(dso, "libc.so") && libc_names != nullptr) {
      libc_names->insert(Normalize(sym));
    }
    inner_first.push_back(sym);
  }
  flush();
  return s;
}

// `vigil profile --format folded --user-only`: "root;...;leaf count".
Shares FromFolded(const std::string& folded) {
  Shares s;
  for (absl::string_view line : absl::StrSplit(folded, '\n', absl::SkipEmpty())) {
    const size_t sp = line.rfind(' ');
    uint64_t n = 0;
    if (sp == absl::string_view::npos || !absl::SimpleAtoi(line.substr(sp + 1), &n)) continue;
    std::vector<std::string> frames = absl::StrSplit(line.substr(0, sp), ';');
    // Unnamed frames read "module+0xoffset"; "[unknown]" is outside every
    // mapping, and must never appear.
    for (std::string& f : frames) {
      if (absl::StrContains(f, "+0x") && !absl::StartsWith(f, "[unknown]") && !IsEntry(f)) {
        f = "?";
      }
    }
    s.Add(frames, n);
  }
  return s;
}

class UnwindE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = new std::string(test::BpfUnavailableReason());
    if (!skip_reason_->empty()) return;
    agent_ = new test::ScopedVigild(
        {"--interval", "250ms", "--sample-hz", std::to_string(kHz), "--spin", "off"});
  }
  static void TearDownTestSuite() {
    delete agent_;
    agent_ = nullptr;
    delete skip_reason_;
    skip_reason_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_->empty()) VIGIL_SKIP_OR_FAIL("BPF not permitted here: " + *skip_reason_);
    ASSERT_TRUE(agent_->ok()) << agent_->log();
    if (RunCommand({"perf", "--version"}).exit_code != 0) {
      VIGIL_SKIP_OR_FAIL("perf is not installed (deploy/install-deps.sh --test installs it)");
    }
  }

  // Samples pid with perf and vigild over the same kSeconds, after the
  // process has run `warmup` (its mappings loaded by then).
  struct Both {
    Shares perf, vigil;
    std::set<std::string> libc_names;  // named by perf in libc
    std::string folded;
  };
  Both SampleBoth(uint32_t pid, absl::Duration warmup = absl::Seconds(2)) {
    Both b;
    absl::SleepFor(warmup);
    const std::string data = absl::StrCat(dir_.path(), "/perf.data");
    const absl::Time t0 = absl::Now();
    // -a: perf 6.1 attached with -p to a running process records no
    // cpu-clock samples on this kernel; system-wide, filtered by pid. -m:
    // the default 512 KiB buffer holds 32 stack copies and loses most.
    CommandResult rec = RunCommand(
        {"perf", "record", "-q", "-a", "-m", "8M", "-e", "cpu-clock", "-F", std::to_string(kHz),
         "--call-graph", "dwarf,16384", "-o", data, "--", "sleep", std::to_string(kSeconds)},
        absl::Seconds(kSeconds + 60));
    const absl::Time t1 = absl::Now();
    EXPECT_EQ(rec.exit_code, 0) << rec.err;
    CommandResult script =
        RunCommand({"perf", "script", "-i", data, "--pid", std::to_string(pid), "-F", "ip,sym,dso"},
                   absl::Seconds(300));
    EXPECT_EQ(script.exit_code, 0) << script.err;
    b.perf = FromPerf(script.out, &b.libc_names);
    // The agent publishes once per interval: wait until it covered t1.
    absl::SleepFor(absl::Milliseconds(600));
    const absl::Time now = absl::Now();
    CommandResult v =
        RunCommand({test::VigilPath(), "profile", "--agent", agent_->agent(), "--pid",
                    std::to_string(pid), "--user-only", "--format", "folded", "-o", "-", "--since",
                    absl::StrCat(absl::ToInt64Milliseconds(now - t0), "ms"), "--until",
                    absl::StrCat(absl::ToInt64Milliseconds(now - t1), "ms")});
    EXPECT_EQ(v.exit_code, 0) << v.err;
    b.folded = v.out;
    b.vigil = FromFolded(v.out);
    return b;
  }

  // The acceptance bars of the unwinder: complete stacks, no invented
  // frames, and the top functions' inclusive shares within 3 points of
  // perf's. libc's names differ when perf finds glibc's debug info (it
  // names __libc_start_main_impl what .dynsym calls __libc_start_main), so
  // libc functions are compared by the stack's completeness instead.
  void ExpectMatchesPerf(const Both& b, const std::string& what) {
    SCOPED_TRACE(what);
    ASSERT_GT(b.perf.samples, 1000u) << "perf saw too few samples";
    ASSERT_GT(b.vigil.samples, 1000u) << "vigil saw too few samples:\n" << b.folded;
    EXPECT_GE(b.vigil.RootedPct(), 98.0) << "vigil stacks reaching an entry point; folded:\n"
                                         << b.folded.substr(0, 4000);
    EXPECT_TRUE(b.vigil.outside.empty())
        << "a stack with a frame outside every mapping: " << b.vigil.outside.front()
        << "\nagent log:\n"
        << agent_->CurrentLog();
    std::vector<std::pair<uint64_t, std::string>> top;
    for (const auto& [fn, n] : b.perf.inclusive) {
      if (fn == "?" || b.libc_names.count(fn) > 0) continue;
      top.emplace_back(n, fn);
    }
    std::sort(top.rbegin(), top.rend());
    if (top.size() > 10) top.resize(10);
    ASSERT_FALSE(top.empty());
    std::string table = absl::StrFormat("%-50s %8s %8s\n", "function", "perf%", "vigil%");
    for (const auto& [n, fn] : top) {
      absl::StrAppend(&table,
                      absl::StrFormat("%-50s %8.2f %8.2f\n", fn, b.perf.Pct(fn), b.vigil.Pct(fn)));
    }
    absl::StrAppend(&table, absl::StrFormat("%-50s %8.2f %8.2f\n", "(reaching an entry point)",
                                            b.perf.RootedPct(), b.vigil.RootedPct()));
    for (const auto& [n, fn] : top) {
      EXPECT_NEAR(b.vigil.Pct(fn), b.perf.Pct(fn), 3.0) << fn << "\n" << table;
    }
    // Printed on success too: the README quotes these tables.
    printf("%s (%lu perf samples, %lu vigil samples)\n%s\n", what.c_str(),
           static_cast<unsigned long>(b.perf.samples), static_cast<unsigned long>(b.vigil.samples),
           table.c_str());
  }

  // Starts argv in the background; its pid, or 0.
  pid_t Spawn(const std::vector<std::string>& argv) {
    g_exe = argv[0];
    g_entry = EntryPoint(argv[0]);
    const pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> a;
      for (const std::string& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      FILE* devnull = fopen("/dev/null", "w");
      if (devnull != nullptr) dup2(fileno(devnull), STDOUT_FILENO);
      execv(a[0], a.data());
      _exit(127);
    }
    children_.push_back(pid);
    return pid;
  }
  void TearDown() override {
    for (pid_t p : children_) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  }

  test::TempDir dir_;
  std::vector<pid_t> children_;
  static std::string* skip_reason_;
  static test::ScopedVigild* agent_;
};

std::string* UnwindE2ETest::skip_reason_ = nullptr;
test::ScopedVigild* UnwindE2ETest::agent_ = nullptr;

TEST_F(UnwindE2ETest, DebianPython311MatchesPerfDwarf) {
  // Debian's interpreter as it ships: stripped, no frame pointers.
  const pid_t pid = Spawn({"/usr/bin/python3.11", "-c",
                           "def work(n):\n"
                           "  s = 0\n"
                           "  for i in range(n): s += i * i\n"
                           "  return s\n"
                           "def loop():\n"
                           "  while True: sorted(str(work(20000)))\n"
                           "loop()\n"});
  ASSERT_GT(pid, 0);
  ExpectMatchesPerf(SampleBoth(pid), "python3.11");
}

// The flame graph of Debian's python3.11, opened in a real browser, stands
// on _start: the frame under everything the interpreter did.
TEST_F(UnwindE2ETest, Python311FlameGraphStandsOnStartInChromium) {
  std::string chromium;
  for (const char* b : {"chromium", "chromium-browser"}) {
    if (RunCommand({"sh", "-c", absl::StrCat("command -v ", b)}).exit_code == 0) chromium = b;
  }
  if (chromium.empty())
    VIGIL_SKIP_OR_FAIL("chromium is not installed: deploy/install-deps.sh --test");
  const pid_t pid = Spawn(
      {"/usr/bin/python3.11", "-c", "while True: sorted(str(sum(i * i for i in range(20000))))"});
  ASSERT_GT(pid, 0);
  absl::SleepFor(absl::Seconds(4));
  const std::string html = dir_.path() + "/flame.html";
  CommandResult c =
      RunCommand({test::VigilPath(), "flamegraph", "--agent", agent_->agent(), "--pid",
                  std::to_string(pid), "--since", "3s", "--user-only", "-o", html});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  CommandResult dom = RunCommand(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
       "--disable-component-update", "--disable-sync", "--no-first-run",
       "--user-data-dir=" + dir_.path() + "/chromium", "--dump-dom", "file://" + html},
      absl::Seconds(120));
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_FALSE(absl::StrContains(dom.out, "data-ready=\"0\""));
  // "<title>_start (/usr/bin/python3.11): N samples, P%</title>"
  const std::string key = "<title>_start (/usr/bin/python3.11): ";
  const size_t at = dom.out.find(key);
  ASSERT_NE(at, std::string::npos) << dom.out.substr(0, 3000);
  const size_t comma = dom.out.find(", ", at + key.size());
  const size_t pct_end = dom.out.find('%', comma);
  ASSERT_NE(pct_end, std::string::npos);
  double pct = 0;
  ASSERT_TRUE(absl::SimpleAtod(dom.out.substr(comma + 2, pct_end - comma - 2), &pct));
  EXPECT_GE(pct, 98.0) << "share of the flame graph standing on _start";
  EXPECT_NE(dom.out.find("<title>__libc_start_call_main ("), std::string::npos);
  EXPECT_NE(dom.out.find("<title>PyEval_EvalCode ("), std::string::npos);
}

TEST_F(UnwindE2ETest, DebianXzMatchesPerfDwarf) {
  // xz and liblzma as Debian ships them, compressing 64 MiB of libraries
  // (longer than the sampling window at -9e).
  const std::string input = absl::StrCat(dir_.path(), "/input");
  CommandResult mk = RunCommand(
      {"/bin/sh", "-c",
       absl::StrCat("cat /usr/lib/x86_64-linux-gnu/*.so* 2>/dev/null | head -c 67108864 > ",
                    input)});
  ASSERT_EQ(mk.exit_code, 0) << mk.err;
  const pid_t pid = Spawn({"/usr/bin/xz", "-9e", "-T1", "-c", "-k", input});
  ASSERT_GT(pid, 0);
  ExpectMatchesPerf(SampleBoth(pid), "xz -9e");
}

TEST_F(UnwindE2ETest, OmitFramePointerProgramMatchesPerfDwarf) {
  const pid_t pid = Spawn({VIGIL_TEST_UNWIND_NOFP, "chain", std::to_string(kSeconds + 10)});
  ASSERT_GT(pid, 0);
  const Both b = SampleBoth(pid);
  ExpectMatchesPerf(b, "-O2 -fomit-frame-pointer chain");
  EXPECT_GE(b.vigil.Pct("(anonymous namespace)::ChainMiddle(unsigned long)"), 90.0) << b.folded;
}

// Functions built without unwind tables are described only in -g's
// .debug_frame. perf's libunwind reads .eh_frame only and stops at the leaf
// here, so the reference is gdb's DWARF unwinder: its backtrace of the
// running process is the stack vigil's samples must show.
TEST_F(UnwindE2ETest, DebugFrameOnlyProgramMatchesGdb) {
  if (RunCommand({"gdb", "--version"}).exit_code != 0) {
    VIGIL_SKIP_OR_FAIL("gdb is not installed (deploy/install-deps.sh --test installs it)");
  }
  const pid_t pid = Spawn({VIGIL_TEST_UNWIND_DEBUGFRAME, "chain", std::to_string(kSeconds + 10)});
  ASSERT_GT(pid, 0);
  const Both b = SampleBoth(pid);
  // Root first, as in the folded stacks: "#N 0x... in NAME (args) at ..."
  // or "#0  NAME (args)" for the leaf.
  CommandResult bt = RunCommand({"gdb", "-q", "-batch", "-nx", "-p", std::to_string(pid), "-ex",
                                 "set backtrace past-main on", "-ex", "bt"},
                                absl::Seconds(60));
  ASSERT_EQ(bt.exit_code, 0) << bt.err;
  std::vector<std::string> want;
  for (absl::string_view line : absl::StrSplit(bt.out, '\n')) {
    if (!absl::StartsWith(line, "#")) continue;
    const size_t in = line.find(" in ");
    absl::string_view rest = in != absl::string_view::npos
                                 ? line.substr(in + 4)
                                 : absl::StripLeadingAsciiWhitespace(line.substr(line.find(' ')));
    want.insert(want.begin(), std::string(rest.substr(0, rest.find(" ("))));
  }
  ASSERT_GE(want.size(), 5u) << bt.out;
  EXPECT_EQ(want.front(), "_start") << "gdb did not unwind to the entry:\n" << bt.out;
  EXPECT_GE(b.vigil.RootedPct(), 98.0) << b.folded.substr(0, 4000);
  // Every function gdb names, in order, on the hottest stack (glibc's may
  // carry other names in .dynsym: compared from main up).
  const auto main_at = std::find(want.begin(), want.end(), "main");
  ASSERT_NE(main_at, want.end()) << bt.out;
  std::vector<std::string> from_main(main_at, want.end());
  uint64_t matching = 0;
  for (absl::string_view line : absl::StrSplit(b.folded, '\n', absl::SkipEmpty())) {
    const size_t sp = line.rfind(' ');
    uint64_t n = 0;
    if (sp == absl::string_view::npos || !absl::SimpleAtoi(line.substr(sp + 1), &n)) continue;
    std::vector<std::string> frames = absl::StrSplit(line.substr(0, sp), ';');
    const auto m = std::find(frames.begin(), frames.end(), "main");
    if (m == frames.end()) continue;
    std::vector<std::string> got(m, frames.end());
    // gdb stopped the process somewhere in the hot loop: the leaf may be
    // ChainInner or ChainMiddle itself; the callers are the same. vigil
    // names carry the parameter list, gdb's do not.
    auto same = [](const std::string& g, const std::string& v) {
      return v == g || absl::StartsWith(v, g + "(");
    };
    if (got.size() >= from_main.size() - 1 &&
        std::equal(from_main.begin(), from_main.end() - 1, got.begin(), same)) {
      matching += n;
    }
  }
  printf("gdb: %s\nvigil samples whose stack from main matches gdb's: %lu of %lu\n",
         absl::StrJoin(want, ";").c_str(), static_cast<unsigned long>(matching),
         static_cast<unsigned long>(b.vigil.samples));
  EXPECT_GE(matching, b.vigil.samples * 95 / 100) << bt.out << "\n" << b.folded.substr(0, 4000);
  // perf for the record (README): its libunwind cannot follow .debug_frame.
  printf("perf --call-graph dwarf reaching an entry point: %.1f%%\n", b.perf.RootedPct());
}

// A file swapped on disk under a running process: the agent must compile
// what the process maps (/proc/PID/map_files, by inode), not what the path
// names now. The program runs from a copy, the copy's path is then renamed
// over with another ELF file (xz, whose CFI is different), and only then
// does a second agent start and read the process: its stacks still reach
// the entry point through the right functions.
TEST_F(UnwindE2ETest, ABinaryReplacedOnDiskStillUnwinds) {
  const std::string app = dir_.path() + "/app";
  ASSERT_EQ(RunCommand({"cp", VIGIL_TEST_UNWIND_NOFP, app}).exit_code, 0);
  const pid_t pid = Spawn({app, "chain", std::to_string(kSeconds + 10)});
  ASSERT_GT(pid, 0);
  absl::SleepFor(absl::Milliseconds(300));  // exec'd by now
  const std::string other = dir_.path() + "/other";
  ASSERT_EQ(RunCommand({"cp", "/usr/bin/xz", other}).exit_code, 0);
  ASSERT_EQ(rename(other.c_str(), app.c_str()), 0);
  test::ScopedVigild fresh({"--interval", "250ms", "--sample-hz", "499", "--spin", "off"});
  ASSERT_TRUE(fresh.ok()) << fresh.log();
  absl::SleepFor(absl::Seconds(3));
  CommandResult v = RunCommand({test::VigilPath(), "profile", "--agent", fresh.agent(), "--pid",
                                std::to_string(pid), "--user-only", "--format", "folded", "-o", "-",
                                "--since", "2s"});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  const Shares s = FromFolded(v.out);
  printf("replaced on disk: %lu samples, %.1f%% reach the entry, ChainMiddle %.1f%%\n",
         static_cast<unsigned long>(s.samples), s.RootedPct(),
         s.Pct("(anonymous namespace)::ChainMiddle(unsigned long)"));
  ASSERT_GT(s.samples, 300u) << v.out;
  EXPECT_GE(s.RootedPct(), 98.0) << v.out.substr(0, 4000);
  EXPECT_GE(s.Pct("(anonymous namespace)::ChainMiddle(unsigned long)"), 90.0) << v.out;
  EXPECT_TRUE(s.outside.empty()) << v.out.substr(0, 4000);
}

TEST_F(UnwindE2ETest, FramePointerCallerOfFramelessGlibcIsPresent) {
  // The seeds' librdkafka thread: the hot code is glibc's timed wait (no
  // frame pointers), called from a frame-pointer application function.
  const pid_t pid = Spawn({VIGIL_TEST_UNWIND_FP, "timedwait", std::to_string(kSeconds + 10)});
  ASSERT_GT(pid, 0);
  const Both b = SampleBoth(pid);
  ExpectMatchesPerf(b, "pthread_cond_timedwait loop");
  EXPECT_GE(b.vigil.Pct("(anonymous namespace)::QueueServe::pop_serve(double)"), 98.0) << b.folded;
}

TEST_F(UnwindE2ETest, VdsoFramesUnwindToTheirCaller) {
  const pid_t pid = Spawn({VIGIL_TEST_UNWIND_FP, "vdso", std::to_string(kSeconds + 10)});
  ASSERT_GT(pid, 0);
  const Both b = SampleBoth(pid);
  uint64_t in_vdso = 0;
  for (const auto& [fn, n] : b.vigil.inclusive) {
    if (absl::StrContains(fn, "vdso")) in_vdso = std::max(in_vdso, n);
  }
  EXPECT_GT(in_vdso, b.vigil.samples / 10) << "the vDSO should be hot:\n" << b.folded;
  EXPECT_GE(b.vigil.Pct("(anonymous namespace)::VdsoPoll(double)"), 98.0) << b.folded;
  EXPECT_GE(b.vigil.RootedPct(), 98.0) << b.folded;
}

}  // namespace
}  // namespace vigil
