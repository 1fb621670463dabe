// The memory capability against ground truth: a real vigild, Debian's own
// python3.11 as the workload (and tests/workloads/fault_workload where a
// stack must name a known function), /proc/PID/status read at the same
// moment, and a real OOM kill in a memory-limited cgroup the test creates.
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/test_util.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {
namespace {

using test::CommandResult;
using test::RunCommand;

// /proc/PID/status fields in bytes (RssAnon, RssFile, RssShmem, VmSwap,
// VmRSS).
std::map<std::string, uint64_t> ProcStatus(pid_t pid) {
  std::map<std::string, uint64_t> out;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    uint64_t kib = 0;
    if (f.size() == 3 && f[2] == "kB" && absl::SimpleAtoi(f[1], &kib)) {
      out[f[0].substr(0, f[0].size() - 1)] = kib * 1024;
    }
  }
  return out;
}

class MemoryE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = new std::string(test::BpfUnavailableReason());
    if (!skip_reason_->empty()) return;
    agent_ = new test::ScopedVigild({"--interval", "250ms", "--profile", "off", "--spin", "off"});
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
  }
  void TearDown() override {
    for (pid_t p : children_) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    for (int fd : fds_) close(fd);
  }

  // tests/workloads/fault_workload: TouchPages() first-touches `mib` MiB
  // at a steady rate over `seconds`, once a line is written to *go. A known
  // native function growing at a known rate, so its stack can name it
  // (python3.11's stacks show the interpreter, not the script's function).
  // Stdout to `out`: "pid P" once it waits for *go.
  pid_t Toucher(int mib, int seconds, const std::string& out, int* go) {
    int in[2];
    if (pipe2(in, O_CLOEXEC) != 0) return -1;
    const std::string bin = VIGIL_TEST_FAULT_WORKLOAD;
    const std::string mib_arg = std::to_string(mib), seconds_arg = std::to_string(seconds);
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(in[0], STDIN_FILENO);
      FILE* o = fopen(out.c_str(), "w");
      if (o != nullptr) dup2(fileno(o), STDOUT_FILENO);
      execl(bin.c_str(), bin.c_str(), mib_arg.c_str(), seconds_arg.c_str(), nullptr);
      _exit(127);
    }
    close(in[0]);
    children_.push_back(pid);
    fds_.push_back(in[1]);  // closed after the kill: the workload exits at EOF
    *go = in[1];
    return pid;
  }

  // python3.11 -c code, stdout to `out` (a file) so the test can wait for
  // its "ready" line.
  pid_t Python(const std::string& code, const std::string& out,
               const std::string& cgroup_procs = "") {
    const pid_t pid = fork();
    if (pid == 0) {
      if (!cgroup_procs.empty()) {
        FILE* f = fopen(cgroup_procs.c_str(), "w");
        if (f == nullptr) _exit(125);
        fprintf(f, "%d\n", getpid());
        if (fclose(f) != 0) _exit(125);
      }
      FILE* o = fopen(out.c_str(), "w");
      if (o != nullptr) dup2(fileno(o), STDOUT_FILENO);
      execl("/usr/bin/python3.11", "python3.11", "-u", "-c", code.c_str(), nullptr);
      _exit(127);
    }
    children_.push_back(pid);
    return pid;
  }

  static bool WaitForLine(const std::string& path, const std::string& want, absl::Duration d) {
    const absl::Time end = absl::Now() + d;
    while (absl::Now() < end) {
      std::ifstream in(path);
      std::stringstream ss;
      ss << in.rdbuf();
      if (absl::StrContains(ss.str(), want)) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  // From the suite's agent, or from `agent` (an address) when given.
  v1::MemoryResponse Memory(const std::vector<std::string>& args, const std::string& agent = "") {
    std::vector<std::string> argv = {test::VigilPath(), "memory", "--agent",
                                     agent.empty() ? agent_->agent() : agent, "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv);
    v1::MemoryResponse resp;
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &resp).ok()) << r.out;
    return resp;
  }

  test::TempDir dir_;
  std::vector<pid_t> children_;
  std::vector<int> fds_;
  static std::string* skip_reason_;
  static test::ScopedVigild* agent_;
};

