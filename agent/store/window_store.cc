#include "agent/store/window_store.h"

#include "absl/strings/str_cat.h"

namespace vigil {

absl::StatusOr<std::pair<absl::Time, absl::Time>> StoreView::Resolve(const v1::TimeRange& range,
                                                                     absl::Time now) const {
  const absl::Duration window = store_->config_.window;
  const absl::Duration since = absl::Nanoseconds(range.since_ago_ns());
  const absl::Duration until = absl::Nanoseconds(range.until_ago_ns());
  if (since > window) {
    return absl::InvalidArgumentError(absl::StrCat("range: since ", absl::FormatDuration(since),
                                                   " ago is outside the agent's ",
                                                   absl::FormatDuration(window), " window"));
  }
  if (until > window) {
    return absl::InvalidArgumentError(absl::StrCat("range: until ", absl::FormatDuration(until),
                                                   " ago is outside the agent's ",
                                                   absl::FormatDuration(window), " window"));
  }
  const absl::Time from = range.since_ago_ns() == 0 ? absl::InfinitePast() : now - since;
  return std::make_pair(from, now - until);
}

absl::StatusOr<StoreView::MergeSlot> StoreView::AcquireMergeSlot(const QueryContext& ctx) const {
  const int max = store_->config_.max_concurrent_merges;
  absl::MutexLock lock(&store_->slots_mu_);
  auto free = [this, max]() ABSL_SHARED_LOCKS_REQUIRED(store_->slots_mu_) {
    return store_->merges_running_ < max;
  };
  // Wake every 50 ms to notice a client that went away; the deadline ends
  // the wait for good.
  while (!free()) {
    if (ctx.cancelled && ctx.cancelled()) {
      return absl::CancelledError("the client cancelled while the query waited for a merge slot");
    }
    const absl::Time now = absl::Now();
    if (now >= ctx.deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("deadline passed while waiting for one of ", max,
                       " merge slots (the agent is answering other queries)"));
    }
    store_->slots_mu_.AwaitWithDeadline(absl::Condition(&free),
                                        std::min(ctx.deadline, now + absl::Milliseconds(50)));
  }
  ++store_->merges_running_;
  return MergeSlot(store_);
}

absl::StatusOr<StoreView::Merge> StoreView::BeginMerge(const v1::TimeRange& range,
                                                       const QueryContext& ctx) const {
  absl::StatusOr<std::pair<absl::Time, absl::Time>> r = Resolve(range, absl::Now());
  if (!r.ok()) return r.status();
  absl::StatusOr<MergeSlot> slot = AcquireMergeSlot(ctx);
  if (!slot.ok()) return slot.status();
  return Merge{r->first, r->second, *std::move(slot)};
}

std::string StoreView::StateKey(const v1::TimeRange& range, uint64_t* generation) const {
  absl::StatusOr<std::pair<absl::Time, absl::Time>> r = Resolve(range, absl::Now());
  if (!r.ok()) return "";
  std::string key;
  absl::ReaderMutexLock lock(&store_->mu_);
  key.reserve(store_->tables_.size() * 4 * sizeof(uint64_t));
  for (const auto& t : store_->tables_) t->AppendState(r->first, r->second, &key);
  *generation = store_->generation_;
  return key;
}

uint64_t StoreView::generation() const {
  absl::ReaderMutexLock lock(&store_->mu_);
  return store_->generation_;
}

SharedAnswers::Stats StoreView::shared_stats() const { return store_->shared_.stats(); }

StoreView::MergeSlot::~MergeSlot() {
  if (store_ == nullptr) return;
  absl::MutexLock lock(&store_->slots_mu_);
  --store_->merges_running_;
}

}  // namespace vigil
