// One capability's Collect on a thread of its own, so a Collect that sleeps
// in the kernel (a read of a file on a hung FUSE or NFS mount, a process's
// /proc entry behind its mm lock) holds up that capability only: the loop
// waits for it until a deadline, then goes on with the others and skips it
// until it returns.
#pragma once

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/capability.h"
#include "agent/store/window_store.h"

namespace vigil {

class CollectWorker {
 public:
  CollectWorker(Capability* cap, StoreWriter writer);
  // Joins the thread: only once it is idle (Stop returned true).
  ~CollectWorker();
  CollectWorker(const CollectWorker&) = delete;
  CollectWorker& operator=(const CollectWorker&) = delete;

  // Starts a Collect over `span`; false (nothing started) while the last one
  // is still running.
  bool Start(const IntervalSpan& span);
  // Waits for the running Collect until `deadline`: true with its status, or
  // false if it has not returned.
  bool Wait(absl::Time deadline, absl::Status* status);
  // When the Collect still running started (InfiniteFuture when idle).
  absl::Time busy_since() const;
  // Ends the thread once idle, waiting up to `grace`. False if a Collect is
  // still running: the thread is detached, and the worker and its capability
  // must then never be destroyed.
  bool Stop(absl::Duration grace);

 private:
  void Run();
  bool HasWorkOrExit() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ || exit_; }
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !pending_ && !running_; }

  Capability* const cap_;
  mutable absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool exit_ ABSL_GUARDED_BY(mu_) = false;
  IntervalSpan span_ ABSL_GUARDED_BY(mu_);
  absl::Time started_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Status result_ ABSL_GUARDED_BY(mu_);
  StoreWriter writer_;  // used by the worker thread only
  std::thread thread_;
};

}  // namespace vigil
