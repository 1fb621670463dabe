// vigil top end to end: a real vigild watching real busy-looping threads
// (tests/workloads/spin_workload.cc), read through GetTop, `vigil top
// --once` and `--json`, and the interactive view driven in tmux. Skips with
// the reason when BPF is not allowed (fails in CI).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
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

// A workload started through popen (a shell command line): its "pid" (and
// with want_tid its first "tid") line is read; it ends by itself, and is
// killed and reaped on destruction anyway.
class Spinner {
 public:
  // spin_workload spinning one thread named `name` for `seconds`.
  Spinner(double seconds, const std::string& name)
      : Spinner(
            absl::StrCat("exec '", test::SpinWorkloadPath(), "' spin ", seconds, " 1 '", name, "'"),
            true) {}
  Spinner(const std::string& cmd, bool want_tid) {
    out_ = popen(cmd.c_str(), "r");
    char line[128];
    while (out_ != nullptr && (pid_ == 0 || (want_tid && tid_ == 0)) &&
           fgets(line, sizeof(line), out_)) {
      std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(line), ' ');
      if (f.size() != 2) continue;
      uint32_t v = 0;
      if (!absl::SimpleAtoi(f[1], &v)) continue;
      if (f[0] == "pid") pid_ = v;
      if (f[0] == "tid") tid_ = v;
    }
  }
  ~Spinner() {
    if (pid_ != 0) kill(static_cast<pid_t>(pid_), SIGKILL);
    if (out_ != nullptr) pclose(out_);
  }
  uint32_t pid() const { return pid_; }
  uint32_t tid() const { return tid_; }

 private:
  FILE* out_ = nullptr;
  uint32_t pid_ = 0, tid_ = 0;
};

// utime + stime of one thread, in ns (clock ticks: 10 ms steps).
int64_t ProcThreadCpuNs(uint32_t pid, uint32_t tid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/task/", tid, "/stat"));
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> v = absl::StrSplit(s.substr(close + 2), ' ');
  int64_t ut = 0, st = 0;
  if (v.size() < 13 || !absl::SimpleAtoi(v[11], &ut) || !absl::SimpleAtoi(v[12], &st)) return -1;
  return (ut + st) * (1000000000 / sysconf(_SC_CLK_TCK));
}

// /proc sampled every 10 ms for 3.5 s, then `query` (a 2 s GetTop): the
// thread's CPU % must match the /proc delta interpolated at the covered
// range's ends (the interval stamps; the cpu pass runs first in each
// interval) within 5 points.
void ExpectRateMatchesProc(const Spinner& spin, const std::function<v1::TopResponse()>& query,
                           v1::TopResponse* out) {
  std::vector<std::pair<int64_t, int64_t>> samples;  // (unix ns, cpu ns)
  auto sample_for = [&](absl::Duration d) {
    const absl::Time until = absl::Now() + d;
    while (absl::Now() < until) {
      samples.emplace_back(absl::ToUnixNanos(absl::Now()), ProcThreadCpuNs(spin.pid(), spin.tid()));
      absl::SleepFor(absl::Milliseconds(10));
    }
  };
  // One /proc sample right after each answer: the covered range ends at the
  // last interval stamp, which can fall inside the final 10 ms sleep.
  auto ask = [&] {
    *out = query();
    samples.emplace_back(absl::ToUnixNanos(absl::Now()), ProcThreadCpuNs(spin.pid(), spin.tid()));
  };
  sample_for(absl::Milliseconds(3500));
  ask();
  // A loaded host stretches intervals (a slow pass delays the next): the
  // covered range may start before the first sample; sample on and ask
  // again until it does not.
  for (int i = 0; i < 5 && out->covered().start_unix_ns() < samples.front().first; ++i) {
    sample_for(absl::Seconds(1));
    ask();
  }
  const v1::TopResponse& r = *out;
  const v1::TopRow* t = nullptr;
  for (const v1::TopRow& p : r.processes()) {
    for (const v1::TopRow& th : p.threads()) {
      if (th.tid() == spin.tid()) t = &th;
    }
  }
  ASSERT_NE(t, nullptr);
  auto at = [&](int64_t when) {
    for (size_t i = 1; i < samples.size(); ++i) {
      if (samples[i].first >= when) {
        const auto& [x0, y0] = samples[i - 1];
        const auto& [x1, y1] = samples[i];
        return y0 + static_cast<double>(y1 - y0) * static_cast<double>(when - x0) /
                        static_cast<double>(std::max<int64_t>(x1 - x0, 1));
      }
    }
    return static_cast<double>(samples.back().second);
  };
  const int64_t from = r.covered().start_unix_ns(), to = r.covered().end_unix_ns();
  ASSERT_GT(to - from, 1000000000) << "covered less than a second";
  ASSERT_LE(to, samples.back().first) << "the range ends after the last /proc sample";
  ASSERT_GE(from, samples.front().first) << "the range starts before the first /proc sample";
  const double proc_pct = (at(to) - at(from)) / static_cast<double>(to - from) * 100;
  printf("cpu over %.2f s: vigil %.1f%%, /proc %.1f%% (%s)\n", (to - from) / 1e9, t->cpu_pct(),
         proc_pct, v1::CpuSourceKind_Name(t->cpu_source()).c_str());
  EXPECT_NEAR(t->cpu_pct(), proc_pct, 5.0);
}

