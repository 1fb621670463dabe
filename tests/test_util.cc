#include "tests/test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/preflight.h"

namespace vigil::test {

std::string VigildPath() { return VIGIL_TEST_VIGILD; }
std::string VigilPath() { return VIGIL_TEST_VIGIL; }
std::string WorkloadPath() { return VIGIL_TEST_WORKLOAD; }
std::string SourceDir() { return VIGIL_TEST_SOURCE_DIR; }

SpinWorkload::SpinWorkload(std::vector<std::string> args) {
  args.insert(args.begin(), SpinWorkloadPath());
  int p[2];
  if (pipe(p) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(p[1], 1);
    close(p[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  out_ = fdopen(p[0], "r");
  started_ = absl::Now();
}

SpinWorkload::~SpinWorkload() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_) fclose(out_);
}

std::vector<uint32_t> SpinWorkload::Tids(size_t n) {
  char line[128];
  while (tids_.size() < n && out_ && fgets(line, sizeof(line), out_)) {
    std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(line), ' ');
    uint32_t v = 0;
    if (f.size() == 2 && absl::SimpleAtoi(f[1], &v))
      (f[0] == "tid" ? tids_.push_back(v) : void(pid_reported_ = v));
  }
  return tids_;
}

int SpinWorkload::Wait() {
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool IntFlag(const char* prog, int argc, char** argv, int* i, const char* name, int64_t min,
             int64_t max, int64_t* out) {
  if (std::string(argv[*i]) != name) return false;
  if (*i + 1 >= argc || !absl::SimpleAtoi(argv[*i + 1], out) || *out < min || *out > max) {
    fprintf(stderr, "%s: %s: expected an integer from %ld to %ld\n", prog, name,
            static_cast<long>(min), static_cast<long>(max));
    exit(2);
  }
  ++*i;
  return true;
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}
std::string ProfileWorkloadPath() { return VIGIL_TEST_PROFILE_WORKLOAD; }
std::string ProfileLibPath() { return VIGIL_TEST_PROFILE_LIB; }
std::string SpinWorkloadPath() { return VIGIL_TEST_SPIN_WORKLOAD; }
std::string StrippedSpinDir() { return VIGIL_TEST_SPLIT_DIR; }

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  CommandResult r;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) return r;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  const absl::Time deadline = absl::Now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  while (open_fds > 0) {
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) {
      timed_out = true;
      break;
    }
    if (poll(fds, 2, ms) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, n);
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  if (timed_out) kill(pid, SIGKILL);
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (timed_out) r.err += "\n[timed out]";
  return r;
}

std::string BpfUnavailableReason() {
  absl::Status s = RunPreflight();
  return s.ok() ? "" : std::string(s.message());
}

bool SkipsAreFailures() {
  const char* ci = getenv("CI");
  const char* req = getenv("VIGIL_REQUIRE_BPF");
  return (ci != nullptr && std::string(ci) == "true") ||
         (req != nullptr && std::string(req) == "1");
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/vigil-test-XXXXXX";
  path_ = mkdtemp(tmpl) ? tmpl : "";
}

TempDir::~TempDir() {
  if (!path_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

ScopedVigild::ScopedVigild(std::vector<std::string> extra, std::vector<std::string> probe) {
  agent_ = absl::StrCat("unix:", dir_.path(), "/vigild.sock");
  log_path_ = absl::StrCat(dir_.path(), "/vigild.log");
  std::vector<std::string> argv = {VigildPath(), "--listen", agent_};
  argv.insert(argv.end(), extra.begin(), extra.end());
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {  // died during start-up
      pid_ = -1;
      break;
    }
    std::vector<std::string> ask = {VigilPath(), "status", "--timeout", "1s"};
    if (probe.empty()) probe = {"--agent", agent_};
    ask.insert(ask.end(), probe.begin(), probe.end());
    if (RunCommand(ask).exit_code == 0) {
      ready_ = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::ifstream f(log_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  log_ = ss.str();
}

int ScopedVigild::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  std::ifstream f(log_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  log_ = ss.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ScopedVigild::CurrentLog() const {
  std::ifstream f(log_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ScopedVigild::~ScopedVigild() { Stop(); }

}  // namespace vigil::test
