#include "agent/store/shared_answers.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "agent/store/window_store.h"

namespace vigil {

absl::StatusOr<std::shared_ptr<const google::protobuf::Message>> SharedAnswers::JoinOrLead(
    const std::string& key, uint64_t generation, const QueryContext& ctx, bool* lead) {
  absl::MutexLock lock(&mu_);
  while (true) {
    auto it = flights_.find(key);
    if (it == flights_.end()) {
      ++stats_.merged;
      if (flights_.size() >= config_.max_entries) return nullptr;  // merge, unshared
      auto f = std::make_shared<Flight>();
      f->generation = generation;
      flights_.emplace(key, std::move(f));
      *lead = true;
      return nullptr;
    }
    const std::shared_ptr<Flight> f = it->second;
    if (f->done) {
      ++stats_.stored;
      return f->answer;
    }
    // Wake every 50 ms to notice a client that went away; the deadline
    // ends the wait for good.
    while (!f->done) {
      if (ctx.cancelled && ctx.cancelled()) {
        return absl::CancelledError(
            "the client cancelled while the query waited for an identical one to finish");
      }
      const absl::Time now = absl::Now();
      if (now >= ctx.deadline) {
        return absl::DeadlineExceededError(
            "deadline passed while waiting for an identical query another client started");
      }
      mu_.AwaitWithDeadline(absl::Condition(&f->done),
                            std::min(ctx.deadline, now + absl::Milliseconds(50)));
    }
    if (f->answer != nullptr) {
      ++stats_.joined;
      return f->answer;
    }
    // Its merge failed (that caller's deadline, say): look again, and
    // merge for ourselves if no one else has started.
  }
}

void SharedAnswers::Finish(const std::string& key,
                           std::shared_ptr<const google::protobuf::Message> answer, bool keep) {
  // Measured outside the lock: it walks the whole answer.
  const size_t bytes = answer != nullptr && keep ? answer->SpaceUsedLong() : 0;
  absl::MutexLock lock(&mu_);
  auto it = flights_.find(key);
  if (it == flights_.end()) return;  // cannot happen: only the leader finishes
  Flight& f = *it->second;
  f.done = true;
  f.answer = std::move(answer);
  if (f.answer == nullptr || !keep) {
    flights_.erase(it);
    return;
  }
  if (bytes > config_.max_bytes || stats_.bytes > config_.max_bytes - bytes) {
    ++stats_.not_kept;
    flights_.erase(it);
    return;
  }
  f.bytes = bytes;
  stats_.bytes += bytes;
}

void SharedAnswers::CountUnshared() {
  absl::MutexLock lock(&mu_);
  ++stats_.merged;
}

void SharedAnswers::DropLocked(
    absl::flat_hash_map<std::string, std::shared_ptr<Flight>>::iterator it) {
  stats_.bytes -= it->second->bytes;
  flights_.erase(it);
}

void SharedAnswers::Invalidate(uint64_t generation) {
  if (config_.max_bytes == 0) return;
  absl::MutexLock lock(&mu_);
  for (auto it = flights_.begin(); it != flights_.end();) {
    auto next = std::next(it);
    // Merges in flight are left to their leader, who will not keep them.
    if (it->second->done && it->second->generation != generation) DropLocked(it);
    it = next;
  }
}

SharedAnswers::Stats SharedAnswers::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s = stats_;
  s.entries = flights_.size();
  return s;
}

}  // namespace vigil