class TopE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = new std::string(test::BpfUnavailableReason());
    if (!skip_reason_->empty()) return;
    // Spin alerts within seconds, as tests/e2e/spin_e2e_test.cc sets them.
    agent_ = new test::ScopedVigild({"--interval", "200ms", "--sample-hz", "99",
                                     "--spin-min-duration", "3s", "--spin-cpu-threshold", "0.1"});
  }
  static void TearDownTestSuite() {
    delete agent_;
    delete skip_reason_;
  }
  void SetUp() override {
    if (!skip_reason_->empty()) VIGIL_SKIP_OR_FAIL(*skip_reason_);
    ASSERT_TRUE(agent_->ok()) << agent_->log();
    stub_ = v1::Vigil::NewStub(
        grpc::CreateChannel(agent_->agent(), grpc::InsecureChannelCredentials()));
  }

  v1::TopResponse Top(absl::Duration since, uint32_t pid = 0, bool threads = true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::TopRequest req;
    req.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(since));
    req.set_pid(pid);
    req.set_threads(threads);
    v1::TopResponse r;
    grpc::Status s = stub_->GetTop(&ctx, req, &r);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return r;
  }
  static const v1::TopRow* Thread(const v1::TopResponse& r, uint32_t tid) {
    for (const v1::TopRow& p : r.processes()) {
      for (const v1::TopRow& t : p.threads()) {
        if (t.tid() == tid) return &t;
      }
    }
    return nullptr;
  }

  static std::string* skip_reason_;
  static test::ScopedVigild* agent_;
  std::unique_ptr<v1::Vigil::Stub> stub_;
};

std::string* TopE2ETest::skip_reason_ = nullptr;
test::ScopedVigild* TopE2ETest::agent_ = nullptr;