std::string* MemoryE2ETest::skip_reason_ = nullptr;
test::ScopedVigild* MemoryE2ETest::agent_ = nullptr;

// A process holding 200 MiB of anonymous memory and a 64 MiB shared
// mapping, then sleeping: vigil's last sample against /proc/PID/status.
// Both read the same counters, mm->rss_stat. Since 6.2 each is a
// percpu_counter: a CPU keeps up to max(32, 2 x CPUs) pages of its own
// changes before folding them into the shared count. vigil reads the
// folded count (as get_mm_counter() does); /proc/PID/status on 6.16+ adds
// every CPU's unfolded part too (6.1 has no batching here). So the two may
// differ by up to batch x CPUs pages per counter, even for an idle process:
// that is the tolerance (64 pages = 256 KiB on this 2-CPU host).
TEST_F(MemoryE2ETest, RssMatchesProcStatusOfAnIdleProcess) {
  const std::string out = dir_.path() + "/py.out";
  const pid_t pid = Python(
      "import mmap, time\n"
      "a = b'x' * (200 << 20)\n"
      "m = mmap.mmap(-1, 64 << 20)\n"
      "m.write(b'y' * (64 << 20))\n"
      "print('ready', flush=True)\n"
      "time.sleep(60)\n",
      out);
  ASSERT_TRUE(WaitForLine(out, "ready", absl::Seconds(30)));
  absl::SleepFor(absl::Milliseconds(800));  // at least two samples after "ready"
  const std::map<std::string, uint64_t> proc = ProcStatus(pid);
  const v1::MemoryResponse r = Memory({"--pid", std::to_string(pid), "--since", "400ms"});
  ASSERT_EQ(r.processes_size(), 1) << r.DebugString();
  const v1::ProcessMemory& p = r.processes(0);
  EXPECT_EQ(p.comm(), "python3.11");
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const double tolerance = static_cast<double>(std::max(32L, 2 * cpus) * cpus * 4096);
  printf(
      "/proc: RssAnon %lu RssFile %lu RssShmem %lu VmSwap %lu\n"
      "vigil: anon    %lu file    %lu shmem    %lu swap   %lu\n",
      static_cast<unsigned long>(proc.at("RssAnon")),
      static_cast<unsigned long>(proc.at("RssFile")),
      static_cast<unsigned long>(proc.at("RssShmem")),
      static_cast<unsigned long>(proc.at("VmSwap")), static_cast<unsigned long>(p.anon_bytes()),
      static_cast<unsigned long>(p.file_bytes()), static_cast<unsigned long>(p.shmem_bytes()),
      static_cast<unsigned long>(p.swap_bytes()));
  EXPECT_NEAR(static_cast<double>(p.anon_bytes()), static_cast<double>(proc.at("RssAnon")),
              tolerance);
  EXPECT_NEAR(static_cast<double>(p.file_bytes()), static_cast<double>(proc.at("RssFile")),
              tolerance);
  EXPECT_NEAR(static_cast<double>(p.shmem_bytes()), static_cast<double>(proc.at("RssShmem")),
              tolerance);
  EXPECT_EQ(p.swap_bytes(), proc.at("VmSwap"));
  EXPECT_NEAR(static_cast<double>(p.rss_bytes()), static_cast<double>(proc.at("VmRSS")),
              3 * tolerance);
  // The 200 MiB and the 64 MiB shared mapping are where they belong.
  EXPECT_GE(static_cast<double>(p.anon_bytes()), (200 << 20) - tolerance);
  EXPECT_GE(static_cast<double>(p.shmem_bytes()), (64 << 20) - tolerance);
  EXPECT_GE(r.timeline_size(), 1);
}

