#include "agent/alerts/on_alert.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace vigil {

OnAlertRunner::OnAlertRunner(std::string command, absl::Duration timeout, size_t max_queue)
    : command_(std::move(command)), timeout_(timeout), max_queue_(max_queue) {
  thread_ = std::thread([this] { Loop(); });
}

OnAlertRunner::~OnAlertRunner() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    queue_.clear();
  }
  thread_.join();
}

void OnAlertRunner::Enqueue(std::string json) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= max_queue_) {
    ++counters_.dropped;
    return;
  }
  queue_.push_back(std::move(json));
}

OnAlertCounters OnAlertRunner::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

void OnAlertRunner::Loop() {
  // A command that exits without reading its stdin turns the write in
  // RunOne into EPIPE plus a SIGPIPE, which must not kill whatever process
  // hosts the runner: vigild ignores it, a test binary does not (CI lost
  // the unit tests' process that way). Blocked here, for this thread only.
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
  for (;;) {
    std::string json;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      json = std::move(queue_.front());
      queue_.pop_front();
      ++counters_.runs;
    }
    RunOne(json);
  }
}

void OnAlertRunner::RunOne(const std::string& json) {
  auto fail = [this](const char* what, int err) {
    fprintf(stderr, "vigild: on-alert: %s: %s\n", what, strerror(err));
    absl::MutexLock lock(&mu_);
    ++counters_.failures;
  };
  int in[2];
  if (pipe2(in, O_CLOEXEC) != 0) return fail("pipe", errno);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group, so a timeout kills the shell and what it started;
  // default signal mask, since vigild blocks its stop signals.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  const char* argv[] = {"/bin/sh", "-c", command_.c_str(), nullptr};
  pid_t pid = -1;
  const int err = posix_spawn(&pid, "/bin/sh", &fa, &attr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  if (err != 0) {
    close(in[1]);
    return fail("starting /bin/sh", err);
  }
  // The JSON is a few KiB at most, under the pipe buffer: this write does
  // not wait for the command to read. A command that ignores stdin is fine
  // (SIGPIPE is blocked on this thread: EPIPE only).
  const ssize_t unused = write(in[1], json.data(), json.size());
  (void)unused;
  close(in[1]);

  const absl::Time deadline = absl::Now() + timeout_;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return fail("waitpid", errno);
    if (absl::Now() >= deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      fprintf(stderr, "vigild: on-alert: command killed after %s\n",
              absl::FormatDuration(timeout_).c_str());
      absl::MutexLock lock(&mu_);
      ++counters_.timeouts;
      return;
    }
    poll(nullptr, 0, 20);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "vigild: on-alert: command exited with status %d\n",
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    absl::MutexLock lock(&mu_);
    ++counters_.failures;
  }
}

}  // namespace vigil