// The thread started after vigild, so its whole runtime is in the window:
// vigil's total must bracket /proc's utime + stime read between two
// queries (up to 20 ms of /proc's tick truncation and one tick of the
// running thread's lag), and its CPU % over a range must match the /proc
// delta over the same range within 5 points.
TEST_F(TopE2ETest, ThreadCpuMatchesProcStat) {
  Spinner spin(20, "topcpu");
  ASSERT_NE(spin.tid(), 0u);
  absl::SleepFor(absl::Seconds(2));

  // Cumulative: A1 <= /proc <= A2.
  const int64_t a1 =
      static_cast<int64_t>(Thread(Top(absl::ZeroDuration(), spin.pid()), spin.tid())->cpu_ns());
  const int64_t p = ProcThreadCpuNs(spin.pid(), spin.tid());
  const int64_t p_at = absl::ToUnixNanos(absl::Now());
  // A2 from a pass after /proc was read: an interval that ended (its stamp
  // is taken before the pass) after p_at. A loaded host can starve the
  // collection loop for a while: wait for it rather than for a fixed time.
  v1::TopResponse r2;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  do {
    absl::SleepFor(absl::Milliseconds(100));
    r2 = Top(absl::ZeroDuration(), spin.pid());
  } while (r2.covered().end_unix_ns() <= p_at && absl::Now() < give_up);
  const v1::TopRow* t2 = Thread(r2, spin.tid());
  ASSERT_NE(t2, nullptr);
  const int64_t a2 = static_cast<int64_t>(t2->cpu_ns());
  EXPECT_EQ(t2->cpu_source(), v1::CPU_SOURCE_EXACT);
  printf("cumulative: vigil %.3f s <= /proc %.3f s <= vigil %.3f s\n", a1 / 1e9, p / 1e9, a2 / 1e9);
  EXPECT_GT(p, 100000000) << "the spinner barely ran";
  EXPECT_LE(a1 - 30000000, p);
  EXPECT_LE(p, a2 + 30000000);

  // A rate over the last 2 s.
  v1::TopResponse r;
  ExpectRateMatchesProc(
      spin, [&] { return Top(absl::Seconds(2), spin.pid()); }, &r);
  EXPECT_GT(r.header().host_cpu_pct(), 0);
  EXPECT_GT(r.header().agent_rss_bytes(), 0u);
  EXPECT_GT(r.cpu_pass_ns(), 0u);
}