// A process growing by 1 MiB every 50 ms (20 MiB/s) for 12 s: it tops
// --sort growth, at the rate /proc shows over the same span (within 10%).
TEST_F(MemoryE2ETest, GrowingProcessTopsGrowthAtItsRate) {
  const std::string out = dir_.path() + "/grow.out";
  const pid_t pid = Python(
      "import time\n"
      "keep = []\n"
      "print('ready', flush=True)\n"
      "t = time.monotonic()\n"
      "for i in range(240):\n"
      "  keep.append(b'x' * (1 << 20))\n"
      "  t += 0.05\n"
      "  time.sleep(max(0, t - time.monotonic()))\n"
      "print('grown', flush=True)\n"
      "time.sleep(60)\n",
      out);
  ASSERT_TRUE(WaitForLine(out, "ready", absl::Seconds(30)));
  absl::SleepFor(absl::Seconds(2));
  const uint64_t rss0 = ProcStatus(pid)["VmRSS"];
  const absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(6));
  const uint64_t rss1 = ProcStatus(pid)["VmRSS"];
  const double truth = (static_cast<double>(rss1) - static_cast<double>(rss0)) /
                       absl::ToDoubleSeconds(absl::Now() - t0);
  const v1::MemoryResponse r = Memory({"--sort", "growth", "--since", "6s", "--top", "10000"});
  // Other processes on the host (a compiler) may grow faster: the rows are
  // in growth order, and this one is among them at its rate.
  const v1::ProcessMemory* row = nullptr;
  for (int i = 0; i < r.processes_size(); ++i) {
    if (i > 0) {
      EXPECT_GE(r.processes(i - 1).growth_bytes_per_s(), r.processes(i).growth_bytes_per_s());
    }
    if (r.processes(i).pid() == static_cast<uint32_t>(pid)) row = &r.processes(i);
  }
  ASSERT_NE(row, nullptr) << r.DebugString();
  printf("growth: vigil %.1f MiB/s over %u samples, /proc %.1f MiB/s\n",
         row->growth_bytes_per_s() / (1 << 20), row->samples(), truth / (1 << 20));
  EXPECT_NEAR(row->growth_bytes_per_s(), truth, truth * 0.10);
  EXPECT_GE(row->samples(), 20u);      // 6 s at 250 ms
  EXPECT_GT(truth, 15.0 * (1 << 20));  // the workload did grow as meant
}

