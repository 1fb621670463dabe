#include "agent/collect_worker.h"

namespace vigil {

CollectWorker::CollectWorker(Capability* cap, StoreWriter writer)
    : cap_(cap), writer_(writer), thread_([this] { Run(); }) {}

CollectWorker::~CollectWorker() {
  if (thread_.joinable()) {
    Stop(absl::InfiniteDuration());
  }
}

void CollectWorker::Run() {
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.Await(absl::Condition(this, &CollectWorker::HasWorkOrExit));
    if (!pending_) return;  // exit_, and nothing left to run
    pending_ = false;
    running_ = true;
    const IntervalSpan span = span_;
    mu_.Unlock();
    absl::Status s = cap_->Collect(span, writer_);
    mu_.Lock();
    running_ = false;
    started_ = absl::InfiniteFuture();
    result_ = std::move(s);
  }
}

bool CollectWorker::Start(const IntervalSpan& span) {
  absl::MutexLock lock(&mu_);
  if (pending_ || running_ || exit_) return false;
  span_ = span;
  pending_ = true;
  started_ = absl::Now();
  return true;
}

bool CollectWorker::Wait(absl::Time deadline, absl::Status* status) {
  absl::MutexLock lock(&mu_);
  const bool idle = mu_.AwaitWithDeadline(absl::Condition(this, &CollectWorker::Idle), deadline);
  if (idle) *status = result_;
  return idle;
}

absl::Time CollectWorker::busy_since() const {
  absl::MutexLock lock(&mu_);
  return started_;
}

bool CollectWorker::Stop(absl::Duration grace) {
  if (!thread_.joinable()) return true;
  bool idle;
  {
    absl::MutexLock lock(&mu_);
    exit_ = true;
    pending_ = false;
    idle = mu_.AwaitWithTimeout(absl::Condition(this, &CollectWorker::Idle), grace);
  }
  if (!idle) {
    thread_.detach();
    return false;
  }
  thread_.join();
  return true;
}

}  // namespace vigil