// Where the iterator cannot be used: the same figures from /proc
// (cpu-source proc); and with the cpu and memory capabilities off, GetTop
// still answers, says why those columns are empty, and estimates CPU from
// the profiler's samples.
TEST_F(TopE2ETest, ProcFallbackAndMissingCapabilities) {
  Spinner spin(20, "topproc");
  ASSERT_NE(spin.tid(), 0u);
  test::ScopedVigild proc({"--interval", "200ms", "--cpu-source", "proc", "--metrics-listen", ""});
  test::ScopedVigild off(
      {"--interval", "200ms", "--cpu", "off", "--memory", "off", "--metrics-listen", ""});
  ASSERT_TRUE(proc.ok()) << proc.log();
  ASSERT_TRUE(off.ok()) << off.log();
  auto top = [&](const test::ScopedVigild& a, absl::Duration since) {
    auto stub =
        v1::Vigil::NewStub(grpc::CreateChannel(a.agent(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::TopRequest req;
    req.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(since));
    req.set_pid(spin.pid());
    req.set_threads(true);
    v1::TopResponse r;
    grpc::Status s = stub->GetTop(&ctx, req, &r);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return r;
  };
  v1::TopResponse r;
  ExpectRateMatchesProc(
      spin, [&] { return top(proc, absl::Seconds(2)); }, &r);
  EXPECT_EQ(r.cpu_source(), v1::CPU_SOURCE_PROC);
  CommandResult c = RunCommand({test::VigilPath(), "status", "--agent", proc.agent()});
  EXPECT_TRUE(absl::StrContains(c.out, "cpu: proc,")) << c.out;

  r = top(off, absl::Seconds(1));
  EXPECT_EQ(r.cpu_source(), v1::CPU_SOURCE_PROFILE_ESTIMATE);
  std::string why;
  for (const auto& u : r.unavailable()) absl::StrAppend(&why, u.columns(), ": ", u.reason(), "\n");
  EXPECT_TRUE(absl::StrContains(why, "cpu: the cpu capability is off: disabled")) << why;
  EXPECT_TRUE(absl::StrContains(why, "memory: the memory capability is off")) << why;
  ASSERT_EQ(r.processes_size(), 1);
  EXPECT_EQ(r.processes(0).cpu_source(), v1::CPU_SOURCE_PROFILE_ESTIMATE);
  EXPECT_GT(r.processes(0).cpu_pct(), 0.0);
  EXPECT_EQ(r.processes(0).rss_bytes(), 0u);
  c = RunCommand({test::VigilPath(), "top", "--once", "--agent", off.agent(), "--pid",
                  absl::StrCat(spin.pid())});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_TRUE(absl::StrContains(c.out, "ESTIMATE from profiler samples")) << c.out;
  EXPECT_TRUE(absl::StrContains(c.out, "no memory: the memory capability is off")) << c.out;
  EXPECT_TRUE(absl::StrContains(c.out, " ~")) << c.out;  // the estimate's mark
}

// GROW/s over a one-second refresh: read over the last 10 s, since one
// interval has no slope. fault_workload first-touches 160 MiB over 10 s.
TEST_F(TopE2ETest, GrowthRateOverAShortRefresh) {
  Spinner grower(absl::StrCat("echo go | exec '", VIGIL_TEST_FAULT_WORKLOAD, "' 160 10"), false);
  ASSERT_NE(grower.pid(), 0u);
  absl::SleepFor(absl::Seconds(5));
  v1::TopResponse r = Top(absl::Seconds(1), grower.pid(), false);
  ASSERT_EQ(r.processes_size(), 1);
  const double mib_s = r.processes(0).rss_growth_bytes_per_s() / (1 << 20);
  printf("growth over a 1 s refresh: %.1f MiB/s (the workload: 16.0)\n", mib_s);
  EXPECT_NEAR(mib_s, 16.0, 4.0);
}

// A spinning thread is marked SPIN in GetTop (thread and process), in
// `vigil top --once` and in --json; names are printed escaped.
TEST_F(TopE2ETest, SpinnerIsMarkedInEveryOutput) {
  Spinner spin(15, "topspin\x1b[1m");
  ASSERT_NE(spin.tid(), 0u);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  const v1::TopRow* t = nullptr;
  v1::TopResponse r;
  while (absl::Now() < deadline) {
    r = Top(absl::Seconds(1), spin.pid());
    t = Thread(r, spin.tid());
    if (t != nullptr && t->alerts_size() > 0) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->alerts_size(), 1) << "no SPIN marker within 10 s";
  EXPECT_EQ(t->alerts(0), v1::ALERT_KIND_SPIN);
  ASSERT_EQ(r.processes_size(), 1);
  EXPECT_EQ(r.processes(0).alerts(0), v1::ALERT_KIND_SPIN);

  CommandResult c = RunCommand({test::VigilPath(), "top", "--once", "--threads", "--agent",
                                agent_->agent(), "--pid", absl::StrCat(spin.pid())});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  printf("%s", c.out.c_str());
  EXPECT_EQ(c.out.find('\x1b'), std::string::npos) << "a raw escape reached the terminal";
  EXPECT_TRUE(absl::StrContains(c.out, "topspin\\x1b[1m")) << c.out;
  EXPECT_TRUE(absl::StrContains(c.out, "PID   CPU%    RSS")) << c.out;
  bool marked = false;
  for (absl::string_view line : absl::StrSplit(c.out, '\n')) {
    if (absl::StrContains(line, absl::StrCat(" ", spin.tid(), " ")) &&
        absl::StrContains(line, "SPIN")) {
      marked = true;
    }
  }
  EXPECT_TRUE(marked) << c.out;

  c = RunCommand({test::VigilPath(), "top", "--json", "--agent", agent_->agent(), "--pid",
                  absl::StrCat(spin.pid())});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_TRUE(absl::StrContains(c.out, "\"ALERT_KIND_SPIN\"")) << c.out;
  EXPECT_TRUE(absl::StrContains(c.out, "\"cpu_source\": \"CPU_SOURCE_EXACT\"")) << c.out;
}

// The interactive view in a real terminal (tmux, 80x24): the marker shows,
// sort keys reorder, / filters, Enter drills into a process and Esc
// returns, a resize to 120x40 and back redraws cleanly, q exits 0.
class Tmux {
 public:
  explicit Tmux(const std::string& dir) : sock_(dir + "/tmux.sock") {}
  ~Tmux() { Run({"kill-server"}); }
  CommandResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/tmux", "-S", sock_});
    return RunCommand(args, absl::Seconds(10));
  }
  std::vector<std::string> Capture() {
    CommandResult c = Run({"capture-pane", "-p", "-t", "top"});
    return absl::StrSplit(c.out, '\n');
  }
  void Keys(const std::vector<std::string>& keys) {
    std::vector<std::string> a = {"send-keys", "-t", "top"};
    a.insert(a.end(), keys.begin(), keys.end());
    Run(a);
  }

 private:
  std::string sock_;
};

struct Screen {
  std::vector<std::string> lines;
  int header = -1;                             // index of the column header line
  std::vector<std::vector<std::string>> rows;  // fields of the rows under it
};

Screen Parse(const std::vector<std::string>& lines) {
  Screen s;
  s.lines = lines;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (s.header < 0 && absl::StrContains(lines[i], "PID   CPU%")) {
      s.header = static_cast<int>(i);
      continue;
    }
    if (s.header < 0 || absl::StripAsciiWhitespace(lines[i]).empty()) continue;
    s.rows.push_back(absl::StrSplit(lines[i], ' ', absl::SkipEmpty()));
  }
  return s;
}