// A real OOM kill: a memory cgroup limited to 64 MiB (v2 memory.max, or
// v1's memory.limit_in_bytes on hybrid hosts like this one), a python3.11
// in it allocating 256 MiB. vigil names the victim, its cgroup, its RSS
// and who allocated.
TEST_F(MemoryE2ETest, OomKillInALimitedCgroupIsRecorded) {
  std::string mount, limit_file, swap_file;
  if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0) {
    mount = "/sys/fs/cgroup/memory";
    limit_file = "memory.limit_in_bytes";
    swap_file = "memory.memsw.limit_in_bytes";
  } else if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
    mount = "/sys/fs/cgroup";
    limit_file = "memory.max";
    swap_file = "memory.swap.max";
  }
  ASSERT_FALSE(mount.empty()) << "no memory cgroup controller mounted";
  const std::string name = absl::StrCat("vigil-oom-test-", getpid());
  const std::string dir = mount + "/" + name;
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir << ": " << strerror(errno);
  auto write = [](const std::string& path, const std::string& v) {
    std::ofstream f(path);
    f << v;
    f.flush();
    return f.good();
  };
  ASSERT_TRUE(write(dir + "/" + limit_file, std::to_string(64 << 20))) << limit_file;
  write(dir + "/" + swap_file, std::to_string(64 << 20));  // no swap either, where it exists
  const std::string out = dir_.path() + "/oom.out";
  const pid_t pid = Python(
      "print('ready', flush=True)\n"
      "keep = []\n"
      "for i in range(256):\n"
      "  keep.append(b'x' * (1 << 20))\n"
      "print('survived', flush=True)\n",
      out, dir + "/cgroup.procs");
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  children_.clear();
  struct RmdirLater {
    std::string dir;
    ~RmdirLater() { rmdir(dir.c_str()); }
  } rmdir_later{dir};
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the workload was not OOM-killed: status " << status;
  absl::SleepFor(absl::Milliseconds(600));  // two intervals
  const v1::MemoryResponse r = Memory({"--since", "30s"});
  const v1::OomKill* kill = nullptr;
  for (const v1::OomKill& k : r.oom_kills()) {
    if (k.victim_pid() == static_cast<uint32_t>(pid)) kill = &k;
  }
  ASSERT_NE(kill, nullptr) << r.DebugString();
  printf("OOM kill: victim %u %s rss %lu cgroup %s, trigger %u %s\n", kill->victim_pid(),
         kill->victim_comm().c_str(), static_cast<unsigned long>(kill->victim_rss_bytes()),
         kill->victim_cgroup().c_str(), kill->trigger_pid(), kill->trigger_comm().c_str());
  EXPECT_EQ(kill->victim_comm(), "python3.11");
  EXPECT_EQ(kill->victim_cgroup(), "/" + name);
  EXPECT_EQ(kill->trigger_pid(), static_cast<uint32_t>(pid));  // it allocated itself
  EXPECT_GE(kill->victim_rss_bytes(), 32u << 20);
  EXPECT_LE(kill->victim_rss_bytes(), 80u << 20);
  // And the CLI's table says it in one line.
  CommandResult t =
      RunCommand({test::VigilPath(), "memory", "--agent", agent_->agent(), "--since", "30s"});
  EXPECT_TRUE(absl::StrContains(t.out, absl::StrCat("killed ", pid, " python3.11"))) << t.out;
}

