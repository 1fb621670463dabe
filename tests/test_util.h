// Helpers shared by the tests: running commands, starting vigild on a
// private socket, and skipping BPF tests with a reason when not privileged.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

// Skips the test with `why`, or fails it with `why` where SkipsAreFailures().
// Usable in TEST bodies and SetUp (it returns from the function).
#define VIGIL_SKIP_OR_FAIL(why)                                          \
  do {                                                                   \
    if (::vigil::test::SkipsAreFailures()) {                             \
      GTEST_FAIL() << "would skip, and skips fail here (CI): " << (why); \
    } else {                                                             \
      GTEST_SKIP() << (why);                                             \
    }                                                                    \
  } while (0)

// Skips (or fails, in CI) unless this process may load BPF programs.
#define VIGIL_REQUIRE_BPF()                                                               \
  do {                                                                                    \
    const std::string vigil_why_ = ::vigil::test::BpfUnavailableReason();                 \
    if (!vigil_why_.empty()) VIGIL_SKIP_OR_FAIL("BPF not permitted here: " + vigil_why_); \
  } while (0)

namespace vigil::test {

struct CommandResult {
  int exit_code = -1;  // -1: killed by a signal or could not run
  std::string out;
  std::string err;
};

// Runs argv (argv[0] a path) to completion, capturing stdout and stderr.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(60));

// Empty if this process may load BPF programs; otherwise why not.
std::string BpfUnavailableReason();

// True where a test that would skip must fail instead: CI (CI=true) or
// VIGIL_REQUIRE_BPF=1. A broken preflight or a lost install step must not
// turn a whole tier green; on a developer's unprivileged machine skips stay
// skips.
bool SkipsAreFailures();

// A temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// vigild started on a private socket; SIGTERM and waited for on destruction.
class ScopedVigild {
 public:
  // extra: more vigild flags (a later --listen overrides the private
  // socket). Waits until `vigil status <probe>` answers; probe defaults to
  // --agent on the private socket.
  explicit ScopedVigild(std::vector<std::string> extra = {}, std::vector<std::string> probe = {});
  ~ScopedVigild();
  bool ok() const { return pid_ > 0 && ready_; }
  const std::string& agent() const { return agent_; }  // "unix:/..."
  const std::string& log() const { return log_; }
  // The log as it is now, while the agent runs.
  std::string CurrentLog() const;
  pid_t pid() const { return pid_; }
  // Stops vigild; returns its exit code (-1 if killed by a signal).
  int Stop();

 private:
  TempDir dir_;
  std::string agent_;
  std::string log_path_;
  std::string log_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

// A child with its stdin and stdout on pipes; killed and reaped on
// destruction.
class Child {
 public:
  // quiet: stderr to /dev/null (bpftrace's warnings about tracefs).
  explicit Child(const std::vector<std::string>& argv, bool quiet = false) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      if (quiet) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
      }
      close(in[1]);
      close(out[0]);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = fdopen(out[0], "r");
  }
  ~Child() {
    Kill(SIGKILL);
    if (in_ >= 0) close(in_);
    if (out_) fclose(out_);
  }
  pid_t pid() const { return pid_; }
  // Writes to its stdin; false if the pipe would not take it all.
  bool Send(const std::string& s) {
    return write(in_, s.data(), s.size()) == static_cast<ssize_t>(s.size());
  }
  // The next line of stdout ("" at its end).
  std::string Line() {
    char buf[512];
    if (!out_ || !fgets(buf, sizeof(buf), out_)) return "";
    return buf;
  }
  // Reads stdout to its end.
  std::string Rest() {
    std::string s, l;
    while (!(l = Line()).empty()) s += l;
    return s;
  }
  void Kill(int sig) {
    if (pid_ <= 0 || reaped_) return;
    kill(pid_, sig);
    if (sig == SIGKILL || sig == SIGTERM) Reap();
  }
  // Waits up to `wait` for the child to exit, then kills it.
  int ReapWithin(absl::Duration wait) {
    const absl::Time until = absl::Now() + wait;
    while (pid_ > 0 && !reaped_ && absl::Now() < until) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        reaped_ = true;
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return status_;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    Kill(SIGKILL);
    return status_;
  }
  int Reap() {
    if (pid_ <= 0 || reaped_) return status_;
    int st = 0;
    waitpid(pid_, &st, 0);
    reaped_ = true;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  FILE* out_ = nullptr;
  bool reaped_ = false;
  int status_ = -1;
};

// tests/workloads/spin_workload started in the background with `args`; its
// "pid"/"tid" lines are read as they come. Killed and reaped on destruction.
class SpinWorkload {
 public:
  explicit SpinWorkload(std::vector<std::string> args);
  ~SpinWorkload();
  SpinWorkload(const SpinWorkload&) = delete;
  SpinWorkload& operator=(const SpinWorkload&) = delete;
  // Reads until `n` tids were announced (fewer if the workload ended).
  std::vector<uint32_t> Tids(size_t n);
  // Waits for the workload to exit; its exit code (-1: killed by a signal).
  int Wait();
  uint32_t pid() const { return pid_reported_; }  // as the workload printed it
  absl::Time started() const { return started_; }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::vector<uint32_t> tids_;
  uint32_t pid_reported_ = 0;
  absl::Time started_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();

// For benchmarks' hand-rolled flags: if argv[*i] is `name`, reads the next
// argument into *out (an integer in [min, max], else "<prog>: ..." on stderr
// and exit 2), steps *i past it and returns true.
bool IntFlag(const char* prog, int argc, char** argv, int* i, const char* name, int64_t min,
             int64_t max, int64_t* out);

// Paths of the built binaries (set by CMake).
std::string VigildPath();
std::string VigilPath();
std::string WorkloadPath();
std::string SourceDir();
std::string ProfileWorkloadPath();
std::string ProfileLibPath();
std::string SpinWorkloadPath();
// tests/workloads/split_debug.sh's output: stripped, srv/stripped_spin.debug,
// minidebuginfo.
std::string StrippedSpinDir();

}  // namespace vigil::test