// Waits until the pane shows what `ok` wants; returns the last screen.
template <typename Ok>
Screen WaitScreen(Tmux& tmux, Ok ok, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  Screen s;
  do {
    s = Parse(tmux.Capture());
    if (ok(s)) return s;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < deadline);
  return s;
}

std::string Dump(const Screen& s) { return absl::StrJoin(s.lines, "\n"); }

// Every row a row: one column header, a number first on every row below
// it, at most `width` columns and `height` lines.
bool Clean(const Screen& s, size_t width, size_t height) {
  if (s.header < 0 || s.lines.size() > height + 1) return false;
  int headers = 0;
  for (const std::string& l : s.lines) headers += absl::StrContains(l, "PID   CPU%") ? 1 : 0;
  if (headers != 1) return false;
  for (const std::string& l : s.lines) {
    if (l.size() > width) return false;
  }
  for (const auto& r : s.rows) {
    uint32_t v = 0;
    if (r.empty() || !absl::SimpleAtoi(r[0], &v)) return false;
  }
  return !s.rows.empty();
}

TEST_F(TopE2ETest, InteractiveViewInTmux) {
  if (access("/usr/bin/tmux", X_OK) != 0) VIGIL_SKIP_OR_FAIL("tmux is not installed");
  Spinner spin(40, "tmuxspin");
  Spinner other(40, "tmuxother");
  ASSERT_NE(spin.tid(), 0u);
  test::TempDir dir;
  Tmux tmux(dir.path());
  const std::string exit_file = dir.path() + "/exit";
  const std::string cmd =
      absl::StrCat("'", test::VigilPath(), "' top --agent '", agent_->agent(),
                   "' --every 300ms; echo \"exit $?\" > '", exit_file, "'; sleep 60");
  CommandResult c = tmux.Run({"new-session", "-d", "-s", "top", "-x", "80", "-y", "24", cmd});
  ASSERT_EQ(c.exit_code, 0) << c.err;

  // The spinner's marker, on the process row (threads folded).
  auto marked = [&](const Screen& s) {
    for (const auto& r : s.rows) {
      if (r[0] == absl::StrCat(spin.pid()) && absl::c_linear_search(r, "SPIN")) return true;
    }
    return false;
  };
  Screen s = WaitScreen(tmux, marked, absl::Seconds(15));
  ASSERT_TRUE(Clean(s, 80, 24)) << Dump(s);
  EXPECT_TRUE(marked(s)) << Dump(s);

  // N sorts by pid (ascending), P by CPU% (descending): each key's column,
  // read off the screen, is in order.
  auto sorted_by = [&](const char* key, const std::string& shown, size_t field, bool up) {
    tmux.Keys({key});
    Screen s = WaitScreen(tmux, [&](const Screen& s) {
      return absl::StrContains(Dump(s), "sort " + shown) && s.rows.size() > 2;
    });
    std::vector<double> v;
    for (const auto& r : s.rows) {
      double x = 0;
      if (r.size() > field && absl::SimpleAtod(r[field], &x)) v.push_back(up ? x : -x);
    }
    EXPECT_GT(v.size(), 2u) << Dump(s);
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end())) << key << "\n" << Dump(s);
  };
  sorted_by("N", "PID", 0, true);
  sorted_by("P", "CPU%", 1, false);

  // H shows threads; / keeps the processes whose name or a thread's name
  // matches: only the spinner.
  tmux.Keys({"H"});
  tmux.Keys({"/"});
  tmux.Keys({"tmuxspin", "Enter"});
  s = WaitScreen(tmux, [&](const Screen& s) {
    return absl::StrContains(absl::StrJoin(s.lines, "\n"), "/tmuxspin/") && !s.rows.empty() &&
           s.rows[0][0] == absl::StrCat(spin.pid());
  });
  ASSERT_FALSE(s.rows.empty()) << Dump(s);
  for (const auto& r : s.rows) {
    EXPECT_TRUE(r[0] == absl::StrCat(spin.pid()) || r[0] == absl::StrCat(spin.tid()))
        << "filtered row of another process: " << Dump(s);
  }
  EXPECT_TRUE(absl::StrContains(Dump(s), "tmuxspin")) << Dump(s);

  // Enter on the first row (the spinner's process) drills into it: its
  // alert and its hot functions; Esc returns to the rows.
  tmux.Keys({"Enter"});
  s = WaitScreen(tmux, [&](const Screen& s) {
    const std::string d = Dump(s);
    return absl::StrContains(d, absl::StrCat("process ", spin.pid())) &&
           absl::StrContains(d, "SPIN: tid") && absl::StrContains(d, "VigilTestSpinPoll");
  });
  EXPECT_TRUE(absl::StrContains(Dump(s), "VigilTestSpinPoll")) << Dump(s);
  tmux.Keys({"Escape"});
  s = WaitScreen(tmux, [](const Screen& s) { return s.header >= 0; });
  EXPECT_GE(s.header, 0) << Dump(s);
  tmux.Keys({"/"});
  tmux.Keys({"Enter"});  // empty clears

  // Resizing redraws at the new size (the keys line runs to the new width,
  // the rows to the new height: threads are on, so there are rows enough),
  // and back.
  auto keys_width = [](const Screen& s) {
    size_t w = 0;
    for (const std::string& l : s.lines) {
      if (absl::StartsWith(l, "sort ")) w = l.size();
    }
    return w;
  };
  auto uses = [&](size_t width, size_t height) {
    return [=](const Screen& s) {
      // capture-pane trims trailing spaces: the last few columns may be one.
      return Clean(s, width, height) && keys_width(s) + 4 > width &&
             static_cast<size_t>(s.header) + 1 + s.rows.size() == height;
    };
  };
  tmux.Run({"resize-window", "-t", "top", "-x", "120", "-y", "40"});
  s = WaitScreen(tmux, uses(120, 40));
  EXPECT_TRUE(uses(120, 40)(s)) << Dump(s);
  tmux.Run({"resize-window", "-t", "top", "-x", "80", "-y", "24"});
  s = WaitScreen(tmux, uses(80, 24));
  EXPECT_TRUE(uses(80, 24)(s)) << Dump(s);
  printf("%s\n", Dump(s).c_str());

  tmux.Keys({"q"});
  std::string exit_line;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    std::ifstream f(exit_file);
    if (std::getline(f, exit_line)) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(exit_line, "exit 0");
}

}  // namespace
}  // namespace vigil