TEST_F(MemoryE2ETest, BadInputIsOneLineAndExit2) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--top", "0"},
                                             {"--top", "20000"},
                                             {"--sort", "size"},
                                             {"--pid", "0"},
                                             {"--pid", "-3"},
                                             {"--since", "-1s"}}) {
    std::vector<std::string> argv = {test::VigilPath(), "memory", "--agent", agent_->agent()};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args[1] << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const std::vector<std::pair<std::string, std::string>> bad_flags = {
      {"--memory-max-processes", "0"},
      {"--memory-max-processes", "-1"},
      {"--memory-max-processes", "99999999999"},
      {"--memory-max-processes", "lots"},
      {"--mem-growth-min-bytes", "0"},
      {"--mem-growth-min-bytes", "-5MiB"},
      {"--mem-growth-min-bytes", "999999GiB"},
      {"--mem-growth-min-bytes", "64XB"},
      {"--mem-growth-min-duration", "0s"},
      {"--mem-growth-min-duration", "-1s"},
      {"--mem-growth", "maybe"}};
  for (const auto& [flag, bad] : bad_flags) {
    CommandResult r = RunCommand({test::VigildPath(), flag, bad, "--check-config"});
    EXPECT_EQ(r.exit_code, 2) << flag << " " << bad << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  CommandResult ok =
      RunCommand({test::VigildPath(), "--mem-growth-min-bytes", "512MiB", "--check-config"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// Growth alerts on real processes, with a short min-duration (6 s, 48 MiB)
// so the test takes seconds: a python3.11 growing 16 MiB/s alerts within
// min-duration plus two intervals of its start, at the rate /proc shows;
// a 300 MiB fill that plateaus and 64 MiB of alloc/free churn stay quiet;
// and when the grower frees its memory and idles, the alert resolves.
// A native grower (TouchPages, 16 MiB/s) alerts too, and its alert and
// vigil memory --pid name TouchPages as its top growing stack.
TEST_F(MemoryE2ETest, GrowthAlertFiresOnSustainedGrowthOnlyAndResolves) {
  // Spin off: growth alerts go out on the agent's alert stream without it
  // (the profiler stays on for the growing stacks).
  test::ScopedVigild agent({"--interval", "250ms", "--mem-growth-min-duration", "6s",
                            "--mem-growth-min-bytes", "48MiB", "--spin", "off"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  const std::string grow_out = dir_.path() + "/g.out", fill_out = dir_.path() + "/f.out",
                    churn_out = dir_.path() + "/c.out", touch_out = dir_.path() + "/t.out";
  // Started first: its exec has the agent load its unwind tables, which a
  // second and a half covers (as in fault_e2e_test), before it touches.
  int go = -1;
  const pid_t toucher = Toucher(224, 14, touch_out, &go);
  ASSERT_GT(toucher, 0);
  ASSERT_TRUE(WaitForLine(touch_out, "pid ", absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(1500));
  // Grows 1 MiB every 62.5 ms for 14 s, then frees it all and idles.
  const pid_t grower = Python(
      "import time\n"
      "def leak(keep, n):\n"
      "  keep.append(b'x' * (1 << 20))\n"
      "keep = []\n"
      "print('ready', flush=True)\n"
      "t = time.monotonic()\n"
      "for i in range(224):\n"
      "  leak(keep, i)\n"
      "  t += 0.0625\n"
      "  time.sleep(max(0, t - time.monotonic()))\n"
      "keep = None\n"
      "print('freed', flush=True)\n"
      "time.sleep(60)\n",
      grow_out);
  const pid_t filler = Python(
      "import time\n"
      "cache = [b'x' * (1 << 20) for i in range(300)]\n"
      "print('ready', flush=True)\n"
      "time.sleep(60)\n",
      fill_out);
  const pid_t churner = Python(
      "import time\n"
      "print('ready', flush=True)\n"
      "while True:\n"
      "  a = b'x' * (64 << 20)\n"
      "  time.sleep(0.3)\n"
      "  a = None\n"
      "  time.sleep(0.3)\n",
      churn_out);
  ASSERT_TRUE(WaitForLine(grow_out, "ready", absl::Seconds(30)));
  const absl::Time grow_start = absl::Now();
  const uint64_t rss0 = ProcStatus(grower)["VmRSS"];
  ASSERT_EQ(write(go, "go\n", 3), 3);

  // Poll the alert list until the grower fires (or 6 s + 2 intervals + a
  // second of slack for the poll and python's start have passed).
  auto alerts = [&]() {
    CommandResult r = RunCommand({test::VigilPath(), "alerts", "--agent", agent.agent(), "--json"});
    v1::ListAlertsResponse resp;
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &resp).ok()) << r.out;
    return resp;
  };
  auto find = [](const v1::ListAlertsResponse& r, pid_t pid) -> const v1::SpinAlert* {
    for (const v1::SpinAlert& a : r.alerts()) {
      if (a.kind() == v1::ALERT_KIND_MEMORY_GROWTH && a.pid() == static_cast<uint32_t>(pid)) {
        return &a;
      }
    }
    return nullptr;
  };
  v1::ListAlertsResponse r;
  absl::Duration fired_after = absl::InfiniteDuration();
  while (absl::Now() - grow_start < absl::Seconds(12)) {
    r = alerts();
    if (find(r, grower) != nullptr) {
      fired_after = absl::Now() - grow_start;
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  const v1::SpinAlert* a = find(r, grower);
  ASSERT_NE(a, nullptr) << "no growth alert for the grower within 12 s\n" << r.DebugString();
  const double truth =
      (static_cast<double>(ProcStatus(grower)["VmRSS"]) - static_cast<double>(rss0)) /
      absl::ToDoubleSeconds(absl::Now() - grow_start);
  printf(
      "growth alert after %s: %.1f MiB/s (/proc %.1f MiB/s), rss %lu, %u of %u intervals rising, "
      "%s limit in %.0f s\n",
      absl::FormatDuration(fired_after).c_str(),
      a->memory_growth().growth_bytes_per_s() / (1 << 20), truth / (1 << 20),
      static_cast<unsigned long>(a->memory_growth().rss_bytes()),
      a->memory_growth().rising_intervals(), a->memory_growth().intervals(),
      a->memory_growth().limit_kind().c_str(), a->memory_growth().seconds_left());
  EXPECT_EQ(a->state(), v1::ALERT_STATE_FIRING);
  EXPECT_EQ(a->comm(), "python3.11");
  // min-duration plus two intervals, plus the poll's and start's slack.
  EXPECT_LE(fired_after, absl::Seconds(6) + absl::Milliseconds(500) + absl::Seconds(1));
  EXPECT_NEAR(a->memory_growth().growth_bytes_per_s(), truth, truth * 0.10);
  EXPECT_GT(a->memory_growth().seconds_left(), 0);
  // Its growing stacks are there (the interpreter's frames: python3.11
  // names no script function on a native stack).
  const v1::GrowingStacks& py = a->memory_growth().growing_stacks();
  printf("python grower: %s\n", py.ShortDebugString().c_str());
  EXPECT_EQ(py.unavailable(), "");
  EXPECT_GE(py.stacks_size(), 1);
  EXPECT_LE(py.stacks_size(), 3);
  EXPECT_GT(py.fault_bytes(), 0u);

  // The native grower fires too, and its top growing stack over the
  // growing window is TouchPages, with most of the window's fault bytes,
  // about as many as its RSS grew by.
  const v1::SpinAlert* ta = find(r, toucher);
  while (ta == nullptr && absl::Now() - grow_start < absl::Seconds(12)) {
    absl::SleepFor(absl::Milliseconds(100));
    r = alerts();
    ta = find(r, toucher);
  }
  ASSERT_NE(ta, nullptr) << "no growth alert for the native grower within 12 s\n"
                         << r.DebugString();
  const v1::MemoryGrowthAlert& tg = ta->memory_growth();
  const v1::GrowingStacks& gs = tg.growing_stacks();
  ASSERT_GE(gs.stacks_size(), 1) << gs.DebugString();
  ASSERT_GE(gs.stacks(0).frames_size(), 1) << gs.DebugString();
  const double grew =
      static_cast<double>(tg.rss_bytes()) - static_cast<double>(tg.rss_start_bytes());
  printf(
      "native grower alert: top stack %s (%s) %.1f MiB, %.1f%% of %.1f MiB sampled; rss grew "
      "%.1f MiB over the window; %d stacks (+%u)\n",
      gs.stacks(0).frames(0).name().c_str(), gs.stacks(0).frames(0).module().c_str(),
      static_cast<double>(gs.stacks(0).fault_bytes()) / (1 << 20), 100 * gs.stacks(0).share(),
      static_cast<double>(gs.fault_bytes()) / (1 << 20), grew / (1 << 20), gs.stacks_size(),
      gs.stacks_omitted());
  EXPECT_TRUE(absl::StartsWith(gs.stacks(0).frames(0).name(), "TouchPages")) << gs.DebugString();
  EXPECT_TRUE(absl::EndsWith(gs.stacks(0).frames(0).module(), "fault_workload"))
      << gs.DebugString();
  EXPECT_EQ(gs.unavailable(), "");
  EXPECT_GT(gs.fault_period(), 0u);
  EXPECT_GE(gs.stacks(0).share(), 0.9);
  EXPECT_NEAR(static_cast<double>(gs.stacks(0).fault_bytes()), grew, grew * 0.15);
  // vigil memory --pid names it too, over its last 4 s.
  const v1::MemoryResponse m =
      Memory({"--pid", std::to_string(toucher), "--since", "4s"}, agent.agent());
  const v1::GrowingStacks& ms = m.growing_stacks();
  ASSERT_GE(ms.stacks_size(), 1) << m.DebugString();
  ASSERT_GE(ms.stacks(0).frames_size(), 1) << m.DebugString();
  EXPECT_TRUE(absl::StartsWith(ms.stacks(0).frames(0).name(), "TouchPages")) << ms.DebugString();
  EXPECT_LE(ms.stacks_size(), 5);
  EXPECT_GE(ms.stacks(0).share(), 0.9);
  printf("vigil memory --pid %d --since 4s: top stack %.1f MiB (%.1f%%) of %.1f MiB\n", toucher,
         static_cast<double>(ms.stacks(0).fault_bytes()) / (1 << 20), 100 * ms.stacks(0).share(),
         static_cast<double>(ms.fault_bytes()) / (1 << 20));
  CommandResult mt = RunCommand({test::VigilPath(), "memory", "--agent", agent.agent(), "--pid",
                                 std::to_string(toucher), "--since", "4s"});
  EXPECT_TRUE(absl::StrContains(mt.out, "growing stacks: ")) << mt.out;
  EXPECT_TRUE(absl::StrContains(mt.out, "TouchPages")) << mt.out;

  // The grower frees and idles: the alert resolves. The controls never fired.
  ASSERT_TRUE(WaitForLine(grow_out, "freed", absl::Seconds(30)));
  const v1::SpinAlert* resolved = nullptr;
  for (int i = 0; i < 60 && resolved == nullptr; ++i) {
    absl::SleepFor(absl::Milliseconds(250));
    r = alerts();
    const v1::SpinAlert* x = find(r, grower);
    if (x != nullptr && x->state() == v1::ALERT_STATE_RESOLVED) resolved = x;
  }
  ASSERT_NE(resolved, nullptr) << r.DebugString();
  EXPECT_EQ(resolved->resolved_reason(), "growth stopped");
  EXPECT_EQ(find(r, filler), nullptr) << "a fill that plateaus alerted";
  EXPECT_EQ(find(r, churner), nullptr) << "alloc/free churn alerted";
  ASSERT_TRUE(WaitForLine(fill_out, "ready", absl::Seconds(1)));  // the controls did run
  EXPECT_GE(ProcStatus(filler)["VmRSS"], 290u << 20);
  // The table says it in one line.
  CommandResult t = RunCommand({test::VigilPath(), "alerts", "--agent", agent.agent()});
  EXPECT_TRUE(absl::StrContains(t.out, "memory growth  pid " + std::to_string(grower))) << t.out;
  EXPECT_TRUE(absl::StrContains(t.out, "growing stacks: ")) << t.out;
  EXPECT_TRUE(absl::StrContains(t.out, "TouchPages")) << t.out;
}

// Without page-fault sampling, growing stacks say why rather than come
// back empty: the profiler off (this suite's agent), or its fault period 0.
TEST_F(MemoryE2ETest, GrowingStacksSayWhyWhenFaultSamplingIsOff) {
  const std::string self = std::to_string(getpid());
  const v1::MemoryResponse off = Memory({"--pid", self});
  EXPECT_EQ(off.growing_stacks().stacks_size(), 0);
  EXPECT_TRUE(absl::StartsWith(off.growing_stacks().unavailable(), "page-fault sampling is off"))
      << off.DebugString();
  CommandResult t =
      RunCommand({test::VigilPath(), "memory", "--agent", agent_->agent(), "--pid", self});
  EXPECT_TRUE(absl::StrContains(t.out, "growing stacks: none, page-fault sampling is off"))
      << t.out;

  test::ScopedVigild agent({"--interval", "250ms", "--spin", "off", "--profile-fault-period", "0"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  absl::SleepFor(absl::Milliseconds(600));
  const v1::MemoryResponse zero = Memory({"--pid", self}, agent.agent());
  EXPECT_EQ(zero.growing_stacks().stacks_size(), 0);
  EXPECT_EQ(zero.growing_stacks().unavailable(),
            "page-fault sampling is off (vigild --profile-fault-period 0)")
      << zero.DebugString();
}

}  // namespace
}  // namespace vigil
