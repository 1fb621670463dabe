// vigild --on-alert CMD: runs `/bin/sh -c CMD` once per alert event with the
// event's JSON on stdin. A worker thread runs one command at a time from a
// bounded queue, so collection never waits for it; a command still running
// after the timeout is killed with its process group.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vigil {

struct OnAlertCounters {
  uint64_t runs = 0;
  uint64_t failures = 0;  // could not start, or exited non-zero
  uint64_t timeouts = 0;  // killed after the timeout
  uint64_t dropped = 0;   // queue full
};

class OnAlertRunner {
 public:
  OnAlertRunner(std::string command, absl::Duration timeout, size_t max_queue);
  ~OnAlertRunner();  // waits for (or kills) the running command
  OnAlertRunner(const OnAlertRunner&) = delete;
  OnAlertRunner& operator=(const OnAlertRunner&) = delete;

  // Never blocks: drops (and counts) when the queue is full.
  void Enqueue(std::string json);
  OnAlertCounters counters() const;

 private:
  void Loop();
  void RunOne(const std::string& json);

  const std::string command_;
  const absl::Duration timeout_;
  const size_t max_queue_;
  mutable absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  OnAlertCounters counters_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace vigil
