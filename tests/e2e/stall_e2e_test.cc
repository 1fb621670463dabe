// A read that sleeps in the kernel stalls one capability, not the agent.
//
// Debian's python3.11 runs from a FUSE mount (tests/workloads/hung_fuse.c)
// whose server then stops answering, as a dead NFS or FUSE mount does. The
// profiler, symbolizing that process, opens its binary and sleeps in the
// kernel until the server answers or dies. The other capabilities must go
// on collecting, status must say which one is stuck, and the agent must
// stop on SIGTERM; when the server dies, the profiler must come back.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

using test::Child;
using test::CommandResult;
using test::RunCommand;

constexpr char kPython[] = "/usr/bin/python3.11";

// The mount, served until destruction; then the server is killed (which
// aborts the connection: sleeping reads fail with ENOTCONN) and the mount
// detached.
class HungMount {
 public:
  explicit HungMount(const std::string& dir) : mnt_(dir + "/mnt") {
    mkdir(mnt_.c_str(), 0755);
#ifdef VIGIL_TEST_HUNG_FUSE
    server_ =
        std::make_unique<Child>(std::vector<std::string>{VIGIL_TEST_HUNG_FUSE, mnt_, kPython});
    ready_ = server_->Line() == "ready\n";
#endif
  }
  ~HungMount() { Abort(); }
  bool ready() const { return ready_; }
  std::string prog() const { return mnt_ + "/prog"; }
  void Hang() { kill(server_->pid(), SIGUSR1); }
  // The server dies: every sleeping read returns.
  void Abort() {
    if (server_ == nullptr) return;
    server_->Kill(SIGKILL);
    server_.reset();
    umount2(mnt_.c_str(), MNT_DETACH);
  }

 private:
  std::string mnt_;
  std::unique_ptr<Child> server_;
  bool ready_ = false;
};

std::string Status(const test::ScopedVigild& agent) {
  return RunCommand({test::VigilPath(), "--agent", agent.agent(), "status", "--timeout", "5s"},
                    absl::Seconds(10))
      .out;
}

// Polls `status` until `want` appears in it or 20 s pass; the last answer.
std::string StatusWhen(const test::ScopedVigild& agent, const std::string& want) {
  std::string s;
  for (const absl::Time until = absl::Now() + absl::Seconds(20); absl::Now() < until;) {
    s = Status(agent);
    if (absl::StrContains(s, want)) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return s;
}

// Runs tests/workloads' syscall workload now and returns its pid once the
// agent's syscall table shows it: the syscalls capability is collecting.
bool SyscallsSeeANewProcess(const test::ScopedVigild& agent, std::string* out) {
  CommandResult run = RunCommand({test::WorkloadPath(), "1"});
  if (run.exit_code != 0) return false;
  const std::string pid = run.out.substr(4, run.out.find('\n') - 4);
  for (const absl::Time until = absl::Now() + absl::Seconds(10); absl::Now() < until;) {
    CommandResult q = RunCommand(
        {test::VigilPath(), "--agent", agent.agent(), "syscalls", "--pid", pid, "--json"});
    *out = q.out;
    if (q.exit_code == 0 && absl::StrContains(q.out, "\"tid\"")) return true;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return false;
}

// Both tests start the same way: Python busy on a mount that then hangs,
// and an agent whose profiler is stuck symbolizing it.
class StallE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    VIGIL_REQUIRE_BPF();
#ifndef VIGIL_TEST_HUNG_FUSE
    VIGIL_SKIP_OR_FAIL("tests/workloads/hung_fuse not built: install libfuse3-dev");
#endif
    if (access("/dev/fuse", R_OK | W_OK) != 0) VIGIL_SKIP_OR_FAIL("/dev/fuse not usable here");
    mount_ = std::make_unique<HungMount>(dir_.path());
    ASSERT_TRUE(mount_->ready()) << "the FUSE server did not mount";
    // A busy Python, its binary on the mount; its pages are cached, so it
    // keeps running after the server stops answering.
    py_ = std::make_unique<Child>(std::vector<std::string>{
        mount_->prog(), "-c", "print('up', flush=True)\nwhile True: pass"});
    ASSERT_EQ(py_->Line(), "up\n");
    mount_->Hang();

    agent_ = std::make_unique<test::ScopedVigild>(
        std::vector<std::string>{"--interval", "200ms", "--sample-hz", "99"});
    ASSERT_TRUE(agent_->ok()) << agent_->log();
    // The profiler samples python and opens its binary to symbolize it:
    // that open sleeps until the server answers.
    stuck_ = StatusWhen(*agent_, "profile    degraded: collection stuck");
    ASSERT_TRUE(absl::StrContains(stuck_, "profile    degraded: collection stuck")) << stuck_;
  }
  // The mount first: an agent stuck on it is reaped only once it aborts.
  void TearDown() override {
    if (mount_) mount_->Abort();
    agent_.reset();
    py_.reset();
  }

  test::TempDir dir_;
  std::unique_ptr<HungMount> mount_;
  std::unique_ptr<Child> py_;
  std::unique_ptr<test::ScopedVigild> agent_;
  std::string stuck_;  // the status that showed the profiler stuck
};

TEST_F(StallE2ETest, AHungMountStallsTheProfilerOnlyAndItComesBack) {
  test::ScopedVigild& agent = *agent_;
  EXPECT_TRUE(absl::StrContains(stuck_, "syscalls   running")) << stuck_;
  EXPECT_TRUE(absl::StrContains(agent.CurrentLog(), "profile: collection has not returned"))
      << agent.CurrentLog();

  // Still stuck (no sampled process is missing), the others collect: a
  // process started now shows in the syscall table.
  std::string syscalls;
  EXPECT_TRUE(SyscallsSeeANewProcess(agent, &syscalls)) << syscalls;
  EXPECT_TRUE(absl::StrContains(Status(agent), "profile    degraded: collection stuck"))
      << "the profiler came back while the mount was hung: the test proved nothing";

  // The server dies; the sleeping open fails and the profiler collects
  // again.
  mount_->Abort();
  const std::string back = StatusWhen(agent, "profile    running");
  EXPECT_TRUE(absl::StrContains(back, "profile    running")) << back;
  EXPECT_TRUE(absl::StrContains(agent.CurrentLog(), "profile: collection returned after"))
      << agent.CurrentLog();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

// SIGTERM while a capability sleeps in the kernel: the agent leaves it
// behind and ends everything else. A thread asleep in a FUSE request the
// server has read cannot be killed (not even by SIGKILL), so the process is
// reaped only when the mount answers or aborts: a limit of Linux, written
// in README.
TEST_F(StallE2ETest, StopsWhileACapabilityIsStuck) {
  test::ScopedVigild& agent = *agent_;
  kill(agent.pid(), SIGTERM);
  // The main thread finishes: everything but the sleeping thread is gone
  // (the leader shows as a zombie while that thread sleeps).
  bool left = false;
  for (const absl::Time until = absl::Now() + absl::Seconds(15); !left && absl::Now() < until;) {
    left = absl::StrContains(agent.CurrentLog(), "profile: collection still stuck at shutdown");
    if (!left) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(left) << agent.CurrentLog();
  EXPECT_NE(RunCommand({test::VigilPath(), "--agent", agent.agent(), "status", "--timeout", "2s"})
                .exit_code,
            0)
      << "the agent still answers after SIGTERM";
  mount_->Abort();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

}  // namespace
}  // namespace vigil
